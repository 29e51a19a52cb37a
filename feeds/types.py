"""Frozen dataclasses at the boundaries of the feeds package."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Attachment:
    """A file that goes with a release (an image, a PDF): a feed enclosure."""

    url: str
    type: str
    length: int = 0
    title: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"url": self.url, "type": self.type, "length": self.length}
        if self.title:
            data["title"] = self.title
        return data


@dataclass(frozen=True)
class ReleaseDraft:
    """A release on its way to storage (from the API, an import file or a partner feed).

    ``body`` is HTML and is sanitized by the store; ``title`` and ``lead`` are
    plain text. ``published_at`` None means "now".
    """

    title: str
    lead: str
    body: str
    country_code: str
    language: str = "ru"
    contact: str | None = None
    published_at: datetime | None = None
    attachments: tuple[Attachment, ...] = ()
    canonical_url: str | None = None


@dataclass(frozen=True)
class ReleaseFilter:
    """Which releases a listing, a feed, the API or a digest is about.

    Organizations are slugs, countries upper-case alpha-2 codes. Several values
    of one kind are OR-ed; different kinds are AND-ed.
    """

    organizations: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    q: str | None = None
    language: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.organizations or self.countries or self.q or self.language)


@dataclass(frozen=True)
class Page:
    """A page of a listing: 1-based ``number``, ``size`` items a page."""

    number: int = 1
    size: int = 20

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


@dataclass(frozen=True)
class ReleaseList:
    items: list[Any]
    page: Page
    has_next: bool
    total: int | None = None


@dataclass(frozen=True)
class ImportProblem:
    line: int
    reason: str


@dataclass(frozen=True)
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[ImportProblem] = field(default_factory=list)


@dataclass(frozen=True)
class FeedItem:
    """One release as every feed format shows it: plain values, absolute URLs.

    Built from stored rows by ``feeds.channels.feed_item_from_row``; text is
    already free of characters XML forbids.
    """

    guid: str  # permanent id: RSS guid, Atom id, JSON Feed id
    url: str  # the release page
    title: str
    summary: str  # the lead, plain text
    content_html: str  # the sanitized body
    author_name: str  # the organization
    author_url: str  # the organization's page
    published: datetime
    updated: datetime
    language: str
    # (label, scheme URL) pairs: the country and the organization
    categories: tuple[tuple[str, str], ...] = ()
    enclosures: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class ChannelMeta:
    """What a feed says about itself, in the channel's language, with absolute URLs.

    ``self_url`` is the URL this document was asked for; ``first_url``,
    ``next_url`` and ``previous_url`` are RFC 5005 paging links.
    """

    feed_id: str  # stable across pages and formats' paging: the Atom feed id
    title: str
    description: str
    language: str
    html_url: str  # the HTML page of the channel (RSS <link>, Atom alternate)
    self_url: str
    author_name: str = "Syndicate"
    first_url: str | None = None
    next_url: str | None = None
    previous_url: str | None = None
    hub_url: str | None = None
    # What `updated` says when the feed has no items (kept stable for ETags).
    empty_updated: datetime | None = None


# -- partner feed ingestion (fetch -> parse -> decide -> store) ----------------


@dataclass(frozen=True)
class FetchResult:
    """What the HTTP side brought back for a source: a body, or "not modified".

    ``url`` is the final URL after redirects; ``permanent_url`` is where an
    unbroken run of permanent redirects (301/308) from the requested URL led,
    if any. Header names are lower case.
    """

    url: str
    status: int
    headers: dict[str, str]
    content: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    permanent_url: str | None = None
    max_age: float | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class ParsedEntry:
    """One entry of a partner feed, as plain values (HTML fields not yet sanitized)."""

    id: str | None
    link: str | None
    title: str
    summary_html: str
    content_html: str | None
    published: datetime | None
    updated: datetime | None
    language: str | None = None
    enclosures: tuple[Attachment, ...] = ()
    # What relative URLs in the HTML fields are relative to (xml:base, else the feed's URL).
    base_url: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    """A partner feed, as plain values. ``warning`` says what was wrong but survivable."""

    version: str
    title: str
    link: str | None
    language: str | None
    ttl_minutes: int | None
    entries: tuple[ParsedEntry, ...]
    warning: str | None = None


@dataclass(frozen=True)
class SourceForUpdate:
    """A claimed source, as the fetch and decide steps need it (read from storage)."""

    id: int
    url: str
    organization_id: int
    country_code: str
    interval_minutes: int
    etag: str | None
    last_modified: str | None
    error_count: int
    moved_to: str | None
    moved_count: int
    disabled: bool = False


@dataclass(frozen=True)
class RefreshResult:
    """The outcome of refreshing one source; failures are values, not exceptions.

    ``status`` is ``"ok"``, ``"not modified"``, ``"error"``, ``"disabled"`` or
    ``"skipped"`` (another worker holds the source).
    """

    source_id: int
    url: str
    status: str
    http_status: int | None = None
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str | None = None
    warning: str | None = None
    next_check_at: datetime | None = None
    relinked_to: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("error", "disabled")
