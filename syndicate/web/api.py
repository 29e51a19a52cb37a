"""The JSON API under ``/api``: read releases, organizations and countries; publish.

Views are thin: parse the request, call one use case of ``feeds.publishing``
(or a store query), commit, render JSON. Domain errors become JSON errors in
``syndicate.errors``; the two kinds of bad request that are the API's own —
a body that is not JSON (400) and a bad query parameter (400) — are raised
here as ``ApiError``.

Reads are served from the render cache the feeds and pages use
(``syndicate.web.site.cached_response``: ETag, 304, invalidated on every
release change); answers that carry view counts are rendered again after
``feed_cache_check_seconds`` at the latest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from feeds.countries import all_countries
from feeds.errors import InvalidInput
from feeds.models import Organization, Release
from feeds.organizations import list_organizations
from feeds.publishing import (
    LISTING_PARAMS,
    correct_release,
    publish_release,
    query_releases,
    release_status,
    withdraw_own_release,
)
from feeds.store import count_releases_by_country, get_visible_release
from syndicate.clock import now
from syndicate.db import get_config, get_session
from syndicate.errors import ApiError
from syndicate.feedcache import Key
from syndicate.web.feedlinks import channel_feed_links
from syndicate.web.openapi import openapi_document
from syndicate.web.site import cached_response

bp = Blueprint("api", __name__, url_prefix="/api")
_LISTING_PARAMS = frozenset(LISTING_PARAMS)


# -- representations -------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _feeds(kind: str, key: str, base_url: str) -> dict[str, str]:
    return {link.fmt: link.url for link in channel_feed_links(kind, key, base_url=base_url)}


def organization_json(org: Organization, base_url: str, releases: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": org.slug,
        "name": org.name,
        "country": org.country_code,
        "url": f"{base_url}/organizations/{org.slug}",
    }
    if releases is not None:
        data.update(
            website=org.website,
            description=org.description,
            releases=releases,
            feeds=_feeds("organization", org.slug, base_url),
        )
    return data


def release_json(release: Release, base_url: str, at: datetime) -> dict[str, Any]:
    """A release as the API shows it (and as ``releases import`` reads it back)."""
    path = f"/releases/{release.id}-{release.slug}" if release.slug else f"/releases/{release.id}"
    return {
        "id": release.id,
        "guid": release.guid,
        "url": base_url + path,
        "status": release_status(release, at),
        "title": release.title,
        "slug": release.slug,
        "lead": release.lead,
        "body": release.body,
        "contact": release.contact,
        "organization": organization_json(release.organization, base_url),
        "country": release.country_code,
        "language": release.language,
        "published_at": _time(release.published_at),
        "created_at": _time(release.created_at),
        "updated_at": _time(release.updated_at),
        "withdrawn_at": _time(release.withdrawn_at),
        "view_count": release.view_count,
        "attachments": list(release.attachments or []),
        "canonical_url": release.canonical_url,
    }


# -- request parsing -------------------------------------------------------------------


def json_body() -> Any:
    """The request body as JSON, or a 400 saying where it breaks."""
    raw = request.get_data(cache=False)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError(400, "malformed JSON: the body is not UTF-8", {"position": exc.start}) from exc
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, f"malformed JSON: {exc.msg}", {"line": exc.lineno, "column": exc.colno}
        ) from exc


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _release_response(release: Release, status: int = 200) -> tuple[Response, int, dict[str, str]]:
    body = jsonify(release_json(release, get_config().base_url, now()))
    return body, status, {"Location": url_for("api.get_release", release_id=release.id)}


# -- reading ---------------------------------------------------------------------------


def _cache_key(allowed: frozenset[str] = frozenset()) -> Key | None:
    """Path and query of a cacheable read (``None``: a parameter the API does not know, kept out)."""
    if any(name not in allowed for name in request.args):
        return None
    # The fast path in front of Flask looks up the same key (syndicate.web.site._fast_path_key).
    return ("api", request.environ.get("PATH_INFO", ""), request.environ.get("QUERY_STRING", ""))


def _json(payload: Callable[[], Any], *, shows_views: bool = False, allowed: frozenset[str] = frozenset()) -> Response:
    """``jsonify(payload())`` through the render cache (the same bytes and content type)."""
    def render() -> bytes:
        return jsonify(payload()).get_data()

    max_age = get_config().feed_cache_check_seconds if shows_views else None
    return cached_response(_cache_key(allowed), render, "application/json", max_age=max_age)


@bp.get("/releases")
def list_releases() -> Response:
    def payload() -> dict[str, Any]:
        at = now()
        args = request.args.to_dict(flat=False)
        try:
            flt, page = query_releases(get_session(), args, now=at)
        except InvalidInput as exc:
            raise ApiError(400, exc.message, {"parameter": exc.field}) from exc
        base_url = get_config().base_url
        args.pop("page", None)

        def page_link(number: int) -> str:
            return base_url + url_for("api.list_releases", **args, **({"page": number} if number > 1 else {}))

        number = page.page.number
        return {
            "items": [release_json(r, base_url, at) for r in page.items],
            "page": number,
            "limit": page.page.size,
            "next": page_link(number + 1) if page.has_next else None,
            "previous": page_link(number - 1) if number > 1 else None,
        }

    return _json(payload, shows_views=True, allowed=_LISTING_PARAMS)


@bp.get("/releases/<int:release_id>")
def get_release(release_id: int) -> Response:
    def payload() -> dict[str, Any]:
        at = now()
        release = get_visible_release(get_session(), release_id, now=at)
        return release_json(release, get_config().base_url, at)

    return _json(payload, shows_views=True)


@bp.get("/organizations")
def organizations() -> Response:
    def payload() -> dict[str, Any]:
        base_url = get_config().base_url
        rows = list_organizations(get_session(), now=now())
        return {"items": [organization_json(org, base_url, count) for org, count in rows]}

    return _json(payload)


@bp.get("/countries")
def countries() -> Response:
    def payload() -> dict[str, Any]:
        base_url = get_config().base_url
        counts = dict(count_releases_by_country(get_session(), now=now()))
        items = [
            {
                "code": c.code,
                "name_ru": c.name_ru,
                "name_en": c.name_en,
                "releases": counts.get(c.code, 0),
                "url": f"{base_url}/countries/{c.slug}",
                "feeds": _feeds("country", c.slug, base_url),
            }
            for c in all_countries()
        ]
        return {"items": items}

    return _json(payload)


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(get_config().base_url, current_app))


# -- writing ---------------------------------------------------------------------------


@bp.post("/releases")
def create_release() -> tuple[Response, int, dict[str, str]]:
    payload = json_body()
    session = get_session()
    release = publish_release(session, bearer_token(), payload, now=now())
    session.commit()
    return _release_response(release, 201)


@bp.put("/releases/<int:release_id>")
def update_release(release_id: int) -> tuple[Response, int, dict[str, str]]:
    payload = json_body()
    session = get_session()
    release, _changed = correct_release(session, bearer_token(), release_id, payload, now=now())
    session.commit()
    return _release_response(release)


@bp.delete("/releases/<int:release_id>")
def delete_release(release_id: int) -> tuple[Response, int, dict[str, str]]:
    session = get_session()
    release = withdraw_own_release(session, bearer_token(), release_id, now=now())
    session.commit()
    return _release_response(release)
