"""Helpers for the subscription and digest tests: a real SMTP server and small builders.

``SmtpServer`` is aiosmtpd on 127.0.0.1 (a random port) that records what it
accepts and can be told to answer 4xx/5xx to chosen recipients or to drop the
connection after the DATA of a chosen recipient, before its reply.
"""

from __future__ import annotations

import email
import email.policy
import secrets
import socket
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy.orm import Session

from feeds.models import Organization, Release
from feeds.organizations import create_organization
from feeds.store import create_release
from feeds.types import ReleaseDraft
from subscribers.models import ACTIVE, Subscriber, Subscription
from subscribers.schedule import first_due
from subscribers.settings import MailSettings
from subscribers.subscriptions import current_seq, schedule_of

UTC = timezone.utc
SECRET = "test-secret-key-not-for-production"
SETTINGS = MailSettings(base_url="http://127.0.0.1:8000", secret_key=SECRET, mail_from="Синдикат <digest@example.org>")


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Handler:
    """aiosmtpd handler: records messages; scripted failures per recipient."""

    received: list[Received] = field(default_factory=list)
    # recipient -> replies to give to RCPT TO, one per attempt ("451 …", "550 …")
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    # recipients whose next DATA is answered by dropping the connection
    drop_after_data: set[str] = field(default_factory=set)
    connections: int = 0
    auth: tuple[str, str] | None = None

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        replies = self.rcpt_replies.get(address)
        if replies:
            return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.drop_after_data:
                self.drop_after_data.discard(rcpt)
                server.transport.close()  # the client never hears whether it was accepted
                return "421 closing"
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 Message accepted"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.recipients]


def free_port() -> int:
    """A port nobody listens on right now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """aiosmtpd on loopback, started and stopped by the test."""

    def __init__(self, handler: Handler | None = None, **kwargs: Any) -> None:
        self.handler = handler or Handler()
        # aiosmtpd checks readiness by connecting to its own port, so it needs a real one.
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=free_port(), **kwargs)

    def __enter__(self) -> "SmtpServer":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def bodies(message: EmailMessage) -> tuple[str, str]:
    """(plain text, HTML) of a multipart/alternative mail, decoded."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def maildir_messages(path: Path) -> list[EmailMessage]:
    new = path / "new"
    if not new.exists():
        return []
    return [parse(p.read_bytes()) for p in sorted(new.iterdir(), key=lambda p: p.stat().st_mtime_ns)]


def organization(session: Session, name: str = "АИРР", slug: str | None = None, country: str = "RU") -> Organization:
    org = create_organization(session, name, slug=slug, country_code=country)
    session.commit()
    return org


def publish(
    session: Session,
    org: Organization,
    title: str,
    *,
    at: datetime,
    lead: str = "",
    body: str = "<p>Текст релиза.</p>",
    country: str = "RU",
    published_at: datetime | None = None,
) -> Release:
    release = create_release(
        session,
        org,
        ReleaseDraft(title=title, lead=lead or title, body=body, country_code=country, published_at=published_at),
        now=at,
    )
    session.commit()
    return release


def subscribe(
    session: Session,
    email_address: str,
    now: datetime,
    *,
    organizations: tuple[str, ...] = (),
    countries: tuple[str, ...] = (),
    keywords: str = "",
    frequency: str = "daily",
    hour: int = 8,
    weekday: int | None = None,
    timezone_name: str = "Europe/Moscow",
    language: str = "ru",
) -> Subscription:
    """A confirmed subscription, as if the journey through the pages had happened."""
    subscriber = Subscriber(email=email_address, created_at=now)
    session.add(subscriber)
    session.flush()
    sub = Subscription(
        subscriber_id=subscriber.id,
        status=ACTIVE,
        token_key=secrets.token_hex(16),
        organizations=list(organizations),
        countries=list(countries),
        keywords=keywords,
        frequency=frequency,
        hour=hour,
        weekday=weekday,
        timezone=timezone_name,
        language=language,
        created_at=now,
        confirmed_at=now,
        last_seq=current_seq(session),
        hard_failures=0,
    )
    sub.subscriber = subscriber
    session.add(sub)
    session.flush()
    sub.next_due_at = first_due(schedule_of(sub), now)
    session.commit()
    return sub


class Clock:
    """A settable clock for runners: ``clock.now``, ``clock.advance(minutes=5)``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def trust_context(ca: Any) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def future(days: int = 30) -> datetime:
    """A moment safely after the real clock, on an hour boundary (times made by the API use the real clock)."""
    return (datetime.now(UTC) + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)

