"""Syndicate's configuration: one typed value built from the environment.

Read at the edges only (``create_app``, the scheduler's ``main``, the CLI) and
passed down as plain values. Imports nothing of the project.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_INSTANCE = "instance"
LANGUAGES = ("ru", "en")


class ConfigError(ValueError):
    """An environment variable has a value Syndicate cannot use."""


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.strip() == "":
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 0 or 1, not {value!r}")


def _positive_float(value: str | None, name: str, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{name} must be positive, not {value!r}")
    return number


def load_secret_key(instance_path: Path) -> str:
    """Return the secret kept in ``instance/secret_key``, creating it once."""
    path = instance_path / "secret_key"
    try:
        key = path.read_text(encoding="ascii").strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting together agree on whichever wrote first.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return key


@dataclass(frozen=True)
class Config:
    """Everything the service needs to know about its surroundings."""

    database_url: str = f"sqlite:///{DEFAULT_INSTANCE}/syndicate.db"
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = field(default="", repr=False)
    mail_url: str = f"maildir://{DEFAULT_INSTANCE}/mail"
    mail_from: str = "Syndicate <noreply@localhost>"
    timezone: str = "Europe/Moscow"
    language: str = "ru"
    allow_private_fetch: bool = False
    websub_hub: str | None = None
    instance_path: Path = Path(DEFAULT_INSTANCE)
    # Seconds between scheduler ticks (each tick asks the database what is due).
    scheduler_tick_seconds: float = 30.0
    # How long a web worker trusts its feed cache before asking the database
    # whether any release changed (cross-process invalidation).
    feed_cache_check_seconds: float = 1.0
    # Upper bound on digest messages per second (0 = unlimited).
    mail_rate: float = 0.0
    testing: bool = False

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def replace(self, **changes: object) -> "Config":
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Config":
        """Build the configuration from ``SYNDICATE_*`` variables (all optional)."""
        env = os.environ if environ is None else environ
        instance_path = Path(env.get("SYNDICATE_INSTANCE_PATH") or DEFAULT_INSTANCE)
        database_url = env.get("SYNDICATE_DATABASE_URL") or f"sqlite:///{instance_path}/syndicate.db"
        base_url = (env.get("SYNDICATE_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"SYNDICATE_BASE_URL must start with http:// or https://, not {base_url!r}")
        timezone = env.get("SYNDICATE_TIMEZONE") or "Europe/Moscow"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"SYNDICATE_TIMEZONE {timezone!r} is not a known time zone") from None
        language = (env.get("SYNDICATE_LANGUAGE") or "ru").lower()
        if language not in LANGUAGES:
            raise ConfigError(f"SYNDICATE_LANGUAGE must be one of {', '.join(LANGUAGES)}, not {language!r}")
        mail_url = env.get("SYNDICATE_MAIL_URL") or f"maildir://{instance_path}/mail"
        if not mail_url.startswith(("smtp://", "smtps://", "maildir://")):
            raise ConfigError("SYNDICATE_MAIL_URL must start with smtp://, smtps:// or maildir://")
        secret_key = env.get("SYNDICATE_SECRET_KEY") or load_secret_key(instance_path)
        return cls(
            database_url=database_url,
            base_url=base_url,
            secret_key=secret_key,
            mail_url=mail_url,
            mail_from=env.get("SYNDICATE_MAIL_FROM") or "Syndicate <noreply@localhost>",
            timezone=timezone,
            language=language,
            allow_private_fetch=_flag(env.get("SYNDICATE_ALLOW_PRIVATE_FETCH"), "SYNDICATE_ALLOW_PRIVATE_FETCH"),
            websub_hub=env.get("SYNDICATE_WEBSUB_HUB") or None,
            instance_path=instance_path,
            scheduler_tick_seconds=_positive_float(
                env.get("SYNDICATE_SCHEDULER_TICK"), "SYNDICATE_SCHEDULER_TICK", 30.0
            ),
            feed_cache_check_seconds=_positive_float(
                env.get("SYNDICATE_FEED_CACHE_CHECK"), "SYNDICATE_FEED_CACHE_CHECK", 1.0
            ),
            mail_rate=float(env.get("SYNDICATE_MAIL_RATE") or 0),
        )
