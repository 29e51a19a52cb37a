"""Untrusted release payloads to ``ReleaseDraft`` values.

Shared by the publishing API and the JSON Lines importer. Errors are
``InvalidInput`` naming the offending field; nothing here touches the
database. (Listing filters are parsed by ``feeds.channels``, the same rules
for feeds and the API.)
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Mapping

from feeds.channels import LANGUAGES
from feeds.countries import find_country
from feeds.errors import InvalidInput
from feeds.models import BODY_MAX, CONTACT_MAX, LEAD_MAX, TITLE_MAX, URL_MAX
from feeds.sanitize import plain_text, text_to_html
from feeds.types import Attachment, ReleaseDraft

# What a client may send when publishing or correcting a release.
RELEASE_FIELDS = frozenset(
    {"title", "lead", "body", "country", "language", "contact", "published_at", "attachments", "canonical_url"}
)
# Fields of the API's own representation: a client that GETs a release, edits
# it and PUTs it back sends them too; they are ignored rather than refused.
READ_ONLY_FIELDS = frozenset(
    {"id", "guid", "url", "slug", "status", "view_count", "created_at", "updated_at", "withdrawn_at", "country_name"}
)
REQUIRED_FIELDS = ("title", "body", "country")

ATTACHMENTS_MAX = 20

_LANGUAGE = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*$")
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_TAG = re.compile(r"<[a-zA-Z/!][^>]*>")



def _string(data: Mapping[str, Any], name: str, max_length: int, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    if len(value) > max_length:
        raise InvalidInput(f"{name} is longer than {max_length} characters", field=name)
    return value


def parse_datetime(value: object, name: str) -> datetime:
    """An ISO 8601 timestamp with a UTC offset (``2025-03-26T12:39:00+03:00`` or ``…Z``)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be an ISO 8601 string", field=name)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{name} is not an ISO 8601 date and time: {value!r}", field=name) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidInput(f"{name} needs a UTC offset, e.g. {value}+03:00 or {value}Z", field=name)
    return parsed


def _http_url(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be a URL", field=name)
    url = value.strip()
    if len(url) > URL_MAX:
        raise InvalidInput(f"{name} is longer than {URL_MAX} characters", field=name)
    if not re.match(r"^https?://[^\s/?#]+[^\s]*$", url, re.IGNORECASE):
        raise InvalidInput(f"{name} must be an absolute http(s) URL", field=name)
    return url


def _attachments(value: object) -> tuple[Attachment, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInput("attachments must be a list", field="attachments")
    if len(value) > ATTACHMENTS_MAX:
        raise InvalidInput(f"at most {ATTACHMENTS_MAX} attachments", field="attachments")
    result = []
    for i, item in enumerate(value):
        where = f"attachments[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{where} must be an object", field=where)
        url = _http_url(item.get("url"), f"{where}.url")
        mime = item.get("type")
        if not isinstance(mime, str) or not _MIME.match(mime.strip().lower()):
            raise InvalidInput(f"{where}.type must be a media type such as image/jpeg", field=f"{where}.type")
        length = item.get("length", 0)
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise InvalidInput(f"{where}.length must be a non-negative integer", field=f"{where}.length")
        title = _string(item, "title", TITLE_MAX)
        result.append(Attachment(url=url, type=mime.strip().lower(), length=length, title=title))
    return tuple(result)


def _language(value: object, title: str) -> str:
    if value is None or value == "":
        # Unstated: Cyrillic in the title means Russian, anything else English.
        return "ru" if _CYRILLIC.search(title) else "en"
    match = _LANGUAGE.match(value) if isinstance(value, str) else None
    # Only languages the feeds can filter by and search can stem (``ru-RU`` is ``ru``).
    if match is None or match.group(1).lower() not in LANGUAGES:
        raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    return match.group(1).lower()


def release_draft(data: object, *, extra_fields: frozenset[str] = frozenset()) -> ReleaseDraft:
    """Validate a publishing payload and turn it into a ``ReleaseDraft``.

    Required: ``title``, ``body``, ``country`` (alpha-2 code or a Russian or
    English name). Optional: ``lead``, ``language`` (guessed from the title
    when absent), ``contact``, ``published_at`` (future = embargo),
    ``attachments``, ``canonical_url``. Languages are those the feeds filter
    by (``ru``, ``en``). A body without any HTML tag is plain
    text, blank lines separating paragraphs. Fields in ``extra_fields`` are
    the caller's business and pass through unchecked; other unknown fields
    are refused so a typo (``titel``) is not silently dropped.
    """
    if not isinstance(data, dict):
        raise InvalidInput("a release must be a JSON object", field=None)
    unknown = sorted(set(data) - RELEASE_FIELDS - READ_ONLY_FIELDS - extra_fields - {"organization"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
    for name in REQUIRED_FIELDS:
        _string(data, name, 10**9, required=True)
    raw_title = _string(data, "title", TITLE_MAX * 4, required=True) or ""
    title = plain_text(raw_title)
    if not title:
        raise InvalidInput("title is required", field="title")
    if len(title) > TITLE_MAX:
        raise InvalidInput(f"title is longer than {TITLE_MAX} characters", field="title")
    lead = plain_text(_string(data, "lead", LEAD_MAX) or "")
    body = _string(data, "body", BODY_MAX, required=True) or ""
    if not _TAG.search(body):
        body = text_to_html(body)
    country_value = _string(data, "country", 100, required=True) or ""
    country = find_country(country_value)
    if country is None:
        raise InvalidInput(f"unknown country {country_value!r}; use an ISO 3166-1 alpha-2 code", field="country")
    contact = _string(data, "contact", CONTACT_MAX)
    published_at = None
    if data.get("published_at") not in (None, ""):
        published_at = parse_datetime(data["published_at"], "published_at")
    canonical = data.get("canonical_url")
    return ReleaseDraft(
        title=title,
        lead=lead,
        body=body,
        country_code=country.code,
        language=_language(data.get("language"), title),
        contact=plain_text(contact) if contact else None,
        published_at=published_at,
        attachments=_attachments(data.get("attachments")),
        canonical_url=_http_url(canonical, "canonical_url") if canonical not in (None, "") else None,
    )
