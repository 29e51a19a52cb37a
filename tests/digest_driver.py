"""One digest pass that stops dead at a chosen point, for the crash test.

``python tests/digest_driver.py --database-url URL --smtp-port P --pause after_accept --at 3 --marker FILE``
runs the real ``DigestRunner`` over SMTP; when the pause point is reached for
the ``--at``-th time it writes the marker file and sleeps, waiting for the
test's SIGKILL. With ``--pause none`` it simply runs the pass.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feeds.db import make_session_factory  # noqa: E402
from subscribers.mailer import SMTPMailer  # noqa: E402
from subscribers.send import DigestRunner  # noqa: E402
from subscribers.settings import MailSettings  # noqa: E402


class PauseAt:
    def __init__(self, point: str, at: int, marker: Path) -> None:
        self.point, self.at, self.marker = point, at, marker

    def _reached(self, point: str, count: int) -> None:
        if point == self.point and count >= self.at:
            self.marker.write_text(f"{point} {count}\n")
            while True:  # wait for SIGKILL
                time.sleep(1)

    def after_chunk(self, count: int) -> None:
        self._reached("after_chunk", count)

    def after_plan(self) -> None:
        self._reached("after_plan", 1)

    def after_accept(self, count: int) -> None:
        self._reached("after_accept", count)

    def after_mark(self, count: int) -> None:
        self._reached("after_mark", count)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--secret", default="test-secret-key-not-for-production")
    parser.add_argument("--pause", default="none")
    parser.add_argument("--at", type=int, default=1)
    parser.add_argument("--marker", type=Path)
    parser.add_argument("--lease", type=float, default=2.0)
    args = parser.parse_args()
    settings = MailSettings(
        base_url="http://127.0.0.1:8000",
        secret_key=args.secret,
        mail_from="Syndicate <digest@example.org>",
        lease_seconds=args.lease,
        batch_size=4,
    )
    hooks = PauseAt(args.pause, args.at, args.marker) if args.pause != "none" else None
    runner = DigestRunner(
        make_session_factory(args.database_url),
        SMTPMailer("127.0.0.1", args.smtp_port, timeout=10),
        settings,
        node=f"driver:{os.getpid()}",
        hooks=hooks,
        plan_chunk=4,
    )
    print(runner.run_pass().summary(), flush=True)


if __name__ == "__main__":
    main()
