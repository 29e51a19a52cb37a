"""A subscription's life: sign-up, confirmation, preferences, unsubscribe, purge.

Double opt-in: a sign-up only creates a pending subscription and, unless one
is already on its way, one confirmation mail. What happens is the same
whether the address is new, pending or long subscribed, and the caller gets
no hint of which it was. Functions take a Session and never commit.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from feeds.errors import InvalidInput
from feeds.models import Organization
from subscribers import outbox, tokens
from subscribers.digests import begin_write
from subscribers.errors import InvalidToken, SubscriptionNotFound
from subscribers.forms import Preferences, SignupRequest
from subscribers.models import (
    ACTIVE,
    PENDING,
    SUSPENDED,
    UNSUBSCRIBED,
    Arrival,
    Delivery,
    Subscriber,
    Subscription,
)
from subscribers.ratelimits import RateLimits, check_and_count
from subscribers.schedule import Schedule, first_due
from subscribers.settings import MailSettings

# A confirmation link works this long; a pending subscription is purged a day later.
CONFIRM_WINDOW = tokens.MAX_AGE[tokens.CONFIRM]
PURGE_AFTER = CONFIRM_WINDOW + timedelta(days=1)
MAX_SUBSCRIPTIONS_PER_ADDRESS = 10


def current_seq(session: Session) -> int:
    """The newest arrival number (0 before any release arrived)."""
    return int(session.scalar(select(func.coalesce(func.max(Arrival.seq), 0))) or 0)


def check_organizations(session: Session, slugs: tuple[str, ...]) -> None:
    if not slugs:
        return
    known = set(session.scalars(select(Organization.slug).where(Organization.slug.in_(slugs))))
    for slug in slugs:
        if slug not in known:
            raise InvalidInput(f"unknown organization {slug!r}", field="organizations")


def _apply(subscription: Subscription, prefs: Preferences) -> None:
    subscription.organizations = list(prefs.organizations)
    subscription.countries = list(prefs.countries)
    subscription.keywords = prefs.keywords
    subscription.frequency = prefs.frequency
    subscription.hour = prefs.hour
    subscription.weekday = prefs.weekday
    subscription.timezone = prefs.timezone
    subscription.language = prefs.language


def preferences_of(subscription: Subscription) -> Preferences:
    return Preferences(
        organizations=tuple(subscription.organizations or ()),
        countries=tuple(subscription.countries or ()),
        keywords=subscription.keywords or "",
        frequency=subscription.frequency,
        hour=subscription.hour,
        weekday=subscription.weekday,
        timezone=subscription.timezone,
        language=subscription.language,
    )


def schedule_of(subscription: Subscription) -> Schedule:
    return Schedule(subscription.frequency, subscription.hour, subscription.weekday, subscription.timezone)


def _subscriber_for_update(session: Session, email: str, now: datetime) -> Subscriber:
    """The subscriber row of ``email``, created if missing, locked until commit."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(Subscriber).values(email=email, created_at=now).on_conflict_do_nothing(index_elements=["email"])
    )
    subscriber = session.scalar(
        select(Subscriber).where(Subscriber.email == email).with_for_update().execution_options(populate_existing=True)
    )
    assert subscriber is not None
    return subscriber


def sign_up(
    session: Session,
    request: SignupRequest,
    *,
    client: str,
    now: datetime,
    settings: MailSettings,
    limits: RateLimits,
) -> int | None:
    """Record a sign-up; returns the id of a confirmation mail to send, if one is due.

    Raises ``InvalidInput`` (unknown organization) or ``TooManyRequests``
    before anything is written.
    """
    begin_write(session)
    check_organizations(session, request.preferences.organizations)
    check_and_count(session, client, request.email, now, limits)
    subscriber = _subscriber_for_update(session, request.email, now)
    subscriptions = list(session.scalars(select(Subscription).where(Subscription.subscriber_id == subscriber.id)))
    pending = [s for s in subscriptions if s.status == PENDING]
    if pending:
        # One pending subscription per address: the latest form wins, and no
        # second mail is sent while the first link still works.
        subscription = max(pending, key=lambda s: s.id)
        _apply(subscription, request.preferences)
        sent_at = subscription.confirmation_sent_at
        if sent_at is not None and sent_at > now - CONFIRM_WINDOW:
            return None
        subscription.token_key = secrets.token_hex(16)  # the old, expired link stays dead
    else:
        if sum(1 for s in subscriptions if s.status == ACTIVE) >= MAX_SUBSCRIPTIONS_PER_ADDRESS:
            return None
        subscription = Subscription(
            subscriber_id=subscriber.id,
            status=PENDING,
            token_key=secrets.token_hex(16),
            created_at=now,
            last_seq=0,
            hard_failures=0,
        )
        _apply(subscription, request.preferences)
        session.add(subscription)
    subscription.subscriber = subscriber
    subscription.confirmation_sent_at = now
    session.flush()
    return outbox.enqueue_confirmation(session, subscription, settings, now).id


