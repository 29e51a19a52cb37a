"""Refreshing partner sources: fetch (I/O) → parse (pure) → decide (pure) → store (SQL).

``refresh_due_sources`` is what the scheduler's tick and ``syndicate poll``
run; ``refresh_source`` is "poll this one now" (CLI, admin API). Both share
every step below, so there is one way a source gets refreshed.

Threads fetch and parse, at most one request at a time per host; the calling
thread does every database write, one transaction per source, so a Session
never crosses threads. Given a ``feeds.parsing.ParsePool``, the threads hand
the parse (and the cleaning of every entry) to its worker processes, so that
feedparser's CPU work does not hold the writer's GIL. A source that fails is
a value: its error, error count and next check are saved on its row and the
pass goes on.
"""

from __future__ import annotations

import logging
import queue
import uuid
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Protocol
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from feeds.db import utcnow
from feeds.decide import (
    EntryIntent,
    EntryPlan,
    PreparedEntry,
    SourceUpdate,
    decide_failure,
    decide_success,
    feed_language,
    plan_entries,
    prepare_entries,
)
from feeds.errors import ParseError, SourceError, SourceNotFound
from feeds.models import Organization, Release, Source
from feeds.parsing import ParseJob, ParsePool, parse_here
from feeds.sources import LEASE, apply_source_update, claim_sources, known_entries, lock_claimed
from feeds.store import create_release, create_releases, update_release
from feeds.types import FetchResult, ParsedFeed, RefreshResult, SourceForUpdate

log = logging.getLogger(__name__)

DEFAULT_WORKERS = 8


class FeedFetcher(Protocol):
    """What ingestion needs from the HTTP side (``feeds.fetch.Fetcher``, or a fake in tests)."""

    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None, resource_id: object = None
    ) -> FetchResult: ...


@dataclass(frozen=True)
class Outcome:
    """What a worker thread hands to the writer: the fetch, the parse, or the error.

    ``prepared`` are the parsed entries made ready for storage beside the parse.
    """

    source: SourceForUpdate
    fetched: FetchResult | None = None
    parsed: ParsedFeed | None = None
    error: SourceError | None = None
    prepared: tuple[PreparedEntry, ...] | None = None


# -- worker threads: no database here -------------------------------------------------


def fetch_and_parse(fetcher: FeedFetcher, source: SourceForUpdate, *, parsers: ParsePool | None = None,
                    now: datetime | None = None) -> Outcome:
    """Fetch a source and parse what came back (in ``parsers``' processes if given, else here);
    every failure becomes part of the outcome."""
    try:
        fetched = fetcher.fetch(
            source.url, etag=source.etag, last_modified=source.last_modified, resource_id=source.id
        )
    except SourceError as exc:
        return Outcome(source, error=exc)
    except Exception as exc:  # a bug must not stop the pass; it is recorded like any failure
        log.exception("fetching source %s failed unexpectedly", source.id)
        return Outcome(source, error=SourceError(f"unexpected {exc.__class__.__name__}: {exc}", resource_id=source.id))
    if fetched.not_modified:
        return Outcome(source, fetched=fetched)
    job = ParseJob(source.id, fetched.content, fetched.headers, fetched.url, source.country_code, now or utcnow())
    answer = parsers.parse(job) if parsers is not None else parse_here(job)
    if answer.error is not None or answer.parsed is None:
        error = ParseError(answer.error or "the parser returned nothing", resource_id=source.id)
        return Outcome(source, fetched=fetched, error=error)
    return Outcome(source, fetched=fetched, parsed=answer.parsed, prepared=answer.prepared)


# -- the writer ------------------------------------------------------------------------


def _create_or_update(session: Session, org: Organization, source_id: int, intent: EntryIntent,
                      now: datetime) -> tuple[int, int]:
    """Store one new entry; if another worker stored it meanwhile, correct that release instead."""
    try:
        with session.begin_nested():
            create_release(session, org, intent.draft, now=now, source_id=source_id, source_entry_key=intent.key)
        return 1, 0
    except IntegrityError:
        existing = session.scalar(
            select(Release).where(Release.source_id == source_id, Release.source_entry_key == intent.key)
        )
        if existing is None:
            raise
        return 0, int(update_release(session, existing, intent.draft, now=now))


