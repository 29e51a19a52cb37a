"""``/api/sources``: manage partner feeds and poll one now. Administrator tokens only.

An administrator token is an ``ApiToken`` without an organization
(``syndicate admin token``). "Poll now" calls ``feeds.ingest.refresh_source``,
the very function the scheduler and ``syndicate poll`` use.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from feeds.errors import Forbidden, InvalidInput
from feeds.ingest import refresh_source
from feeds.models import Source
from feeds.organizations import authenticate, find_organization
from feeds.sources import add_source, get_source, list_sources, remove_source, source_state
from feeds.types import RefreshResult
from syndicate.commands.partners import make_fetcher
from syndicate.db import get_config, get_session, session_factory
from syndicate.errors import ApiError

bp = Blueprint("sources_api", __name__, url_prefix="/api/sources")


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def source_json(source: Source) -> dict[str, Any]:
    state = source_state(source)
    return {
        "id": source.id,
        "url": source.url,
        "organization": source.organization.slug,
        "country": source.country_code,
        "interval_minutes": source.interval_minutes,
        "title": source.title,
        "state": state.state,
        "state_reason": state.reason,
        "last_checked_at": _time(source.last_checked_at),
        "last_success_at": _time(source.last_success_at),
        "last_status": source.last_status,
        "last_error": source.last_error,
        "last_warning": source.last_warning,
        "error_count": source.error_count,
        "next_check_at": None if source.disabled else _time(source.next_check_at),
        "disabled_reason": source.disabled_reason,
        "moved_to": source.moved_to,
        "releases_ingested": source.releases_ingested,
        "created_at": _time(source.created_at),
    }


def result_json(result: RefreshResult) -> dict[str, Any]:
    return {
        "source_id": result.source_id,
        "url": result.url,
        "status": result.status,
        "http_status": result.http_status,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "error": result.error,
        "warning": result.warning,
        "next_check_at": _time(result.next_check_at),
        "relinked_to": result.relinked_to,
    }


@bp.before_request
def _require_admin() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token_row = authenticate(get_session(), token.strip() if scheme.lower() == "bearer" else None)
    if token_row.organization_id is not None:
        raise Forbidden("partner sources need an administrator token")


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


@bp.get("")
def list_view() -> Response:
    return jsonify({"sources": [source_json(s) for s in list_sources(get_session())]})


@bp.post("")
def create_view() -> tuple[Response, int, dict[str, str]]:
    data = _body()
    session = get_session()
    slug = data.get("organization")
    if not isinstance(slug, str) or not slug:
        raise InvalidInput("organization (a slug) is required", field="organization")
    org = find_organization(session, slug)
    if org is None:
        raise InvalidInput(f"no organization with slug {slug!r}", field="organization")
    interval = data.get("interval_minutes", 30)
    if not isinstance(interval, int) or isinstance(interval, bool):
        raise InvalidInput("interval_minutes must be an integer", field="interval_minutes")
    url = data.get("url")
    country = data.get("country")
    if not isinstance(url, str):
        raise InvalidInput("url (a string) is required", field="url")
    if country is not None and not isinstance(country, str):
        raise InvalidInput("country must be a country code", field="country")
    source = add_source(session, url, org, country_code=country, interval_minutes=interval,
                        allow_private=get_config().allow_private_fetch)
    session.commit()
    return jsonify(source_json(source)), 201, {"Location": url_for(".get_view", source_id=source.id)}


@bp.get("/<int:source_id>")
def get_view(source_id: int) -> Response:
    return jsonify(source_json(get_source(get_session(), source_id)))


@bp.delete("/<int:source_id>")
def delete_view(source_id: int) -> tuple[str, int]:
    session = get_session()
    remove_source(session, source_id)
    session.commit()
    return "", 204


@bp.post("/<int:source_id>/poll")
def poll_view(source_id: int) -> Response:
    session = get_session()
    get_source(session, source_id)
    session.rollback()  # the refresh uses its own transactions; hold nothing open meanwhile
    result = refresh_source(session_factory(), source_id, make_fetcher(get_config()))
    body = result_json(result)
    body["source"] = source_json(get_source(session, source_id))
    return jsonify(body)
