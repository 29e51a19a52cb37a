"""Deciding digests: which releases arrived, who is due, what each one gets.

1. ``record_arrivals`` numbers the releases that became visible since the
   last look (published, embargo over, not withdrawn), one writer at a time.
2. ``plan_chunk`` claims a chunk of due subscriptions, matches the arrivals
   after each one's ``last_seq`` against its filters (in memory: an index by
   organization, country and stem built once per pass), and in the same
   transaction writes one outbox row per non-empty digest (with its release
   ids) and moves each subscription's ``last_seq`` and ``next_due_at`` on.
   Nothing matched: no row, no mail, but the subscription moves on.

Functions take a Session and never commit; ``subscribers.send`` owns the
transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Iterable

from sqlalchemy import exists, func, insert, literal, or_, select, text, update
from sqlalchemy.orm import Session

from feeds.models import Organization, Release
from subscribers import outbox
from subscribers.forms import keyword_phrases
from subscribers.models import ACTIVE, DIGEST, IMMEDIATE, PENDING, WEEKLY, Arrival, Delivery, Subscriber, Subscription
from subscribers.schedule import IMMEDIATE_GAP, Schedule, immediate_period, latest_occurrence, next_occurrence
from subscribers.settings import MailSettings

# A release committed this long after its updated_at stamp is still found.
ARRIVAL_MARGIN = timedelta(minutes=15)
_ARRIVALS_LOCK = 0x53594E444947  # "SYNDIG": one arrivals writer at a time on PostgreSQL


def begin_write(session: Session, key: int | None = None) -> None:
    """Take the write lock at the start of a transaction that reads before it writes.

    SQLite: a no-op UPDATE takes the single writer lock now (waiting under
    busy_timeout) instead of failing later when a read transaction tries to
    become a writer after another connection committed. PostgreSQL: a
    transaction-scoped advisory lock on ``key``, if one is given.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(text("UPDATE digest_arrivals SET seq = seq WHERE 1 = 0"))
    elif dialect == "postgresql" and key is not None:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def record_arrivals(session: Session, now: datetime) -> int:
    """Number the releases that became visible by ``now`` and have no number yet.

    ``updated_at`` is never older than the moment a release became visible
    (it starts at max(created, published) and only grows), so looking at
    releases updated since the last arrival, less a margin for slow commits,
    finds every new one through the ``updated_at`` index.
    """
    # Numbers must follow commit order: a reader that sees N has seen all below N.
    begin_write(session, _ARRIVALS_LOCK)
    last = session.scalar(select(func.max(Arrival.arrived_at)))
    if last is None:
        # The first look: nobody needs what was published before the first
        # subscriber confirmed (a whole archive is not "new").
        last = session.scalar(select(func.min(Subscription.confirmed_at)).where(Subscription.status == ACTIVE)) or now
    since = last - ARRIVAL_MARGIN
    new = (
        select(Release.id, literal(now, type_=Arrival.arrived_at.type))
        .where(
            Release.withdrawn_at.is_(None),
            Release.published_at <= now,
            Release.updated_at > since,
            ~exists().where(Arrival.release_id == Release.id),
        )
        .order_by(Release.published_at, Release.id)
    )
    # RETURNING, not rowcount: drivers disagree on rowcount for INSERT … SELECT.
    return len(session.execute(insert(Arrival).from_select(["release_id", "arrived_at"], new).returning(Arrival.seq)).all())


@dataclass(frozen=True)
class ArrivedRelease:
    seq: int
    release_id: int
    organization: str
    country: str


@dataclass
class ArrivalIndex:
    """The arrivals of one pass, indexed for matching; loaded lazily, newest range first."""

    now: datetime
    top: int = 0
    low: int | None = None  # arrivals (low, top] are loaded
    releases: dict[int, ArrivedRelease] = field(default_factory=dict)
    by_org: dict[str, set[int]] = field(default_factory=dict)
    by_country: dict[str, set[int]] = field(default_factory=dict)
    by_stem: dict[str, set[int]] = field(default_factory=dict)

    def ensure(self, session: Session, low: int) -> None:
        """Make sure arrivals (low, top] are loaded."""
        if self.low is not None and low >= self.low:
            return
        upper = self.top if self.low is None else self.low
        rows = session.execute(
            select(Arrival.seq, Release.id, Organization.slug, Release.country_code, Release.search_text)
            .join(Release, Release.id == Arrival.release_id)
            .join(Organization, Organization.id == Release.organization_id)
            .where(
                Arrival.seq > low,
                Arrival.seq <= upper,
                Release.withdrawn_at.is_(None),
                Release.published_at <= self.now,
            )
        )
        for seq, release_id, org, country, search_text in rows:
            self.releases[seq] = ArrivedRelease(seq, release_id, org, country)
            self.by_org.setdefault(org, set()).add(seq)
            self.by_country.setdefault(country, set()).add(seq)
            for stem in set((search_text or "").split()):
                self.by_stem.setdefault(stem, set()).add(seq)
        self.low = low

    def match(self, organizations: Iterable[str], countries: Iterable[str], keywords: str, after: int) -> list[int]:
        """Release ids of arrivals after ``after`` that pass every filter."""
        candidates: set[int] | None = None
        orgs = list(organizations)
        if orgs:
            candidates = set().union(*(self.by_org.get(o, set()) for o in orgs))
        ccs = list(countries)
        if ccs:
            found = set().union(*(self.by_country.get(c, set()) for c in ccs))
            candidates = found if candidates is None else candidates & found
        phrases = _phrases(keywords)
        if phrases:
            found = set()
            for phrase in phrases:
                sets = [self.by_stem.get(s, set()) for s in phrase]
                found |= set.intersection(*sets) if sets else set()
            candidates = found if candidates is None else candidates & found
        seqs = self.releases.keys() if candidates is None else candidates
        return [self.releases[s].release_id for s in sorted(seqs) if after < s <= self.top]


