"""SIGKILL at any point, restart: exactly one digest per subscriber and period.

Real subprocesses: ``tests/digest_driver.py`` runs the real pass and freezes
at a chosen point (after a planning chunk, after planning, between SMTP
acceptance and the mark, after a mark); the test kills it with SIGKILL and
finishes with the real ``python -m syndicate digests send``. Then several
``digests send`` processes run at once against one database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from feeds.db import utcnow
from subscribers.models import SENT, Delivery, Subscription
from tests.mailtools import SECRET, SmtpServer, organization, publish, subscribe

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).resolve().parent / "digest_driver.py"
READERS = 12


def _prepare(session) -> list[str]:
    now = utcnow()
    org = organization(session)
    readers = [f"reader{n}@example.com" for n in range(READERS)]
    for n, address in enumerate(readers):
        subscribe(session, address, now - timedelta(hours=1), keywords="" if n % 2 else "электробус",
                  timezone_name="UTC", hour=(now.hour + 12) % 24)
    publish(session, org, "Производство электробусов", at=now - timedelta(minutes=5))
    publish(session, org, "Ещё про электробусы", at=now - timedelta(minutes=4))
    # everyone is due now
    session.execute(update(Subscription).values(next_due_at=now - timedelta(minutes=1)))
    session.commit()
    return readers


def _env(database_url: str, port: int, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE_")}
    env.update(
        SYNDICATE_DATABASE_URL=database_url,
        SYNDICATE_MAIL_URL=f"smtp://127.0.0.1:{port}?timeout=10",
        SYNDICATE_MAIL_FROM="Syndicate <digest@example.org>",
        SYNDICATE_SECRET_KEY=SECRET,
        SYNDICATE_INSTANCE_PATH=str(tmp_path / "instance"),
    )
    return env


def _send(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syndicate", "digests", "send"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )


def _wait_for(marker: Path, proc: subprocess.Popen[str]) -> None:
    for _ in range(600):  # at most a minute
        if marker.exists():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the driver finished before the pause point: {proc.communicate()}")
        time.sleep(0.1)
    raise AssertionError("the driver never reached the pause point")


def _wait_for_leases(session) -> None:
    for _ in range(100):
        session.rollback()
        until = session.scalar(select(func.max(Delivery.lease_until)).where(Delivery.lease_owner.is_not(None)))
        if until is None or until < utcnow():
            return
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("point,at", [("after_chunk", 1), ("after_plan", 1), ("after_accept", 3), ("after_mark", 5)])
def test_sigkill_then_restart_sends_exactly_one_digest_each(database_url, session, tmp_path, point, at) -> None:
    readers = _prepare(session)
    with SmtpServer() as server:
        env = _env(database_url, server.port, tmp_path)
        marker = tmp_path / "paused"
        proc = subprocess.Popen(
            [sys.executable, str(DRIVER), "--database-url", database_url, "--smtp-port", str(server.port),
             "--pause", point, "--at", str(at), "--marker", str(marker), "--lease", "2"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            _wait_for(marker, proc)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        before = len(server.handler.received)
        _wait_for_leases(session)
        restart = _send(env)
        assert restart.returncode == 0, restart.stderr
        again = _send(env)  # a further pass finds nothing left to do
        assert again.returncode == 0, again.stderr
    received = server.handler.received
    per_reader = Counter(r for m in received for r in m.recipients)
    assert set(per_reader) == set(readers)
    duplicates = sum(per_reader.values()) - READERS
    # Only a kill between SMTP acceptance and the mark may repeat one mail, and then with the same Message-ID.
    assert duplicates == (1 if point == "after_accept" else 0)
    for reader in readers:
        ids = {m.message["Message-ID"] for m in received if reader in m.recipients}
        assert len(ids) == 1
    assert before < len(received) or point in ("after_chunk", "after_plan")
    session.rollback()
    statuses = list(session.scalars(select(Delivery.status)))
    assert len(statuses) == READERS and set(statuses) == {SENT}


@pytest.mark.slow
def test_several_processes_at_once_send_each_digest_once(database_url, session, tmp_path) -> None:
    readers = _prepare(session)
    with SmtpServer() as server:
        env = _env(database_url, server.port, tmp_path)
        procs = [
            subprocess.Popen([sys.executable, "-m", "syndicate", "digests", "send"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        outputs = [p.communicate(timeout=180) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], outputs
    recipients = sorted(r for m in server.handler.received for r in m.recipients)
    assert recipients == sorted(readers)
