"""Parsing in worker processes (``feeds.parsing.ParsePool``): real processes, real feeds on loopback.

What the processes store must be exactly what parsing in threads stores; a
worker that dies or hangs costs only its own source a recorded error; where
processes cannot be started, parsing goes on in threads; one feed never
starts a process.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config import Config
from feeds.db import utcnow
from feeds.fetch import Fetcher
from feeds.ingest import refresh_due_sources, refresh_source
from feeds.models import Organization, Release, Source
from feeds.organizations import create_organization
from feeds.parsing import ParseAnswer, ParseJob, ParsePool, parse_job
from feeds.sources import add_source, claim_sources, release_lease
from feedserver import FeedServer, Reply, feed_server  # noqa: F401

DATA = Path(__file__).parent / "data" / "partner_feeds"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
CRASH = b"<!-- crash the parser -->"
HANG = b"<!-- hang the parser -->"


def crash_or_hang(job: ParseJob) -> ParseAnswer:
    """``parse_job``, except that a feed with a marker kills or stalls the worker process.

    Runs in the worker processes (they import it from this module by name).
    """
    if CRASH in job.content:
        os._exit(70)  # as a segfault or the OOM killer would: no exception, no answer
    if HANG in job.content:
        time.sleep(300)
    return parse_job(job)


def rss(tag: str, n: int = 3, extra: bytes = b"") -> bytes:
    items = "".join(
        f"<item><title>Новость {tag}.{i}: соглашение подписано</title><link>/news/{tag}/{i}.html</link>"
        f"<guid isPermaLink='false'>{tag}-{i}</guid><pubDate>Sat, 01 Mar 2025 0{i}:00:00 GMT</pubDate>"
        f"<description><![CDATA[<p>Подробности <a href='/more/{i}'>здесь</a>.</p>]]></description></item>"
        for i in range(n)
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Партнёр {tag}</title>'
            f"{items}</channel></rss>").encode() + extra


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher(allow_private=True, clock=lambda: T0)


def organization(factory: sessionmaker[Session], name: str) -> int:
    with factory() as session:
        org = create_organization(session, name, country_code="RU", now=T0)
        session.commit()
        return org.id


def add(factory: sessionmaker[Session], org_id: int, url: str) -> int:
    with factory() as session:
        org = session.get(Organization, org_id)
        assert org is not None
        source = add_source(session, url, org, allow_private=True, now=T0)
        session.commit()
        return source.id


def stored(factory: sessionmaker[Session], source_id: int) -> list[dict[str, Any]]:
    """The stored releases of a source, as the columns that must not depend on how it was parsed."""
    columns = ("source_entry_key", "title", "slug", "lead", "body", "search_text", "content_hash", "language",
               "country_code", "published_at", "canonical_url", "attachments")
    with factory() as session:
        rows = session.scalars(select(Release).where(Release.source_id == source_id)
                               .order_by(Release.source_entry_key))
        return [{c: getattr(r, c) for c in columns} for r in rows]


def source_row(factory: sessionmaker[Session], source_id: int) -> Source:
    with factory() as session:
        source = session.get(Source, source_id)
        assert source is not None
        return source


def test_what_crosses_to_and_from_a_worker_pickles() -> None:
    job = ParseJob(7, (DATA / "airr.rss").read_bytes(), {"content-type": "application/rss+xml"},
                   "http://127.0.0.1:9/news/rss", "RU", T0)
    answer = parse_job(job)
    assert answer.error is None and answer.parsed is not None and len(answer.prepared) == 3
    assert pickle.loads(pickle.dumps(job)) == job
    assert pickle.loads(pickle.dumps(answer)) == answer


def test_processes_store_exactly_what_threads_store(
    session_factory: sessionmaker[Session], feed_server: FeedServer
) -> None:
    feeds = ["airr.rss", "regions.atom", "cp1251_undeclared.rss", "xss.rss", "entity_blowup.rss"]
    for name in feeds:
        feed_server.route(f"/{name}", Reply(body=(DATA / name).read_bytes()))
    # A host name per feed (all on loopback): fetched at once, so parsed in several processes at once.
    urls = [f"http://feed{i}.test:{feed_server.port}/{name}" for i, name in enumerate(feeds)]
    fetcher = Fetcher(allow_private=True, clock=lambda: T0, resolver=lambda host, port: ["127.0.0.1"])
    # The same URLs as sources of two organizations, polled at the same moment: one with processes,
    # then (held back by a lease meanwhile) one with threads.
    by_processes = [add(session_factory, organization(session_factory, "Процессы"), u) for u in urls]
    threads_org = organization(session_factory, "Потоки")
    by_threads = [add(session_factory, threads_org, u) for u in urls]
    with session_factory() as session:
        claim_sources(session, "held", T0, source_ids=by_threads)
        session.commit()

    with ParsePool(2) as pool:
        first = refresh_due_sources(session_factory, fetcher, worker="w", now=T0, parsers=pool)
        assert pool.started >= 1 and pool.unavailable is None
    with session_factory() as session:
        for source_id in by_threads:
            release_lease(session, source_id, "held")
        session.commit()
    second = refresh_due_sources(session_factory, fetcher, worker="w", now=T0)

    assert sorted(r.source_id for r in first) == by_processes
    assert sorted(r.source_id for r in second) == by_threads
    assert all(r.status == "ok" and r.created > 0 for r in first + second), first + second
    for mine, theirs in zip(by_processes, by_threads):
        assert stored(session_factory, mine) == stored(session_factory, theirs)
        assert source_row(session_factory, mine).last_warning == source_row(session_factory, theirs).last_warning
    cp1251 = stored(session_factory, by_processes[2])
    assert cp1251 and all(any("а" <= c <= "я" for c in r["title"]) for r in cp1251)  # read as Russian
    assert source_row(session_factory, by_processes[4]).last_warning  # the entity blow-up was survived


def test_a_crashed_worker_is_an_error_on_its_source_and_the_pass_goes_on(
    session_factory: sessionmaker[Session], feed_server: FeedServer, fetcher: Fetcher
) -> None:
    org = organization(session_factory, "АИРР")
    crashing = add(session_factory, org, feed_server.route("/crash.rss", Reply(body=rss("c", extra=CRASH))))
    good = [add(session_factory, org, feed_server.route(f"/good{i}.rss", Reply(body=rss(f"g{i}"))))
            for i in range(3)]

    with ParsePool(2, job=crash_or_hang) as pool:
        results = refresh_due_sources(session_factory, fetcher, worker="w", now=T0, parsers=pool)
        started = pool.started
        # The pool replaced the dead process and goes on parsing.
        after = pool.parse(ParseJob(0, rss("x"), {}, "http://127.0.0.1:9/x.rss", "RU", T0))

    by_id = {r.source_id: r for r in results}
    assert by_id[crashing].status == "error"
    assert "parser process died" in (by_id[crashing].error or "") and "exit code 70" in (by_id[crashing].error or "")
    broken = source_row(session_factory, crashing)
    assert broken.error_count == 1 and "parser process died" in (broken.last_error or "")
    assert broken.next_check_at > T0 and broken.lease_owner is None
    assert stored(session_factory, crashing) == []
    for source_id in good:
        assert (by_id[source_id].status, by_id[source_id].created) == ("ok", 3)
        assert source_row(session_factory, source_id).error_count == 0
    assert started >= 2  # the first process died with the feed; another one parsed after it
    assert after.error is None and after.parsed is not None and len(after.prepared) == 3


def test_a_hung_worker_is_stopped_and_its_source_gets_a_parse_error(
    session_factory: sessionmaker[Session], feed_server: FeedServer, fetcher: Fetcher
) -> None:
    org = organization(session_factory, "АИРР")
    hanging = add(session_factory, org, feed_server.route("/hang.rss", Reply(body=rss("h", extra=HANG))))
    good = add(session_factory, org, feed_server.route("/good.rss", Reply(body=rss("g"))))

    with ParsePool(2, timeout=1.0, job=crash_or_hang) as pool:
        results = refresh_due_sources(session_factory, fetcher, worker="w", now=T0, parsers=pool)

    by_id = {r.source_id: r for r in results}
    assert by_id[hanging].status == "error" and "took longer than 1 s" in (by_id[hanging].error or "")
    assert source_row(session_factory, hanging).error_count == 1
    assert (by_id[good].status, by_id[good].created) == ("ok", 3)


def test_without_processes_parsing_goes_on_in_threads(
    session_factory: sessionmaker[Session], feed_server: FeedServer, fetcher: Fetcher
) -> None:
    org = organization(session_factory, "АИРР")
    sources = [add(session_factory, org, feed_server.route(f"/{i}.rss", Reply(body=rss(str(i))))) for i in range(3)]
    # A job that cannot be handed to a new process (a lambda does not pickle): the pool cannot start one,
    # as where processes are not allowed at all, and parse_job runs in the fetch threads instead.
    with ParsePool(2, job=lambda job: parse_job(job)) as pool:
        results = refresh_due_sources(session_factory, fetcher, worker="w", now=T0, parsers=pool)
        assert pool.unavailable and pool.started == 0
    assert sorted((r.source_id, r.status, r.created) for r in results) == [(s, "ok", 3) for s in sources]


def test_one_feed_never_starts_a_process(
    session_factory: sessionmaker[Session], feed_server: FeedServer, fetcher: Fetcher
) -> None:
    org = organization(session_factory, "АИРР")
    only = add(session_factory, org, feed_server.route("/one.rss", Reply(body=rss("one"))))
    with ParsePool(2) as pool:
        results = refresh_due_sources(session_factory, fetcher, worker="w", now=T0, parsers=pool)
        assert pool.started == 0
    assert [(r.source_id, r.created) for r in results] == [(only, 3)]
    # "Poll now" (CLI with IDs, the admin API) takes no pool at all: it parses in its own thread.
    assert refresh_source(session_factory, only, fetcher, now=T0 + timedelta(hours=1)).unchanged == 3


def test_the_scheduler_keeps_its_parse_processes_from_tick_to_tick(
    config: Config, session_factory: sessionmaker[Session], feed_server: FeedServer
) -> None:
    from syndicate.scheduler import Tick

    org = organization(session_factory, "АИРР")
    for i in range(3):
        add(session_factory, org, feed_server.route(f"/{i}.rss", Reply(body=rss(str(i)))))
    config = dataclasses.replace(config, allow_private_fetch=True)
    tick = Tick(config, session_factory, "node-1")
    try:
        assert tick.ingest() == "3 sources polled, 0 failing, 9 new releases"
        pool = tick.parsers
        assert pool.started >= 1
        with session_factory() as session:  # everything due again
            for source in session.scalars(select(Source)):
                source.next_check_at = utcnow() - timedelta(minutes=1)
            session.commit()
        assert tick.ingest() == "3 sources polled, 0 failing, 0 new releases"
        assert tick.parsers is pool
    finally:
        tick.parsers.close()
