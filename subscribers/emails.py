"""Mail rendering: plain values in, RFC 5322 bytes out. No Flask, no app context.

Speed matters (ten thousand digests a pass), so a message is not built with
``email.message.EmailMessage`` (several milliseconds each with the default
policy). Instead:

* the HTML templates get their CSS inlined once, when they are loaded, and
  are then compiled by Jinja (``{{ … }}`` survives the HTML parser);
* each release's text and HTML fragment is rendered once per language and
  time zone and reused for every subscriber who gets it;
* each fragment is also kept base64-encoded: padded with spaces to a
  multiple of 57 bytes it encodes to whole 76-character lines, so a body is
  the frame's few encoded lines plus the cached lines of its releases,
  joined, with no per-message encoding of the bulk;
* the message is assembled from a few headers and two base64 parts. Only
  the subject goes through ``email.header`` (RFC 2047 for Cyrillic), once
  per distinct subject.

The same delivery always renders to the same bytes (tokens and ``Date`` come
from the delivery row), so a mail re-sent after a crash is the same mail.
"""

from __future__ import annotations

import base64
import hashlib
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Any, Iterable, Sequence
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import Environment, Template
from markupsafe import Markup, escape

from feeds.countries import find_country
from subscribers import tokens
from subscribers.forms import Preferences
from subscribers.settings import MailSettings
from subscribers.texts import WEEKDAYS, digest_subject, long_date, release_time, texts

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "mail"
LEAD_MAX = 600
_FRAGMENT_CACHE_MAX = 20_000


@dataclass(frozen=True)
class ReleaseItem:
    """What a digest says about one release."""

    id: int
    slug: str
    title: str
    lead: str
    organization: str
    country_code: str
    published_at: datetime


@dataclass(frozen=True)
class Recipient:
    """Who a mail goes to and how they want to read it."""

    subscription_id: int
    email: str
    language: str
    timezone: str
    token_key: str


class MailTemplates:
    """The mail templates, CSS inlined and compiled once."""

    def __init__(self, directory: Path = TEMPLATES) -> None:
        self.env = Environment(autoescape=False, keep_trailing_newline=True, auto_reload=False)
        html_env = Environment(autoescape=True, keep_trailing_newline=True, auto_reload=False)
        css = (directory / "mail.css").read_text(encoding="utf-8")
        inliner = css_inline.CSSInliner(extra_css=css, keep_style_tags=False, load_remote_stylesheets=False)

        def html(name: str, fragment: bool = False) -> Template:
            source = (directory / name).read_text(encoding="utf-8")
            inlined = css_inline.inline_fragment(source, css) if fragment else inliner.inline(source)
            return html_env.from_string(inlined)

        def plain(name: str) -> Template:
            return self.env.from_string((directory / name).read_text(encoding="utf-8"))

        self.digest_html = html("digest.html")
        self.item_html = html("digest_item.html", fragment=True)
        self.confirm_html = html("confirm.html")
        self.digest_text = plain("digest.txt")
        self.item_text = plain("digest_item.txt")
        self.confirm_text = plain("confirm.txt")


_LINE_BYTES = 57  # base64 turns 57 bytes into one 76-character line
_ITEMS = "\x00items\x00"  # where the releases go in a rendered frame


def _b64(text: str) -> bytes:
    return base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")


def _b64_block(text: str) -> bytes:
    """``text`` padded with spaces (before its final newline) to whole base64 lines, encoded.

    Blocks like this can be concatenated and still form one valid base64 body.
    """
    data = text.encode("utf-8")
    short = -len(data) % _LINE_BYTES
    if short:
        pad = b" " * short
        data = data[:-1] + pad + b"\n" if data.endswith(b"\n") else data + pad
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


@lru_cache(maxsize=4096)
def encode_header(value: str) -> str:
    """A header value safe on the wire: ASCII as is, anything else as RFC 2047 words."""
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")


def assemble(headers: Sequence[tuple[str, str]], text: bytes, html: bytes, message_id: str) -> bytes:
    """``multipart/alternative`` bytes (CRLF line ends) from two base64-encoded bodies."""
    # "=_" cannot occur in base64, so the boundary never collides with a body.
    boundary = "=_" + hashlib.sha1(message_id.encode()).hexdigest()[:24]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return b"".join(
        (
            head.encode("ascii"),
            b"MIME-Version: 1.0\r\n",
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
            f"--{boundary}\r\n".encode(),
            b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
            text,
            f"--{boundary}\r\n".encode(),
            b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
            html,
            f"--{boundary}--\r\n".encode(),
        )
    )


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


def describe_choices(prefs: Preferences, organization_names: dict[str, str]) -> list[str]:
    """The subscriber's choices as lines in their language (confirmation mail, pages)."""
    t = texts(prefs.language)
    orgs = ", ".join(organization_names.get(s, s) for s in prefs.organizations) or t["all"]
    names = [find_country(c) for c in prefs.countries]
    countries = ", ".join(c.name(prefs.language) for c in names if c) or t["all"]
    when = t[prefs.frequency]
    if prefs.frequency != "immediate":
        when += f", {prefs.hour:02d}:00"
        if prefs.frequency == "weekly" and prefs.weekday is not None:
            when += f", {WEEKDAYS[prefs.language][prefs.weekday]}"
        when += f" ({prefs.timezone})"
    lines = [f"{t['organizations']}: {orgs}", f"{t['countries']}: {countries}"]
    if prefs.keywords:
        lines.append(f"{t['keywords']}: {prefs.keywords}")
    lines.append(f"{t['frequency']}: {when}")
    return lines


