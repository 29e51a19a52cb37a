"""Sign-up and preferences input, checked and turned into typed values.

One function for the HTML form and the JSON body alike: whatever arrives is
a mapping of field to string or list. Every field is refused with
``InvalidInput`` naming it when it is malformed, too long, or carries a line
break or another control character (header injection: any of these values
may end up near a mail header).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email

from feeds.countries import find_country
from feeds.errors import InvalidInput
from feeds.search import query_stems
from subscribers.models import EMAIL_MAX, FREQUENCIES, KEYWORDS_MAX, WEEKLY
from subscribers.texts import LANGUAGES, WEEKDAYS

MAX_ORGANIZATIONS = 50
MAX_COUNTRIES = 50
MAX_PHRASES = 10
DEFAULT_HOUR = 8
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,119}$")
_PHRASE_SPLIT = re.compile(r"[,;]")


@dataclass(frozen=True)
class Preferences:
    """What a subscriber chose: filters, schedule, language."""

    organizations: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    keywords: str = ""
    frequency: str = "daily"
    hour: int = DEFAULT_HOUR
    weekday: int | None = None
    timezone: str = "Europe/Moscow"
    language: str = "ru"


@dataclass(frozen=True)
class SignupRequest:
    email: str
    preferences: Preferences


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    """Every IANA zone name this machine knows."""
    return frozenset(available_timezones())


def _has_control(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)


def _text(data: Mapping[str, Any], name: str, *, limit: int, default: str = "") -> str:
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise InvalidInput(f"{name} must be a single value", field=name)
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidInput(f"{name} must be text", field=name)
    text = str(value)
    if _has_control(text):
        raise InvalidInput(f"{name} must not contain line breaks or control characters", field=name)
    text = text.strip()
    if len(text) > limit:
        raise InvalidInput(f"{name} is longer than {limit} characters", field=name)
    return text


def _list(data: Mapping[str, Any], name: str, *, limit: int) -> list[str]:
    value = data.get(name)
    if value is None or value == "":
        return []
    items = list(value) if isinstance(value, (list, tuple)) else str(value).split(",")
    if len(items) > limit:
        raise InvalidInput(f"at most {limit} {name} may be chosen", field=name)
    result = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(f"{name} must be a list of text values", field=name)
        if _has_control(item):
            raise InvalidInput(f"{name} must not contain line breaks or control characters", field=name)
        item = item.strip()
        if item and item not in result:
            result.append(item)
    return result


def clean_email(value: object) -> str:
    """The address in the form mail is sent to (ASCII, lower case), or ``InvalidInput``."""
    text = _text({"email": value}, "email", limit=EMAIL_MAX)
    if not text:
        raise InvalidInput("an email address is required", field="email")
    try:
        # No DNS: a sign-up must not make the server query arbitrary domains,
        # and the confirmation mail is the real test of the address anyway.
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"not a valid email address: {exc}", field="email") from exc
    email = (result.ascii_email or result.normalized).lower()
    if len(email) > EMAIL_MAX:
        raise InvalidInput(f"email is longer than {EMAIL_MAX} characters", field="email")
    return email


def keyword_phrases(keywords: str) -> tuple[tuple[str, ...], ...]:
    """Phrases (comma-separated) as tuples of stems; a release matches any phrase with all its stems."""
    phrases = []
    for part in _PHRASE_SPLIT.split(keywords):
        stems = tuple(query_stems(part))
        if stems and stems not in phrases:
            phrases.append(stems)
    return tuple(phrases)


def _weekday(data: Mapping[str, Any]) -> int | None:
    raw = _text(data, "weekday", limit=20)
    if not raw:
        return None
    if raw.isdigit() and 0 <= int(raw) <= 6:
        return int(raw)
    lowered = raw.lower()
    for names in WEEKDAYS.values():
        for index, name in enumerate(names):
            if lowered == name.lower():
                return index
    raise InvalidInput("weekday must be 0 (Monday) to 6 (Sunday)", field="weekday")


def clean_preferences(data: Mapping[str, Any], *, default_language: str, default_timezone: str) -> Preferences:
    """Check every preference field; ``InvalidInput`` names the first bad one."""
    organizations = _list(data, "organizations", limit=MAX_ORGANIZATIONS)
    for slug in organizations:
        if not _SLUG.match(slug):
            raise InvalidInput(f"unknown organization {slug[:60]!r}", field="organizations")
    countries = []
    for value in _list(data, "countries", limit=MAX_COUNTRIES):
        country = find_country(value)
        if country is None:
            raise InvalidInput(f"unknown country {value[:60]!r}", field="countries")
        if country.code not in countries:
            countries.append(country.code)
    keywords = _text(data, "keywords", limit=KEYWORDS_MAX)
    phrases = keyword_phrases(keywords)
    if keywords and not phrases:
        raise InvalidInput("keywords must contain at least one word", field="keywords")
    if len(phrases) > MAX_PHRASES:
        raise InvalidInput(f"at most {MAX_PHRASES} keyword phrases", field="keywords")
    frequency = _text(data, "frequency", limit=16, default="daily").lower() or "daily"
    if frequency not in FREQUENCIES:
        raise InvalidInput(f"frequency must be one of {', '.join(FREQUENCIES)}", field="frequency")
    hour_text = _text(data, "hour", limit=4, default=str(DEFAULT_HOUR)) or str(DEFAULT_HOUR)
    if not hour_text.isdigit() or not 0 <= int(hour_text) <= 23:
        raise InvalidInput("hour must be a whole number from 0 to 23", field="hour")
    weekday = _weekday(data)
    if frequency == WEEKLY and weekday is None:
        weekday = 0
    if frequency != WEEKLY:
        weekday = None
    timezone = _text(data, "timezone", limit=64, default=default_timezone) or default_timezone
    if timezone not in time_zones():
        raise InvalidInput(f"unknown time zone {timezone[:64]!r}", field="timezone")
    language = (_text(data, "language", limit=8, default=default_language) or default_language).lower()
    if language not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    return Preferences(
        organizations=tuple(organizations),
        countries=tuple(countries),
        keywords=keywords,
        frequency=frequency,
        hour=int(hour_text),
        weekday=weekday,
        timezone=timezone,
        language=language,
    )


def clean_signup(data: Mapping[str, Any], *, default_language: str, default_timezone: str) -> SignupRequest:
    """A whole sign-up: the address first (the field people get wrong), then the rest."""
    email = clean_email(data.get("email"))
    prefs = clean_preferences(data, default_language=default_language, default_timezone=default_timezone)
    return SignupRequest(email=email, preferences=prefs)
