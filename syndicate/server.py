"""``syndicate serve``: the production WSGI server (Granian) plus the scheduler process."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

from config import Config

log = logging.getLogger(__name__)


def serve(
    config: Config,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    with_scheduler: bool = True,
) -> None:
    """Serve until interrupted; the scheduler runs in its own process beside the web workers."""
    from granian import Granian
    from granian.constants import Interfaces

    from feeds.schema import is_up_to_date

    host = host or os.environ.get("HOST") or "127.0.0.1"
    port = port or int(os.environ.get("PORT") or 8000)
    workers = workers or int(os.environ.get("SYNDICATE_WEB_WORKERS") or os.cpu_count() or 1)
    # Python threads per worker. Granian's default for WSGI (hundreds) makes
    # cached responses queue on the GIL; a few threads still overlap the
    # database waits of uncached pages.
    threads = int(os.environ.get("SYNDICATE_WEB_THREADS") or 2)
    if not is_up_to_date(config.database_url):
        raise SystemExit("Error: the database schema is not up to date; run `syndicate db upgrade`")

    scheduler: subprocess.Popen[bytes] | None = None
    if with_scheduler:
        # Its own process: never inside a web worker, never started twice per `serve`.
        scheduler = subprocess.Popen([sys.executable, "-m", "syndicate", "scheduler"])
    print(f"Syndicate on http://{host}:{port}/ ({workers} web workers"
          f"{', scheduler pid %d' % scheduler.pid if scheduler else ', no scheduler'})", flush=True)
    try:
        Granian(
            "syndicate.wsgi:app",
            address=host,
            port=port,
            interface=Interfaces.WSGI,
            workers=workers,
            blocking_threads=threads,
            backpressure=threads * 4,
            log_access=False,
        ).serve()
    finally:
        if scheduler is not None and scheduler.poll() is None:
            scheduler.send_signal(signal.SIGTERM)
            try:
                scheduler.wait(timeout=15)
            except subprocess.TimeoutExpired:
                scheduler.kill()
