"""Cached pages and API reads: served from the feed cache, invalidated exactly as feeds are, per language.

The listing pages (home, organization, country, both indexes), the release
page's fragment and the API's reads live in the render cache of
``syndicate.feedcache``. These tests pin what that must never change: a
publish, a correction, a withdrawal or an embargo shows at once (in this
process) or within the check interval (elsewhere); one language never answers
for another; view counts stay counted; and the cheap helpers that replaced
url_for and Babel in loops print exactly what those printed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from appclock import T0, Clock
from feeds.models import Release
from feeds.organizations import create_organization, get_organization
from feeds.store import create_release, update_release, withdraw_release
from feeds.types import ReleaseDraft

UTC = timezone.utc
LISTINGS = ("/", "/organizations/airr", "/countries/ru")
INDEXES = ("/organizations/", "/countries/")


@pytest.fixture
def cache(app: Any) -> Any:
    return app.extensions["syndicate.feed_cache"]


@pytest.fixture
def app_factory(app: Any) -> sessionmaker[Session]:
    """Sessions of the app itself: their commits invalidate the cache at once."""
    return app.extensions["syndicate.session_factory"]  # type: ignore[no-any-return]


def draft(title: str, *, country: str = "RU", at: datetime | None = None) -> ReleaseDraft:
    return ReleaseDraft(title=title, lead=f"Лид: {title}", body="<p>Текст</p>", country_code=country, published_at=at)


@pytest.fixture
def wire(app_factory: sessionmaker[Session], clock: Clock) -> dict[str, int]:
    """Two organizations and three releases in Russia and Kazakhstan, committed through the app."""
    with app_factory() as s:
        airr = create_organization(s, "АИРР", country_code="RU", slug="airr", now=T0 - timedelta(days=30))
        bit = create_organization(s, "НПО «БИТ»", country_code="RU", slug="npo-bit", now=T0 - timedelta(days=30))
        ids = {}
        for n, (org, country) in enumerate([(airr, "RU"), (bit, "RU"), (airr, "KZ")]):
            release = create_release(s, org, draft(f"Электробусы №{n}", country=country, at=T0 - timedelta(hours=5 - n)),
                                     now=T0 - timedelta(hours=5 - n))
            ids[f"r{n}"] = release.id
        s.commit()
    return ids


def text_of(client: Any, path: str, **kwargs: Any) -> str:
    response = client.get(path, **kwargs)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def first_views(html: str) -> str:
    """The view count of the first release of a listing."""
    match = re.search(r'class="views">([^<]*)<', html)
    assert match is not None
    return match.group(1)


def api_titles(client: Any, query: str = "") -> list[str]:
    return [item["title"] for item in client.get("/api/releases" + query).get_json()["items"]]


# -- served from the cache ---------------------------------------------------------------------


@pytest.mark.parametrize("path", LISTINGS + INDEXES + ("/api/releases", "/api/organizations", "/api/countries"))
def test_a_page_is_rendered_once_then_served_from_the_cache(client: Any, wire: dict[str, int], cache: Any,
                                                            path: str) -> None:
    first = client.get(path)
    assert first.status_code == 200
    renders = cache.renders
    again = [client.get(path) for _ in range(3)]
    assert cache.renders == renders
    assert all(r.data == first.data and r.headers["ETag"] == first.headers["ETag"] for r in again)


def test_cached_pages_answer_conditional_gets_and_gzip(client: Any, wire: dict[str, int]) -> None:
    first = client.get("/")
    etag = first.headers["ETag"]
    assert first.headers["Content-Type"] == "text/html; charset=utf-8"
    assert {v.strip() for v in first.headers["Vary"].split(",")} == {"Accept-Encoding", "Accept-Language", "Cookie"}
    not_modified = client.get("/", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.data == b""
    assert "Accept-Language" in not_modified.headers["Vary"]
    zipped = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    import gzip

    assert gzip.decompress(zipped.data) == first.data
    head = client.head("/")
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Length"] == str(len(first.data))


def test_fast_path_answers_cached_pages_before_flask(app: Any, client: Any, wire: dict[str, int]) -> None:
    """A hit never reaches Flask, except when the answer has to set the language cookie."""
    from flask import request

    seen: list[str] = []

    @app.before_request
    def note() -> None:
        seen.append(request.path)

    for path in ("/", "/organizations/", "/api/releases"):
        client.get(path)
    assert len(seen) == 3
    for path in ("/", "/organizations/", "/api/releases"):
        assert client.get(path).status_code == 200
    assert len(seen) == 3  # served by the middleware
    client.get("/?lang=en")  # cold; the client keeps the cookie it is given
    assert '<html lang="en">' in text_of(client, "/?lang=en") and len(seen) == 4  # cached and the cookie agrees
    stranger = app.test_client()  # no cookie yet: the cached page, but Flask answers to set the cookie
    response = stranger.get("/?lang=en")
    assert len(seen) == 5 and "lang=en" in response.headers["Set-Cookie"]
    assert '<html lang="en">' in response.get_data(as_text=True)


def test_listing_pages_issue_a_constant_number_of_queries(app: Any, client: Any, app_factory: sessionmaker[Session],
                                                          clock: Clock) -> None:
    """No query per item (organizations come with their releases): one page costs the same with 1 or 20 items."""
    engine = app_factory.kw["bind"]
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    def queries(path: str) -> int:
        cache = app.extensions["syndicate.feed_cache"]
        cache.invalidate()
        cache.refresh()  # the cache's own version check, done now so that only the page's queries count
        statements.clear()
        assert client.get(path).status_code == 200
        return len(statements)

    with app_factory() as s:
        first = create_organization(s, "Первая", country_code="RU", slug="first", now=T0)
        create_release(s, first, draft("Один", at=T0 - timedelta(hours=1)), now=T0)
        s.commit()
    few = {path: queries(path) for path in ("/", "/countries/ru", "/organizations/first", "/api/releases")}
    with app_factory() as s:
        for n in range(25):
            org = create_organization(s, f"Организация {n}", country_code="RU", now=T0)
            create_release(s, org, draft(f"Релиз {n}", at=T0 - timedelta(minutes=n)), now=T0)
        s.commit()
    many = {path: queries(path) for path in few}
    assert many == few
    assert few["/"] <= 2  # the page's one SELECT (and its transaction's BEGIN where the driver shows one)


# -- invalidation ------------------------------------------------------------------------------


def test_publish_correct_withdraw_show_at_once(app_factory: sessionmaker[Session], client: Any,
                                               wire: dict[str, int], clock: Clock) -> None:
    for path in LISTINGS + INDEXES:
        text_of(client, path)
    assert "АИРР Россия 2 пресс-релиза" in visible_text(text_of(client, "/organizations/"))
    api_titles(client)

    with app_factory() as s:
        release = create_release(s, get_organization(s, "airr"), draft("Свежий релиз", at=T0), now=T0)
        s.commit()
        release_id = release.id
    for path in LISTINGS:
        assert "Свежий релиз" in text_of(client, path), path
    assert "АИРР Россия 3 пресс-релиза" in visible_text(text_of(client, "/organizations/"))
    assert api_titles(client)[0] == "Свежий релиз"

    clock.advance(minutes=5)
    with app_factory() as s:
        row = s.get(Release, release_id)
        assert update_release(s, row, draft("Свежий релиз (исправлено)", at=row.published_at), now=clock.now)
        s.commit()
    for path in LISTINGS:
        assert "Свежий релиз (исправлено)" in text_of(client, path), path
    assert api_titles(client)[0] == "Свежий релиз (исправлено)"

    with app_factory() as s:
        withdraw_release(s, s.get(Release, release_id), now=clock.now)
        s.commit()
    for path in LISTINGS:
        assert "Свежий релиз" not in text_of(client, path), path
    assert "Свежий релиз (исправлено)" not in api_titles(client)
    assert client.get(f"/api/releases/{release_id}").status_code == 404


def test_changes_from_another_process_show_within_the_check_interval(
        client: Any, session: Session, wire: dict[str, int], clock: Clock) -> None:
    """A commit through another engine (the scheduler, another node) is seen by comparing versions."""
    for path in LISTINGS:
        text_of(client, path)
    text_of(client, "/organizations/")
    create_release(session, get_organization(session, "npo-bit"), draft("Из планировщика", at=T0), now=T0)
    create_organization(session, "Новая организация", country_code="KZ", slug="novaya", now=T0)
    session.commit()
    clock.mono += 0.5  # within the interval the cache is trusted
    assert "Из планировщика" not in text_of(client, "/")
    assert "Новая организация" not in text_of(client, "/organizations/")
    clock.mono += 0.6  # past it, the version is compared and the pages rendered again
    for path in ("/", "/countries/ru"):
        assert "Из планировщика" in text_of(client, path), path
    assert "Новая организация" in text_of(client, "/organizations/")


def test_an_organization_added_alone_shows_in_the_index(client: Any, session: Session, wire: dict[str, int],
                                                        clock: Clock) -> None:
    """``syndicate organizations add`` bumps no content version; the index must still show it."""
    text_of(client, "/organizations/")
    create_organization(session, "Без релизов", country_code="KZ", slug="bez-relizov", now=T0)
    session.commit()
    clock.mono += 1.1
    assert "Без релизов" in text_of(client, "/organizations/")
    assert any(o["slug"] == "bez-relizov" for o in client.get("/api/organizations").get_json()["items"])


def test_an_embargoed_release_appears_at_its_time(app_factory: sessionmaker[Session], client: Any,
                                                  wire: dict[str, int], clock: Clock) -> None:
    with app_factory() as s:
        create_release(s, get_organization(s, "airr"), draft("Под эмбарго", at=T0 + timedelta(hours=2)), now=T0)
        s.commit()
    for path in LISTINGS:
        assert "Под эмбарго" not in text_of(client, path)
    counts = text_of(client, "/countries/")
    assert "Под эмбарго" not in api_titles(client)
    clock.now = T0 + timedelta(hours=1, minutes=59)  # wall clock only: no version check is due
    assert "Под эмбарго" not in text_of(client, "/")
    clock.now = T0 + timedelta(hours=2)
    for path in LISTINGS:
        assert "Под эмбарго" in text_of(client, path), path
    assert text_of(client, "/countries/") != counts  # Russia now counts one more
    assert api_titles(client)[0] == "Под эмбарго"


# -- languages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", LISTINGS + INDEXES)
def test_languages_do_not_leak_into_each_other(client: Any, wire: dict[str, int], path: str) -> None:
    english = {"headers": {"Accept-Language": "en-GB,en;q=0.9"}}
    ru = text_of(client, path)
    assert '<html lang="ru">' in ru
    assert '<html lang="en">' in text_of(client, path, **english)  # not the cached Russian page
    assert '<html lang="ru">' in text_of(client, path)  # nor the other way round
    assert '<html lang="ru">' in text_of(client, path, headers={"Accept-Language": "de-DE,ru;q=0.5"})
    en_by_query = client.get(path + "?lang=en")
    assert '<html lang="en">' in en_by_query.get_data(as_text=True)
    assert "lang=en" in en_by_query.headers["Set-Cookie"]
    # The cookie the client now holds wins over Accept-Language, from the cache too.
    assert '<html lang="en">' in text_of(client, path, headers={"Accept-Language": "ru"})
    assert '<html lang="en">' in text_of(client, path)
    back = client.get(path + "?lang=ru", headers={"Accept-Language": "en"})
    assert '<html lang="ru">' in back.get_data(as_text=True) and "lang=ru" in back.headers["Set-Cookie"]
    assert '<html lang="ru">' in text_of(client, path, headers={"Accept-Language": "en"})


def test_an_etag_of_one_language_does_not_validate_another(client: Any, wire: dict[str, int]) -> None:
    ru = client.get("/")
    en = client.get("/", headers={"Accept-Language": "en", "If-None-Match": ru.headers["ETag"]})
    assert en.status_code == 200 and '<html lang="en">' in en.get_data(as_text=True)
    assert en.headers["ETag"] != ru.headers["ETag"]


def test_language_choice_agrees_with_the_flask_request(app: Any, wire: dict[str, int]) -> None:
    """The fast path reads the language without Flask; it must pick what the view picks."""
    from syndicate.i18n import current_language
    from syndicate.web.site import _language_choice

    cases = [
        ("", "", ""), ("lang=en", "", ""), ("lang=ru", "lang=en", "en"), ("", "lang=en", ""), ("", "lang=xx", "en"),
        ("lang=", "lang=en", "ru"), ("lang=xx", "lang=en", "ru"), ("", "", "en-GB,en;q=0.9"),
        ("", "", "de-DE,ru;q=0.5"), ("", "", "fr"), ("", "", "*"), ("", "", "en;q=0,ru;q=0.1"),
        ("", "session=abc; lang=en; other=1", "ru"), ("", 'lang="en"', ""), ("page=2&lang=en", "", "ru"),
        ("lang=en&lang=ru", "", ""), ("", "lang=en; lang=ru", ""), ("", "", "EN-us"), ("LANG=en", "", ""),
    ]
    for query, cookie, accept in cases:
        headers = {k: v for k, v in (("Cookie", cookie), ("Accept-Language", accept)) if v}
        with app.test_request_context("/?" + query, headers=headers):
            assert _language_choice(query, cookie, accept, "ru")[0] == current_language(), (query, cookie, accept)


# -- view counts -------------------------------------------------------------------------------


def test_release_page_counts_every_view_from_its_cached_fragment(app_factory: sessionmaker[Session], client: Any,
                                                                 wire: dict[str, int], cache: Any,
                                                                 session_factory: sessionmaker[Session]) -> None:
    release_id = wire["r0"]
    with app_factory() as s:
        slug = s.get(Release, release_id).slug  # type: ignore[union-attr]
    path = f"/releases/{release_id}-{slug}"
    texts = [text_of(client, path) for _ in range(3)]
    renders = cache.renders
    texts += [text_of(client, path) for _ in range(2)]
    assert cache.renders == renders  # the fragment came from the cache
    for n, html in enumerate(texts, start=1):
        assert f"<dd>{n}</dd>" in html
    assert client.head(path).status_code == 200  # HEAD is not a view
    assert client.get(f"/releases/{release_id}").status_code == 301  # nor is a redirect
    english = text_of(client, path, headers={"Accept-Language": "en"})
    assert "Number of views:" in english and "<dd>6</dd>" in english
    with session_factory() as s:
        assert s.scalar(select(Release.view_count).where(Release.id == release_id)) == 6
    with app_factory() as s:
        withdraw_release(s, s.get(Release, release_id), now=T0)
        s.commit()
    assert client.get(path).status_code == 404  # not the cached fragment
    with session_factory() as s:
        assert s.scalar(select(Release.view_count).where(Release.id == release_id)) == 6


def test_listing_view_counts_catch_up_within_the_check_interval(client: Any, wire: dict[str, int],
                                                                clock: Clock) -> None:
    """A view changes no content version; pages that show counts are rendered again after the interval."""
    newest = wire["r2"]  # first on the home page and in the API
    page = client.get(f"/releases/{newest}").headers["Location"]
    assert first_views(text_of(client, "/")) == "0 просмотров"
    assert client.get("/api/releases").get_json()["items"][0]["view_count"] == 0
    for _ in range(2):
        text_of(client, page)
    clock.mono += 0.5  # still within the interval: the cached page
    assert first_views(text_of(client, "/")) == "0 просмотров"
    clock.mono += 0.5
    assert first_views(text_of(client, "/")) == "2 просмотра"
    assert client.get("/api/releases").get_json()["items"][0]["view_count"] == 2
    assert client.get(f"/api/releases/{newest}").get_json()["view_count"] == 2


# -- what is and is not cached -----------------------------------------------------------------


def test_unknown_parameters_and_bad_pages_are_not_cached(client: Any, wire: dict[str, int], cache: Any) -> None:
    text_of(client, "/")
    entries = len(cache)
    page = text_of(client, "/?utm_source=mail")
    assert 'href="/?utm_source=mail&amp;lang=en"' in page  # the page is still right
    assert client.get("/?page=2").status_code == 404
    assert client.get("/?lang=xx").status_code == 200
    assert client.get("/api/releases?foo=1").status_code == 200
    assert client.get("/api/releases?country=zz").status_code == 400
    assert len(cache) == entries


def test_search_is_not_cached(client: Any, session: Session, wire: dict[str, int], clock: Clock) -> None:
    assert "Из другого процесса" not in text_of(client, "/search?q=процесса")
    create_release(session, get_organization(session, "airr"), draft("Из другого процесса", at=T0), now=T0)
    session.commit()
    assert "Из другого процесса" in text_of(client, "/search?q=процесса")  # no check interval to wait for


# -- the cheap helpers print what url_for and Babel printed ----------------------------------------


def test_paths_are_the_ones_url_for_builds(app: Any) -> None:
    from flask import url_for

    from syndicate.web.site import country_path, organization_path, release_path

    with app.test_request_context("/"):
        for slug in ("airr", "npo-bit", "a b", "ä/ö?x#y", "100%", "semi;colon", ""):
            args = {"slug": slug} if slug else {}
            assert release_path(42, slug) == url_for("site.release", release_id=42, **args)
            if slug:
                assert organization_path(slug) == url_for("site.organization", slug=slug)
        for code in ("RU", "kz"):
            assert country_path(code) == url_for("site.country", code=code.lower())
    with app.test_request_context("/", base_url="http://example.com/prefix/"):  # mounted under a prefix
        assert release_path(7, "x") == url_for("site.release", release_id=7, slug="x") == "/prefix/releases/7-x"


@pytest.mark.parametrize("zone", ["Europe/Moscow", "Asia/Irkutsk", "America/New_York", "UTC"])
def test_added_time_is_what_babel_printed(config: Any, zone: str) -> None:
    from flask_babel import format_datetime

    from syndicate import create_app
    from syndicate.web.site import ADDED_FORMAT, format_added

    moments = [datetime(2023, 9, 5, 5, 27, tzinfo=UTC), datetime(2024, 3, 31, 0, 30, tzinfo=UTC),
               datetime(2024, 11, 3, 6, 30, tzinfo=UTC), datetime(2025, 1, 1, 0, 0, tzinfo=UTC)]
    moments += [datetime(2024, 1, 1, 0, 7, tzinfo=UTC) + timedelta(days=23 * n, hours=5 * n) for n in range(40)]
    app = create_app(config.replace(timezone=zone))
    try:
        for language in ("ru", "en"):
            with app.test_request_context(f"/?lang={language}"):
                for moment in moments:
                    assert format_added(moment, language, zone) == format_datetime(moment, ADDED_FORMAT[language])
    finally:
        app.extensions["syndicate.session_factory"].kw["bind"].dispose()
