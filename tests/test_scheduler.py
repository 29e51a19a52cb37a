"""The scheduler as separate processes: leases keep two of them from doing any work twice,
and a running ``syndicate scheduler`` picks up a source added on the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from conftest import TEST_DATABASE_URL, reset_postgres
from feeds.db import make_session_factory
from feeds.models import Heartbeat, Release, Source
from feeds.organizations import create_organization
from feeds.sources import add_source
from feedserver import FeedServer, Reply, feed_server  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = 5

WORKER = r"""
import json, sys, time
from pathlib import Path
from feeds.db import make_session_factory
from feeds.fetch import Fetcher
from feeds.ingest import refresh_due_sources

url, worker, go, out = sys.argv[1:5]
factory = make_session_factory(url)
fetcher = Fetcher(allow_private=True)
while not Path(go).exists():
    time.sleep(0.005)
polled, idle, stop = [], 0, time.monotonic() + 90
while idle < 5 and time.monotonic() < stop:
    results = refresh_due_sources(factory, fetcher, worker=worker, max_workers=2, batch_size=2)
    polled += [[r.source_id, r.status, r.created] for r in results]
    idle = 0 if results else idle + 1
    if not results:
        time.sleep(0.05)
Path(out).write_text(json.dumps(polled))
"""


def feed(n: int) -> bytes:
    items = "".join(f"<item><title>Новость {n}.{i}</title><guid>s{n}-e{i}</guid></item>" for i in range(ENTRIES))
    return f'<rss version="2.0"><channel><title>Партнёр {n}</title>{items}</channel></rss>'.encode()


def slow_feed(n: int):  # type: ignore[no-untyped-def]
    def reply(headers: Mapping[str, str]) -> Reply:
        time.sleep(0.02)  # long enough for the two workers' claims to overlap
        return Reply(body=feed(n))

    return reply


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATE_")}
    env.update(extra)
    return env


@pytest.mark.slow
@pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL: set TEST_DATABASE_URL to run two scheduler "
                                                  "processes against one database")
def test_two_scheduler_processes_never_fetch_a_source_twice(
    request: pytest.FixtureRequest, feed_server: FeedServer, tmp_path: Path
) -> None:
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    factory = make_session_factory(url)
    sources = 24
    with factory() as session:
        org = create_organization(session, "АИРР", country_code="RU")
        for n in range(sources):
            add_source(session, feed_server.route(f"/s{n}.rss", slow_feed(n)), org, allow_private=True)
        session.commit()

    go = tmp_path / "go"
    outs = [tmp_path / f"w{i}.json" for i in range(2)]
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, url, f"worker-{i}", str(go), str(outs[i])], cwd=ROOT,
                         env=_env())
        for i in range(2)
    ]
    go.touch()  # both start together
    for proc in procs:
        assert proc.wait(timeout=120) == 0

    polled = [json.loads(out.read_text()) for out in outs]
    ids = [sid for one in polled for sid, _status, _created in one]
    assert sorted(ids) == [s + 1 for s in range(sources)]  # every source once, by exactly one process
    assert all(status == "ok" for one in polled for _sid, status, _c in one)
    assert all(feed_server.hits[f"/s{n}.rss"] == 1 for n in range(sources)), feed_server.hits
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Release)) == sources * ENTRIES
        distinct = select(Release.source_id, Release.source_entry_key).distinct().subquery()
        assert session.scalar(select(func.count()).select_from(distinct)) == sources * ENTRIES
        assert session.scalar(select(func.count()).where(Source.lease_owner.is_not(None))) == 0
    factory.kw["bind"].dispose()
    print(f"\nworker-0 polled {len(polled[0])} sources, worker-1 polled {len(polled[1])}")


@pytest.mark.slow
def test_the_running_scheduler_polls_a_source_added_on_the_command_line(
    database_url: str, session_factory: sessionmaker[Session], feed_server: FeedServer, tmp_path: Path
) -> None:
    with session_factory() as session:
        create_organization(session, "АИРР", country_code="RU", slug="airr")
        session.commit()
    env = _env(
        SYNDICATE_DATABASE_URL=database_url,
        SYNDICATE_ALLOW_PRIVATE_FETCH="1",
        SYNDICATE_SCHEDULER_TICK="0.3",
        SYNDICATE_INSTANCE_PATH=str(tmp_path),
        SYNDICATE_SECRET_KEY="test-secret",
        SYNDICATE_MAIL_URL=f"maildir://{tmp_path}/mail",
    )
    log = (tmp_path / "scheduler.log").open("wb")
    scheduler = subprocess.Popen([sys.executable, "-m", "syndicate", "scheduler"], cwd=ROOT, env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
    try:
        url = feed_server.route("/rss", Reply(body=feed(1)))
        added = subprocess.run([sys.executable, "-m", "syndicate", "partners", "add", url, "--organization", "airr"],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert added.returncode == 0, added.stderr
        stored = 0
        waited_until = time.monotonic() + 60
        while time.monotonic() < waited_until:
            with session_factory() as session:
                stored = session.scalar(select(func.count()).select_from(Release)) or 0
            if stored == ENTRIES:
                break
            time.sleep(0.2)
        assert stored == ENTRIES, "the scheduler did not ingest the new source within a minute"
        assert feed_server.hits["/rss"] == 1
        with session_factory() as session:
            beat = session.get(Heartbeat, "ingest")
            assert beat is not None and "sources polled" in (beat.detail or "")
    finally:
        scheduler.send_signal(signal.SIGTERM)
        try:
            scheduler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            scheduler.kill()
            scheduler.wait()
        log.close()
    assert scheduler.returncode == 0, (tmp_path / "scheduler.log").read_text(errors="replace")[-3000:]
