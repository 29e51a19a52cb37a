"""The stored entities of subscriptions: people, what they follow, what they were sent.

``Subscriber`` is an address; ``Subscription`` is one digest it asked for
(filters, frequency, hour, zone, language); ``Delivery`` is the outbox: one
row per mail (a digest for one period, or a confirmation), written in the
transaction that decides its content and sent later under a lease.
``Arrival`` numbers releases in the order they became visible, so each
subscription only has to remember the last number it was given.

The schema itself is made by ``migrations/versions/0003_subscribers.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feeds.db import Base, UTCDateTime

EMAIL_MAX = 254  # RFC 5321 path limit less the angle brackets
KEYWORDS_MAX = 300

# Subscription.status
PENDING = "pending"  # signed up, not confirmed yet
ACTIVE = "active"  # confirmed; gets digests
UNSUBSCRIBED = "unsubscribed"
SUSPENDED = "suspended"  # too many permanent delivery failures

# Subscription.frequency
IMMEDIATE = "immediate"
DAILY = "daily"
WEEKLY = "weekly"
FREQUENCIES = (IMMEDIATE, DAILY, WEEKLY)

# Delivery.kind
DIGEST = "digest"
CONFIRMATION = "confirmation"

# Delivery.status (PENDING is shared with the subscription statuses)
SENT = "sent"
FAILED = "failed"  # permanent failure, or temporary ones past the last attempt
CANCELLED = "cancelled"  # the subscription went away before the mail did


class Subscriber(Base):
    """One e-mail address (ASCII form, domain lower-cased)."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(EMAIL_MAX), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    subscriptions: Mapped[list["Subscription"]] = relationship(back_populates="subscriber", lazy="raise")


class Subscription(Base):
    """A digest one subscriber asked for, and where its schedule stands."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    # Random; signed into every link (confirm, preferences, unsubscribe) so the
    # links say nothing about the address or the row.
    token_key: Mapped[str] = mapped_column(String(32), unique=True)
    # filters: organization slugs, upper-case country codes, keyword phrases
    organizations: Mapped[list[str]] = mapped_column(JSON, default=list)
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    keywords: Mapped[str] = mapped_column(String(KEYWORDS_MAX), default="", server_default=text("''"))
    # schedule: frequency, local hour (0-23), weekday (0 = Monday) for weekly
    frequency: Mapped[str] = mapped_column(String(16))
    hour: Mapped[int] = mapped_column(Integer)
    weekday: Mapped[Optional[int]] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmation_sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    unsubscribed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    suspended_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # The newest Arrival.seq already considered for this subscription: each
    # release is looked at (and mailed) at most once.
    last_seq: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    last_planned_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    last_digest_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # Permanent (5xx) failures in a row; reset by a successful delivery.
    hard_failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions", lazy="joined")

    __table_args__ = (Index("ix_subscriptions_due", "status", "next_due_at"),)


class Delivery(Base):
    """The outbox: one mail to send, unique per subscription, kind and period.

    ``release_ids`` fixes a digest's content when the row is written; the
    sender only renders it. ``message_id`` is fixed too, so a mail sent twice
    after a crash is recognisably the same mail.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(EMAIL_MAX))
    message_id: Mapped[str] = mapped_column(String(200))
    release_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[Optional[str]] = mapped_column(String(128))
    lease_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    last_error: Mapped[Optional[str]] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("subscription_id", "kind", "period", name="uq_deliveries_period"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
    )


class Arrival(Base):
    """A release that became visible, numbered in commit order.

    Rows are added by one writer at a time (a database lock), so a reader
    that sees number N has seen every number below it.
    """

    __tablename__ = "digest_arrivals"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), unique=True)
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class SignupAttempt(Base):
    """One sign-up, counted for rate limits shared by every web node.

    ``key_hash`` is the SHA-256 of the client address or the e-mail address:
    counting needs no plain copy.
    """

    __tablename__ = "signup_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(8))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_signup_attempts_key", "scope", "key_hash", "created_at"),)
