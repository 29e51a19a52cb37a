"""Channels: the feeds Syndicate publishes, and what goes into each.

A channel is ``all``, one ``organization``, one ``country``, or ``releases``
(any combination of the filters ``organization``, ``country``, ``q`` and
``lang``). ``parse_feed_request`` turns a path and query into a validated,
canonical ``FeedRequest`` (or ``InvalidInput`` naming the culprit);
``load_feed`` resolves it against the database into a ``ChannelMeta`` and a
page of ``FeedItem`` values for ``feeds.render``. No HTTP here: URLs are
built from the ``base_url`` given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, TypeVar, Unpack
from urllib.parse import quote, urlencode

from sqlalchemy import ColumnElement, Select, Text, bindparam, select, type_coerce
from sqlalchemy.orm import Session

from feeds.countries import Country, find_country
from feeds.errors import CountryNotFound, InvalidInput, OrganizationNotFound
from feeds.models import Organization, Release
from feeds.search import query_stems, search_condition
from feeds.types import Attachment, ChannelMeta, FeedItem

FORMATS = ("rss", "atom", "json")
KINDS = ("all", "organization", "country", "releases")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_PAGE = 1_000_000
MAX_FILTER_VALUES = 50
MAX_QUERY_LENGTH = 300
LANGUAGES = ("ru", "en")
FILTER_PARAMS = ("organization", "country", "q", "lang")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,119}$")
_NUMBER = re.compile(r"^[0-9]{1,9}$")


@dataclass(frozen=True)
class FeedRequest:
    """A validated feed request in canonical form (the cache key of a feed).

    ``limit`` and ``page`` remember whether they were given, so the canonical
    URL of a request is the URL that was asked for (in canonical order).
    """

    kind: str
    fmt: str
    key: str = ""  # organization slug or lower-case country code
    organizations: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()  # lower case
    q: str | None = None
    lang: str | None = None
    limit: int = DEFAULT_LIMIT
    page: int = 1
    limit_given: bool = False
    page_given: bool = False

    @property
    def path(self) -> str:
        if self.kind == "all":
            return f"/feeds/all.{self.fmt}"
        if self.kind == "organization":
            return f"/feeds/organizations/{self.key}.{self.fmt}"
        if self.kind == "country":
            return f"/feeds/countries/{self.key}.{self.fmt}"
        return f"/feeds/releases.{self.fmt}"

    def filter_params(self) -> list[tuple[str, str]]:
        params = [("organization", o) for o in self.organizations]
        params += [("country", c) for c in self.countries]
        if self.q:
            params.append(("q", self.q))
        if self.lang:
            params.append(("lang", self.lang))
        return params

    def query_string(self, page: int | None = None) -> str:
        """The canonical query for ``page`` (this request's page by default)."""
        params = self.filter_params()
        if self.limit_given:
            params.append(("limit", str(self.limit)))
        number = self.page if page is None else page
        if (page is None and self.page_given) or (page is not None and page != 1):
            params.append(("page", str(number)))
        return urlencode(params, quote_via=quote)

    def url(self, base_url: str, page: int | None = None) -> str:
        query = self.query_string(page)
        return base_url + self.path + ("?" + query if query else "")

    @property
    def cache_key(self) -> tuple[str, str]:
        return (self.path, self.query_string())


def _one(args: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = args.get(name) or []
    if len(values) > 1:
        raise InvalidInput(f"{name} is given more than once", field=name)
    return values[0] if values else None


def _number(args: Mapping[str, Sequence[str]], name: str, default: int, upper: int) -> tuple[int, bool]:
    raw = _one(args, name)
    if raw is None:
        return default, False
    if not _NUMBER.match(raw.strip()) or not 1 <= int(raw) <= upper:
        raise InvalidInput(f"{name} must be a whole number from 1 to {upper}, not {raw[:40]!r}", field=name)
    return int(raw), True


def _country_code(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z]{2}", value):
        raise InvalidInput(f"country must be a two-letter ISO 3166-1 code, not {raw[:40]!r}", field="country")
    return value.lower()


def parse_feed_request(kind: str, fmt: str, key: str, args: Mapping[str, Sequence[str]]) -> FeedRequest:
    """Validate a feed request; raises ``InvalidInput`` with a one-line reason.

    ``args`` maps parameter names to every value given (a query string parsed
    with repeated keys). Existence of organizations and countries is checked
    later, by ``load_feed`` (they need the database).
    """
    if kind not in KINDS:
        raise InvalidInput(f"unknown channel {kind!r}", field="channel")
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown feed format {fmt!r}; use rss, atom or json", field="format")
    limit, limit_given = _number(args, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    page, page_given = _number(args, "page", 1, MAX_PAGE)
    common = dict(kind=kind, fmt=fmt, limit=limit, page=page, limit_given=limit_given, page_given=page_given)
    if kind != "releases":
        for name in FILTER_PARAMS:
            if args.get(name):
                raise InvalidInput(f"{name} is a filter of /feeds/releases.{fmt}, not of this feed", field=name)
    if kind == "organization":
        if not _SLUG.match(key):
            raise InvalidInput(f"{key[:40]!r} is not an organization slug", field="organization")
        return FeedRequest(key=key, **common)  # type: ignore[arg-type]
    if kind == "country":
        return FeedRequest(key=_country_code(key), **common)  # type: ignore[arg-type]
    if kind == "all":
        return FeedRequest(**common)  # type: ignore[arg-type]
    organizations = sorted({o.strip() for o in args.get("organization", []) if o.strip()})
    for slug in organizations:
        if not _SLUG.match(slug):
            raise InvalidInput(f"{slug[:40]!r} is not an organization slug", field="organization")
    countries = sorted({_country_code(c) for c in args.get("country", []) if c.strip()})
    if len(organizations) > MAX_FILTER_VALUES or len(countries) > MAX_FILTER_VALUES:
        raise InvalidInput(f"at most {MAX_FILTER_VALUES} organizations and countries a feed", field="organization")
    q = " ".join((_one(args, "q") or "").split()) or None
    if q is not None and len(q) > MAX_QUERY_LENGTH:
        raise InvalidInput(f"q must be at most {MAX_QUERY_LENGTH} characters", field="q")
    lang = (_one(args, "lang") or "").strip().lower() or None
    if lang is not None and lang not in LANGUAGES:
        raise InvalidInput(f"lang must be one of {', '.join(LANGUAGES)}, not {lang[:20]!r}", field="lang")
    return FeedRequest(
        organizations=tuple(organizations), countries=tuple(countries), q=q, lang=lang, **common  # type: ignore[arg-type]
    )


# -- from the database ---------------------------------------------------------------


@dataclass(frozen=True)
class Feed:
    """A channel page ready to render, with what the HTTP side needs to know."""

    meta: ChannelMeta
    items: list[FeedItem]
    has_next: bool
    last_modified: datetime | None = field(default=None)


# Columns a feed needs, and no more (not search_text, which is as long as the body).
# Times and attachments come raw, without SQLAlchemy's per-value result
# processing (a third of a cold render); ``feed_item_from_row`` reads them.
_COLUMNS = (
    Release.id, Release.guid, Release.slug, Release.title, Release.lead, Release.body,
    type_coerce(Release.attachments, Text), type_coerce(Release.published_at, Text),
    type_coerce(Release.updated_at, Text), Release.country_code,
    Release.language, Organization.name, Organization.slug,
)


def _utc(value: Any) -> datetime:
    """A stored time as aware UTC: SQLite gives naive UTC text, PostgreSQL a datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    return value.astimezone(timezone.utc)  # type: ignore[no-any-return]


def _attachments(value: Any) -> tuple[Attachment, ...]:
    if isinstance(value, str):
        if value in ("", "[]"):
            return ()
        value = json.loads(value)
    return tuple(
        Attachment(url=a["url"], type=a.get("type") or "application/octet-stream",
                   length=int(a.get("length") or 0), title=a.get("title"))
        for a in value or () if isinstance(a, dict) and a.get("url")
    )


@lru_cache(maxsize=1024)
def _country_label(code: str, language: str) -> str:
    country = find_country(code)
    return country.name(language) if country else code


def release_url(base_url: str, release_id: int, slug: str) -> str:
    return f"{base_url}/releases/{release_id}-{slug}" if slug else f"{base_url}/releases/{release_id}"


def feed_item_from_row(row: Sequence[Any], *, base_url: str, language: str) -> FeedItem:
    """A ``FeedItem`` from one row of ``_COLUMNS`` (a release and its organization, flattened)."""
    (release_id, guid, slug, title, lead, body, attachments, published, updated,
     country_code, release_language, org_name, org_slug) = row
    return FeedItem(
        guid=guid,
        url=release_url(base_url, release_id, slug),
        title=title,
        summary=lead,
        content_html=body,
        author_name=org_name,
        author_url=f"{base_url}/organizations/{org_slug}",
        published=_utc(published),
        updated=_utc(updated),
        language=release_language,
        categories=((_country_label(country_code, language), f"{base_url}/countries/"),
                    (org_name, f"{base_url}/organizations/")),
        enclosures=_attachments(attachments),
    )


_S = TypeVar("_S", bound="Select[Unpack[tuple[Any, ...]]]")


def _page(stmt: _S) -> _S:
    return (
        stmt.join(Organization, Organization.id == Release.organization_id)
        .order_by(Release.published_at.desc(), Release.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


def feed_rows(session: Session, conditions: list[ColumnElement[bool]], *, limit: int, offset: int,
              now: datetime) -> list[Any]:
    """Visible releases under ``conditions``, newest first, ``limit`` from ``offset``.

    Conditions are plain equalities where a channel names one organization or
    country, so the partial indexes ``ix_releases_org_newest`` and
    ``ix_releases_country_newest`` give the page without a sort; LIMIT and
    OFFSET stay bound parameters (a generic plan on PostgreSQL stays an index scan).
    """
    stmt = _page(select(*_COLUMNS).where(Release.withdrawn_at.is_(None), Release.published_at <= now, *conditions))
    return list(session.execute(stmt, {"limit": limit, "offset": offset}).all())


@lru_cache(maxsize=None)
def _channel_statement(column: str) -> "Select[Unpack[tuple[Any, ...]]]":
    """The page query of ``all`` (column ``""``), one organization or one country, built once."""
    stmt = select(*_COLUMNS).where(Release.withdrawn_at.is_(None), Release.published_at <= bindparam("now"))
    if column == "organization":
        stmt = stmt.where(Release.organization_id == bindparam("value"))
    elif column == "country":
        stmt = stmt.where(Release.country_code == bindparam("value"))
    return _page(stmt)


def channel_rows(session: Session, column: str, value: object, *, limit: int, offset: int,
                 now: datetime) -> list[Any]:
    """``feed_rows`` for the stable channels, with a statement built once per kind."""
    params = {"now": now, "limit": limit, "offset": offset, "value": value}
    return list(session.execute(_channel_statement(column), params).all())


def _organization(session: Session, slug: str) -> Organization:
    org = session.scalar(select(Organization).where(Organization.slug == slug))
    if org is None:
        raise OrganizationNotFound(f"organization {slug!r} not found", resource_id=slug)
    return org


def _country(code: str) -> Country:
    country = find_country(code) if len(code) == 2 else None
    if country is None:
        raise CountryNotFound(f"unknown country {code!r}", resource_id=code)
    return country


_TEXT = {
    "ru": {
        "all": ("Syndicate — все пресс-релизы", "Все пресс-релизы Syndicate, новые сверху"),
        "organization": ("{name} — пресс-релизы", "Пресс-релизы организации {name} на Syndicate"),
        "country": ("{name} — пресс-релизы", "Пресс-релизы страны {name} на Syndicate"),
        "releases": ("Syndicate — подборка: {name}", "Пресс-релизы Syndicate по фильтру: {name}"),
        "orgs": "организации", "countries": "страны", "q": "запрос", "lang": "язык",
    },
    "en": {
        "all": ("Syndicate — all press releases", "Every press release on Syndicate, newest first"),
        "organization": ("{name} — press releases", "Press releases of {name} on Syndicate"),
        "country": ("{name} — press releases", "Press releases from {name} on Syndicate"),
        "releases": ("Syndicate — selection: {name}", "Syndicate press releases matching: {name}"),
        "orgs": "organizations", "countries": "countries", "q": "query", "lang": "language",
    },
}


def channel_text(kind: str, name: str, language: str) -> tuple[str, str]:
    """(title, description) of a channel in ``language`` (ru or en)."""
    title, description = _TEXT.get(language, _TEXT["en"])[kind]
    return title.format(name=name), description.format(name=name)


def load_feed(
    session: Session,
    req: FeedRequest,
    *,
    base_url: str,
    language: str,
    now: datetime,
    hub_url: str | None = None,
) -> Feed:
    """The page of ``req``'s channel at ``now``; ``OrganizationNotFound`` / ``CountryNotFound``.

    ``language`` is the site's default; a ``lang`` filter makes the channel
    speak that language instead.
    """
    language = req.lang or language
    words = _TEXT.get(language, _TEXT["en"])
    conditions: list[ColumnElement[bool]] = []
    empty_updated: datetime | None = None
    channel_value: object = None  # the organization id or country code of a stable channel
    author = "Syndicate"
    query = req.query_string(page=1)
    if req.kind == "all":
        name, html_url = "", base_url + "/"
    elif req.kind == "organization":
        org = _organization(session, req.key)
        channel_value = org.id
        name, html_url, author, empty_updated = org.name, f"{base_url}/organizations/{org.slug}", org.name, org.created_at
    elif req.kind == "country":
        country = _country(req.key)
        channel_value = country.code
        name, html_url = country.name(language), f"{base_url}/countries/{country.slug}"
    else:
        parts: list[str] = []
        if req.organizations:
            orgs = [_organization(session, slug) for slug in req.organizations]
            ids = [o.id for o in orgs]
            conditions.append(Release.organization_id == ids[0] if len(ids) == 1 else Release.organization_id.in_(ids))
            parts.append(f"{words['orgs']}: " + ", ".join(o.name for o in orgs))
        if req.countries:
            countries = [_country(code) for code in req.countries]
            codes = [c.code for c in countries]
            conditions.append(Release.country_code == codes[0] if len(codes) == 1 else Release.country_code.in_(codes))
            parts.append(f"{words['countries']}: " + ", ".join(c.name(language) for c in countries))
        if req.q:
            conditions.append(search_condition(req.q))
            parts.append(f"{words['q']}: «{req.q}»")
        if req.lang:
            conditions.append(Release.language == req.lang)
            parts.append(f"{words['lang']}: {req.lang}")
        name = "; ".join(parts) if parts else channel_text("all", "", language)[0]
        filters = urlencode(req.filter_params(), quote_via=quote)
        html_url = f"{base_url}/search" + (f"?{filters}" if filters else "")
    title, description = channel_text(req.kind, name, language)
    if req.kind == "releases" and req.q and not query_stems(req.q):
        rows: list[Any] = []  # a query of punctuation alone matches nothing
    elif req.kind in ("all", "organization", "country"):
        column = "" if req.kind == "all" else req.kind
        rows = channel_rows(session, column, channel_value, limit=req.limit + 1, offset=(req.page - 1) * req.limit, now=now)
    else:
        rows = feed_rows(session, conditions, limit=req.limit + 1, offset=(req.page - 1) * req.limit, now=now)
    has_next = len(rows) > req.limit
    items = [feed_item_from_row(row, base_url=base_url, language=language) for row in rows[: req.limit]]
    meta = ChannelMeta(
        feed_id=base_url + req.path + ("?" + query if query else ""),
        title=title,
        description=description,
        language=language,
        html_url=html_url,
        self_url=req.url(base_url),
        author_name=author,
        first_url=req.url(base_url, page=1),
        next_url=req.url(base_url, page=req.page + 1) if has_next else None,
        previous_url=req.url(base_url, page=req.page - 1) if req.page > 1 else None,
        hub_url=hub_url,
        empty_updated=empty_updated,
    )
    last_modified = max((item.updated for item in items), default=empty_updated)
    return Feed(meta=meta, items=items, has_next=has_next, last_modified=last_modified)


# -- the directory of feeds (OPML, /feeds/) ---------------------------------------------


@dataclass(frozen=True)
class ChannelLink:
    """One stable channel with its page and its feed URLs, for directories."""

    kind: str
    key: str
    title: str
    html_url: str
    feeds: dict[str, str]  # format -> absolute URL


def _links(kind: str, key: str, title: str, html_url: str, base_url: str) -> ChannelLink:
    feeds = {fmt: base_url + FeedRequest(kind=kind, fmt=fmt, key=key).path for fmt in FORMATS}
    return ChannelLink(kind=kind, key=key, title=title, html_url=html_url, feeds=feeds)


def list_channels(session: Session, *, base_url: str, language: str, now: datetime) -> list[ChannelLink]:
    """``all``, every organization (by name) and every country with visible releases (by name)."""
    links = [_links("all", "", channel_text("all", "", language)[0], base_url + "/", base_url)]
    for slug, name in session.execute(select(Organization.slug, Organization.name)).all():
        links.append(_links("organization", slug, name, f"{base_url}/organizations/{slug}", base_url))
    codes = session.scalars(
        select(Release.country_code).where(Release.withdrawn_at.is_(None), Release.published_at <= now).distinct()
    ).all()
    countries = [c for c in (find_country(code) for code in codes) if c is not None]
    for country in countries:
        links.append(_links("country", country.slug, country.name(language),
                            f"{base_url}/countries/{country.slug}", base_url))
    order = {"all": 0, "organization": 1, "country": 2}
    return sorted(links, key=lambda link: (order[link.kind], link.title.casefold(), link.key))
