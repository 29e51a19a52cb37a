"""The public site: latest releases, a release, organizations, countries.

Views are thin: parse the request, call one domain function, render. The
template helpers every page uses (feed links, dates in the site time zone,
country names, the language switch) are registered here too.

Listing pages are kept rendered in the app's render cache (the one feeds use,
``syndicate.feedcache``), keyed by path, query and interface language, so they
are invalidated exactly as feeds are: at once after a commit in this process,
within ``feed_cache_check_seconds`` after one elsewhere, and when an embargo
lifts. Pages that show view counts are also rendered again after
``feed_cache_check_seconds``, since a view changes no content version. Cached
pages (and the API's cached reads) are answered by the cache's WSGI fast path
before Flask runs, unless the answer must set the ``lang`` cookie. The
release page keeps its fragment around the view count, which is counted and
spliced in on every GET.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import get_translations
from markupsafe import Markup, escape
from werkzeug.datastructures import Headers
from werkzeug.sansio.request import Request as PlainRequest

from config import LANGUAGES
from feeds.countries import find_country
from feeds.errors import CountryNotFound
from feeds.models import Release
from feeds.organizations import get_organization, list_organizations
from feeds.sanitize import html_to_text
from feeds.store import count_releases_by_country, count_view, get_visible_release, list_releases
from feeds.types import Page, ReleaseFilter
from syndicate.clock import now
from syndicate.db import get_config, get_session
from syndicate.feedcache import CachedFeed, FeedCache, FeedCacheMiddleware, Key, answer
from syndicate.i18n import current_language
from syndicate.web.feedlinks import channel_feed_links

bp = Blueprint("site", __name__)

PAGE_SIZE = 20
LANG_COOKIE_AGE = 365 * 24 * 3600
# How the time a release was added is shown ("08:27, 05.09.2023" on the seed page);
# the Babel patterns of ``format_added`` (kept numeric in Russian, "5 Sep 2023" in English).
ADDED_FORMAT = {"ru": "HH:mm, dd.MM.yyyy", "en": "HH:mm, d MMM yyyy"}
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Characters a path segment keeps unquoted: the same set as Werkzeug's converters,
# so paths built here are the ones url_for builds.
_SEGMENT_SAFE = "!$&'()*+,/:;=@"
# Query parameters of the cached pages; any other parameter is rendered uncached
# (it still shows up in the page's links, and unknown ones must not fill the cache).
_PAGE_PARAMS = frozenset({"page", "lang"})
HTML = "text/html; charset=utf-8"
# Where the release page's view count goes in its cached fragment: random per
# process, so no stored text can contain it.
_VIEWS_MARK = f"\ue000{secrets.token_hex(8)}\ue000"


# -- paths and display values (cheap: run once per item of a listing) -----------------


def _segment(value: str) -> str:
    return quote(value, safe=_SEGMENT_SAFE)


def release_path(release_id: int, slug: str | None) -> str:
    """``/releases/<id>-<slug>`` (``/releases/<id>`` without a slug), as url_for builds it."""
    root = request.script_root
    if slug:
        return f"{root}/releases/{release_id}-{_segment(slug)}"
    return f"{root}/releases/{release_id}"


def organization_path(slug: str) -> str:
    return f"{request.script_root}/organizations/{_segment(slug)}"


def country_path(code: str) -> str:
    return f"{request.script_root}/countries/{_segment(code.lower())}"


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def format_added(value: datetime, language: str, timezone: str) -> str:
    """A stored UTC time in the site time zone, as ``ADDED_FORMAT`` says (without Babel's cost)."""
    t = value.astimezone(_zone(timezone))
    if language == "en":
        return f"{t.hour:02d}:{t.minute:02d}, {t.day} {_EN_MONTHS[t.month - 1]} {t.year:04d}"
    return f"{t.hour:02d}:{t.minute:02d}, {t.day:02d}.{t.month:02d}.{t.year:04d}"


def excerpt_text(item: Release, length: int = 300) -> str:
    """The lead, or the start of the body when a release has no lead."""
    text = item.lead or html_to_text(item.body).replace("\n", " ")
    if len(text) <= length:
        return text
    return text[:length].rsplit(" ", 1)[0].rstrip(",.;:–-") + "…"


def _plural(singular: str, plural: str) -> Callable[[int], str]:
    """``ngettext`` with the catalog looked up once (for labels inside loops)."""
    translations = get_translations()
    return lambda n: translations.ungettext(singular, plural, n) % {"num": n}


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    """What a listing shows of one release, computed in Python rather than in the template loop."""

    url: str
    title: str
    language: str
    organization_url: str
    organization_name: str
    published_iso: str
    added: str
    country_url: str
    country_name: str
    views: str
    excerpt: str


@bp.app_template_global("release_rows")
def release_rows(items: Iterable[Release]) -> list[ReleaseRow]:
    """The display values of a listing's releases (``_release_list.html``)."""
    language = current_language()
    timezone = get_config().timezone
    views = _plural("%(num)d view", "%(num)d views")
    rows = []
    for r in items:
        code = r.country_code
        country = find_country(code)
        rows.append(ReleaseRow(
            url=release_path(r.id, r.slug),
            title=r.title,
            language=r.language,
            organization_url=organization_path(r.organization.slug),
            organization_name=r.organization.name,
            published_iso=r.published_at.isoformat(),
            added=format_added(r.published_at, language, timezone),
            country_url=country_path(code),
            country_name=country.name(language) if country else code,
            views=views(r.view_count),
            excerpt=excerpt_text(r),
        ))
    return rows


@dataclass(frozen=True, slots=True)
class DirectoryRow:
    """One line of the organizations or countries index."""

    url: str
    name: str
    note: str | None  # the organization's country, the country's code
    releases: str


# -- the render cache --------------------------------------------------------------------


def _cache() -> FeedCache | None:
    return current_app.extensions.get("syndicate.feed_cache")  # installed with the feeds blueprint


@lru_cache(maxsize=4096)
def _language_choice(query: str, cookie: str, accept_language: str, default: str) -> tuple[str, bool]:
    """The interface language of a request, and whether its answer sets the ``lang`` cookie.

    The rules of ``syndicate.i18n.select_locale`` and ``_remember_language``,
    read with the same Werkzeug parsers Flask's request uses, so the fast path
    (which has no Flask request) picks exactly the language the view would.
    """
    headers = Headers()
    if cookie:
        headers["Cookie"] = cookie
    if accept_language:
        headers["Accept-Language"] = accept_language
    req = PlainRequest("GET", "http", None, "", "/", query.encode("latin-1"), headers, None)
    in_query = req.args.get("lang")
    asked = in_query or req.cookies.get("lang")
    language = asked if asked in LANGUAGES else (req.accept_languages.best_match(LANGUAGES) or default)
    return language, in_query in LANGUAGES and req.cookies.get("lang") != in_query


def _request_key(tag: str, environ: dict[str, Any], default_language: str) -> tuple[Key, bool]:
    """``(tag, path, query, language)`` of a request, and whether its answer sets the cookie."""
    query = environ.get("QUERY_STRING", "")
    language, sets_cookie = _language_choice(
        query, environ.get("HTTP_COOKIE", ""), environ.get("HTTP_ACCEPT_LANGUAGE", ""), default_language
    )
    return (tag, environ.get("PATH_INFO", ""), query, language), sets_cookie


def _fast_path_key(environ: dict[str, Any], default_language: str) -> Key | None:
    """The key a cached page or API read is stored under, for the WSGI fast path.

    Only a lookup: what is stored is decided by the views, which use the same
    keys. Answers that set the ``lang`` cookie go through Flask.
    """
    path = environ.get("PATH_INFO", "")
    if path.startswith("/api/"):
        return ("api", path, environ.get("QUERY_STRING", ""))
    if path == "/" or path.startswith(("/organizations/", "/countries/")):
        key, sets_cookie = _request_key("page", environ, default_language)
        return None if sets_cookie else key
    return None


@bp.record_once
def _install_fast_path(state: BlueprintSetupState) -> None:
    app: Any = state.app
    language = app.extensions["syndicate.config"].language
    app.wsgi_app = FeedCacheMiddleware(
        app.wsgi_app,
        lambda: app.extensions.get("syndicate.feed_cache"),
        key_for=lambda environ: _fast_path_key(environ, language),
    )


def _cache_key(tag: str, allowed: frozenset[str]) -> Key | None:
    """The request's cache key; ``None`` when the query is not one the cache keeps.

    Only the parameters a page reads, each once, and a known ``lang``: the
    cache must not fill up with every query a client makes up.
    """
    args = request.args
    for name in args:
        if name not in allowed or len(args.getlist(name)) > 1:
            return None
    if "lang" in args and args["lang"] not in LANGUAGES:
        return None
    key, _ = _request_key(tag, request.environ, get_config().language)
    if key[-1] != current_language():  # the two readings of the request must agree, or no caching
        return None
    return key


def _respond(entry: CachedFeed) -> Response:
    status, headers, body = answer(entry, request.environ)
    return Response(body, status=int(status[:3]), headers=headers)


def cached_response(
    key: Key | None, render: Callable[[], bytes], content_type: str, *,
    vary: tuple[str, ...] = (), max_age: float | None = None,
) -> Response:
    """The response for ``key`` from the render cache (rendered once if cold), with ETag and 304.

    ``key`` ``None`` renders without caching. ``max_age`` as in ``FeedCache.get_or_render``.
    """
    cache = _cache()

    def build() -> CachedFeed:
        return CachedFeed.build(render(), content_type, None, vary=vary)

    if cache is None or key is None:
        return _respond(build())
    return _respond(cache.get_or_render(key, build, max_age=max_age))


def _page(render: Callable[[], str], *, shows_views: bool = True) -> Response:
    """A listing page through the cache (see the module docstring)."""
    return cached_response(
        _cache_key("page", _PAGE_PARAMS),
        lambda: render().encode("utf-8"),
        HTML,
        vary=("Accept-Language", "Cookie"),
        max_age=get_config().feed_cache_check_seconds if shows_views else None,
    )


# -- pages ---------------------------------------------------------------------------


def _page_number() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        abort(404)
    return int(raw)


def _listing(flt: ReleaseFilter) -> Any:
    """One page of releases; a page past the end is a 404, as any missing page is."""
    page = _page_number()
    releases = list_releases(get_session(), flt, Page(page, PAGE_SIZE), now=now())
    if page > 1 and not releases.items:
        abort(404)
    return releases


@bp.get("/")
def home() -> Response:
    return _page(lambda: render_template("home.html", releases=_listing(ReleaseFilter())))


@dataclass(frozen=True)
class ReleaseFragment:
    """The release page cut at its view count: ``count.join(parts)`` is the page."""

    parts: tuple[bytes, ...]

    def page(self, views: int) -> bytes:
        return str(views).encode("ascii").join(self.parts)


def _release_fragment(item: Release) -> ReleaseFragment:
    html = render_template("release.html", release=item, views=Markup(_VIEWS_MARK))
    return ReleaseFragment(tuple(part.encode("utf-8") for part in html.split(_VIEWS_MARK)))


def _release_response(fragment: ReleaseFragment, views: int) -> Response:
    return Response(fragment.page(views), mimetype="text/html")


@bp.get("/releases/<int:release_id>")
@bp.get("/releases/<int:release_id>-<slug>")
def release(release_id: int, slug: str | None = None) -> Any:
    session = get_session()
    cache = _cache()
    key = _cache_key("release", _PAGE_PARAMS) if cache is not None else None
    counting = request.method == "GET"  # HEAD is not a reader
    if key is not None and counting:
        # A cached fragment means the release is visible now (publishing, withdrawing
        # and embargoes invalidate the cache), so a hit costs only the count.
        fragment = cache.lookup(key)  # type: ignore[union-attr]
        if fragment is not None:
            views = count_view(session, release_id)
            session.commit()
            if views is not None:
                return _release_response(fragment, views)
    item = get_visible_release(session, release_id, now=now())
    if (slug or "") != item.slug:
        return redirect(_release_url(item, **request.args.to_dict()), code=301)
    if key is None:
        fragment = _release_fragment(item)
    else:
        fragment = cache.get_or_render(key, lambda: _release_fragment(item))  # type: ignore[union-attr]
    views = item.view_count
    if counting:
        # End the read transaction first: on SQLite a WAL reader whose snapshot
        # is stale cannot become a writer, while a fresh transaction can wait.
        session.commit()
        views = count_view(session, item.id) or views + 1
        session.commit()
    return _release_response(fragment, views)


@bp.get("/organizations/")
def organizations() -> Response:
    def render() -> str:
        language = current_language()
        label = _plural("%(num)d release", "%(num)d releases")
        rows = [
            DirectoryRow(
                organization_path(org.slug), org.name,
                _country_name(org.country_code, language) if org.country_code else None, label(count),
            )
            for org, count in list_organizations(get_session(), now=now())
        ]
        return render_template("organizations.html", organizations=rows)

    return _page(render, shows_views=False)


@bp.get("/organizations/<slug>")
def organization(slug: str) -> Response:
    def render() -> str:
        org = get_organization(get_session(), slug)
        return render_template(
            "organization.html", organization=org, releases=_listing(ReleaseFilter(organizations=(slug,)))
        )

    return _page(render)


@bp.get("/countries/")
def countries() -> Response:
    def render() -> str:
        language = current_language()
        label = _plural("%(num)d release", "%(num)d releases")
        rows = []
        for code, count in count_releases_by_country(get_session(), now=now()):
            country = find_country(code)
            if country is not None:
                name = country.name(language)
                rows.append((name.casefold(), DirectoryRow(country_path(country.slug), name, country.code, label(count))))
        rows.sort(key=lambda row: row[0])
        return render_template("countries.html", countries=[row for _, row in rows])

    return _page(render, shows_views=False)


@bp.get("/countries/<code>")
def country(code: str) -> Any:
    if code != code.lower():
        return redirect(url_for(".country", code=code.lower(), **request.args.to_dict()), code=301)
    found = find_country(code) if len(code) == 2 and code.isalpha() else None
    if found is None:
        raise CountryNotFound(f"unknown country {code!r}", resource_id=code)
    return _page(lambda: render_template(
        "country.html", country=found, releases=_listing(ReleaseFilter(countries=(found.code,)))
    ))


# -- language ------------------------------------------------------------------------


@bp.after_app_request
def _remember_language(response: Response) -> Response:
    """``?lang=en`` on a page sticks (a cookie); pages say they vary by language."""
    if response.mimetype == "text/html":
        asked = request.args.get("lang")
        if asked in LANGUAGES and request.cookies.get("lang") != asked:
            response.set_cookie(
                "lang",
                asked,
                max_age=LANG_COOKIE_AGE,
                httponly=True,
                samesite="Lax",
                secure=get_config().base_url.startswith("https://"),
            )
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
    return response


# -- template helpers ----------------------------------------------------------------


def _release_url(item: Release, **args: Any) -> str:
    if item.slug:
        return url_for("site.release", release_id=item.id, slug=item.slug, **args)
    return url_for("site.release", release_id=item.id, **args)


@bp.app_template_global("release_url")
def release_url(item: Release) -> str:
    """The canonical path of a release page (``/releases/<id>-<slug>``)."""
    return release_path(item.id, item.slug)


@bp.app_template_global("organization_url")
def organization_url(slug: str) -> str:
    """The path of an organization's page."""
    return organization_path(slug)


@bp.app_template_global("country_url")
def country_url(code: str) -> str:
    """The path of a country's page (lower-case code)."""
    return country_path(code)


@bp.app_template_global("feed_links")
def feed_links(kind: str, key: str = "", absolute: bool = False) -> list[Any]:
    """A channel's RSS, Atom and JSON feed links (see ``syndicate.web.feedlinks``)."""
    return channel_feed_links(kind, key, base_url=get_config().base_url if absolute else "")


@bp.app_template_global("site_base_url")
def site_base_url() -> str:
    """The absolute base of links that leave the site (canonical URLs, feeds)."""
    return get_config().base_url


@bp.app_template_global("current_lang")
def current_lang() -> str:
    return current_language()


@bp.app_template_global("switch_language_url")
def switch_language_url(lang: str) -> str:
    """This page in another interface language (``?lang=`` is remembered in a cookie)."""
    if request.endpoint is None or request.url_rule is None:  # an error page for an unknown path
        return url_for("site.home", lang=lang)
    view_args = dict(request.view_args or {})
    args = {k: v for k, v in request.args.to_dict(flat=False).items() if k not in view_args}
    args["lang"] = [lang]
    return url_for(request.endpoint, **view_args, **args)


@bp.app_template_global("page_url")
def page_url(number: int) -> str:
    """This listing at page ``number`` (other query parameters kept)."""
    view_args = dict(request.view_args or {})
    args = {k: v for k, v in request.args.to_dict(flat=False).items() if k not in view_args and k != "page"}
    if number > 1:
        args["page"] = [str(number)]
    return url_for(request.endpoint or "site.home", **view_args, **args)


@bp.app_template_filter("added_at")
def added_at(value: datetime) -> str:
    """``08:27, 05.09.2023``: a stored UTC time in the site time zone."""
    return format_added(value, current_language(), get_config().timezone)


def _country_name(code: str, language: str) -> str:
    country = find_country(code)
    return country.name(language) if country else code


@bp.app_template_filter("country_name")
def country_name(code: str) -> str:
    return _country_name(code, current_language())


@bp.app_template_filter("excerpt")
def excerpt(item: Release, length: int = 300) -> str:
    """The lead, or the start of the body when a release has no lead."""
    return excerpt_text(item, length)


@bp.app_template_filter("contact_html")
def contact_html(value: str) -> Markup:
    """A contact line, escaped, with e-mail addresses as ``mailto:`` links."""
    parts, last = [], 0
    for match in _EMAIL.finditer(value):
        parts.append(escape(value[last : match.start()]))
        parts.append(Markup('<a href="mailto:{0}">{0}</a>').format(match.group()))
        last = match.end()
    parts.append(escape(value[last:]))
    return Markup("").join(parts)
