"""Source storage: partner feeds, their leases and their outcomes. Functions never commit.

A source is *due* when ``next_check_at <= now``, it is not disabled and no
live lease is on it. Claiming sets ``lease_owner``/``lease_until`` in the same
transaction as the check, so two workers never hold one source: on
PostgreSQL the due rows are locked with ``FOR UPDATE SKIP LOCKED`` (another
worker's claim in flight is skipped, not waited for); on SQLite, which has a
single writer, one ``UPDATE … WHERE <due>`` does check and claim at once. A
lease that outlives a crashed worker simply expires and is taken over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from feeds.countries import get_country
from feeds.db import utcnow
from feeds.decide import KnownEntry, SourceUpdate
from feeds.errors import FetchError, InvalidInput, NotFound, SourceNotFound
from feeds.fetch import check_url
from feeds.models import URL_MAX, Organization, Release, Source
from feeds.types import SourceForUpdate

DEFAULT_INTERVAL = 30
MIN_INTERVAL = 5
MAX_INTERVAL = 7 * 24 * 60
LEASE = timedelta(minutes=10)


# -- managing sources ----------------------------------------------------------------


def validate_feed_url(url: str, *, allow_private: bool) -> str:
    """A feed URL fit to store, else ``InvalidInput``: http(s), a host, no private literal address."""
    url = (url or "").strip()
    if not url:
        raise InvalidInput("a feed URL is required", field="url")
    if len(url) > URL_MAX:
        raise InvalidInput(f"the URL is longer than {URL_MAX} characters", field="url")
    try:
        check_url(url, allow_private=allow_private)
    except FetchError as exc:
        raise InvalidInput(str(exc), field="url") from exc
    return url


def add_source(
    session: Session,
    url: str,
    organization: Organization,
    *,
    country_code: str | None = None,
    interval_minutes: int = DEFAULT_INTERVAL,
    allow_private: bool = False,
    now: datetime | None = None,
) -> Source:
    """A new source of ``organization``, due at once. The country defaults to the organization's."""
    now = now or utcnow()
    url = validate_feed_url(url, allow_private=allow_private)
    code = country_code or organization.country_code
    if not code:
        raise InvalidInput(
            f"organization {organization.slug!r} has no country; give one for this source", field="country"
        )
    try:
        country = get_country(code).code
    except NotFound as exc:
        raise InvalidInput(str(exc), field="country") from exc
    if not MIN_INTERVAL <= interval_minutes <= MAX_INTERVAL:
        raise InvalidInput(
            f"the interval must be between {MIN_INTERVAL} and {MAX_INTERVAL} minutes", field="interval"
        )
    existing = session.scalar(
        select(Source.id).where(Source.url == url, Source.organization_id == organization.id)
    )
    if existing is not None:
        raise InvalidInput(f"{url} is already source {existing} of {organization.slug}", field="url")
    source = Source(
        url=url,
        organization_id=organization.id,
        country_code=country,
        interval_minutes=interval_minutes,
        next_check_at=now,
        error_count=0,
        disabled=False,
        moved_count=0,
        releases_ingested=0,
        created_at=now,
    )
    source.organization = organization
    session.add(source)
    session.flush()
    return source


def list_sources(session: Session) -> list[Source]:
    """Every source, oldest first."""
    return list(session.scalars(select(Source).order_by(Source.id)))


def find_source(session: Session, source_id: int) -> Source | None:
    return session.get(Source, source_id)


def get_source(session: Session, source_id: int) -> Source:
    source = find_source(session, source_id)
    if source is None:
        raise SourceNotFound(f"source {source_id} not found", resource_id=source_id)
    return source


def remove_source(session: Session, source_id: int) -> None:
    """Delete a source; the releases it brought stay (their ``source_id`` becomes NULL)."""
    source = get_source(session, source_id)
    session.execute(update(Release).where(Release.source_id == source.id).values(source_id=None))
    session.delete(source)
    session.flush()


@dataclass(frozen=True)
class SourceState:
    """How a source is doing, for lists and the API."""

    state: str  # "ok", "failing" or "disabled"
    reason: str | None


def source_state(source: Source) -> SourceState:
    if source.disabled:
        return SourceState("disabled", source.disabled_reason)
    if source.error_count > 0:
        return SourceState("failing", source.last_error)
    return SourceState("ok", None)


# -- claiming ------------------------------------------------------------------------


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(Source.lease_until.is_(None), Source.lease_until < now)


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(Source.next_check_at <= now, Source.disabled.is_(False), _free(now))


