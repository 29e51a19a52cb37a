"""Parsing partner feeds: real feed files with expected results, and bodies that are not feeds."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from feeds.decide import entry_draft, entry_key
from feeds.errors import ParseError
from feeds.parse import decode_document, parse_feed, strip_declarations

DATA = Path(__file__).parent / "data" / "partner_feeds"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("href", "src") and v]


def links_in(fragment: str) -> list[str]:
    parser = _Links()
    parser.feed(fragment)
    return parser.urls


@pytest.mark.parametrize(
    "feed_file, expected_file",
    [
        ("airr.rss", "airr.expected.json"),
        ("regions.atom", "regions.expected.json"),
        ("cp1251_declared.rss", "cp1251.expected.json"),
        ("cp1251_undeclared.rss", "cp1251.expected.json"),
    ],
)
def test_feed_files_parse_to_their_expected_results(feed_file: str, expected_file: str) -> None:
    expected = json.loads((DATA / expected_file).read_text(encoding="utf-8"))
    feed = parse_feed((DATA / feed_file).read_bytes(), headers={}, url=expected["url"])
    assert feed.version == expected["version"]
    assert feed.title == expected["title"]
    assert feed.link == expected["link"]
    assert feed.language == expected["language"]
    assert feed.ttl_minutes == expected["ttl_minutes"]
    if "warning" in expected:
        assert feed.warning == expected["warning"]
    assert len(feed.entries) == len(expected["entries"])
    for entry, want in zip(feed.entries, expected["entries"]):
        draft = entry_draft(entry, country_code="RU", language="ru", now=NOW)
        assert draft is not None
        key = entry_key(entry)
        assert key == want["key"] or (want["key"] == "hash" and key and key.startswith("hash:"))
        assert draft.title == want["title"]
        assert entry.link == want["link"]
        assert draft.canonical_url == want["link"]
        published = datetime.fromisoformat(want["published"]) if want["published"] else NOW
        assert draft.published_at == published
        assert draft.lead.startswith(want["lead_starts"])
        assert links_in(draft.body) == want["body_links"]
        assert [a.url for a in draft.attachments] == want["enclosures"]


def test_undeclared_windows_1251_is_read_as_russian_and_says_so() -> None:
    feed = parse_feed((DATA / "cp1251_undeclared.rss").read_bytes(), url="https://press.example/rss")
    assert feed.entries[0].title == "Губернатор обсудил производство электробусов"
    assert feed.warning and "cp1251" in feed.warning


def test_a_wrong_http_charset_does_not_garble_cyrillic() -> None:
    data = (DATA / "cp1251_undeclared.rss").read_bytes()
    feed = parse_feed(data, headers={"content-type": "application/rss+xml; charset=utf-8"}, url="https://p.example/")
    assert feed.title == "Пресс-центр"
    assert feed.warning and "utf-8" in feed.warning
    # and UTF-8 bytes mislabelled as windows-1251 are still read as UTF-8
    utf8 = (DATA / "airr.rss").read_bytes()
    feed = parse_feed(utf8, headers={"content-type": "text/xml; charset=windows-1251"}, url="https://a.example/")
    assert feed.title == "АИРР — новости"


def test_koi8_r_is_told_apart_from_windows_1251() -> None:
    text = '<rss version="2.0"><channel><title>Новости региона</title><item><title>Открыт новый завод</title>' \
           '<guid>k1</guid></item></channel></rss>'
    feed = parse_feed(text.encode("koi8-r"), url="https://k.example/")
    assert feed.entries[0].title == "Открыт новый завод"


@pytest.mark.parametrize("name", ["billion_laughs.rss", "entity_blowup.rss"])
def test_entity_declarations_are_removed_before_parsing(name: str) -> None:
    data = (DATA / name).read_bytes()
    feed = parse_feed(data, url="https://x.example/feed")
    assert len(feed.entries) == 1
    entry = feed.entries[0]
    # Nothing was expanded: the parsed text is no bigger than the document.
    assert len(entry.summary_html) + len(entry.title) < 2 * len(data)
    assert "lolol" not in entry.title and "xxxx" not in entry.summary_html
    assert feed.warning  # the undefined references made it "bozo"; the entry is still ingested


def test_strip_declarations_handles_brackets_and_quotes_in_the_internal_subset() -> None:
    doc = '<?xml version="1.0"?>\n<!DOCTYPE rss [ <!-- ] > --> <!ENTITY a "x]>y"> <!ENTITY b \'>\'> ]>\n<rss/>'
    assert strip_declarations(doc) == '<?xml version="1.0"?>\n\n<rss/>'
    assert strip_declarations('<!ENTITY x "1"><rss/>') == "<rss/>"


def test_decode_document_prefers_a_byte_order_mark() -> None:
    data = "\ufeff<rss/>".encode("utf-16-le")
    text, codec, warning = decode_document(data, {"content-type": "text/xml; charset=koi8-r"})
    assert text == "<rss/>" and codec == "utf-16-le" and warning is None


def test_bozo_feed_with_entries_is_kept_with_a_warning() -> None:
    data = b'<rss version="2.0"><channel><title>Broken</title><item><title>One</title><guid>1</guid></item>' \
           b'<item><title>Two & three</title><guid>2</guid></item></channel>'
    feed = parse_feed(data, url="https://b.example/")
    assert [e.title for e in feed.entries] == ["One", "Two & three"]
    assert feed.warning


def test_an_empty_valid_feed_is_not_an_error() -> None:
    feed = parse_feed(b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>', url="https://q.example/")
    assert feed.entries == () and feed.warning is None


@pytest.mark.parametrize(
    "body, headers, message",
    [
        (b"", {}, "empty"),
        (b"   \n ", {}, "empty"),
        (b"<!DOCTYPE html><html><head><title>Partner</title></head><body><p>Hi</p></body></html>", {}, "HTML"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {"content-type": "image/png"}, "PNG"),
        (b"GIF89a\x01\x00\x01\x00", {}, "GIF"),
        (b"binary", {"content-type": "image/webp"}, "image/webp"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', {}, "not a feed"),
        (b"<rss version='2.0'><channel><title>x</title", {}, "feed"),
        (b"Just some text, no markup at all.", {"content-type": "text/plain"}, "not a feed"),
    ],
)
def test_what_is_not_a_feed_is_a_parse_error(body: bytes, headers: dict[str, str], message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_feed(body, headers=headers, url="https://n.example/", resource_id=7)
    assert message in str(info.value)
    assert info.value.resource_id == 7


def test_rss_ttl_is_exposed_in_minutes() -> None:
    feed = parse_feed(b'<rss version="2.0"><channel><title>t</title><ttl>240</ttl><item><title>a</title>'
                      b'<guid>a</guid></item></channel></rss>', url="https://t.example/")
    assert feed.ttl_minutes == 240


def test_enclosures_keep_only_web_urls_and_plain_media_types() -> None:
    data = b'<rss version="2.0"><channel><title>t</title><item><title>a</title><guid>a</guid>' \
           b'<enclosure url="/f/a.pdf" type="application/pdf" length="12"/>' \
           b'<enclosure url="/f/b.bin" type="text/html&quot;&gt;&lt;script&gt;" length="x"/>' \
           b'<enclosure url="javascript:alert(1)" type="image/png" length="1"/></item></channel></rss>'
    [entry] = parse_feed(data, url="https://e.example/rss/").entries
    assert [(a.url, a.type, a.length) for a in entry.enclosures] == [
        ("https://e.example/f/a.pdf", "application/pdf", 12),
        ("https://e.example/f/b.bin", "application/octet-stream", 0),
    ]