def store_entries(session: Session, source: Source, plan: EntryPlan, now: datetime) -> tuple[int, int, int]:
    """Apply a plan: new releases and corrections. Returns (created, updated, unchanged):
    a planned correction the store finds identical to what it holds counts as unchanged.

    The unique (source, entry key) constraint is the last word: new entries
    go in under one savepoint, and if a racing worker stored one of them
    first, they are retried one by one and the raced ones become updates.
    """
    org = source.organization
    created = updated = unchanged = 0
    if plan.creates:
        try:
            with session.begin_nested():
                # The drafts were cleaned (and their slugs and search texts made) by feeds.decide with
                # the store's own functions, usually in a parse worker process.
                texts = [(i.slug, i.search_text) for i in plan.creates
                         if i.slug is not None and i.search_text is not None]
                create_releases(session, org, [(i.draft, i.key) for i in plan.creates], now=now,
                                source_id=source.id, cleaned=True, digests=[i.content_hash for i in plan.creates],
                                texts=texts if len(texts) == len(plan.creates) else None)
            created = len(plan.creates)
        except IntegrityError:
            for intent in plan.creates:
                c, u = _create_or_update(session, org, source.id, intent, now)
                created += c
                updated += u
    if plan.updates:
        ids = [i.release_id for i in plan.updates if i.release_id is not None]
        releases = {r.id: r for r in session.scalars(select(Release).where(Release.id.in_(ids)))}
        for intent in plan.updates:
            release = releases.get(intent.release_id or 0)
            if release is not None and update_release(session, release, intent.draft, now=now):
                updated += 1
            else:
                unchanged += 1
    return created, updated, unchanged


def _result(source: SourceForUpdate, change: SourceUpdate, *, created: int = 0, updated: int = 0,
            unchanged: int = 0, warning: str | None = None) -> RefreshResult:
    return RefreshResult(
        source_id=source.id,
        url=change.url or source.url,
        status=change.outcome,
        http_status=change.last_status,
        created=created,
        updated=updated,
        unchanged=unchanged,
        error=change.last_error,
        warning=warning,
        next_check_at=change.next_check_at,
        relinked_to=change.url,
    )


def store_outcome(factory: sessionmaker[Session], outcome: Outcome, worker: str, now: datetime) -> RefreshResult:
    """Decide and write one source's outcome in its own transaction (calling thread only)."""
    source = outcome.source
    with factory() as session:
        try:
            row = lock_claimed(session, source.id, worker)
            if row is None:
                session.rollback()
                return RefreshResult(source.id, source.url, "skipped", error="lease lost to another worker")
            created = updated = unchanged = 0
            warning = None
            if outcome.error is not None or outcome.fetched is None:
                error = outcome.error or SourceError("nothing fetched", resource_id=source.id)
                change = decide_failure(source, error, now)
            else:
                change = decide_success(source, outcome.fetched, outcome.parsed, now)
                if outcome.parsed is not None:
                    parsed = outcome.parsed
                    warning = parsed.warning
                    prepared = outcome.prepared
                    if prepared is None:
                        prepared = prepare_entries(parsed, country_code=row.country_code, now=now)
                    keys = [p.key for p in prepared if p.key]
                    plan = plan_entries(
                        prepared,
                        known_entries(session, source.id, keys),
                        country_code=row.country_code,
                        language=feed_language(parsed),
                        now=now,
                    )
                    created, updated, unchanged = store_entries(session, row, plan, now)
                    unchanged += plan.unchanged
            apply_source_update(row, change, created=created)
            session.commit()
            return _result(source, change, created=created, updated=updated, unchanged=unchanged, warning=warning)
        except SQLAlchemyError as exc:
            session.rollback()
            log.exception("storing source %s failed", source.id)
            problem = SourceError(f"could not store the entries: {exc.__class__.__name__}", resource_id=source.id)
    # Nothing of the failed transaction is kept; the failure itself is recorded if it can be.
    change = decide_failure(source, problem, now)
    try:
        with factory() as session:
            row = lock_claimed(session, source.id, worker)
            if row is not None:
                apply_source_update(row, change)
                session.commit()
    except SQLAlchemyError:  # the database is away; the lease will expire and the source be retried
        log.exception("recording the failure of source %s failed", source.id)
    return _result(source, change)


# -- the two entry points -----------------------------------------------------------------


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _clock(now: datetime | None) -> Callable[[], datetime]:
    return (lambda: now) if now is not None else utcnow


