"""Bytes of a partner feed in, a ``ParsedFeed`` out. The only module that imports feedparser.

Pure: no network, no database. Before feedparser sees the document we

* settle the character set ourselves (BOM, declared charsets checked against
  the bytes, UTF-8, then a Cyrillic-aware guess) and hand it UTF-8, so a
  feed in windows-1251 with a wrong or missing declaration still reads as
  Russian, not as Latin-1 mojibake;
* remove DOCTYPE and ENTITY declarations: feedparser keeps "safe" internal
  entities and its fallback parser expands them without limit, so a 60 KB
  feed could grow to hundreds of megabytes.

feedparser's own sanitizer is switched off: it lets ``<svg/onload>`` and
``jav&#x09;ascript:`` through, and every HTML field is cleaned by the one
nh3 allow-list (``feeds.sanitize``) later anyway. Relative links are
resolved here against each entry's base (``xml:base``, itself relative to the
final URL), links directly and HTML by the sanitizer (``base_url``).
"""

from __future__ import annotations

import calendar
import codecs
import html
import re
import time
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Mapping
from urllib.parse import urljoin, urlsplit

import feedparser

from feeds.errors import ParseError
from feeds.types import Attachment, ParsedEntry, ParsedFeed

MAX_TTL_MINUTES = 7 * 24 * 60

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_XML_DECL_ENCODING = re.compile(rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
_XML_DECL_ENCODING_TEXT = re.compile(r"""^(\s*<\?xml[^>]{0,200}?encoding\s*=\s*)(["'])[^"']*\2""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.I)
_DOCTYPE = re.compile(r"<!DOCTYPE", re.I)
_ENTITY_DECL = re.compile(r"<!ENTITY\s(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.I)
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}$")
_HIGH_RUN = re.compile(rb"[\x80-\xff]{3,}")
_HIGH = re.compile(rb"[\x80-\xff]")
_URL_SPECIAL = re.compile(r"[?#;\\\t\r\n]")
_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
)


# -- character sets --------------------------------------------------------------


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None


def _http_charset(headers: Mapping[str, str]) -> str | None:
    match = _CHARSET.search(headers.get("content-type", ""))
    return match.group(1) if match else None


def _guess_single_byte(data: bytes) -> str:
    """windows-1251, KOI8-R or windows-1252 for undeclared, non-UTF-8 bytes.

    Russian text is whole words of high bytes; Western European text has a
    high byte here and there between ASCII letters. Between the two Cyrillic
    code pages, mostly-lowercase text decides.
    """
    high = len(_HIGH.findall(data))
    in_runs = sum(len(m) for m in _HIGH_RUN.findall(data))
    if high == 0 or in_runs < high / 2:
        return "cp1252"
    scores = {}
    for candidate in ("cp1251", "koi8_r"):
        text = data.decode(candidate, errors="replace")
        scores[candidate] = sum(1 for c in text if "а" <= c <= "я" or c == "ё")
    return max(scores, key=lambda k: scores[k])


def decode_document(data: bytes, headers: Mapping[str, str]) -> tuple[str, str, str | None]:
    """The document as text, the codec used, and a warning when the declarations were wrong or missing."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(name), name, None
            except UnicodeDecodeError:
                break
    match = _XML_DECL_ENCODING.match(data[:300])
    declared = [c for c in (_codec(_http_charset(headers)), _codec(match.group(1).decode() if match else None)) if c]
    for name in declared:
        if name.startswith(("utf-16", "utf-32")):
            try:
                return data.decode(name), name, None
            except UnicodeDecodeError:
                pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        wrong = [d for d in declared if d not in ("utf-8", "ascii")]
        if wrong and _HIGH.search(data):
            return text, "utf-8", f"declared charset {wrong[0]} does not match the bytes; read as UTF-8"
        return text, "utf-8", None
    for name in declared:
        try:
            return data.decode(name), name, None
        except UnicodeDecodeError:
            pass
    guess = _guess_single_byte(data)
    said = f"declared charset {declared[0]} does not match the bytes" if declared else "no charset declared"
    return data.decode(guess, errors="replace"), guess, f"{said}; read as {guess}"


# -- entity declarations ---------------------------------------------------------


def _doctype_end(text: str, start: int) -> int:
    """Index just past the DOCTYPE starting at ``start``, internal subset included."""
    quote = ""
    depth = 0
    i = start + 2
    n = len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
        elif text.startswith("<!--", i):
            end = text.find("-->", i + 4)
            i = n if end < 0 else end + 3
            continue
        elif c in "\"'":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth = max(0, depth - 1)
        elif c == ">" and depth == 0:
            return i + 1
        i += 1
    return n


def strip_declarations(text: str) -> str:
    """Remove every DOCTYPE (with its internal subset) and stray ENTITY declaration."""
    while True:
        match = _DOCTYPE.search(text)
        if match is None:
            break
        text = text[: match.start()] + text[_doctype_end(text, match.start()):]
    return _ENTITY_DECL.sub("", text)


# -- feedparser's result to plain values ---------------------------------------


def _datetime(value: Any) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        when = datetime.fromtimestamp(calendar.timegm(value), timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None
    return when if 1990 <= when.year <= 2200 else None


@lru_cache(maxsize=64)
def _origin(base: str) -> str | None:
    """``scheme://host`` of an http(s) base URL, else None."""
    try:
        parts = urlsplit(base)
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else None


def _http_url(value: Any, base: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text: str = value.strip()
    if text.startswith(("https://", "http://")):
        return text
    origin = _origin(base)
    if origin and text[0] == "/" and text[1:2] != "/" and "/." not in text and not _URL_SPECIAL.search(text):
        # A plain absolute path ("/news/1.html", most partners' links): what urljoin would
        # answer, without its two parses. Anything with dot segments, a query, a fragment,
        # parameters or characters urlsplit drops takes the long way.
        return origin + text
    url = urljoin(base, text)
    return url if urlsplit(url).scheme in ("http", "https") else None


def _get(node: Any, key: str) -> Any:
    """A key of one of feedparser's dicts, read as a plain dict.

    ``FeedParserDict.get`` runs every read through its aliases (and answers
    ``updated`` with ``published``); the keys read here are feedparser's own
    names, so the plain read gives the same values, several times faster.
    """
    return dict.get(node, key) if isinstance(node, dict) else None


def _as_html(detail: Any, value: str) -> str:
    kind = _get(detail, "type") or ""
    return html.escape(value) if kind == "text/plain" else value


def _content(entry: Any) -> str | None:
    parts = _get(entry, "content") or []
    for preferred in ("text/html", "application/xhtml+xml", "text/plain"):
        for part in parts:
            if _get(part, "type") == preferred and _get(part, "value"):
                return _as_html(part, str(part["value"]))
    return None


def _enclosures(entry: Any, base: str) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    # What FeedParserDict's "enclosures" is made of, without the copies it makes of each link.
    for enclosure in _get(entry, "links") or []:
        if _get(enclosure, "rel") != "enclosure":
            continue
        url = _http_url(_get(enclosure, "href"), base)
        if url is None or any(a.url == url for a in found):
            continue
        length = str(_get(enclosure, "length") or "0").strip()
        found.append(
            Attachment(
                url=url,
                type=kind if _MEDIA_TYPE.match(kind := str(_get(enclosure, "type") or "").strip().lower())
                else "application/octet-stream",
                length=int(length) if length.isdigit() and len(length) < 15 else 0,
            )
        )
    return tuple(found)


def _entry(entry: Any, base: str) -> ParsedEntry:
    summary = str(_get(entry, "summary") or "")
    entry_id = str(_get(entry, "id") or "").strip() or None
    parts = _get(entry, "content") or [_get(entry, "summary_detail") or {}]
    content_base = _get(parts[0], "base")
    if content_base:
        base = urljoin(base, str(content_base)) if base else str(content_base)
    return ParsedEntry(
        id=entry_id,
        link=_http_url(_get(entry, "link"), base),
        title=str(_get(entry, "title") or ""),
        summary_html=_as_html(_get(entry, "summary_detail"), summary),
        content_html=_content(entry),
        # Never FeedParserDict's get here: it would silently answer one date for the other.
        published=_datetime(_get(entry, "published_parsed")),
        updated=_datetime(_get(entry, "updated_parsed")),
        language=None,
        enclosures=_enclosures(entry, base),
        base_url=base or None,
    )


def _ttl(value: Any) -> int | None:
    text = str(value or "").strip()
    if not text.isdigit():
        return None
    minutes = int(text)
    return min(minutes, MAX_TTL_MINUTES) if minutes > 0 else None


def _what_it_is(data: bytes, headers: Mapping[str, str]) -> str | None:
    """A name for a body that is plainly not a feed, judged before parsing."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media.startswith(("image/", "audio/", "video/")):
        return f"{media} content"
    return None


def parse_feed(
    data: bytes, *, headers: Mapping[str, str] | None = None, url: str = "", resource_id: object = None
) -> ParsedFeed:
    """Parse the fetched bytes of an RSS or Atom feed.

    ``headers`` are the response headers (lower-case names) and ``url`` the
    final URL, against which relative links resolve. A feed with parse
    warnings but with entries is returned, the warning in ``warning``;
    anything that is not a feed raises ``ParseError``.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if not data.strip():
        raise ParseError("not a feed: the body is empty", resource_id=resource_id)
    kind = _what_it_is(data, headers)
    if kind:
        raise ParseError(f"not a feed: the body is {kind}", resource_id=resource_id)
    text, _codec_name, charset_warning = decode_document(data, headers)
    text = strip_declarations(text.lstrip("\ufeff"))
    text = _XML_DECL_ENCODING_TEXT.sub(r"\1\2utf-8\2", text, count=1)
    # No Content-Location: given a base, feedparser joins URLs at every element, which costs a
    # fifth of its time. Links are resolved here instead (xml:base first, then the final URL).
    parser_headers = {"content-type": "application/xml; charset=utf-8"}
    for name in ("content-language", "last-modified", "etag"):
        if name in headers:
            parser_headers[name] = headers[name]
    result = feedparser.parse(
        text.encode("utf-8"),
        response_headers=parser_headers,
        # Relative URLs inside HTML are resolved by the sanitizer (base_url), in the same
        # pass that cleans it; feedparser's own pass re-parses every fragment and is slow.
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    entries = result.get("entries") or []
    problem = result.get("bozo_exception") if result.get("bozo") else None
    version = str(result.get("version") or "")
    if not entries:
        head = text[:2048].lower()
        if "<html" in head or "<!doctype html" in data[:2048].decode("latin-1").lower():
            raise ParseError("not a feed: the body is an HTML page", resource_id=resource_id)
        if not version:
            detail = f" ({problem.__class__.__name__}: {problem})" if problem else ""
            raise ParseError(f"not a feed: no RSS or Atom document found{detail}", resource_id=resource_id)
        if problem is not None:
            raise ParseError(f"invalid feed: {problem.__class__.__name__}: {problem}", resource_id=resource_id)
    warnings = [w for w in (charset_warning, f"{problem.__class__.__name__}: {problem}" if problem else None) if w]
    feed = result.get("feed") or {}
    base = url or ""
    return ParsedFeed(
        version=version,
        title=str(feed.get("title") or ""),
        link=_http_url(feed.get("link"), base),
        language=str(feed.get("language") or "").strip() or None,
        ttl_minutes=_ttl(feed.get("ttl")),
        entries=tuple(_entry(e, base) for e in entries),
        warning="; ".join(warnings) or None,
    )
