"""The public site: latest releases, a release, organizations, countries.

Views are thin: parse the request, call one domain function, render. The
template helpers every page uses (feed links, dates in the site time zone,
country names, the language switch) are registered here too.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import format_datetime
from markupsafe import Markup, escape

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
from syndicate.i18n import current_language
from syndicate.web.feedlinks import channel_feed_links

bp = Blueprint("site", __name__)

PAGE_SIZE = 20
LANG_COOKIE_AGE = 365 * 24 * 3600
# How the time a release was added is shown ("08:27, 05.09.2023" on the seed page).
ADDED_FORMAT = {"ru": "HH:mm, dd.MM.yyyy", "en": "HH:mm, d MMM yyyy"}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


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
def home() -> str:
    return render_template("home.html", releases=_listing(ReleaseFilter()))


@bp.get("/releases/<int:release_id>")
@bp.get("/releases/<int:release_id>-<slug>")
def release(release_id: int, slug: str | None = None) -> str | Response:
    session = get_session()
    item = get_visible_release(session, release_id, now=now())
    if (slug or "") != item.slug:
        return redirect(_release_url(item, **request.args.to_dict()), code=301)
    views = item.view_count
    if request.method == "GET":  # HEAD is not a reader
        # End the read transaction first: on SQLite a WAL reader whose snapshot
        # is stale cannot become a writer, while a fresh transaction can wait.
        session.commit()
        views = count_view(session, item.id) or views + 1
        session.commit()
    return render_template("release.html", release=item, views=views)


@bp.get("/organizations/")
def organizations() -> str:
    return render_template("organizations.html", organizations=list_organizations(get_session(), now=now()))


@bp.get("/organizations/<slug>")
def organization(slug: str) -> str:
    org = get_organization(get_session(), slug)
    return render_template("organization.html", organization=org, releases=_listing(ReleaseFilter(organizations=(slug,))))


@bp.get("/countries/")
def countries() -> str:
    lang = current_language()
    rows = []
    for code, count in count_releases_by_country(get_session(), now=now()):
        country = find_country(code)
        if country is not None:
            rows.append((country, count))
    rows.sort(key=lambda row: row[0].name(lang).casefold())
    return render_template("countries.html", countries=rows)


@bp.get("/countries/<code>")
def country(code: str) -> str | Response:
    if code != code.lower():
        return redirect(url_for(".country", code=code.lower(), **request.args.to_dict()), code=301)
    found = find_country(code) if len(code) == 2 and code.isalpha() else None
    if found is None:
        raise CountryNotFound(f"unknown country {code!r}", resource_id=code)
    return render_template("country.html", country=found, releases=_listing(ReleaseFilter(countries=(found.code,))))


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
    return _release_url(item)


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
    return format_datetime(value, ADDED_FORMAT.get(current_language(), ADDED_FORMAT["ru"]))


@bp.app_template_filter("country_name")
def country_name(code: str) -> str:
    country = find_country(code)
    return country.name(current_language()) if country else code


@bp.app_template_filter("excerpt")
def excerpt(item: Release, length: int = 300) -> str:
    """The lead, or the start of the body when a release has no lead."""
    text = item.lead or html_to_text(item.body).replace("\n", " ")
    if len(text) <= length:
        return text
    return text[:length].rsplit(" ", 1)[0].rstrip(",.;:–-") + "…"


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
