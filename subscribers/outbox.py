"""The deliveries outbox: write rows, claim them with a lease, record outcomes.

A row is written in the transaction that decides what it says. A sender
claims due rows by setting a lease (``UPDATE … WHERE id IN (SELECT … FOR
UPDATE SKIP LOCKED)`` on PostgreSQL, where two nodes skip each other's rows;
on SQLite the same guarded UPDATE runs under the database's single writer
lock), sends, and marks each row sent in its own short transaction, so a
crash leaves at most the one message between SMTP acceptance and the mark
to be sent again — with the same Message-ID.

Functions take a Session (the mark functions also a bare Connection, which
the sender uses for speed) and never commit.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from subscribers.models import CANCELLED, CONFIRMATION, FAILED, PENDING, SENT, Delivery, Subscription
from subscribers.settings import MailSettings

MAX_ATTEMPTS = 10
ERROR_MAX = 1000


def message_id(settings: MailSettings, kind: str, subscription_id: int, period: str) -> str:
    """``<…@domain>``, the same every time for one subscription, kind and period.

    An HMAC of the subscription id keeps the id itself out of the header.
    """
    tag = hmac.new(settings.secret_key.encode(), f"{kind}:{subscription_id}".encode(), hashlib.sha256)
    return f"<{kind}.{period}.{tag.hexdigest()[:20]}@{settings.domain}>"


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` temporary failures: 1, 2, 4 … minutes, at most 6 h."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 360))


def enqueue_confirmation(
    session: Session, subscription: Subscription, settings: MailSettings, now: datetime
) -> Delivery:
    """The confirmation mail of a pending subscription, as an outbox row."""
    period = f"c{int(now.timestamp())}"
    row = Delivery(
        subscription_id=subscription.id,
        kind=CONFIRMATION,
        period=period,
        recipient=subscription.subscriber.email,
        message_id=message_id(settings, CONFIRMATION, subscription.id, period),
        release_ids=[],
        status=PENDING,
        created_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(row)
    session.flush()
    return row


def insert_ignoring_duplicates(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert outbox rows; one that exists already for its period is left alone."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(Delivery).on_conflict_do_nothing(), list(rows))


def claim(
    session: Session,
    owner: str,
    now: datetime,
    *,
    lease: timedelta,
    limit: int,
    only_ids: Iterable[int] | None = None,
) -> list[int]:
    """Lease up to ``limit`` due rows to ``owner``; returns their ids, oldest first."""
    free = or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)
    due = and_(Delivery.status == PENDING, Delivery.next_attempt_at <= now, free)
    pick = select(Delivery.id).where(due).order_by(Delivery.id).limit(limit).with_for_update(skip_locked=True)
    if only_ids is not None:
        pick = pick.where(Delivery.id.in_(list(only_ids)))
    stmt = (
        update(Delivery)
        .where(Delivery.id.in_(pick.scalar_subquery()), due)  # guarded: re-checked on the row itself
        .values(lease_owner=owner, lease_until=now + lease)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(stmt))


def _release(session: Session | Connection, delivery_id: int, owner: str, **values: Any) -> bool:
    result = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.lease_owner == owner)
        .values(lease_owner=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def mark_sent(session: Session | Connection, delivery_id: int, owner: str, now: datetime) -> bool:
    """Record a delivery as handed over; False if the lease was lost meanwhile."""
    return _release(session, delivery_id, owner, status=SENT, sent_at=now, last_error=None)


def mark_cancelled(session: Session | Connection, delivery_id: int, owner: str, reason: str) -> bool:
    return _release(session, delivery_id, owner, status=CANCELLED, last_error=reason[:ERROR_MAX])


def mark_temporary(session: Session | Connection, delivery_id: int, owner: str, attempts: int, now: datetime, error: str) -> str:
    """A failure worth retrying: back off, or give up after ``MAX_ATTEMPTS``. Returns the new status."""
    attempts += 1
    status = FAILED if attempts >= MAX_ATTEMPTS else PENDING
    _release(
        session,
        delivery_id,
        owner,
        status=status,
        attempts=attempts,
        next_attempt_at=now + backoff(attempts),
        last_error=error[:ERROR_MAX],
    )
    return status


def mark_permanent(session: Session | Connection, delivery_id: int, owner: str, attempts: int, error: str) -> None:
    _release(session, delivery_id, owner, status=FAILED, attempts=attempts + 1, last_error=error[:ERROR_MAX])


def cancel_pending(session: Session | Connection, subscription_id: int) -> None:
    """Cancel the unsent digests of a subscription (it was unsubscribed)."""
    session.execute(
        update(Delivery)
        .where(Delivery.subscription_id == subscription_id, Delivery.status == PENDING)
        .values(status=CANCELLED, last_error="unsubscribed")
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class OutboxCounts:
    pending: int
    leased: int
    sent: int
    failed: int
    cancelled: int


def outbox_counts(session: Session, now: datetime) -> OutboxCounts:
    """How many rows are in each state (for ``syndicate digests status``)."""
    from sqlalchemy import func

    counts = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
    leased = session.scalar(
        select(func.count()).where(Delivery.status == PENDING, Delivery.lease_until > now)
    )
    return OutboxCounts(
        pending=counts.get(PENDING, 0),
        leased=int(leased or 0),
        sent=counts.get(SENT, 0),
        failed=counts.get(FAILED, 0),
        cancelled=counts.get(CANCELLED, 0),
    )
