"""The JSON API: reading with filters, publishing with tokens, every error, the OpenAPI document."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feeds.models import ApiToken, Organization, Release
from feeds.organizations import create_organization, issue_token
from feeds.store import content_version, create_release
from feeds.types import ReleaseDraft
from syndicate.clock import CLOCK_KEY

UTC = timezone.utc
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DOC_URI = "urn:syndicate:openapi"


@pytest.fixture
def clock(app: Any) -> dict[str, datetime]:
    current = {"now": NOW}
    app.extensions[CLOCK_KEY] = lambda: current["now"]
    return current


@pytest.fixture
def orgs(session: Session) -> dict[str, Any]:
    """Two organizations with a token each, an administrator token, and a few releases."""
    airr = create_organization(session, "АИРР", country_code="RU", now=NOW)
    bit = create_organization(session, "НПО «БИТ»", country_code="RU", now=NOW)
    data = {
        "airr": airr,
        "bit": bit,
        "airr_token": issue_token(session, airr, now=NOW),
        "bit_token": issue_token(session, bit, now=NOW),
        "admin_token": issue_token(session, None, now=NOW),
    }
    for i, (org, country, title) in enumerate(
        [
            (airr, "RU", "Электробусы в Приангарье"),
            (airr, "KZ", "Электробусы для Казахстана"),
            (bit, "RU", "Бурые водоросли и здоровье"),
            (bit, "RU", "Seaweed and health"),
        ]
    ):
        language = "en" if title.startswith("Sea") else "ru"
        create_release(
            session, org,
            ReleaseDraft(title=title, lead="Вводный абзац.", body="<p>Текст.</p>", country_code=country,
                         language=language, published_at=NOW - timedelta(days=10 - i)),
            now=NOW - timedelta(days=10),
        )
    session.commit()
    return data


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_release(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "В Приангарье в 2024 году откроется производство электробусов",
        "lead": "Развитие сотрудничества обсудили во время рабочей встречи.",
        "body": "<p>«Мы выходим на финальный этап», – отметил губернатор.</p><script>alert(1)</script>",
        "country": "RU",
        "contact": "PR-служба",
    }
    data.update(changes)
    return data


def state(session: Session) -> tuple[Any, ...]:
    """What a refused request must leave alone (read in a fresh transaction: a SQLite
    reader keeps the snapshot its transaction started with)."""
    session.rollback()
    session.expire_all()
    releases = session.execute(
        select(Release.id, Release.title, Release.updated_at, Release.withdrawn_at).order_by(Release.id)
    ).all()
    tokens = session.execute(select(ApiToken.id, ApiToken.last_used_at).order_by(ApiToken.id)).all()
    return (tuple(map(tuple, releases)), content_version(session),
            session.scalar(select(func.count()).select_from(Organization)), tuple(map(tuple, tokens)))


# -- the OpenAPI document ----------------------------------------------------------------------


@pytest.fixture
def openapi(client: Any) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200 and response.content_type == "application/json"
    return json.loads(response.get_data(as_text=True))


def validator(openapi: dict[str, Any], schema_name: str) -> Draft202012Validator:
    registry = Registry().with_resource(DOC_URI, Resource.from_contents(openapi, default_specification=DRAFT202012))
    return Draft202012Validator(
        {"$ref": f"{DOC_URI}#/components/schemas/{schema_name}"}, registry=registry, format_checker=FormatChecker()
    )


def check(openapi: dict[str, Any], schema_name: str, body: Any) -> None:
    errors = sorted(validator(openapi, schema_name).iter_errors(body), key=str)
    assert not errors, [e.message for e in errors[:3]]


def test_every_api_route_is_documented(app: Any, openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1")
    documented = {
        (path, method.upper()) for path, item in openapi["paths"].items() for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<int:{arg}>", "{id}").replace(f"<{arg}>", "{id}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method))
    assert routes - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routes == set(), "documented operations the app does not serve"


def test_openapi_schemas_are_valid_json_schema(openapi: dict[str, Any]) -> None:
    for name, schema in openapi["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
    for item in openapi["paths"].values():
        for operation in item.values():
            assert operation["responses"], operation
            for response in operation["responses"].values():
                for media in response.get("content", {}).values():
                    if "schema" in media:
                        ref = media["schema"]["$ref"].rsplit("/", 1)[-1]
                        assert ref in openapi["components"]["schemas"]


# -- reading ---------------------------------------------------------------------------------


def test_list_releases_newest_first_with_paging(client: Any, orgs: dict[str, Any], clock: Any,
                                               openapi: dict[str, Any]) -> None:
    body = client.get("/api/releases?limit=3").get_json()
    check(openapi, "ReleasePage", body)
    assert [r["title"] for r in body["items"]] == [
        "Seaweed and health", "Бурые водоросли и здоровье", "Электробусы для Казахстана"
    ]
    assert body["next"] == "http://127.0.0.1:8000/api/releases?limit=3&page=2" and body["previous"] is None
    second = client.get("/api/releases?limit=3&page=2").get_json()
    assert [r["title"] for r in second["items"]] == ["Электробусы в Приангарье"]
    assert second["next"] is None and second["previous"] == "http://127.0.0.1:8000/api/releases?limit=3"
    first = body["items"][0]
    assert first["organization"] == {
        "slug": "npo-bit", "name": "НПО «БИТ»", "country": "RU", "url": "http://127.0.0.1:8000/organizations/npo-bit"
    }
    assert first["url"] == f"http://127.0.0.1:8000/releases/{first['id']}-seaweed-and-health"
    assert first["status"] == "published" and first["published_at"].endswith("Z")


@pytest.mark.parametrize(
    "query, titles",
    [
        ("organization=airr", {"Электробусы в Приангарье", "Электробусы для Казахстана"}),
        ("organization=airr&organization=npo-bit", None),
        ("country=kz", {"Электробусы для Казахстана"}),
        ("country=KZ&organization=npo-bit", set()),
        ("lang=en", {"Seaweed and health"}),
        ("q=электробусов", {"Электробусы в Приангарье", "Электробусы для Казахстана"}),
        ("q=водоросль&country=ru", {"Бурые водоросли и здоровье"}),
    ],
)
def test_list_filters_are_the_feed_filters(client: Any, orgs: dict[str, Any], clock: Any,
                                           query: str, titles: set[str] | None) -> None:
    response = client.get(f"/api/releases?{query}")
    assert response.status_code == 200, response.get_json()
    found = {r["title"] for r in response.get_json()["items"]}
    assert found == (titles if titles is not None else {
        "Электробусы в Приангарье", "Электробусы для Казахстана", "Бурые водоросли и здоровье", "Seaweed and health"
    })


@pytest.mark.parametrize(
    "query, parameter",
    [
        ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"), ("page=0", "page"),
        ("page=-1", "page"), ("country=xx", "country"), ("country=rus", "country"),
        ("organization=nobody", "organization"), ("organization=Not%20a%20slug", "organization"),
        ("lang=de", "lang"), ("q=" + "слово" * 100, "q"), ("limit=5&limit=6", "limit"),
    ],
)
def test_bad_list_parameters_are_400_naming_them(client: Any, orgs: dict[str, Any], query: str,
                                                 parameter: str, openapi: dict[str, Any]) -> None:
    response = client.get(f"/api/releases?{query}")
    assert response.status_code == 400
    body = response.get_json()
    check(openapi, "Error", body)
    assert body["detail"] == {"parameter": parameter}


def test_get_one_release(client: Any, orgs: dict[str, Any], clock: Any, openapi: dict[str, Any]) -> None:
    listing = client.get("/api/releases?organization=airr").get_json()["items"]
    one = client.get(f"/api/releases/{listing[0]['id']}")
    assert one.status_code == 200
    check(openapi, "Release", one.get_json())
    assert one.get_json() == listing[0]
    missing = client.get("/api/releases/999999")
    assert missing.status_code == 404 and missing.get_json()["error"] == "release 999999 not found"


def test_organizations_and_countries(client: Any, orgs: dict[str, Any], clock: Any,
                                     openapi: dict[str, Any]) -> None:
    organizations = client.get("/api/organizations").get_json()
    check(openapi, "OrganizationList", organizations)
    by_slug = {o["slug"]: o for o in organizations["items"]}
    assert by_slug["airr"]["releases"] == 2 and by_slug["npo-bit"]["name"] == "НПО «БИТ»"
    assert by_slug["airr"]["feeds"]["rss"] == "http://127.0.0.1:8000/feeds/organizations/airr.rss"
    countries = client.get("/api/countries").get_json()
    check(openapi, "CountryList", countries)
    by_code = {c["code"]: c for c in countries["items"]}
    assert len(by_code) > 240
    assert by_code["RU"]["name_ru"] == "Россия" and by_code["RU"]["releases"] == 3
    assert by_code["KZ"]["feeds"]["json"] == "http://127.0.0.1:8000/feeds/countries/kz.json"
    assert by_code["FR"]["releases"] == 0


# -- publishing --------------------------------------------------------------------------------


def test_publish_a_release(client: Any, orgs: dict[str, Any], clock: Any, session: Session,
                           openapi: dict[str, Any]) -> None:
    response = client.post("/api/releases", json=new_release(), headers=auth(orgs["airr_token"]))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    check(openapi, "Release", body)
    assert response.headers["Location"] == f"/api/releases/{body['id']}"
    assert body["status"] == "published" and body["organization"]["slug"] == "airr"
    assert body["title"] == "В Приангарье в 2024 году откроется производство электробусов"
    assert body["language"] == "ru" and body["country"] == "RU"
    assert "<script>" not in body["body"] and "«Мы выходим на финальный этап»" in body["body"]
    assert body["published_at"] == "2026-06-01T12:00:00Z"
    session.rollback()  # a fresh transaction sees the request's commit
    session.expire_all()
    stored = session.get(Release, body["id"])
    assert stored is not None and stored.organization_id == orgs["airr"].id
    page = client.get(f"/releases/{body['id']}-{body['slug']}")
    assert page.status_code == 200 and "«Мы выходим на финальный этап»" in page.get_data(as_text=True)
    token_row = session.scalar(select(ApiToken).where(ApiToken.organization_id == orgs["airr"].id))
    assert token_row is not None and token_row.last_used_at == NOW


def test_future_published_at_embargoes_until_then(client: Any, orgs: dict[str, Any], clock: Any) -> None:
    at = NOW + timedelta(hours=3)
    response = client.post(
        "/api/releases", json=new_release(published_at="2026-06-01T18:00:00+03:00"), headers=auth(orgs["bit_token"])
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "embargoed" and body["published_at"] == "2026-06-01T15:00:00Z"
    release_id = body["id"]
    assert client.get(f"/api/releases/{release_id}").status_code == 404
    assert release_id not in [r["id"] for r in client.get("/api/releases").get_json()["items"]]
    assert client.get(f"/releases/{release_id}").status_code == 404
    clock["now"] = at
    assert client.get(f"/api/releases/{release_id}").get_json()["status"] == "published"
    assert client.get("/api/releases").get_json()["items"][0]["id"] == release_id


@pytest.mark.parametrize(
    "body, status, field",
    [
        (b'{"title": "\xd0\x9d\xd0\xbe\xd0\xb2', 400, None),  # cut off mid-string
        (b"", 400, None),
        (b"\xff\xfe{}", 400, None),
        (b"[1, 2]", 422, None),
        (json.dumps(new_release(title=None)).encode(), 422, "title"),
        (json.dumps({k: v for k, v in new_release().items() if k != "body"}).encode(), 422, "body"),
        (json.dumps(new_release(title="Я" * 501), ensure_ascii=False).encode(), 422, "title"),
        (json.dumps(new_release(contact="к" * 501), ensure_ascii=False).encode(), 422, "contact"),
        (json.dumps(new_release(country="Нарния"), ensure_ascii=False).encode(), 422, "country"),
        (json.dumps(new_release(country="XX")).encode(), 422, "country"),
        (json.dumps(new_release(published_at="завтра"), ensure_ascii=False).encode(), 422, "published_at"),
        (json.dumps(new_release(titel="опечатка"), ensure_ascii=False).encode(), 422, "titel"),
    ],
)
def test_bad_bodies_write_nothing(client: Any, orgs: dict[str, Any], session: Session, openapi: dict[str, Any],
                                  body: bytes, status: int, field: str | None) -> None:
    before = state(session)
    response = client.post("/api/releases", data=body, content_type="application/json",
                           headers=auth(orgs["airr_token"]))
    assert response.status_code == status
    error = response.get_json()
    check(openapi, "Error", error)
    if status == 400:
        assert error["error"].startswith("malformed JSON")
    if field is not None:
        assert error["detail"] == {"field": field}
    assert state(session) == before


@pytest.mark.parametrize(
    "headers, status",
    [
        ({}, 401),
        ({"Authorization": "Bearer syn_not-a-real-token"}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ("admin", 403),
    ],
)
def test_publishing_needs_an_organization_token(client: Any, orgs: dict[str, Any], session: Session,
                                                headers: Any, status: int) -> None:
    if headers == "admin":
        headers = auth(orgs["admin_token"])
    before = state(session)
    response = client.post("/api/releases", json=new_release(), headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    else:
        assert "administrator" in response.get_json()["error"]
    assert state(session) == before


def test_revoked_token_is_refused(client: Any, orgs: dict[str, Any], session: Session) -> None:
    for row in session.scalars(select(ApiToken)):
        row.revoked_at = NOW
    session.commit()
    before = state(session)
    response = client.post("/api/releases", json=new_release(), headers=auth(orgs["airr_token"]))
    assert response.status_code == 401 and state(session) == before


def test_cannot_publish_in_another_organizations_name(client: Any, orgs: dict[str, Any], session: Session) -> None:
    before = state(session)
    response = client.post("/api/releases", json=new_release(organization="npo-bit"), headers=auth(orgs["airr_token"]))
    assert response.status_code == 403 and "npo-bit" in response.get_json()["error"]
    assert state(session) == before
    ok = client.post("/api/releases", json=new_release(organization="airr"), headers=auth(orgs["airr_token"]))
    assert ok.status_code == 201


# -- correcting and withdrawing ------------------------------------------------------------------


def airr_release(session: Session, orgs: dict[str, Any]) -> Release:
    release = session.scalar(select(Release).where(Release.organization_id == orgs["airr"].id).limit(1))
    assert release is not None
    return release


def test_correct_own_release(client: Any, orgs: dict[str, Any], session: Session, clock: Any,
                             openapi: dict[str, Any]) -> None:
    release = airr_release(session, orgs)
    original = client.get(f"/api/releases/{release.id}").get_json()
    clock["now"] = NOW + timedelta(hours=1)
    edited = dict(original, title="Электробусы в Приангарье: уточнённые сроки", body="Новые сроки.\n\nВторой абзац.")
    response = client.put(f"/api/releases/{release.id}", json=edited, headers=auth(orgs["airr_token"]))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    check(openapi, "Release", body)
    assert (body["id"], body["guid"], body["published_at"]) == (original["id"], original["guid"], original["published_at"])
    assert body["title"] == "Электробусы в Приангарье: уточнённые сроки"
    assert body["body"] == "<p>Новые сроки.</p><p>Второй абзац.</p>"
    assert body["updated_at"] == "2026-06-01T13:00:00Z"
    assert body["slug"] == "elektrobusy-v-priangare-utochnionnye-sroki"


@pytest.mark.parametrize(
    "who, release_id, payload, status",
    [
        ("bit_token", "airr", new_release(), 403),
        ("admin_token", "airr", new_release(), 403),
        ("airr_token", 999999, new_release(), 404),
        (None, "airr", new_release(), 401),
        ("airr_token", "airr", new_release(country="Атлантида"), 422),
        ("airr_token", "airr", {"title": "Без текста"}, 422),
    ],
)
def test_refused_corrections_write_nothing(client: Any, orgs: dict[str, Any], session: Session,
                                           who: str | None, release_id: Any, payload: Any, status: int) -> None:
    target = airr_release(session, orgs).id if release_id == "airr" else release_id
    before = state(session)
    headers = auth(orgs[who]) if who else {}
    response = client.put(f"/api/releases/{target}", json=payload, headers=headers)
    assert response.status_code == status
    assert state(session) == before


def test_withdraw_own_release(client: Any, orgs: dict[str, Any], session: Session, clock: Any,
                              openapi: dict[str, Any]) -> None:
    release = airr_release(session, orgs)
    other = session.scalar(select(Release).where(Release.organization_id == orgs["bit"].id).limit(1))
    assert other is not None
    before = state(session)
    assert client.delete(f"/api/releases/{other.id}", headers=auth(orgs["airr_token"])).status_code == 403
    assert client.delete("/api/releases/999999", headers=auth(orgs["airr_token"])).status_code == 404
    assert client.delete(f"/api/releases/{release.id}").status_code == 401
    assert state(session) == before

    response = client.delete(f"/api/releases/{release.id}", headers=auth(orgs["airr_token"]))
    assert response.status_code == 200
    check(openapi, "Release", response.get_json())
    assert response.get_json()["status"] == "withdrawn"
    assert state(session) != before  # (the check above would have seen a write)
    session.rollback()
    session.expire_all()
    kept = session.get(Release, release.id)
    assert kept is not None and kept.withdrawn_at == NOW and kept.title == release.title
    assert client.get(f"/api/releases/{release.id}").status_code == 404
    assert client.get(f"/releases/{release.id}").status_code == 404
    assert release.id not in [r["id"] for r in client.get("/api/releases").get_json()["items"]]
    # Withdrawing twice is harmless; correcting a withdrawn release is not possible.
    assert client.delete(f"/api/releases/{release.id}", headers=auth(orgs["airr_token"])).status_code == 200
    put = client.put(f"/api/releases/{release.id}", json=new_release(), headers=auth(orgs["airr_token"]))
    assert put.status_code == 404 and "withdrawn" in put.get_json()["error"]