class MailRenderer:
    """Renders digests and confirmations for one site; keeps per-release fragments."""

    def __init__(self, settings: MailSettings, templates: MailTemplates | None = None) -> None:
        self.settings = settings
        self.templates = templates or MailTemplates()
        self.site = settings.site_url
        name, address = parseaddr(settings.mail_from)
        self.from_header = formataddr((name, address), charset="utf-8")
        self.list_id = f"Syndicate digests <digests.{settings.domain}>"
        self._fragments: dict[tuple[int, str, str], tuple[bytes, bytes]] = {}
        self._zones: dict[str, ZoneInfo] = {}

    # -- links -----------------------------------------------------------------

    def release_url(self, item: ReleaseItem) -> str:
        return f"{self.site}/releases/{item.id}-{item.slug}" if item.slug else f"{self.site}/releases/{item.id}"

    def links(self, recipient: Recipient, issued_at: datetime) -> tuple[str, str]:
        """(preferences URL, unsubscribe URL) with tokens issued at ``issued_at``."""
        secret = self.settings.secret_key
        manage = tokens.issue_token(secret, tokens.MANAGE, recipient.token_key, issued_at)
        unsub = tokens.issue_token(secret, tokens.UNSUBSCRIBE, recipient.token_key, issued_at)
        return f"{self.site}/subscriptions/{manage}", f"{self.site}/unsubscribe/{unsub}"

    def confirm_url(self, token_key: str, issued_at: datetime) -> str:
        token = tokens.issue_token(self.settings.secret_key, tokens.CONFIRM, token_key, issued_at)
        return f"{self.site}/subscriptions/confirm/{token}"

    # -- digests ---------------------------------------------------------------

    def _zone(self, name: str) -> ZoneInfo:
        zone = self._zones.get(name)
        if zone is None:
            zone = self._zones[name] = ZoneInfo(name)
        return zone

    def fragment(self, item: ReleaseItem, language: str, timezone: str) -> tuple[bytes, bytes]:
        """(text, HTML) of one release for one language and zone as base64 blocks, rendered once."""
        key = (item.id, language, timezone)
        cached = self._fragments.get(key)
        if cached is not None:
            return cached
        country = find_country(item.country_code)
        values: dict[str, Any] = {
            "t": texts(language),
            "url": self.release_url(item),
            "title": item.title,
            "organization": item.organization,
            "country": country.name(language) if country else item.country_code,
            "published": release_time(language, item.published_at, self._zone(timezone)),
        }
        lead = _short(item.lead, LEAD_MAX)
        text = self.templates.item_text.render(values, lead=textwrap.fill(lead, 76) if lead else "")
        html = self.templates.item_html.render(values, lead=lead)
        if len(self._fragments) >= _FRAGMENT_CACHE_MAX:
            self._fragments.clear()
        blocks = (_b64_block(text), _b64_block(html))
        self._fragments[key] = blocks
        return blocks

    def digest(
        self,
        recipient: Recipient,
        items: Iterable[ReleaseItem],
        *,
        message_id: str,
        created_at: datetime,
    ) -> bytes:
        """A digest of ``items`` (newest first) as bytes ready for SMTP."""
        ordered = sorted(items, key=lambda i: (i.published_at, i.id), reverse=True)
        lang, zone = recipient.language, recipient.timezone
        t = texts(lang)
        local_day: date = created_at.astimezone(self._zone(zone)).date()
        subject = digest_subject(lang, len(ordered), local_day)
        heading = subject.split(": ", 1)[1]
        preferences_url, unsubscribe_url = self.links(recipient, created_at)
        parts = [self.fragment(item, lang, zone) for item in ordered]
        values: dict[str, Any] = {
            "t": t,
            "lang": lang,
            "subject": subject,
            "heading": heading,
            "zone_note": t["times_in"].format(zone=zone),
            "preferences_url": preferences_url,
            "unsubscribe_url": unsubscribe_url,
        }
        text_head, text_tail = self.templates.digest_text.render(values, items=_ITEMS).split(_ITEMS)
        html_head, html_tail = self.templates.digest_html.render(values, items=Markup(_ITEMS)).split(_ITEMS)
        text = b"".join((_b64_block(text_head), *(p[0] for p in parts), _b64(text_tail)))
        html = b"".join((_b64_block(html_head), *(p[1] for p in parts), _b64(html_tail)))
        headers = [
            ("From", self.from_header),
            ("To", recipient.email),
            ("Subject", encode_header(subject)),
            ("Date", format_datetime(created_at)),
            ("Message-ID", message_id),
            ("List-Id", self.list_id),
            ("List-Unsubscribe", f"<{unsubscribe_url}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ("Auto-Submitted", "auto-generated"),
        ]
        return assemble(headers, text, html, message_id)

    # -- confirmations ---------------------------------------------------------

    def confirmation(
        self,
        recipient: Recipient,
        prefs: Preferences,
        *,
        message_id: str,
        created_at: datetime,
        organization_names: dict[str, str],
    ) -> bytes:
        """The double opt-in mail: one link to a page that confirms on a button press."""
        t = texts(recipient.language)
        subject = t["confirm_mail_subject"]
        confirm_url = self.confirm_url(recipient.token_key, created_at)
        choices = describe_choices(prefs, organization_names)
        values: dict[str, Any] = {"t": t, "lang": recipient.language, "subject": subject, "confirm_url": confirm_url}
        text = _b64(self.templates.confirm_text.render(values, choices="\n".join(f"- {c}" for c in choices)))
        html = _b64(
            self.templates.confirm_html.render(values, choices=Markup("<br>").join(escape(c) for c in choices))
        )
        headers = [
            ("From", self.from_header),
            ("To", recipient.email),
            ("Subject", encode_header(subject)),
            ("Date", format_datetime(created_at)),
            ("Message-ID", message_id),
            ("Auto-Submitted", "auto-generated"),
        ]
        return assemble(headers, text, html, message_id)
