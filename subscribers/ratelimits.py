"""Sign-up rate limits, counted in the database so every web node agrees.

A sliding window per client address and per e-mail address. Only hashes of
the keys are stored. Under concurrent requests on several nodes the count
can be passed by the few requests that check at the same instant: a limit
against floods, not an exact quota.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from subscribers.errors import TooManyRequests
from subscribers.models import SignupAttempt

CLIENT = "client"
ADDRESS = "address"


@dataclass(frozen=True)
class RateLimits:
    """How many sign-ups one client and one address may make per window."""

    per_client: int = 20
    client_window: timedelta = timedelta(hours=1)
    per_address: int = 5
    address_window: timedelta = timedelta(hours=1)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _recent(session: Session, scope: str, key_hash: str, since: datetime) -> tuple[int, datetime | None]:
    row = session.execute(
        select(func.count(), func.min(SignupAttempt.created_at)).where(
            SignupAttempt.scope == scope,
            SignupAttempt.key_hash == key_hash,
            SignupAttempt.created_at > since,
        )
    ).one()
    return int(row[0]), row[1]


def check_and_count(session: Session, client: str, email: str, now: datetime, limits: RateLimits) -> None:
    """Raise ``TooManyRequests`` if either limit is reached; otherwise count this attempt."""
    checks = (
        (CLIENT, _hash(client), limits.per_client, limits.client_window, "too many sign-ups from this address"),
        (ADDRESS, _hash(email), limits.per_address, limits.address_window, "too many sign-ups for this email"),
    )
    for scope, key, limit, window, message in checks:
        count, oldest = _recent(session, scope, key, now - window)
        if count >= limit:
            retry = (oldest + window - now) if oldest else window
            raise TooManyRequests(f"{message}; try again later", retry_after=max(1, int(retry.total_seconds()) + 1))
    session.add_all(SignupAttempt(scope=scope, key_hash=key, created_at=now) for scope, key, *_ in checks)


def purge_attempts(session: Session, now: datetime, limits: RateLimits) -> int:
    """Forget attempts older than the longest window."""
    oldest = now - max(limits.client_window, limits.address_window)
    result = session.execute(delete(SignupAttempt).where(SignupAttempt.created_at <= oldest))
    return int(getattr(result, "rowcount", 0) or 0)
