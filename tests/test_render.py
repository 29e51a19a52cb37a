"""feeds.render: valid RSS, Atom and JSON Feed that survive hostile text, read back by feedparser."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from feedcheck import ATOM, NS, check_atom, check_json_feed, check_rss, links, parse_xml
from feeds.render import render_atom, render_feed, render_json_feed, render_opml, render_rss
from feeds.types import Attachment, ChannelMeta, FeedItem

UTC = timezone.utc
BASE = "http://127.0.0.1:8000"
DATA = Path(__file__).parent / "data"
HOSTILE = 'A & B <b>bold</b> "quoted" \'single\' ]]> \x01\x0b\x1f\ufffe Кириллица ёлка'


def make_item(n: int, **changes: object) -> FeedItem:
    published = datetime(2024, 3, 1, 8, 27, tzinfo=UTC) + timedelta(hours=n)
    item = FeedItem(
        guid=f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        url=f"{BASE}/releases/{n}-elektrobusy",
        title=f"В Приангарье откроется производство электробусов №{n}",
        summary="Развитие сотрудничества обсудили во время рабочей встречи.",
        content_html=f"<p>Текст релиза {n} &amp; подробности &lt;важно&gt;.</p><p>«Кавычки»</p>",
        author_name="АИРР",
        author_url=f"{BASE}/organizations/airr",
        published=published,
        updated=published + timedelta(minutes=5),
        language="ru",
        categories=(("Россия", f"{BASE}/countries/"), ("АИРР", f"{BASE}/organizations/")),
        enclosures=(
            Attachment(url=f"{BASE}/files/{n}.jpg", type="image/jpeg", length=12345, title="Фото"),
            Attachment(url=f"{BASE}/files/{n}.pdf", type="application/pdf", length=999),
        ),
    )
    return item if not changes else FeedItem(**{**item.__dict__, **changes})


def make_meta(fmt: str = "rss", **changes: object) -> ChannelMeta:
    meta = ChannelMeta(
        feed_id=f"{BASE}/feeds/organizations/airr.{fmt}",
        title="АИРР — пресс-релизы",
        description="Пресс-релизы организации АИРР на Syndicate",
        language="ru",
        html_url=f"{BASE}/organizations/airr",
        self_url=f"{BASE}/feeds/organizations/airr.{fmt}?limit=3&page=2",
        author_name="АИРР",
        first_url=f"{BASE}/feeds/organizations/airr.{fmt}?limit=3",
        next_url=f"{BASE}/feeds/organizations/airr.{fmt}?limit=3&page=3",
        previous_url=f"{BASE}/feeds/organizations/airr.{fmt}?limit=3",
        hub_url="http://127.0.0.1:9/hub",
    )
    return meta if not changes else ChannelMeta(**{**meta.__dict__, **changes})


ITEMS = [make_item(3), make_item(2), make_item(1)]


def test_rss_is_valid_and_reads_back() -> None:
    body = render_rss(make_meta("rss"), ITEMS)
    channel = check_rss(body).find("channel")
    assert channel.findtext("link") == f"{BASE}/organizations/airr"  # the HTML page, not the feed
    assert links(channel) == {
        "self": f"{BASE}/feeds/organizations/airr.rss?limit=3&page=2",
        "first": f"{BASE}/feeds/organizations/airr.rss?limit=3",
        "next": f"{BASE}/feeds/organizations/airr.rss?limit=3&page=3",
        "previous": f"{BASE}/feeds/organizations/airr.rss?limit=3",
        "hub": "http://127.0.0.1:9/hub",
    }
    assert channel.findtext("language") == "ru"
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    assert parsed.feed.title == "АИРР — пресс-релизы"
    assert [e.id for e in parsed.entries] == [i.guid for i in ITEMS]
    for entry, item in zip(parsed.entries, ITEMS):
        assert entry.guidislink is False
        assert entry.title == item.title
        assert entry.link == item.url
        assert entry.summary == item.summary
        assert entry.content[0].value == item.content_html
        assert entry.author == "АИРР"  # dc:creator
        assert [t.term for t in entry.tags] == ["Россия", "АИРР"]
        assert datetime(*entry.published_parsed[:6], tzinfo=UTC) == item.published
        assert [e.href for e in entry.enclosures] == [item.enclosures[0].url]
        assert entry.enclosures[0].type == "image/jpeg" and entry.enclosures[0].length == "12345"
    # lastBuildDate is the newest item's time, whatever the order of the items.
    assert channel.findtext("lastBuildDate") == "Fri, 01 Mar 2024 11:32:00 +0000"


def test_atom_is_valid_per_rfc_4287_and_reads_back() -> None:
    body = render_atom(make_meta("atom"), ITEMS)
    root = check_atom(body)
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "ru"
    assert root.findtext("atom:id", namespaces=NS) == f"{BASE}/feeds/organizations/airr.atom"
    assert root.findtext("atom:updated", namespaces=NS) == "2024-03-01T11:32:00+00:00"
    feed_links = {link.get("rel"): link for link in root.findall("atom:link", NS)}
    assert set(feed_links) == {"self", "alternate", "first", "next", "previous", "hub"}
    assert feed_links["alternate"].get("type") == "text/html"
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    for entry, item in zip(parsed.entries, ITEMS):
        assert entry.id == item.guid
        assert entry.title == item.title
        assert entry.link == item.url
        assert entry.summary == item.summary
        assert entry.content[0].type == "text/html"
        assert entry.content[0].value == item.content_html
        assert entry.author_detail.name == "АИРР" and entry.author_detail.href == item.author_url
        assert datetime(*entry.updated_parsed[:6], tzinfo=UTC) == item.updated
        assert datetime(*entry.published_parsed[:6], tzinfo=UTC) == item.published
        assert [(t.term, t.scheme) for t in entry.tags] == list(item.categories)
        enclosures = [(link.href, link.type, link.length) for link in entry.links if link.rel == "enclosure"]
        assert enclosures == [(a.url, a.type, str(a.length)) for a in item.enclosures]


def test_json_feed_is_valid_against_the_schema_and_reads_back() -> None:
    body = render_json_feed(make_meta("json"), ITEMS)
    feed = check_json_feed(body)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == f"{BASE}/feeds/organizations/airr.json?limit=3&page=2"
    assert feed["home_page_url"] == f"{BASE}/organizations/airr"
    assert feed["next_url"] == f"{BASE}/feeds/organizations/airr.json?limit=3&page=3"
    assert feed["hubs"] == [{"type": "WebSub", "url": "http://127.0.0.1:9/hub"}]
    for data, item in zip(feed["items"], ITEMS):
        assert data["id"] == item.guid and data["url"] == item.url and data["title"] == item.title
        assert data["content_html"] == item.content_html and data["summary"] == item.summary
        assert datetime.fromisoformat(data["date_modified"].replace("Z", "+00:00")) == item.updated
        assert data["tags"] == ["Россия", "АИРР"]
        assert [a["url"] for a in data["attachments"]] == [a.url for a in item.enclosures]
    # (feedparser 6 does not read JSON Feed; the schema and the fields above are the round trip.)


def test_a_json_feed_without_a_next_page_has_no_next_url() -> None:
    feed = check_json_feed(render_json_feed(make_meta("json", next_url=None, hub_url=None), ITEMS))
    assert "next_url" not in feed and "hubs" not in feed


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_hostile_text_comes_through_and_illegal_characters_are_dropped(fmt: str) -> None:
    item = make_item(1, title=HOSTILE, summary=HOSTILE, content_html="<p>" + HOSTILE + "</p>", author_name=HOSTILE,
                     categories=((HOSTILE, f"{BASE}/countries/"),))
    meta = make_meta(fmt, title=HOSTILE, description=HOSTILE)
    body = render_feed(fmt, meta, [item])
    expected = 'A & B <b>bold</b> "quoted" \'single\' ]]>  Кириллица ёлка'
    if fmt == "json":
        feed = check_json_feed(body)
        assert feed["title"] == expected
        assert feed["items"][0]["title"] == expected
        assert feed["items"][0]["content_html"] == "<p>" + expected + "</p>"
        return
    (check_rss if fmt == "rss" else check_atom)(body)
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    # feedparser sanitizes titles as HTML; compare the raw XML text instead.
    root = parse_xml(body)
    if fmt == "rss":
        raw_title = root.find("channel/item/title").text
        raw_content = root.find("channel/item/content:encoded", NS).text
    else:
        raw_title = root.find("atom:entry/atom:title", NS).text
        raw_content = root.find("atom:entry/atom:content", NS).text
    assert raw_title == expected
    assert raw_content == "<p>" + expected + "</p>"
    assert parsed.entries[0].content[0].value.endswith("Кириллица ёлка</p>")


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_same_data_gives_the_same_bytes(fmt: str) -> None:
    first = render_feed(fmt, make_meta(fmt), ITEMS)
    second = render_feed(fmt, make_meta(fmt), [make_item(3), make_item(2), make_item(1)])
    assert first == second
    corrected = render_feed(fmt, make_meta(fmt), [make_item(3, updated=datetime(2025, 1, 1, tzinfo=UTC))] + ITEMS[1:])
    assert corrected != first


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_golden_files(fmt: str) -> None:
    """Byte-for-byte what the renderer wrote when this test was made (guards ETags and readers)."""
    golden = (DATA / f"golden_airr.{fmt}").read_bytes()
    assert render_feed(fmt, make_meta(fmt), ITEMS) == golden


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_an_empty_feed_is_valid_and_dated_by_the_channel(fmt: str) -> None:
    created = datetime(2023, 9, 5, 5, 27, tzinfo=UTC)
    body = render_feed(fmt, make_meta(fmt, next_url=None, empty_updated=created), [])
    if fmt == "rss":
        assert check_rss(body).find("channel").findtext("lastBuildDate") == "Tue, 05 Sep 2023 05:27:00 +0000"
    elif fmt == "atom":
        assert check_atom(body).findtext(f"{{{ATOM}}}updated") == "2023-09-05T05:27:00+00:00"
    else:
        assert check_json_feed(body)["items"] == []


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        render_feed("xml", make_meta(), ITEMS)


def test_opml_lists_every_feed() -> None:
    body = render_opml("Syndicate — все ленты", [
        ("Организации", [("АИРР & Co", f"{BASE}/feeds/organizations/airr.rss", f"{BASE}/organizations/airr")]),
        ("Страны", [("Россия", f"{BASE}/feeds/countries/ru.rss", f"{BASE}/countries/ru")]),
    ])
    root = etree.fromstring(body)
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "Syndicate — все ленты"
    feeds = root.findall("body/outline/outline")
    assert [(o.get("type"), o.get("text"), o.get("xmlUrl")) for o in feeds] == [
        ("rss", "АИРР & Co", f"{BASE}/feeds/organizations/airr.rss"),
        ("rss", "Россия", f"{BASE}/feeds/countries/ru.rss"),
    ]


def test_golden_json_is_stable_json() -> None:
    # The golden JSON file is compact, key-sorted UTF-8 (stable across Python versions).
    data = (DATA / "golden_airr.json").read_bytes()
    assert data == json.dumps(json.loads(data), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
