"""The HTTP side of channels: feed URLs, caching, conditional GET, OPML, ``/feeds/``.

Thin views: parse the request into a ``FeedRequest``, take the rendered bytes
from the cache (rendering them once if cold), answer with validators.
Cached feeds are mostly answered before Flask even runs, by
``FeedCacheMiddleware`` (installed here when the blueprint is registered).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, redirect, render_template, request
from flask.blueprints import BlueprintSetupState

from feeds.channels import FeedRequest, list_channels, load_feed, parse_feed_request
from feeds.db import utcnow
from feeds.errors import InvalidInput, NotFound
from feeds.render import CONTENT_TYPES, render_feed, render_opml
from feeds.store import content_changed_at
from syndicate.db import get_config, get_session
from syndicate.feedcache import CachedFeed, FeedCache, FeedCacheMiddleware, answer
from syndicate.i18n import current_language
from syndicate.websub import WebSubNotifier, install_change_listeners

bp = Blueprint("feeds", __name__)

FORMAT = "<any(rss, atom, json):fmt>"


@bp.record_once
def _install(state: BlueprintSetupState) -> None:
    app: Flask = state.app
    config = app.extensions["syndicate.config"]
    factory = app.extensions["syndicate.session_factory"]
    # The same clock as every other view: tests inject one in app.extensions["syndicate.clock"].
    cache = FeedCache(
        factory,
        check_seconds=config.feed_cache_check_seconds,
        now=lambda: (app.extensions.get("syndicate.clock") or utcnow)(),
    )
    app.extensions["syndicate.feed_cache"] = cache
    notifier = WebSubNotifier(config.websub_hub, config.base_url) if config.websub_hub else None
    app.extensions["syndicate.websub"] = notifier

    def on_change(changes: Any) -> None:
        cache.invalidate()
        if notifier is not None:
            notifier.notify(changes)

    install_change_listeners(factory, on_change)
    app.wsgi_app = FeedCacheMiddleware(app.wsgi_app, cache)  # type: ignore[method-assign]


def feed_cache() -> FeedCache:
    return current_app.extensions["syndicate.feed_cache"]  # type: ignore[no-any-return]


def _plain(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


def _render(req: FeedRequest) -> CachedFeed:
    config = get_config()
    feed = load_feed(
        get_session(), req,
        base_url=config.base_url, language=config.language, now=feed_cache().now(), hub_url=config.websub_hub,
    )
    body = render_feed(req.fmt, feed.meta, feed.items)
    # Last-Modified must move whenever this representation may have changed:
    # a withdrawal, or a publish that shifts items across a page boundary,
    # changes a page without changing the times of the items left on it.
    # The newest change anywhere is a safe upper bound (ETags stay exact).
    stamps = [t for t in (feed.last_modified, content_changed_at(get_session())) if t is not None]
    return CachedFeed.build(body, CONTENT_TYPES[req.fmt], max(stamps, default=None))


def _serve(kind: str, fmt: str, key: str = "") -> Response:
    try:
        req = parse_feed_request(kind, fmt, key, request.args.to_dict(flat=False))
    except InvalidInput as exc:
        return _plain(400, str(exc))
    raw_key = (request.environ.get("PATH_INFO", ""), request.environ.get("QUERY_STRING", ""))
    try:
        entry = feed_cache().get_or_render(req.cache_key, lambda: _render(req), aliases=[raw_key])
    except NotFound as exc:
        return _plain(404, str(exc))
    status, headers, body = answer(entry, request.environ)
    return Response(body, status=int(status[:3]), headers=headers)


@bp.get(f"/feeds/all.{FORMAT}")
def all_releases(fmt: str) -> Response:
    return _serve("all", fmt)


@bp.get(f"/feeds/organizations/<slug>.{FORMAT}")
def organization(slug: str, fmt: str) -> Response:
    return _serve("organization", fmt, slug)


@bp.get(f"/feeds/countries/<code>.{FORMAT}")
def country(code: str, fmt: str) -> Any:
    if code != code.lower():
        query = request.query_string.decode("latin-1")
        return redirect(f"/feeds/countries/{code.lower()}.{fmt}" + (f"?{query}" if query else ""), 301)
    return _serve("country", fmt, code)


@bp.get(f"/feeds/releases.{FORMAT}")
def releases(fmt: str) -> Response:
    return _serve("releases", fmt)


_GROUPS = {
    "ru": ("Syndicate — все ленты", "Всё", "Организации", "Страны"),
    "en": ("Syndicate — every feed", "Everything", "Organizations", "Countries"),
}


def _channels() -> tuple[list[Any], str]:
    config = get_config()
    language = current_language()
    channels = list_channels(get_session(), base_url=config.base_url, language=language, now=feed_cache().now())
    return channels, language


@bp.get("/feeds/opml")
def opml() -> Response:
    channels, language = _channels()
    title, everything, orgs, countries = _GROUPS.get(language, _GROUPS["en"])
    groups = [
        (label, [(c.title, c.feeds["rss"], c.html_url) for c in channels if c.kind == kind])
        for label, kind in ((everything, "all"), (orgs, "organization"), (countries, "country"))
    ]
    body = render_opml(title, groups)
    return Response(body, mimetype="text/x-opml", headers={"Content-Disposition": 'inline; filename="syndicate.opml"'})


@bp.get("/feeds/")
def directory() -> str:
    channels, language = _channels()
    title, everything, orgs, countries = _GROUPS.get(language, _GROUPS["en"])
    config = get_config()
    groups = [
        (label, [c for c in channels if c.kind == kind])
        for label, kind in ((everything, "all"), (orgs, "organization"), (countries, "country"))
    ]
    return render_template(
        "feeds_directory.html",
        lang=language,
        page_title=title,
        groups=groups,
        opml_url=config.base_url + "/feeds/opml",
        all_feeds=channels[0].feeds if channels else {},
    )
