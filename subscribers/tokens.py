"""Signed, expiring tokens for the links in mail: confirm, preferences, unsubscribe.

A token is the subscription's random ``token_key`` signed with the app secret
(itsdangerous, HMAC-SHA1 over key and timestamp) under a salt per purpose, so
an unsubscribe link cannot open the preferences page and a forged or altered
token is refused before the database is asked. The token says nothing about
the address or the row.

The timestamp is passed in (``issued_at``): a mail built twice for the same
delivery carries the same links, byte for byte.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from subscribers.errors import ExpiredToken, InvalidToken

CONFIRM = "syndicate.subscriptions.confirm"
MANAGE = "syndicate.subscriptions.manage"
UNSUBSCRIBE = "syndicate.subscriptions.unsubscribe"

# How long each kind of link works after it was issued.
MAX_AGE = {
    CONFIRM: timedelta(days=3),
    MANAGE: timedelta(days=366),
    UNSUBSCRIBE: timedelta(days=2 * 366),
}
TOKEN_MAX = 200  # longer input is not one of ours; refuse before any work


class _Signer(TimestampSigner):
    """A signer whose clock is the caller's (for issuing and for checking)."""

    def __init__(self, secret: str, salt: str, at: datetime) -> None:
        super().__init__(secret, salt=salt)
        self._at = int(at.timestamp())

    def get_timestamp(self) -> int:
        return self._at


def issue_token(secret: str, purpose: str, token_key: str, issued_at: datetime) -> str:
    """A URL-safe token for ``token_key`` valid for ``MAX_AGE[purpose]`` from ``issued_at``."""
    return _Signer(secret, purpose, issued_at).sign(token_key).decode("ascii")


def read_token(secret: str, purpose: str, token: str, now: datetime) -> str:
    """The ``token_key`` inside ``token``; ``InvalidToken`` or ``ExpiredToken`` otherwise."""
    if not token or len(token) > TOKEN_MAX or not token.isascii():
        raise InvalidToken("this link is not valid")
    signer = _Signer(secret, purpose, now)
    try:
        value = signer.unsign(token, max_age=int(MAX_AGE[purpose].total_seconds()))
    except SignatureExpired as exc:
        raise ExpiredToken("this link has expired") from exc
    except BadSignature as exc:
        raise InvalidToken("this link is not valid") from exc
    return value.decode("ascii")
