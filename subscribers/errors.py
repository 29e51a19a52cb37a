"""Errors of the subscriptions side, under the one tree of ``feeds.errors``.

Input problems reuse ``feeds.errors.InvalidInput`` (with the field named), so
the web side turns them into 422 in one place.
"""

from __future__ import annotations

from feeds.errors import FeedsError, NotFound


class InvalidToken(FeedsError):
    """A link token that is malformed, forged or unknown."""


class ExpiredToken(InvalidToken):
    """A genuine link token past its lifetime."""


class SubscriptionNotFound(NotFound):
    pass


class TooManyRequests(FeedsError):
    """A rate limit was hit; ``retry_after`` seconds until the next attempt may pass."""

    def __init__(self, message: str, *, retry_after: int, resource_id: object = None) -> None:
        super().__init__(message, resource_id=resource_id)
        self.retry_after = retry_after


class DeliveryError(Exception):
    """A mail could not be handed over. ``code`` is the SMTP reply code, if any."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryFailure(DeliveryError):
    """4xx, a dropped connection, a server that is down: try again later."""


class ConnectionFailure(TemporaryFailure):
    """The mail server cannot be reached at all: the rest of the batch waits too."""


class PermanentFailure(DeliveryError):
    """5xx: the server refused this mail or recipient for good."""
