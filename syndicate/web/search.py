"""``/search?q=…``: ranked full-text search of releases, paginated, with feeds of the query."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, render_template, request

from feeds.channels import parse_feed_request
from feeds.errors import InvalidInput
from feeds.search import query_stems, search_releases
from feeds.store import list_releases
from feeds.types import Page, ReleaseFilter
from syndicate.db import get_config, get_session
from syndicate.i18n import current_language

bp = Blueprint("search", __name__)

PAGE_SIZE = 20


def _page_number(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise InvalidInput("page must be a whole number from 1 to 100000", field="page")
    return int(raw)


@bp.get("/search")
def search() -> Any:
    config = get_config()
    language = current_language()
    args = request.args.to_dict(flat=False)
    # ``lang`` on a page is the interface language (the site's switcher sets it),
    # not the release-language filter it is on feeds.
    feed_args = {k: v for k, v in args.items() if k in ("organization", "country", "q")}
    try:
        req = parse_feed_request("releases", "rss", "", feed_args)
        number = _page_number(request.args.get("page"))
    except InvalidInput as exc:
        return render_template("error.html", status=400, message=str(exc), lang=language), 400
    flt = ReleaseFilter(
        organizations=req.organizations, countries=tuple(c.upper() for c in req.countries),
        q=req.q, language=req.lang,
    )
    page = Page(number=number, size=PAGE_SIZE)
    session = get_session()
    now = _now()
    if req.q:
        results = search_releases(session, flt, page, now=now)
    elif not flt.is_empty:
        results = list_releases(session, flt, page, now=now)
    else:
        results = None
    filters = req.filter_params()
    query = urlencode(filters, quote_via=quote)

    def page_url(n: int) -> str:
        params = filters + ([("page", str(n))] if n > 1 else [])
        return "/search?" + urlencode(params, quote_via=quote)

    feeds = {fmt: f"/feeds/releases.{fmt}" + (f"?{query}" if query else "") for fmt in ("rss", "atom", "json")}
    return render_template(
        "search.html",
        lang=language,
        q=req.q or "",
        words=query_stems(req.q or ""),
        results=results,
        page_url=page_url,
        feeds=feeds if filters else None,
        tz=config.tz,
    )


def _now() -> Any:
    from flask import current_app

    from feeds.db import utcnow

    return (current_app.extensions.get("syndicate.clock") or utcnow)()  # tests inject a clock
