"""``/api/sources``: administrator tokens only, JSON errors, and "poll now" through refresh_source."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from config import Config
from feeds.models import Release
from feeds.organizations import create_organization, issue_token
from feedserver import FeedServer, Reply, feed_server  # noqa: F401

FEED = ('<rss version="2.0"><channel><title>Партнёр</title><item><title>Новость партнёра</title><guid>p1</guid>'
        '</item></channel></rss>').encode()


@pytest.fixture
def api(config: Config) -> Iterator[Any]:
    from syndicate import create_app

    app = create_app(config.replace(allow_private_fetch=True))
    yield app.test_client()
    app.extensions["syndicate.session_factory"].kw["bind"].dispose()


@pytest.fixture
def tokens(session_factory: sessionmaker[Session]) -> dict[str, str]:
    with session_factory() as session:
        org = create_organization(session, "АИРР", country_code="RU", slug="airr")
        made = {"admin": issue_token(session, None), "publisher": issue_token(session, org)}
        session.commit()
        return made


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_sources_need_an_administrator_token(api: Any, tokens: dict[str, str]) -> None:
    response = api.get("/api/sources")
    assert response.status_code == 401 and response.json["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.get("/api/sources", headers=auth("syn_wrong")).status_code == 401
    forbidden = api.get("/api/sources", headers=auth(tokens["publisher"]))
    assert forbidden.status_code == 403 and "administrator" in forbidden.json["error"]
    assert api.get("/api/sources", headers=auth(tokens["admin"])).json == {"sources": []}


def test_create_read_poll_delete(api: Any, tokens: dict[str, str], feed_server: FeedServer,
                                 session_factory: sessionmaker[Session]) -> None:
    headers = auth(tokens["admin"])
    url = feed_server.route("/rss", Reply(body=FEED))
    created = api.post("/api/sources", json={"url": url, "organization": "airr", "interval_minutes": 60},
                       headers=headers)
    assert created.status_code == 201, created.json
    source = created.json
    assert (source["url"], source["organization"], source["country"], source["interval_minutes"]) == \
        (url, "airr", "RU", 60)
    assert source["state"] == "ok" and source["last_success_at"] is None
    assert created.headers["Location"].endswith(f"/api/sources/{source['id']}")

    polled = api.post(f"/api/sources/{source['id']}/poll", headers=headers)
    assert polled.status_code == 200
    assert (polled.json["status"], polled.json["created"]) == ("ok", 1)
    assert polled.json["source"]["releases_ingested"] == 1 and polled.json["source"]["last_success_at"]
    assert feed_server.hits["/rss"] == 1

    shown = api.get(f"/api/sources/{source['id']}", headers=headers).json
    assert shown["title"] == "Партнёр" and shown["error_count"] == 0
    assert [s["id"] for s in api.get("/api/sources", headers=headers).json["sources"]] == [source["id"]]

    assert api.delete(f"/api/sources/{source['id']}", headers=headers).status_code == 204
    assert api.get(f"/api/sources/{source['id']}", headers=headers).status_code == 404
    with session_factory() as session:  # what it brought stays
        assert session.scalar(select(func.count()).select_from(Release)) == 1


def test_a_failing_poll_is_reported_not_raised(api: Any, tokens: dict[str, str], feed_server: FeedServer) -> None:
    headers = auth(tokens["admin"])
    url = feed_server.route("/gone", Reply(410))
    source_id = api.post("/api/sources", json={"url": url, "organization": "airr"}, headers=headers).json["id"]
    polled = api.post(f"/api/sources/{source_id}/poll", headers=headers)
    assert polled.status_code == 200 and polled.json["status"] == "disabled"
    assert polled.json["source"]["state"] == "disabled" and "410" in polled.json["source"]["state_reason"]


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"url": "https://p.example/rss"}, 422, "organization"),
        ({"url": "https://p.example/rss", "organization": "nobody"}, 422, "organization"),
        ({"url": "ftp://p.example/rss", "organization": "airr"}, 422, "url"),
        ({"organization": "airr"}, 422, "url"),
        ({"url": "https://p.example/rss", "organization": "airr", "interval_minutes": "often"}, 422,
         "interval_minutes"),
        ({"url": "https://p.example/rss", "organization": "airr", "country": "ZZ"}, 422, "country"),
    ],
)
def test_bad_input_is_a_json_error(api: Any, tokens: dict[str, str], body: dict[str, Any], status: int,
                                   field: str | None) -> None:
    response = api.post("/api/sources", json=body, headers=auth(tokens["admin"]))
    assert response.status_code == status
    assert response.json["error"]
    if field:
        assert response.json["detail"] == {"field": field}


def test_private_addresses_are_refused_when_not_allowed(client: Any, session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        create_organization(session, "АИРР", country_code="RU", slug="airr")
        token = issue_token(session, None)
        session.commit()
    response = client.post("/api/sources", json={"url": "http://0x7f.1/rss", "organization": "airr"},
                           headers=auth(token))
    assert response.status_code == 422 and "refusing to fetch" in response.json["error"]
    assert client.post("/api/sources", data="nope", headers=auth(token)).status_code == 400
    assert client.post("/api/sources/99/poll", headers=auth(token)).status_code == 404