@lru_cache(maxsize=4096)
def _phrases(keywords: str) -> tuple[tuple[str, ...], ...]:
    return keyword_phrases(keywords)


def start_index(session: Session, now: datetime) -> ArrivalIndex:
    """An empty index whose ``top`` is the newest arrival now committed."""
    top = int(session.scalar(select(func.coalesce(func.max(Arrival.seq), 0))) or 0)
    return ArrivalIndex(now=now, top=top)


@dataclass(frozen=True)
class ChunkResult:
    subscriptions: int
    digests: int


def _claim_due(session: Session, now: datetime, top: int, limit: int, force: bool) -> list[int]:
    due = select(Subscription.id).where(
        Subscription.status == ACTIVE,
        or_(Subscription.last_planned_at.is_(None), Subscription.last_planned_at < now),
    )
    if not force:
        due = due.where(
            Subscription.next_due_at <= now,
            # an immediate subscription is only worth a look when something arrived
            or_(Subscription.frequency != IMMEDIATE, Subscription.last_seq < top),
        )
    pick = due.order_by(Subscription.id).limit(limit).with_for_update(skip_locked=True)
    stmt = (
        update(Subscription)
        .where(Subscription.id.in_(pick.scalar_subquery()), Subscription.status == ACTIVE)
        .values(last_planned_at=now)
        .returning(Subscription.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(stmt))


def _period(schedule: Schedule, now: datetime, top: int, force: bool) -> str:
    if schedule.frequency == IMMEDIATE:
        return immediate_period(top)
    if force:  # "now" stands for the period we are in, so the scheduled one is not sent twice
        local = now.astimezone(schedule.tz).date()
        if schedule.frequency == WEEKLY:
            year, week, _ = local.isocalendar()
            return f"{year}-W{week:02d}"
        return local.isoformat()
    return latest_occurrence(schedule, now).period


def plan_chunk(
    session: Session,
    index: ArrivalIndex,
    settings: MailSettings,
    now: datetime,
    *,
    limit: int = 500,
    force: bool = False,
) -> ChunkResult:
    """Claim up to ``limit`` due subscriptions and write their digests; 0 subscriptions = done."""
    ids = _claim_due(session, now, index.top, limit, force)
    if not ids:
        return ChunkResult(0, 0)
    subs = session.execute(
        select(
            Subscription.id,
            Subscription.organizations,
            Subscription.countries,
            Subscription.keywords,
            Subscription.frequency,
            Subscription.hour,
            Subscription.weekday,
            Subscription.timezone,
            Subscription.last_seq,
            Subscriber.email,
        )
        .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
        .where(Subscription.id.in_(ids))
    ).all()
    index.ensure(session, min(s.last_seq for s in subs))
    decided: list[tuple[Any, str, list[int]]] = []
    for sub in subs:
        schedule = Schedule(sub.frequency, sub.hour, sub.weekday, sub.timezone)
        release_ids = index.match(sub.organizations or (), sub.countries or (), sub.keywords or "", sub.last_seq)
        decided.append((sub, _period(schedule, now, index.top, force), release_ids))
    periods = {period for _, period, ids_ in decided if ids_}
    taken: set[tuple[int, str]] = set()
    if periods:
        found = session.execute(
            select(Delivery.subscription_id, Delivery.period).where(
                Delivery.subscription_id.in_(ids), Delivery.kind == DIGEST, Delivery.period.in_(periods)
            )
        )
        taken = {(int(sub_id), str(period)) for sub_id, period in found}
    rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for sub, period, release_ids in decided:
        schedule = Schedule(sub.frequency, sub.hour, sub.weekday, sub.timezone)
        change: dict[str, Any] = {"id": sub.id}
        if sub.frequency == IMMEDIATE:
            change["next_due_at"] = now + IMMEDIATE_GAP if release_ids else now
        else:
            change["next_due_at"] = next_occurrence(schedule, now).at
        if release_ids and (sub.id, period) in taken:
            pass  # this period had its digest already: keep the releases for the next one
        elif release_ids:
            rows.append(
                {
                    "subscription_id": sub.id,
                    "kind": DIGEST,
                    "period": period,
                    "recipient": sub.email,
                    "message_id": outbox.message_id(settings, DIGEST, sub.id, period),
                    "release_ids": release_ids,
                    "status": PENDING,
                    "created_at": now,
                    "attempts": 0,
                    "next_attempt_at": now,
                }
            )
            # max(): a subscription confirmed during this pass may be ahead of the index
            change["last_seq"] = max(sub.last_seq, index.top)
            change["last_digest_at"] = now
        else:
            change["last_seq"] = max(sub.last_seq, index.top)
        updates.append(change)
    outbox.insert_ignoring_duplicates(session, rows)
    _bulk_update(session, updates)
    return ChunkResult(len(subs), len(rows))


def _bulk_update(session: Session, updates: list[dict[str, Any]]) -> None:
    # Group by the set of columns so each executemany has one statement shape.
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in updates:
        groups.setdefault(tuple(sorted(change)), []).append(change)
    for rows in groups.values():
        session.execute(update(Subscription), rows)
