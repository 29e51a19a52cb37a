"""Feeds over HTTP: every channel and format, validators, caching and its invalidation, paging, WebSub."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

import feedparser
import pytest
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from config import Config
from feedcheck import CHECKS, check_atom, check_json_feed, check_rss, links, parse_xml
from appclock import T0, Clock
from feeds.models import Release
from feeds.organizations import create_organization, get_organization
from feeds.slugs import slugify
from feeds.store import create_release, update_release, withdraw_release
from feeds.types import Attachment, ReleaseDraft

UTC = timezone.utc
BASE = "http://127.0.0.1:8000"
FORMATS = ("rss", "atom", "json")


@pytest.fixture
def app_factory(app: Any) -> sessionmaker[Session]:
    """Sessions of the app itself: their commits invalidate the cache at once."""
    return app.extensions["syndicate.session_factory"]  # type: ignore[no-any-return]


def draft(title: str, *, country: str = "RU", body: str = "<p>Текст</p>", at: datetime | None = None,
          **extra: Any) -> ReleaseDraft:
    return ReleaseDraft(title=title, lead=f"Лид: {title}", body=body, country_code=country, published_at=at, **extra)


@pytest.fixture
def wire(app_factory: sessionmaker[Session], clock: Clock) -> dict[str, Any]:
    """Two organizations, releases in two countries, one with attachments."""
    with app_factory() as s:
        airr = create_organization(s, "АИРР", country_code="RU", slug="airr", now=T0 - timedelta(days=30))
        bit = create_organization(s, "НПО «БИТ» & Co", country_code="RU", slug="npo-bit", now=T0 - timedelta(days=30))
        ids = []
        for n in range(7):
            org = airr if n % 2 == 0 else bit
            country = "RU" if n < 5 else "KZ"
            release = create_release(
                s, org,
                draft(f"Электробусы №{n} & «кавычки» < 5", country=country, at=T0 - timedelta(hours=10 - n),
                      attachments=(Attachment(f"{BASE}/files/{n}.jpg", "image/jpeg", 100 + n),) if n == 3 else ()),
                now=T0 - timedelta(hours=10 - n),
            )
            ids.append(release.id)
        s.commit()
    return {"ids": ids, "orgs": ("airr", "npo-bit")}


CHANNEL_PATHS = [
    "/feeds/all.{fmt}",
    "/feeds/organizations/airr.{fmt}",
    "/feeds/countries/ru.{fmt}",
    "/feeds/releases.{fmt}?organization=airr&organization=npo-bit&country=kz",
    "/feeds/releases.{fmt}?q=%D1%8D%D0%BB%D0%B5%D0%BA%D1%82%D1%80%D0%BE%D0%B1%D1%83%D1%81&lang=ru",
]


def guids(fmt: str, body: bytes) -> list[str]:
    if fmt == "json":
        return [item["id"] for item in check_json_feed(body)["items"]]
    return [e.id for e in feedparser.parse(body).entries]


def self_and_next(fmt: str, body: bytes) -> tuple[str, str | None]:
    if fmt == "json":
        feed = check_json_feed(body)
        return feed["feed_url"], feed.get("next_url")
    root = parse_xml(body)
    found = links(root.find("channel")) if fmt == "rss" else links(root)
    return found["self"], found.get("next")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("path", CHANNEL_PATHS)
def test_every_channel_is_valid_in_every_format(client: Any, wire: dict[str, Any], path: str, fmt: str) -> None:
    url = path.format(fmt=fmt)
    response = client.get(url)
    assert response.status_code == 200
    media = {"rss": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}[fmt]
    assert response.headers["Content-Type"] == f"{media}; charset=utf-8"
    CHECKS[fmt](response.data)
    assert self_and_next(fmt, response.data)[0] == BASE + url  # self is the requested URL
    assert guids(fmt, response.data), "the channel has releases"


def test_channels_hold_the_right_releases(client: Any, wire: dict[str, Any]) -> None:
    def titles(url: str) -> list[str]:
        return [e.title for e in feedparser.parse(client.get(url).data).entries]

    assert len(titles("/feeds/all.rss")) == 7
    assert titles("/feeds/all.rss")[0] == "Электробусы №6 & «кавычки» < 5"  # newest first
    assert len(titles("/feeds/organizations/airr.rss")) == 4
    assert len(titles("/feeds/countries/kz.rss")) == 2
    assert titles("/feeds/releases.rss?organization=airr&country=kz") == ["Электробусы №6 & «кавычки» < 5"]
    # Russian word forms: «электробусов» finds «Электробусы».
    assert len(titles("/feeds/releases.rss?q=%D1%8D%D0%BB%D0%B5%D0%BA%D1%82%D1%80%D0%BE%D0%B1%D1%83%D1%81%D0%BE%D0%B2")) == 7
    assert titles("/feeds/releases.rss?lang=en") == []


def test_rss_channel_link_is_the_html_page_and_titles_follow_the_language(client: Any, wire: dict[str, Any]) -> None:
    channel = check_rss(client.get("/feeds/organizations/airr.rss").data).find("channel")
    assert channel.findtext("link") == f"{BASE}/organizations/airr"
    assert channel.findtext("title") == "АИРР — пресс-релизы"
    en = check_rss(client.get("/feeds/releases.rss?country=ru&lang=en").data).find("channel")
    assert en.findtext("language") == "en"
    assert en.findtext("title") == "Syndicate — selection: countries: Russia; language: en"
    assert en.findtext("link") == f"{BASE}/search?country=ru&lang=en"


def test_item_content_identity_and_enclosures(client: Any, wire: dict[str, Any]) -> None:
    body = client.get("/feeds/all.atom").data
    entries = feedparser.parse(body).entries
    third = next(e for e in entries if e.title.startswith("Электробусы №3"))
    assert third.id.startswith("urn:uuid:")
    assert third.link == f"{BASE}/releases/{wire['ids'][3]}-{slugify(third.title)}"
    assert third.author == "НПО «БИТ» & Co"
    assert {t.term for t in third.tags} == {"Россия", "НПО «БИТ» & Co"}
    assert [(l.href, l.length) for l in third.links if l.rel == "enclosure"] == [(f"{BASE}/files/3.jpg", "103")]
    rss = feedparser.parse(client.get("/feeds/all.rss").data).entries
    assert [e.id for e in rss] == [e.id for e in entries]  # one id everywhere


@pytest.mark.parametrize("fmt", FORMATS)
def test_paging_walks_the_whole_history(client: Any, app_factory: sessionmaker[Session], clock: Clock, fmt: str) -> None:
    with app_factory() as s:
        org = create_organization(s, "Архив", slug="archive", now=T0 - timedelta(days=400))
        for n in range(23):
            create_release(s, org, draft(f"Релиз {n}", at=T0 - timedelta(days=n)), now=T0 - timedelta(days=n))
        s.commit()
    url: str | None = f"/feeds/organizations/archive.{fmt}?limit=5"
    seen: list[str] = []
    pages = 0
    while url:
        response = client.get(url.removeprefix(BASE))
        assert response.status_code == 200
        CHECKS[fmt](response.data)
        self_url, url = self_and_next(fmt, response.data)
        seen += guids(fmt, response.data)
        pages += 1
        if fmt != "json":
            root = parse_xml(response.data)
            paging = links(root.find("channel")) if fmt == "rss" else links(root)
            assert paging["first"] == f"{BASE}/feeds/organizations/archive.{fmt}?limit=5"
            assert ("previous" in paging) == (pages > 1)
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    titles = [e.title for e in feedparser.parse(client.get("/feeds/organizations/archive.rss?limit=200").data).entries]
    assert titles == [f"Релиз {n}" for n in range(23)]


@pytest.mark.parametrize("url, reason", [
    ("/feeds/all.rss?limit=0", "limit"),
    ("/feeds/all.rss?limit=201", "limit"),
    ("/feeds/all.rss?limit=abc", "limit"),
    ("/feeds/all.rss?limit=5&limit=6", "limit"),
    ("/feeds/all.atom?page=0", "page"),
    ("/feeds/all.json?page=-1", "page"),
    ("/feeds/all.json?page=1e3", "page"),
    ("/feeds/releases.rss?lang=xx", "lang"),
    ("/feeds/releases.rss?country=rus", "country"),
    ("/feeds/releases.rss?organization=Not%20A%20Slug", "organization"),
    ("/feeds/all.rss?country=ru", "country"),
    ("/feeds/releases.rss?q=" + "x" * 400, "q"),
])
def test_bad_parameters_are_400_with_a_one_line_reason(client: Any, wire: dict[str, Any], url: str, reason: str) -> None:
    response = client.get(url)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert text.count("\n") == 1 and reason in text


@pytest.mark.parametrize("url", [
    "/feeds/organizations/no-such-org.rss",
    "/feeds/countries/zz.atom",
    "/feeds/countries/xx.json",
    "/feeds/releases.rss?organization=no-such-org",
    "/feeds/releases.rss?country=zz",
    "/feeds/all.xml",
])
def test_unknown_channels_are_404(client: Any, wire: dict[str, Any], url: str) -> None:
    assert client.get(url).status_code == 404


def test_hostile_queries_are_words(client: Any, wire: dict[str, Any]) -> None:
    for q in ['"', '"электробус', "электро*", "AND", "a AND b", "NEAR(a b)", "-электробус", "title:x", "(((", "*", "'; DROP TABLE releases; --"]:
        for fmt in FORMATS:
            response = client.get(f"/feeds/releases.{fmt}", query_string={"q": q})
            assert response.status_code == 200, q
            CHECKS[fmt](response.data)
    assert len(guids("rss", client.get("/feeds/releases.rss", query_string={"q": '"электробус"'}).data)) == 7
    assert len(guids("rss", client.get("/feeds/releases.rss", query_string={"q": "-электробус"}).data)) == 7


def test_conditional_get_gzip_and_head(client: Any, wire: dict[str, Any]) -> None:
    first = client.get("/feeds/all.rss")
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert last_modified == "Wed, 26 Mar 2025 05:00:00 GMT"  # the newest item's time
    assert "no-cache" in first.headers["Cache-Control"] and first.headers["Vary"] == "Accept-Encoding"
    assert client.get("/feeds/all.rss").data == first.data

    not_modified = client.get("/feeds/all.rss", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.data == b"" and not_modified.headers["ETag"] == etag
    assert client.get("/feeds/all.rss", headers={"If-None-Match": '"other", ' + etag}).status_code == 304
    assert client.get("/feeds/all.rss", headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get("/feeds/all.rss", headers={"If-Modified-Since": last_modified}).status_code == 304
    assert client.get("/feeds/all.rss", headers={"If-Modified-Since": "Tue, 25 Mar 2025 05:00:00 GMT"}).status_code == 200
    # If-None-Match wins over If-Modified-Since.
    assert client.get("/feeds/all.rss", headers={"If-None-Match": '"x"', "If-Modified-Since": last_modified}).status_code == 200

    zipped = client.get("/feeds/all.rss", headers={"Accept-Encoding": "br, gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == first.data
    assert int(zipped.headers["Content-Length"]) == len(zipped.data) < len(first.data)
    assert zipped.headers["ETag"] != etag
    assert client.get("/feeds/all.rss", headers={"If-None-Match": zipped.headers["ETag"], "Accept-Encoding": "gzip"}).status_code == 304
    assert "Content-Encoding" not in client.get("/feeds/all.rss", headers={"Accept-Encoding": "gzip;q=0"}).headers

    head = client.head("/feeds/all.rss")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(first.data)) and head.headers["ETag"] == etag


def test_last_modified_moves_when_a_page_changes_without_newer_items(
    app_factory: sessionmaker[Session], client: Any, wire: dict[str, Any], clock: Clock
) -> None:
    """Withdrawing an older release, or a publish that shifts page 2, must not earn a stale 304."""
    page2 = "/feeds/all.rss?limit=3&page=2"
    before_all, before_page2 = client.get("/feeds/all.rss"), client.get(page2)
    clock.advance(minutes=1)
    with app_factory() as s:  # the oldest release: not the newest item of any page
        withdraw_release(s, s.get(Release, wire["ids"][0]), now=clock.now)
        s.commit()
    after = client.get("/feeds/all.rss", headers={"If-Modified-Since": before_all.headers["Last-Modified"]})
    assert after.status_code == 200 and after.data != before_all.data

    clock.advance(minutes=1)
    with app_factory() as s:
        create_release(s, get_organization(s, "airr"), draft("Сдвигает вторую страницу", at=clock.now), now=clock.now)
        s.commit()
    shifted = client.get(page2, headers={"If-Modified-Since": before_page2.headers["Last-Modified"]})
    assert shifted.status_code == 200 and shifted.data != before_page2.data
    unchanged = client.get(page2, headers={"If-Modified-Since": shifted.headers["Last-Modified"]})
    assert unchanged.status_code == 304


def test_a_cold_feed_is_rendered_once_and_then_served_from_the_cache(app: Any, client: Any, wire: dict[str, Any]) -> None:
    cache = app.extensions["syndicate.feed_cache"]
    before = cache.renders
    bodies = {client.get("/feeds/countries/ru.json").data for _ in range(5)}
    assert len(bodies) == 1 and cache.renders == before + 1


def test_publish_correct_withdraw_invalidate_at_once(app_factory: sessionmaker[Session], client: Any,
                                                     wire: dict[str, Any], clock: Clock) -> None:
    first = client.get("/feeds/organizations/airr.atom")
    with app_factory() as s:
        release = create_release(s, get_organization(s, "airr"), draft("Новый релиз"), now=T0)
        s.commit()
        release_id, guid = release.id, release.guid
    published = client.get("/feeds/organizations/airr.atom", headers={"If-None-Match": first.headers["ETag"]})
    assert published.status_code == 200
    entries = feedparser.parse(published.data).entries
    assert entries[0].id == guid and entries[0].title == "Новый релиз"

    clock.advance(minutes=5)
    with app_factory() as s:
        row = s.get(Release, release_id)
        assert update_release(s, row, draft("Новый релиз (исправлено)", at=row.published_at), now=clock.now)
        s.commit()
    corrected = feedparser.parse(client.get("/feeds/organizations/airr.atom").data).entries
    assert [e.id for e in corrected].count(guid) == 1  # same id: readers do not show it twice
    assert corrected[0].title == "Новый релиз (исправлено)"
    assert datetime(*corrected[0].updated_parsed[:6], tzinfo=UTC) == clock.now.replace(microsecond=0)

    with app_factory() as s:
        withdraw_release(s, s.get(Release, release_id), now=clock.now)
        s.commit()
    for url in ("/feeds/organizations/airr.atom", "/feeds/all.rss", "/feeds/countries/ru.json"):
        assert guid not in guids(url.rsplit(".", 1)[1], client.get(url).data)


def test_changes_from_another_process_are_seen_within_the_check_interval(
        app: Any, client: Any, session: Session, wire: dict[str, Any], clock: Clock) -> None:
    """A write by another process (here: another engine) is noticed by comparing the content version."""
    assert app.extensions["syndicate.config"].feed_cache_check_seconds == 1.0
    before = guids("rss", client.get("/feeds/all.rss").data)
    release = create_release(session, get_organization(session, "npo-bit"), draft("Из планировщика"), now=T0)
    session.commit()
    clock.mono += 0.5  # within the interval the cache is trusted
    assert guids("rss", client.get("/feeds/all.rss").data) == before
    clock.mono += 0.6  # past it, the version is compared and the feed rendered again
    assert guids("rss", client.get("/feeds/all.rss").data) == [release.guid] + before


def test_an_embargoed_release_appears_at_its_time_without_restart(
        app_factory: sessionmaker[Session], client: Any, wire: dict[str, Any], clock: Clock) -> None:
    with app_factory() as s:
        embargoed = create_release(s, get_organization(s, "airr"), draft("Под эмбарго", at=T0 + timedelta(hours=2)), now=T0)
        s.commit()
        guid = embargoed.guid
    for url in ("/feeds/all.rss", "/feeds/organizations/airr.rss", "/feeds/countries/ru.rss"):
        assert guid not in guids("rss", client.get(url).data)
    etag = client.get("/feeds/all.rss").headers["ETag"]
    clock.now = T0 + timedelta(hours=1, minutes=59)  # wall clock only: no version check is due
    assert guid not in guids("rss", client.get("/feeds/all.rss").data)
    clock.now = T0 + timedelta(hours=2)
    for url in ("/feeds/all.rss", "/feeds/organizations/airr.rss", "/feeds/countries/ru.rss"):
        assert guids("rss", client.get(url).data)[0] == guid
    assert client.get("/feeds/all.rss", headers={"If-None-Match": etag}).status_code == 200


def test_concurrent_requests_for_a_cold_feed_render_it_once(app: Any, wire: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import syndicate.web.feeds as feeds_view

    real_load = feeds_view.load_feed
    started = threading.Event()

    def slow_load(*args: Any, **kwargs: Any) -> Any:
        started.set()
        time.sleep(0.3)  # hold the render open so every request arrives while it runs
        return real_load(*args, **kwargs)

    monkeypatch.setattr(feeds_view, "load_feed", slow_load)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cache = app.extensions["syndicate.feed_cache"]
    before = cache.renders
    results: list[bytes] = []

    def fetch() -> None:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/feeds/all.atom", timeout=30) as r:
            results.append(r.read())

    try:
        workers = [threading.Thread(target=fetch) for _ in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert started.is_set()
    assert len(results) == 8 and len(set(results)) == 1
    assert cache.renders == before + 1
    check_atom(results[0])


def test_opml_lists_every_organization_and_country_feed(client: Any, wire: dict[str, Any]) -> None:
    response = client.get("/feeds/opml")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/x-opml")
    root = parse_xml(response.data)
    assert root.tag == "opml" and root.get("version") == "2.0"
    urls = [o.get("xmlUrl") for o in root.iter("outline") if o.get("xmlUrl")]
    assert f"{BASE}/feeds/organizations/airr.rss" in urls and f"{BASE}/feeds/organizations/npo-bit.rss" in urls
    assert f"{BASE}/feeds/countries/ru.rss" in urls and f"{BASE}/feeds/countries/kz.rss" in urls
    for url in urls:
        assert client.get(url.removeprefix(BASE)).status_code == 200


def test_feeds_directory_lists_copyable_links(client: Any, wire: dict[str, Any]) -> None:
    response = client.get("/feeds/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for url in (f"{BASE}/feeds/all.rss", f"{BASE}/feeds/organizations/npo-bit.atom", f"{BASE}/feeds/countries/kz.json",
                f"{BASE}/feeds/opml"):
        assert f'value="{url}"' in page
    assert 'rel="alternate" type="application/atom+xml"' in page
    assert "НПО «БИТ» &amp; Co" in page


def test_uppercase_country_redirects_to_the_canonical_feed(client: Any, wire: dict[str, Any]) -> None:
    response = client.get("/feeds/countries/RU.rss?limit=2")
    assert response.status_code == 301 and response.headers["Location"].endswith("/feeds/countries/ru.rss?limit=2")


# -- WebSub: a real hub on loopback ------------------------------------------------------


class Hub:
    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.pings: list[dict[str, list[str]]] = []
        self.done = threading.Event()
        self.expected = 0
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode("utf-8"))
                hub.pings.append(form)
                self.send_response(hub.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if len(hub.pings) >= hub.expected:
                    hub.done.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hub"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub() -> Iterator[Hub]:
    hub = Hub()
    yield hub
    hub.close()


def websub_app(config: Config, hub_url: str) -> Any:
    from syndicate import create_app

    return create_app(config.replace(websub_hub=hub_url))


def test_feeds_advertise_the_hub_and_changes_ping_it(config: Config, hub: Hub) -> None:
    app = websub_app(config, hub.url)
    try:
        client = app.test_client()
        factory = app.extensions["syndicate.session_factory"]
        with factory() as s:
            org = create_organization(s, "АИРР", slug="airr")
            s.commit()
        hub.expected = 9  # all, airr, ru in three formats
        with factory() as s:
            create_release(s, get_organization(s, "airr"), draft("Пинг"))
            assert hub.pings == []  # nothing before the commit
            s.commit()
        assert hub.done.wait(timeout=10), hub.pings
        assert all(p["hub.mode"] == ["publish"] for p in hub.pings)
        assert sorted(p["hub.url"][0] for p in hub.pings) == sorted(
            f"{BASE}{path}.{fmt}" for path in ("/feeds/all", "/feeds/organizations/airr", "/feeds/countries/ru")
            for fmt in FORMATS
        )
        rss = parse_xml(client.get("/feeds/all.rss").data)
        assert links(rss.find("channel"))["hub"] == hub.url
        atom = parse_xml(client.get("/feeds/all.atom").data)
        assert links(atom)["hub"] == hub.url
        assert check_json_feed(client.get("/feeds/all.json").data)["hubs"] == [{"type": "WebSub", "url": hub.url}]
        del org
    finally:
        app.extensions["syndicate.websub"].close()
        app.extensions["syndicate.session_factory"].kw["bind"].dispose()


def test_a_rolled_back_change_pings_nothing_and_a_failing_hub_fails_nothing(
        config: Config, caplog: pytest.LogCaptureFixture) -> None:
    failing = Hub(status=500)
    app = websub_app(config, failing.url)
    try:
        factory = app.extensions["syndicate.session_factory"]
        with factory() as s:
            org = create_organization(s, "АИРР", slug="airr")
            s.commit()
            create_release(s, org, draft("Откат"))
            s.rollback()
        failing.expected = 9
        with factory() as s:
            create_release(s, s.merge(org), draft("Сохранено"))
            s.commit()  # the hub answering 500 does not fail the commit
        assert failing.done.wait(timeout=10)
        app.extensions["syndicate.websub"].close()  # wait for the background thread to finish logging
        assert len(failing.pings) == 9  # the rolled-back release pinged nothing
        assert any("WebSub hub" in r.getMessage() for r in caplog.records)
        client = app.test_client()
        titles = [e.title for e in feedparser.parse(client.get("/feeds/all.rss").data).entries]
        assert titles == ["Сохранено"]
    finally:
        failing.close()
        app.extensions["syndicate.session_factory"].kw["bind"].dispose()


def test_feed_urls_of_a_change() -> None:
    from feeds.changes import ALL, ChannelRef
    from syndicate.websub import feed_urls

    assert feed_urls(BASE, {ALL, ChannelRef("country", "kz")}) == [
        f"{BASE}/feeds/all.atom", f"{BASE}/feeds/all.json", f"{BASE}/feeds/all.rss",
        f"{BASE}/feeds/countries/kz.atom", f"{BASE}/feeds/countries/kz.json", f"{BASE}/feeds/countries/kz.rss",
    ]


def test_ping_is_trivial(client: Any) -> None:
    response = client.get("/ping")
    assert response.status_code == 200 and response.data == b"ok"


def test_the_scheduler_side_pings_the_hub_after_its_commits(session_factory: sessionmaker[Session], hub: Hub) -> None:
    """Processes without a feed cache (the scheduler, ingesting partner feeds) ping the hub too."""
    from syndicate.websub import install_websub

    notifier = install_websub(session_factory, hub.url, BASE)
    assert notifier is not None and install_websub(session_factory, None, BASE) is None
    hub.expected = 9
    try:
        with session_factory() as s:
            org = create_organization(s, "Партнёр", slug="partner", country_code="KZ")
            create_release(s, org, draft("Из ленты партнёра", country="KZ"))
            s.commit()
        assert hub.done.wait(timeout=10)
    finally:
        notifier.close()
    assert {p["hub.url"][0] for p in hub.pings} >= {f"{BASE}/feeds/organizations/partner.rss",
                                                    f"{BASE}/feeds/countries/kz.json"}
