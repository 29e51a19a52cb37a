"""Structural validity checks of RSS 2.0, Atom 1.0 (RFC 4287) and JSON Feed 1.1 documents.

Used by the render and HTTP tests. Every check parses the bytes with a real
parser (lxml for XML, json + jsonschema for JSON Feed) and asserts what the
specifications require; feedparser is used for round trips in the tests.
"""

from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import jsonschema
from lxml import etree

ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
NS = {"atom": ATOM, "content": CONTENT, "dc": DC}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
SCHEMA_PATH = Path(__file__).parent / "data" / "jsonfeed-1.1.schema.json"
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def parse_xml(body: bytes) -> Any:
    """Parse strictly (no recovery): a malformed document raises."""
    parser = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
    root = etree.fromstring(body, parser)
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert not XML_ILLEGAL.search(body.decode("utf-8"))
    return root


def _text(element: Any, path: str) -> str:
    found = element.find(path, NS)
    assert found is not None, f"missing {path}"
    return str(found.text or "")


def links(element: Any, ns_prefix: str = "atom:") -> dict[str, str]:
    """rel -> href of the atom:link children of ``element``."""
    return {link.get("rel", "alternate"): link.get("href") for link in element.findall(f"{ns_prefix}link", NS)}


def check_rss(body: bytes) -> Any:
    """RSS 2.0: required channel and item elements, guids, dates, self link."""
    root = parse_xml(body)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channels = root.findall("channel")
    assert len(channels) == 1
    channel = channels[0]
    for name in ("title", "link", "description"):
        assert _text(channel, name).strip(), f"channel {name} is empty"
    assert _text(channel, "link").startswith(("http://", "https://"))
    parsedate_to_datetime(_text(channel, "lastBuildDate"))
    channel_links = links(channel)
    assert "self" in channel_links
    self_link = channel.find("atom:link[@rel='self']", NS)
    assert self_link.get("type") == "application/rss+xml"
    guids = []
    for item in channel.findall("item"):
        assert item.findtext("title") or item.findtext("description")
        guid = item.find("guid")
        assert guid is not None and guid.get("isPermaLink") == "false" and guid.text
        guids.append(guid.text)
        assert item.findtext("link", "").startswith(("http://", "https://"))
        parsedate_to_datetime(item.findtext("pubDate"))
        assert item.find("author") is None, "RSS <author> must be an e-mail address; use dc:creator"
        for enclosure in item.findall("enclosure"):
            assert enclosure.get("url") and enclosure.get("type") and enclosure.get("length", "").isdigit()
        assert len(item.findall("enclosure")) <= 1
    assert len(guids) == len(set(guids)), "duplicate guid"
    return root


def check_atom(body: bytes) -> Any:
    """Atom 1.0 per RFC 4287: ids, titles, updated, authors, links, content."""
    root = parse_xml(body)
    assert root.tag == f"{{{ATOM}}}feed"
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"atom:{name}", NS)) == 1, f"feed must have exactly one {name}"
    assert RFC3339.match(_text(root, "atom:updated"))
    feed_has_author = root.find("atom:author/atom:name", NS) is not None
    feed_links = root.findall("atom:link", NS)
    assert any(link.get("rel") == "self" for link in feed_links)
    alternates = [(link.get("type"), link.get("hreflang")) for link in feed_links if link.get("rel", "alternate") == "alternate"]
    assert len(alternates) == len(set(alternates)), "two alternate links with the same type and hreflang"
    ids = []
    for entry in root.findall("atom:entry", NS):
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"atom:{name}", NS)) == 1, f"entry must have exactly one {name}"
        ids.append(_text(entry, "atom:id"))
        assert RFC3339.match(_text(entry, "atom:updated"))
        published = entry.find("atom:published", NS)
        assert published is None or RFC3339.match(published.text)
        assert feed_has_author or entry.find("atom:author/atom:name", NS) is not None
        content = entry.find("atom:content", NS)
        entry_links = entry.findall("atom:link", NS)
        if content is None:
            assert any(link.get("rel", "alternate") == "alternate" for link in entry_links)
        else:
            assert content.get("type") in ("text", "html", "xhtml")
            assert entry.find("atom:summary", NS) is not None or content.get("src") is None
        for link in entry_links:
            assert link.get("href")
            if link.get("rel") == "enclosure":
                assert link.get("length", "").isdigit()
    assert len(ids) == len(set(ids)), "duplicate entry id"
    return root


_validator: jsonschema.protocols.Validator | None = None


def check_json_feed(body: bytes) -> dict[str, Any]:
    """JSON Feed 1.1 against the schema in tests/data, plus what a schema cannot say."""
    global _validator
    if _validator is None:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        _validator = cls(schema)
    feed = json.loads(body.decode("utf-8"))
    _validator.validate(feed)
    ids = [item["id"] for item in feed["items"]]
    assert len(ids) == len(set(ids)), "duplicate item id"
    return feed  # type: ignore[no-any-return]


CHECKS = {"rss": check_rss, "atom": check_atom, "json": check_json_feed}
