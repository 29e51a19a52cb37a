"""Ingestion end to end: a real feed server on loopback, the real database, the real pipeline."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Mapping

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from feeds.decide import (
    MAX_BACKOFF,
    MAX_HINTED_INTERVAL,
    KnownEntry,
    entry_key,
    feed_language,
    next_check_at,
    plan_entries,
)
from feeds.fetch import Fetcher
from feeds.ingest import refresh_due_sources, refresh_source, store_entries
from feeds.models import Organization, Release, Source
from feeds.organizations import create_organization
from feeds.parse import parse_feed
from feeds.sources import add_source, claim_sources, known_entries
from feeds.types import FetchResult
from feedserver import FeedServer, Reply, feed_server  # noqa: F401

DATA = Path(__file__).parent / "data" / "partner_feeds"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def rss(*items: tuple[str, str], title: str = "Партнёр") -> bytes:
    body = "".join(
        f"<item><title>{t}</title><guid isPermaLink='false'>{g}</guid>"
        f"<pubDate>Sat, 01 Mar 2025 09:00:00 GMT</pubDate><description>О событии {t}</description></item>"
        for g, t in items
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>{body}' \
           f"</channel></rss>".encode()


@pytest.fixture
def org(session_factory: sessionmaker[Session]) -> Organization:
    with session_factory() as session:
        organization = create_organization(session, "АИРР", country_code="RU", now=T0)
        session.commit()
        return organization


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher(allow_private=True, clock=lambda: T0)


def add(factory: sessionmaker[Session], org: Organization, url: str, **kwargs: Any) -> int:
    with factory() as session:
        organization = session.get(Organization, org.id)
        assert organization is not None
        source = add_source(session, url, organization, allow_private=True, now=T0, **kwargs)
        session.commit()
        return source.id


def row(factory: sessionmaker[Session], source_id: int) -> Source:
    with factory() as session:
        source = session.get(Source, source_id)
        assert source is not None
        return source


def releases(factory: sessionmaker[Session], source_id: int | None = None) -> list[Release]:
    with factory() as session:
        stmt = select(Release).order_by(Release.id)
        if source_id is not None:
            stmt = stmt.where(Release.source_id == source_id)
        return list(session.scalars(stmt))


# -- a pass ---------------------------------------------------------------------------------------


def test_one_broken_source_never_stops_the_pass(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    good = add(session_factory, org, feed_server.route("/good.rss", Reply(body=(DATA / "airr.rss").read_bytes())))
    broken = add(session_factory, org, feed_server.route("/broken", Reply(500, b"oops")))
    html = add(session_factory, org, feed_server.route("/page", Reply(body=b"<html><body>Hi</body></html>")))
    other = add(session_factory, org, feed_server.route("/other.rss", Reply(body=rss(("o1", "Другая новость")))))

    results = refresh_due_sources(session_factory, fetcher, worker="w1", now=T0, max_workers=3)

    by_id = {r.source_id: r for r in results}
    assert set(by_id) == {good, broken, html, other}
    assert (by_id[good].status, by_id[good].created) == ("ok", 3)
    assert (by_id[other].status, by_id[other].created) == ("ok", 1)
    assert by_id[broken].status == "error" and "HTTP 500" in (by_id[broken].error or "")
    assert by_id[html].status == "error" and "HTML page" in (by_id[html].error or "")
    for failing in (broken, html):
        source = row(session_factory, failing)
        assert source.error_count == 1 and source.last_error
        assert source.next_check_at > T0 and source.lease_owner is None and not source.disabled
    ok = row(session_factory, good)
    assert ok.error_count == 0 and ok.last_success_at == T0 and ok.releases_ingested == 3
    assert ok.title == "АИРР — новости" and ok.lease_owner is None
    stored = releases(session_factory, good)
    assert {r.organization_id for r in stored} == {org.id} and {r.country_code for r in stored} == {"RU"}
    assert stored[0].canonical_url == feed_server.url("/news/2023/09/electrobus.html")
    # Nothing is due any more at the same moment.
    assert refresh_due_sources(session_factory, fetcher, worker="w1", now=T0) == []


def test_repolling_adds_nothing_and_a_changed_entry_updates_its_release(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed = {"body": rss(("a", "Первая"), ("b", "Вторая"))}
    source_id = add(session_factory, org, feed_server.route("/feed", lambda h: Reply(body=feed["body"])))
    first = refresh_source(session_factory, source_id, fetcher, now=T0)
    assert first.created == 2
    before = {r.source_entry_key: r for r in releases(session_factory)}

    again = refresh_source(session_factory, source_id, fetcher, now=T0 + timedelta(hours=1))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)

    feed["body"] = rss(("a", "Первая, исправленная"), ("b", "Вторая"), ("c", "Третья"))
    later = T0 + timedelta(hours=2)
    changed = refresh_source(session_factory, source_id, fetcher, now=later)
    assert (changed.created, changed.updated, changed.unchanged) == (1, 1, 1)
    after = {r.source_entry_key: r for r in releases(session_factory)}
    assert len(after) == 3
    fixed = after["id:a"]
    assert fixed.id == before["id:a"].id and fixed.guid == before["id:a"].guid
    assert fixed.title == "Первая, исправленная" and fixed.updated_at == later
    assert after["id:b"].updated_at == before["id:b"].updated_at
    assert row(session_factory, source_id).releases_ingested == 3


def test_304_parses_nothing_and_keeps_the_validators(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    source_id = add(session_factory, org, feed_server.route("/feed", Reply(body=rss(("a", "Одна")), etag='"e1"')))
    refresh_source(session_factory, source_id, fetcher, now=T0)
    assert row(session_factory, source_id).etag == '"e1"'
    result = refresh_source(session_factory, source_id, fetcher, now=T0 + timedelta(hours=1))
    assert result.status == "not modified" and result.http_status == 304
    assert (result.created, result.updated, result.unchanged) == (0, 0, 0)
    assert feed_server.requests["/feed"][1]["if-none-match"] == '"e1"'
    source = row(session_factory, source_id)
    assert source.etag == '"e1"' and source.last_success_at == T0 + timedelta(hours=1)


def test_retry_after_on_429_is_honoured(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    source_id = add(session_factory, org, feed_server.route("/busy", Reply(429, headers={"Retry-After": "7200"})))
    result = refresh_source(session_factory, source_id, fetcher, now=T0)
    assert result.status == "error" and result.http_status == 429
    source = row(session_factory, source_id)
    assert source.next_check_at >= T0 + timedelta(seconds=7200)
    assert source.error_count == 1 and "429" in (source.last_error or "")


def test_a_permanent_redirect_seen_twice_relinks_the_source(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.route("/old.rss", Reply(301, headers={"Location": "/new.rss"}))
    new_url = feed_server.route("/new.rss", Reply(body=rss(("a", "Одна"))))
    source_id = add(session_factory, org, feed_server.url("/old.rss"))

    first = refresh_source(session_factory, source_id, fetcher, now=T0)
    assert first.relinked_to is None
    source = row(session_factory, source_id)
    assert source.url == feed_server.url("/old.rss") and source.moved_to == new_url and source.moved_count == 1

    second = refresh_source(session_factory, source_id, fetcher, now=T0 + timedelta(hours=1))
    assert second.relinked_to == new_url
    source = row(session_factory, source_id)
    assert source.url == new_url and source.moved_to is None and source.moved_count == 0
    refresh_source(session_factory, source_id, fetcher, now=T0 + timedelta(hours=2))
    assert feed_server.hits["/old.rss"] == 2 and feed_server.hits["/new.rss"] == 3
    assert len(releases(session_factory)) == 1


def test_a_redirect_that_is_not_repeated_does_not_relink(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    state = {"moved": True}
    feed_server.route("/feed", lambda h: Reply(301, headers={"Location": "/elsewhere"}) if state["moved"]
                      else Reply(body=rss(("a", "Одна"))))
    feed_server.route("/elsewhere", Reply(body=rss(("a", "Одна"))))
    source_id = add(session_factory, org, feed_server.url("/feed"))
    refresh_source(session_factory, source_id, fetcher, now=T0)
    state["moved"] = False
    refresh_source(session_factory, source_id, fetcher, now=T0 + timedelta(hours=1))
    source = row(session_factory, source_id)
    assert source.url == feed_server.url("/feed") and source.moved_count == 0


def test_410_disables_the_source_with_the_reason(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    state = {"gone": True}
    url = feed_server.route("/feed", lambda h: Reply(410) if state["gone"] else Reply(body=rss(("a", "Одна"))))
    source_id = add(session_factory, org, url)
    [result] = refresh_due_sources(session_factory, fetcher, worker="w", now=T0)
    assert result.status == "disabled"
    source = row(session_factory, source_id)
    assert source.disabled and "410" in (source.disabled_reason or "")
    # never due again by itself...
    assert refresh_due_sources(session_factory, fetcher, worker="w", now=T0 + timedelta(days=30)) == []
    # ...but an explicit poll that succeeds brings it back
    state["gone"] = False
    assert refresh_source(session_factory, source_id, fetcher, now=T0 + timedelta(days=30)).status == "ok"
    source = row(session_factory, source_id)
    assert not source.disabled and source.disabled_reason is None


def test_errors_back_off_to_a_day_and_keep_being_retried(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    source_id = add(session_factory, org, feed_server.route("/down", Reply(503)), interval_minutes=30)
    now = T0
    delays = []
    for _ in range(10):
        [result] = refresh_due_sources(session_factory, fetcher, worker="w", now=now)
        assert result.status == "error"
        source = row(session_factory, source_id)
        delays.append(source.next_check_at - now)
        now = source.next_check_at
    assert all(b >= a * 1.5 for a, b in zip(delays[:4], delays[1:5]))  # roughly doubling
    assert delays[-1] == delays[-2] == MAX_BACKOFF  # capped, and still scheduled
    assert row(session_factory, source_id).error_count == 10 and not row(session_factory, source_id).disabled
    assert feed_server.hits["/down"] == 10


def test_entries_without_dates_keep_their_first_seen_time(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    body = b'<rss version="2.0"><channel><title>t</title><item><title>Undated</title><link>/u/1</link></item>' \
           b'</channel></rss>'
    source_id = add(session_factory, org, feed_server.route("/feed", Reply(body=body)))
    refresh_source(session_factory, source_id, fetcher, now=T0)
    later = refresh_source(session_factory, source_id, fetcher, now=T0 + timedelta(days=1))
    assert later.unchanged == 1 and later.updated == 0
    [release] = releases(session_factory)
    assert release.published_at == T0 and release.source_entry_key == "link:" + feed_server.url("/u/1")


def test_relative_links_resolve_against_the_final_url(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    feed_server.route("/feed", Reply(302, headers={"Location": "/partner/rss/all.xml"}))
    feed_server.route("/partner/rss/all.xml", Reply(body=(DATA / "airr.rss").read_bytes()))
    source_id = add(session_factory, org, feed_server.url("/feed"))
    refresh_source(session_factory, source_id, fetcher, now=T0)
    first = releases(session_factory)[0]
    assert first.canonical_url == feed_server.url("/news/2023/09/electrobus.html")
    assert f'href="{feed_server.url("/regions/usolye")}"' in first.body
    assert f'src="{feed_server.url("/partner/rss/img/bus.jpg")}"' in first.body
    assert first.attachments[0]["url"] == feed_server.url("/files/electrobus.pdf")


@pytest.mark.parametrize("name, header", [("cp1251_declared.rss", None), ("cp1251_undeclared.rss", None),
                                          ("cp1251_undeclared.rss", "application/rss+xml; charset=utf-8")])
def test_cyrillic_survives_wrong_and_missing_charsets(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher,
    name: str, header: str | None,
) -> None:
    headers = {"Content-Type": header} if header else {}
    source_id = add(session_factory, org, feed_server.route("/feed", Reply(body=(DATA / name).read_bytes(),
                                                                          headers=headers)))
    refresh_source(session_factory, source_id, fetcher, now=T0)
    titles = [r.title for r in releases(session_factory)]
    assert titles == ["Губернатор обсудил производство электробусов", "Подписано соглашение о сотрудничестве"]
    if name == "cp1251_undeclared.rss":
        assert "cp1251" in (row(session_factory, source_id).last_warning or "")


@pytest.mark.parametrize("name", ["billion_laughs.rss", "entity_blowup.rss"])
def test_entity_blowups_are_ingested_harmlessly_with_the_warning_recorded(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher, name: str
) -> None:
    data = (DATA / name).read_bytes()
    source_id = add(session_factory, org, feed_server.route("/feed", Reply(body=data)))
    result = refresh_source(session_factory, source_id, fetcher, now=T0)
    assert result.status == "ok" and result.created == 1
    assert "undefined entity" in (row(session_factory, source_id).last_warning or "")
    [release] = releases(session_factory)
    assert len(release.body) + len(release.title) + len(release.lead) < 2 * len(data)


# -- what a partner sends can never run script ----------------------------------------------------

URL_ATTRIBUTES = {"href", "src", "action", "formaction", "cite", "background", "poster", "srcset", "data",
                  "xlink:href", "longdesc", "codebase", "manifest", "ping", "lowsrc", "dynsrc"}
DANGEROUS_TAGS = {"script", "style", "svg", "math", "iframe", "object", "embed", "form", "input", "button",
                  "base", "meta", "link", "noscript", "frame", "frameset", "applet", "template"}


class _Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DANGEROUS_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"{tag}[{name}]")
            if name in URL_ATTRIBUTES and value is not None:
                scheme = value.strip().split(":", 1)[0].lower() if ":" in value else ""
                if scheme not in ("http", "https", "mailto"):
                    self.problems.append(f"{tag}[{name}={value!r}]")

    handle_startendtag = handle_starttag


def audit(fragment: str) -> list[str]:
    parser = _Audit()
    parser.feed(fragment)
    parser.close()
    return parser.problems


def test_audit_finds_what_it_looks_for() -> None:
    found = audit('<p onclick="x"><a href="jav&#x09;ascript:alert(1)">a</a><script>1</script>'
                  '<img src="data:image/png;base64,AA"><svg></svg><a href="/rel">r</a></p>')
    assert found == ["p[onclick]", "a[href='jav\\tascript:alert(1)']", "<script>", "img[src='data:image/png;base64,AA']",
                     "<svg>", "a[href='/rel']"]


def test_xss_payloads_never_reach_storage(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    source_id = add(session_factory, org, feed_server.route("/feed", Reply(body=(DATA / "xss.rss").read_bytes())))
    result = refresh_source(session_factory, source_id, fetcher, now=T0)
    assert result.created == 1
    [release] = releases(session_factory)
    assert audit(release.body) == []
    assert "safe link" in release.body and 'href="https://safe.example/ok"' in release.body
    assert 'href="mailto:press@safe.example"' in release.body
    for text in (release.title, release.lead):
        assert "<" not in text and ">" not in text.replace("onload=alert(4)>", "")
    assert release.title == "Безопасный заголовок"
    assert audit(release.lead) == [] and audit(release.title) == []
    assert release.attachments == []  # the javascript: enclosure is dropped
    assert "<" not in (row(session_factory, source_id).title or "")


# -- leases, races, concurrency ---------------------------------------------------------------------


def test_claims_are_leased_and_a_dead_workers_lease_is_taken_over(
    session_factory: sessionmaker[Session], org: Organization
) -> None:
    due = add(session_factory, org, "http://127.0.0.1:9/a")
    later = add(session_factory, org, "http://127.0.0.1:9/b")
    off = add(session_factory, org, "http://127.0.0.1:9/c")
    with session_factory() as session:
        session.get(Source, later).next_check_at = T0 + timedelta(hours=1)  # type: ignore[union-attr]
        session.get(Source, off).disabled = True  # type: ignore[union-attr]
        session.commit()
    lease = timedelta(minutes=10)
    with session_factory() as session:
        claimed = claim_sources(session, "crashed", T0, lease=lease)
        session.commit()
    assert [c.id for c in claimed] == [due]
    with session_factory() as session:
        assert claim_sources(session, "other", T0 + timedelta(minutes=5), lease=lease) == []
        session.commit()
    with session_factory() as session:
        taken = claim_sources(session, "other", T0 + timedelta(minutes=11), lease=lease)
        session.commit()
    assert [c.id for c in taken] == [due]
    assert row(session_factory, due).lease_owner == "other"


def test_poll_now_skips_a_source_another_worker_holds(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    source_id = add(session_factory, org, feed_server.route("/feed", Reply(body=rss(("a", "Одна")))))
    with session_factory() as session:
        claim_sources(session, "busy-worker", T0)
        session.commit()
    result = refresh_source(session_factory, source_id, fetcher, now=T0 + timedelta(minutes=1))
    assert result.status == "skipped" and feed_server.hits["/feed"] == 0


def test_a_raced_entry_is_stored_once(session_factory: sessionmaker[Session], org: Organization) -> None:
    source_id = add(session_factory, org, "http://127.0.0.1:9/feed")
    parsed = parse_feed(rss(("a", "Одна"), ("b", "Две")), url="http://127.0.0.1:9/feed")
    keys = [k for k in (entry_key(e) for e in parsed.entries) if k]
    with session_factory() as mine:
        source = mine.get(Source, source_id)
        assert source is not None
        plan = plan_entries(parsed.entries, known_entries(mine, source_id, keys), country_code="RU",
                            language=feed_language(parsed), now=T0)
        assert len(plan.creates) == 2
        mine.commit()
        # Meanwhile another worker stores entry "a" (with other content) and commits.
        with session_factory() as theirs:
            their_source = theirs.get(Source, source_id)
            assert their_source is not None
            other = plan_entries(parse_feed(rss(("a", "Одна (ранняя)")), url="http://x/").entries, {},
                                 country_code="RU", language="ru", now=T0)
            store_entries(theirs, their_source, other, T0)
            theirs.commit()
        created, updated, unchanged = store_entries(mine, source, plan, T0 + timedelta(minutes=1))
        mine.commit()
    assert (created, updated, unchanged) == (1, 1, 0)
    stored = releases(session_factory)
    assert sorted(r.source_entry_key or "" for r in stored) == ["id:a", "id:b"]
    assert [r.title for r in stored if r.source_entry_key == "id:a"] == ["Одна"]


class _FlakyFetcher:
    """A fake fetcher that raises something unexpected for one URL."""

    def __init__(self, inner: Fetcher, bad: str) -> None:
        self.inner, self.bad = inner, bad

    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
              resource_id: object = None) -> FetchResult:
        if url == self.bad:
            raise RuntimeError("bug in a fetcher")
        return self.inner.fetch(url, etag=etag, last_modified=last_modified, resource_id=resource_id)


def test_an_unexpected_exception_is_recorded_not_raised(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    bad = add(session_factory, org, feed_server.route("/bad", Reply(body=rss(("a", "Одна")))))
    good = add(session_factory, org, feed_server.route("/good", Reply(body=rss(("b", "Две")))))
    results = refresh_due_sources(session_factory, _FlakyFetcher(fetcher, feed_server.url("/bad")), worker="w",
                                  now=T0)
    by_id = {r.source_id: r for r in results}
    assert by_id[good].created == 1
    assert by_id[bad].status == "error" and "RuntimeError" in (by_id[bad].error or "")
    assert row(session_factory, bad).error_count == 1


def test_at_most_one_request_at_a_time_per_host(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer
) -> None:
    in_flight: dict[str, int] = {}
    most: dict[str, int] = {}
    lock = threading.Lock()

    def slow(headers: Mapping[str, str]) -> Reply:
        host = headers["host"].split(":")[0]
        with lock:
            in_flight[host] = in_flight.get(host, 0) + 1
            most[host] = max(most.get(host, 0), in_flight[host])
        time.sleep(0.05)
        with lock:
            in_flight[host] -= 1
        return Reply(body=rss(("x", "Новость")))

    port = feed_server.port
    for i in range(4):
        for host in ("one.test", "two.test"):
            feed_server.route(f"/{host}/{i}", slow)
            add(session_factory, org, f"http://{host}:{port}/{host}/{i}")
    fetcher = Fetcher(allow_private=True, resolver=lambda h, p: ["127.0.0.1"])
    results = refresh_due_sources(session_factory, fetcher, worker="w", now=T0, max_workers=4)
    assert len(results) == 8 and all(r.status == "ok" for r in results)
    assert most == {"one.test": 1, "two.test": 1}


# -- pure decisions ---------------------------------------------------------------------------------


def test_next_check_uses_the_interval_with_jitter() -> None:
    delays = {next_check_at(T0, source_id=i, interval_minutes=30) - T0 for i in range(50)}
    assert len(delays) > 40  # spread out
    assert all(timedelta(minutes=27) <= d <= timedelta(minutes=33) for d in delays)


def test_cache_hints_lengthen_the_interval_within_bounds_and_never_shorten_it() -> None:
    base = dict(source_id=1, interval_minutes=30)
    assert next_check_at(T0, **base, max_age=7200) - T0 >= timedelta(minutes=108)
    assert next_check_at(T0, **base, ttl_minutes=180) - T0 >= timedelta(minutes=162)
    assert next_check_at(T0, **base, max_age=60) - T0 <= timedelta(minutes=33)
    assert next_check_at(T0, **base, ttl_minutes=10 ** 6) - T0 <= MAX_HINTED_INTERVAL * 1.1


def test_retry_after_is_never_undercut_but_is_capped() -> None:
    assert next_check_at(T0, source_id=1, interval_minutes=30, error_count=1, retry_after=5 * 3600) - T0 \
        >= timedelta(hours=5)
    assert next_check_at(T0, source_id=1, interval_minutes=30, error_count=1, retry_after=10 ** 9) - T0 \
        == MAX_BACKOFF


def test_known_entries_only_reads_the_keys_asked_for(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    source_id = add(session_factory, org, feed_server.route("/feed", Reply(body=rss(("a", "A"), ("b", "B")))))
    refresh_source(session_factory, source_id, fetcher, now=T0)
    with session_factory() as session:
        known = known_entries(session, source_id, ["id:b", "id:zzz"])
        assert list(known) == ["id:b"] and isinstance(known["id:b"], KnownEntry)
        assert session.scalar(select(func.count()).select_from(Release)) == 2


def test_a_fetch_error_keeps_the_validators(
    session_factory: sessionmaker[Session], org: Organization, feed_server: FeedServer, fetcher: Fetcher
) -> None:
    state = {"up": True}
    url = feed_server.route("/feed", lambda h: Reply(body=rss(("a", "A")), etag='"x"') if state["up"] else Reply(502))
    source_id = add(session_factory, org, url)
    refresh_source(session_factory, source_id, fetcher, now=T0)
    state["up"] = False
    refresh_source(session_factory, source_id, fetcher, now=T0 + timedelta(hours=1))
    assert row(session_factory, source_id).etag == '"x"'


def test_the_sanitizer_makes_relative_urls_absolute_and_keeps_only_web_schemes() -> None:
    from feeds.sanitize import sanitize_html

    html = ('<a href="/a/b">1</a><a href="../c">2</a><a href="//cdn.example/d">3</a><img src="e.png">'
            '<a href="jav&#x09;ascript:alert(1)">4</a><a href="mailto:pr@p.example">5</a>')
    cleaned = sanitize_html(html, base_url="https://p.example/news/rss/feed.xml")
    assert audit(cleaned) == []
    assert ['https://p.example/a/b', 'https://p.example/news/c', 'https://cdn.example/d',
            'https://p.example/news/rss/e.png', 'mailto:pr@p.example'] == [
        v for _tag, v in _urls(cleaned)]


def _urls(fragment: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.extend((tag, v) for k, v in attrs if k in ("href", "src") and v)

    Collect().feed(fragment)
    return found