def refresh_due_sources(
    session_factory: sessionmaker[Session],
    fetcher: FeedFetcher,
    *,
    worker: str,
    now: datetime | None = None,
    max_workers: int = DEFAULT_WORKERS,
    batch_size: int | None = None,
    due_only: bool = True,
    lease: timedelta = LEASE,
    parsers: ParsePool | None = None,
) -> list[RefreshResult]:
    """Refresh every source that is due (or, ``due_only=False``, every enabled one).

    Sources are claimed in batches (``batch_size``, default eight per
    worker) with a lease owned by ``worker``, so that a lease comfortably
    outlives its batch. ``now`` fixes the clock (tests); by default the real
    time is read at each step. With ``parsers``, feeds are parsed in its
    worker processes (unless a batch has a single source: no process is
    started for one feed).
    """
    clock = _clock(now)
    size = batch_size or max(1, max_workers) * 8
    results: list[RefreshResult] = []
    everything: list[int] | None = None
    if not due_only:  # fixed at the start, so the batches end
        with session_factory() as session:
            everything = list(session.scalars(select(Source.id).where(Source.disabled.is_(False))
                                              .order_by(Source.id)))
    while True:
        with session_factory() as session:
            if everything is None:
                claimed = claim_sources(session, worker, clock(), limit=size, lease=lease)
            elif everything:
                batch, everything = everything[:size], everything[size:]
                claimed = claim_sources(session, worker, clock(), limit=size, lease=lease, source_ids=batch)
            else:
                claimed = []
            session.commit()
        if not claimed and not everything:
            return results
        if claimed:
            results.extend(_refresh_claimed(session_factory, fetcher, claimed, worker, clock, max_workers,
                                            parsers if len(claimed) > 1 else None))


def _refresh_claimed(
    factory: sessionmaker[Session],
    fetcher: FeedFetcher,
    claimed: list[SourceForUpdate],
    worker: str,
    clock: Callable[[], datetime],
    max_workers: int,
    parsers: ParsePool | None,
) -> list[RefreshResult]:
    by_host: dict[str, list[SourceForUpdate]] = defaultdict(list)
    for source in claimed:
        by_host[_host(source.url)].append(source)
    done: queue.Queue[Outcome] = queue.Queue()

    def run(group: list[SourceForUpdate]) -> None:
        # One host's sources one after another: never two requests at once to a partner.
        for item in group:
            done.put(fetch_and_parse(fetcher, item, parsers=parsers, now=clock()))

    results: list[RefreshResult] = []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(by_host))),
                            thread_name_prefix="fetch") as pool:
        futures: list[Future[None]] = [pool.submit(run, group) for group in by_host.values()]
        stored: set[int] = set()
        while len(stored) < len(claimed):
            try:
                outcome = done.get(timeout=1.0)
            except queue.Empty:
                if all(f.done() for f in futures) and done.empty():
                    break
                continue
            stored.add(outcome.source.id)
            results.append(store_outcome(factory, outcome, worker, clock()))
    for source in claimed:  # only if a worker thread died outright
        if source.id not in stored:
            error = SourceError("the fetch worker stopped unexpectedly", resource_id=source.id)
            results.append(store_outcome(factory, Outcome(source, error=error), worker, clock()))
    return results


def refresh_source(
    session_factory: sessionmaker[Session],
    source_id: int,
    fetcher: FeedFetcher,
    *,
    now: datetime | None = None,
    worker: str | None = None,
) -> RefreshResult:
    """Refresh one source now, due or not (disabled too: success re-enables it).

    Raises ``SourceNotFound``; returns a ``"skipped"`` result when another
    worker holds the source's lease at this moment.
    """
    clock = _clock(now)
    worker = worker or f"poll-{uuid.uuid4().hex[:12]}"
    with session_factory() as session:
        if session.get(Source, source_id) is None:
            raise SourceNotFound(f"source {source_id} not found", resource_id=source_id)
        claimed = claim_sources(session, worker, clock(), limit=1, source_ids=[source_id])
        session.commit()
    if not claimed:
        with session_factory() as session:
            url = session.scalar(select(Source.url).where(Source.id == source_id)) or ""
        return RefreshResult(source_id, url, "skipped", error="another worker is refreshing this source right now")
    # Parsed in this thread: a web worker's "poll now" never starts processes.
    return store_outcome(session_factory, fetch_and_parse(fetcher, claimed[0], now=clock()), worker, clock())