def for_update(source: Source) -> SourceForUpdate:
    return SourceForUpdate(
        id=source.id,
        url=source.url,
        organization_id=source.organization_id,
        country_code=source.country_code,
        interval_minutes=source.interval_minutes,
        etag=source.etag,
        last_modified=source.last_modified,
        error_count=source.error_count,
        moved_to=source.moved_to,
        moved_count=source.moved_count,
        disabled=source.disabled,
    )


def claim_sources(
    session: Session,
    worker: str,
    now: datetime,
    *,
    limit: int = 100,
    lease: timedelta = LEASE,
    due_only: bool = True,
    source_ids: Sequence[int] | None = None,
) -> list[SourceForUpdate]:
    """Lease up to ``limit`` sources to ``worker``; the caller commits at once.

    ``due_only=False`` takes every enabled, unleased source (``poll --all``);
    ``source_ids`` restricts the claim to those sources, disabled ones included.
    """
    if source_ids is not None:
        condition = and_(Source.id.in_(list(source_ids)), _free(now))
    elif due_only:
        condition = _due(now)
    else:
        condition = and_(Source.disabled.is_(False), _free(now))
    until = now + lease
    if session.get_bind().dialect.name == "postgresql":
        ids = list(
            session.scalars(
                select(Source.id)
                .where(condition)
                .order_by(Source.next_check_at, Source.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not ids:
            return []
        session.execute(
            update(Source).where(Source.id.in_(ids)).values(lease_owner=worker, lease_until=until),
            execution_options={"synchronize_session": False},
        )
    else:
        picked = select(Source.id).where(condition).order_by(Source.next_check_at, Source.id).limit(limit)
        # The guard is repeated on the UPDATE itself: check and claim are one statement.
        result = session.execute(
            update(Source)
            .where(Source.id.in_(picked.scalar_subquery()), condition)
            .values(lease_owner=worker, lease_until=until),
            execution_options={"synchronize_session": False},
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return []
    rows = session.scalars(
        select(Source)
        .where(Source.lease_owner == worker, Source.lease_until == until)
        .order_by(Source.next_check_at, Source.id)
        .execution_options(populate_existing=True)
    )
    return [for_update(s) for s in rows]


def lock_claimed(session: Session, source_id: int, worker: str) -> Source | None:
    """The source row if ``worker`` still holds its lease (locked on PostgreSQL), else None."""
    stmt = select(Source).where(Source.id == source_id, Source.lease_owner == worker)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Source)
    return session.scalar(stmt.execution_options(populate_existing=True))


def release_lease(session: Session, source_id: int, worker: str) -> None:
    session.execute(
        update(Source)
        .where(Source.id == source_id, Source.lease_owner == worker)
        .values(lease_owner=None, lease_until=None),
        execution_options={"synchronize_session": False},
    )


def apply_source_update(source: Source, change: SourceUpdate, *, created: int = 0) -> None:
    """Write a decided outcome onto the row and let go of the lease."""
    source.next_check_at = change.next_check_at
    source.last_checked_at = change.last_checked_at
    source.last_status = change.last_status
    source.error_count = change.error_count
    source.last_error = change.last_error
    if change.last_success_at is not None:
        source.last_success_at = change.last_success_at
    if not change.keep_warning:
        source.last_warning = change.last_warning
    if not change.keep_validators:
        source.etag = change.etag
        source.last_modified = change.last_modified
    if change.url:
        source.url = change.url
    if not change.keep_moved:
        source.moved_to = change.moved_to
        source.moved_count = change.moved_count
    if change.disabled:
        source.disabled = True
        source.disabled_reason = change.disabled_reason
    elif change.outcome in ("ok", "not modified") and source.disabled:
        # Only an explicit poll reaches a disabled source; success brings it back.
        source.disabled = False
        source.disabled_reason = None
    if change.title:
        source.title = change.title
    source.releases_ingested = source.releases_ingested + created
    source.lease_owner = None
    source.lease_until = None


# -- entries already stored ------------------------------------------------------------


def known_entries(session: Session, source_id: int, keys: Sequence[str]) -> dict[str, KnownEntry]:
    """What is stored for these entry keys of a source (only the keys asked for)."""
    known: dict[str, KnownEntry] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        rows = session.execute(
            select(Release.source_entry_key, Release.id, Release.content_hash, Release.published_at).where(
                Release.source_id == source_id, Release.source_entry_key.in_(unique[start : start + 500])
            )
        )
        for key, release_id, content_hash, published_at in rows:
            if key is not None:
                known[key] = KnownEntry(release_id, content_hash, published_at)
    return known


def count_sources(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Source)) or 0

