"""Plain values the subscriptions side needs from the configuration.

Built at the edges (``create_app``, the scheduler, the CLI) from ``Config``
and passed down; this package never reads the environment itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import urlsplit


@dataclass(frozen=True)
class MailSettings:
    """Where links point, who mail is from, how it is signed and paced."""

    base_url: str
    secret_key: str
    mail_from: str = "Syndicate <noreply@localhost>"
    # messages per second at most; 0 = as fast as the server takes them
    mail_rate: float = 0.0
    # how long a sender owns the deliveries it claimed
    lease_seconds: float = 600.0
    # deliveries claimed at once (one SMTP connection serves the batch)
    batch_size: int = 200
    default_language: str = "ru"
    default_timezone: str = "Europe/Moscow"

    def __post_init__(self) -> None:
        if any(c in self.mail_from for c in "\r\n"):
            raise ValueError("the sender address must be one line")
        if not self.envelope_from:
            raise ValueError(f"no address in the sender {self.mail_from!r}")

    @property
    def site_url(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def domain(self) -> str:
        """Host of the site, for Message-ID and List-Id."""
        return urlsplit(self.site_url).hostname or "localhost"

    @property
    def envelope_from(self) -> str:
        """The bare address of ``mail_from`` (SMTP MAIL FROM)."""
        return parseaddr(self.mail_from)[1]