def find_by_token(session: Session, settings: MailSettings, purpose: str, token: str, now: datetime) -> Subscription:
    """The subscription a link token points to; ``InvalidToken`` if forged, expired or gone."""
    key = tokens.read_token(settings.secret_key, purpose, token, now)
    subscription = session.scalar(select(Subscription).where(Subscription.token_key == key))
    if subscription is None:
        raise InvalidToken("this link is no longer valid")
    return subscription


def _activate(session: Session, subscription: Subscription, now: datetime) -> None:
    subscription.status = ACTIVE
    subscription.hard_failures = 0
    subscription.suspended_at = None
    subscription.unsubscribed_at = None
    # Only what arrives from now on: a new subscriber gets no backlog.
    subscription.last_seq = current_seq(session)
    subscription.next_due_at = first_due(schedule_of(subscription), now)


def confirm(session: Session, subscription: Subscription, now: datetime) -> Subscription:
    """Confirm a pending subscription (idempotent); returns the active subscription.

    If the address already has an active subscription with the very same
    choices, that one is kept and the new one dropped: no double digests.
    """
    if subscription.status == ACTIVE:
        return subscription
    if subscription.status != PENDING:
        raise InvalidToken("this subscription was cancelled; please sign up again")
    twin = next(
        (
            s
            for s in session.scalars(
                select(Subscription).where(
                    Subscription.subscriber_id == subscription.subscriber_id,
                    Subscription.status == ACTIVE,
                    Subscription.id != subscription.id,
                )
            )
            if preferences_of(s) == preferences_of(subscription)
        ),
        None,
    )
    if twin is not None:
        session.delete(subscription)
        session.flush()
        return twin
    subscription.confirmed_at = now
    _activate(session, subscription, now)
    session.flush()
    return subscription


def update_preferences(session: Session, subscription: Subscription, prefs: Preferences, now: datetime) -> None:
    """Change filters, schedule or language; the next digest follows the new schedule."""
    check_organizations(session, prefs.organizations)
    schedule_changed = (prefs.frequency, prefs.hour, prefs.weekday, prefs.timezone) != (
        subscription.frequency,
        subscription.hour,
        subscription.weekday,
        subscription.timezone,
    )
    _apply(subscription, prefs)
    if subscription.status == ACTIVE and schedule_changed:
        subscription.next_due_at = first_due(schedule_of(subscription), now)
    session.flush()


def unsubscribe(session: Session, subscription: Subscription, now: datetime) -> bool:
    """Stop a subscription and cancel its unsent digests; False if it was stopped already."""
    if subscription.status == UNSUBSCRIBED:
        return False
    subscription.status = UNSUBSCRIBED
    subscription.unsubscribed_at = now
    subscription.next_due_at = None
    outbox.cancel_pending(session, subscription.id)
    session.flush()
    return True


def resubscribe(session: Session, subscription: Subscription, now: datetime) -> None:
    """Start an unsubscribed or suspended subscription again (the link proves the mailbox)."""
    if subscription.status in (UNSUBSCRIBED, SUSPENDED):
        if subscription.confirmed_at is None:
            subscription.confirmed_at = now
        _activate(session, subscription, now)
        session.flush()


def get_subscription(session: Session, subscription_id: int) -> Subscription:
    subscription = session.get(Subscription, subscription_id)
    if subscription is None:
        raise SubscriptionNotFound(f"subscription {subscription_id} not found", resource_id=subscription_id)
    return subscription


def purge_unconfirmed(session: Session, now: datetime) -> int:
    """Delete pending subscriptions whose confirmation link has long expired (and lone subscribers)."""
    begin_write(session)
    cutoff = now - PURGE_AFTER
    stale = select(Subscription.id).where(
        Subscription.status == PENDING,
        func.coalesce(Subscription.confirmation_sent_at, Subscription.created_at) < cutoff,
    )
    ids = list(session.scalars(stale))
    if ids:
        session.execute(delete(Delivery).where(Delivery.subscription_id.in_(ids)))
        session.execute(delete(Subscription).where(Subscription.id.in_(ids)))
        lonely = select(Subscriber.id).where(~Subscriber.subscriptions.any())
        session.execute(delete(Subscriber).where(Subscriber.id.in_(lonely.scalar_subquery())))
    return len(ids)
