"""Plain values in, bytes out: RSS 2.0, Atom 1.0 and JSON Feed 1.1.

The only module that imports feedgen; feedgen objects never leave it. The
renderers never see a request: every URL they write comes in ``ChannelMeta``
and ``FeedItem`` already absolute.

Output is a pure function of the input (``updated`` is the newest item's
time, items keep their given order), so the same data gives the same bytes
and ETags hold across processes and nodes.

Text is expected free of characters XML forbids (the store strips them on the
way in), so the common path pays nothing for checking it; if some slip
through, lxml refuses them and the feed is rendered again with every field
cleaned, dropping them rather than breaking the document.
"""

from __future__ import annotations

import json
from email.utils import format_datetime
from collections.abc import Callable, Sequence
from dataclasses import fields, replace
from datetime import datetime, timezone
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from feeds.sanitize import strip_illegal_chars
from feeds.types import Attachment, ChannelMeta, FeedItem

ATOM_NS = "http://www.w3.org/2005/Atom"
DC_NS = "http://purl.org/dc/elements/1.1/"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "Syndicate"
# What an empty feed says it was updated at when the channel gives no date.
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)

CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}


def feed_updated(meta: ChannelMeta, items: Sequence[FeedItem]) -> datetime:
    """The feed's ``updated``/``lastBuildDate``: its newest item's time."""
    if items:
        return max(item.updated for item in items)
    return meta.empty_updated or EPOCH


def _paging_links(meta: ChannelMeta) -> list[tuple[str, str]]:
    """(rel, href) of the RFC 5005 and WebSub links, in a fixed order."""
    links = [("first", meta.first_url), ("next", meta.next_url), ("previous", meta.previous_url),
             ("hub", meta.hub_url)]
    return [(rel, href) for rel, href in links if href]


# -- RSS and Atom: feedgen writes the channel, the items are written here --------
#
# Measured (50 releases of ~3 KB): feedgen's per-entry path (a FeedEntry object
# per item, ``ensure_format`` on every setter, three ``setlocale`` calls per
# RFC 822 date) costs about as much again as the query that loads the items,
# which puts a cold render well over the budget of 1.3x bare feedgen. So
# feedgen builds the channel (title, links, dates, generator, namespaces) and
# a feedgen extension appends the items, made directly as lxml elements, to
# the same tree; one ``tostring`` serializes the whole document.

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _rfc822(value: datetime) -> str:
    """RFC 822 date in UTC with English names whatever the process locale."""
    v = value.astimezone(timezone.utc)
    return f"{_DAYS[v.weekday()]}, {v.day:02d} {_MONTHS[v.month - 1]} {v.year:04d} {v:%H:%M:%S} +0000"


def _sub(parent: Any, tag: str, text: str | None = None, **attributes: str) -> Any:
    element = etree.SubElement(parent, tag, attributes) if attributes else etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


_CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
_DC_CREATOR = f"{{{DC_NS}}}creator"
_ATOM_LINK = f"{{{ATOM_NS}}}link"
_PERMALINK_FALSE = {"isPermaLink": "false"}


def _rss_item(channel: Any, item: FeedItem, sub: Any = etree.SubElement) -> None:
    # The hottest loop of a cold render: SubElement bound locally, no helper calls.
    element = sub(channel, "item")
    sub(element, "title").text = item.title
    sub(element, "link").text = item.url
    sub(element, "description").text = item.summary or item.title
    sub(element, _CONTENT_ENCODED).text = item.content_html
    # RSS <author> must be an e-mail address, which an organization does not have.
    sub(element, _DC_CREATOR).text = item.author_name
    sub(element, "guid", _PERMALINK_FALSE).text = item.guid
    for label, scheme in item.categories:
        sub(element, "category", {"domain": scheme}).text = label
    if item.enclosures:
        # RSS 2.0 has room for one enclosure an item; Atom and JSON Feed carry all.
        first = item.enclosures[0]
        sub(element, "enclosure", {"url": first.url, "length": str(first.length), "type": first.type})
    sub(element, "pubDate").text = _rfc822(item.published)


# feedgen makes the Atom tree of un-namespaced elements under a literal
# xmlns attribute; entries are built the same way so they serialize alike.
_A = ""


def _atom_entry(feed: Any, item: FeedItem) -> None:
    entry = etree.SubElement(feed, _A + "entry")
    _sub(entry, _A + "id", item.guid)
    _sub(entry, _A + "title", item.title)
    _sub(entry, _A + "updated", item.updated.astimezone(timezone.utc).isoformat())
    _sub(entry, _A + "published", item.published.astimezone(timezone.utc).isoformat())
    author = _sub(entry, _A + "author")
    _sub(author, _A + "name", item.author_name)
    _sub(author, _A + "uri", item.author_url)
    _sub(entry, _A + "link", href=item.url, rel="alternate", type="text/html")
    for a in item.enclosures:
        _sub(entry, _A + "link", href=a.url, rel="enclosure", type=a.type, length=str(a.length))
    if item.summary:
        _sub(entry, _A + "summary", item.summary)
    _sub(entry, _A + "content", item.content_html, type="html")
    for label, scheme in item.categories:
        _sub(entry, _A + "category", term=label, scheme=scheme, label=label)


class _Items(BaseExtension):  # type: ignore[misc]
    """The feedgen extension that appends the items (and, in RSS, the paging links)."""

    def __init__(self) -> None:
        self.items: Sequence[FeedItem] = ()
        self.links: list[tuple[str, str]] = []
        self.namespaces: dict[str, str] = {}

    def extend_ns(self) -> dict[str, str]:
        return self.namespaces

    def extend_rss(self, feed: Any) -> Any:
        channel = feed[0]
        # feedgen writes only the first rel="self" link into RSS.
        for rel, href in self.links:
            _sub(channel, _ATOM_LINK, href=href, rel=rel)
        for item in self.items:
            _rss_item(channel, item)
        return feed

    def extend_atom(self, feed: Any) -> Any:
        for item in self.items:
            _atom_entry(feed, item)
        return feed


class _NoEntryExtension(BaseEntryExtension):  # type: ignore[misc]
    pass


def _generator(items: Sequence[FeedItem], *, rss: bool, links: list[tuple[str, str]]) -> Any:
    fg = FeedGenerator()
    fg.register_extension("syndicate", _Items, _NoEntryExtension, atom=not rss, rss=rss)
    fg.syndicate.items = items
    fg.syndicate.links = links
    fg.syndicate.namespaces = {"dc": DC_NS} if rss else {}
    return fg


def _rss(meta: ChannelMeta, items: Sequence[FeedItem]) -> bytes:
    fg = _generator(items, rss=True, links=_paging_links(meta))
    fg.title(meta.title)
    fg.description(meta.description)
    fg.language(meta.language)
    fg.generator(GENERATOR)
    fg.link(href=meta.self_url, rel="self", type="application/rss+xml")
    # feedgen makes the last link added the RSS <link>: the channel's HTML page.
    fg.link(href=meta.html_url, rel="alternate")
    fg.lastBuildDate(feed_updated(meta, items))
    return bytes(fg.rss_str(pretty=False, encoding="UTF-8", xml_declaration=True))


def _atom(meta: ChannelMeta, items: Sequence[FeedItem]) -> bytes:
    fg = _generator(items, rss=False, links=[])
    fg.id(meta.feed_id)
    fg.title(meta.title)
    fg.subtitle(meta.description)
    fg.language(meta.language)
    fg.generator(GENERATOR)
    fg.author(name=meta.author_name)
    fg.link(href=meta.self_url, rel="self", type="application/atom+xml")
    fg.link(href=meta.html_url, rel="alternate", type="text/html")
    for rel, href in _paging_links(meta):
        fg.link(href=href, rel=rel)
    fg.updated(feed_updated(meta, items))
    return bytes(fg.atom_str(pretty=False, encoding="UTF-8", xml_declaration=True))


def _rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _json_attachment(attachment: Attachment) -> dict[str, Any]:
    data: dict[str, Any] = {"url": attachment.url, "mime_type": attachment.type}
    if attachment.length:
        data["size_in_bytes"] = attachment.length
    if attachment.title:
        data["title"] = attachment.title
    return data


def _json_item(item: FeedItem) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": item.guid,
        "url": item.url,
        "title": item.title,
        "content_html": item.content_html,
        "date_published": _rfc3339(item.published),
        "date_modified": _rfc3339(item.updated),
        "authors": [{"name": item.author_name, "url": item.author_url}],
        "language": item.language,
    }
    if item.summary:
        data["summary"] = item.summary
    if item.categories:
        data["tags"] = [label for label, _ in item.categories]
    if item.enclosures:
        data["attachments"] = [_json_attachment(a) for a in item.enclosures]
    return data


def _json(meta: ChannelMeta, items: Sequence[FeedItem]) -> bytes:
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": meta.title,
        "home_page_url": meta.html_url,
        "feed_url": meta.self_url,
        "description": meta.description,
        "language": meta.language,
        "authors": [{"name": meta.author_name}],
        "items": [_json_item(item) for item in items],
    }
    if meta.next_url:
        feed["next_url"] = meta.next_url
    if meta.hub_url:
        feed["hubs"] = [{"type": "WebSub", "url": meta.hub_url}]
    text = json.dumps(feed, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    # Forbidden characters come out of json.dumps as \u00XX escapes (or as
    # lone surrogates that cannot be encoded): drop them as XML formats do.
    if "\\u00" in text or "\ufffe" in text or "\uffff" in text:
        raise ValueError("text holds characters that are not allowed in a feed")
    return text.encode("utf-8")


# -- public surface --------------------------------------------------------------


def _clean_item(item: FeedItem) -> FeedItem:
    changes: dict[str, Any] = {}
    for f in fields(item):
        value = getattr(item, f.name)
        if isinstance(value, str):
            changes[f.name] = strip_illegal_chars(value)
    changes["categories"] = tuple(
        (strip_illegal_chars(label), strip_illegal_chars(scheme)) for label, scheme in item.categories
    )
    changes["enclosures"] = tuple(
        replace(a, url=strip_illegal_chars(a.url), type=strip_illegal_chars(a.type),
                title=strip_illegal_chars(a.title) if a.title else a.title)
        for a in item.enclosures
    )
    return replace(item, **changes)


def _clean_meta(meta: ChannelMeta) -> ChannelMeta:
    changes: dict[str, Any] = {f.name: strip_illegal_chars(getattr(meta, f.name))
                               for f in fields(meta) if isinstance(getattr(meta, f.name), str)}
    return replace(meta, **changes)


def _guarded(writer: Callable[[ChannelMeta, Sequence[FeedItem]], bytes]) -> Callable[
        [ChannelMeta, Sequence[FeedItem]], bytes]:
    def render(meta: ChannelMeta, items: Sequence[FeedItem]) -> bytes:
        try:
            return writer(meta, items)
        except (ValueError, UnicodeEncodeError):
            # lxml refuses control characters and lone surrogates; clean and retry.
            return writer(_clean_meta(meta), [_clean_item(item) for item in items])

    render.__doc__ = writer.__doc__
    return render


render_rss = _guarded(_rss)
render_rss.__doc__ = "RSS 2.0 with content:encoded, dc:creator, atom:link self/paging/hub."
render_atom = _guarded(_atom)
render_atom.__doc__ = "Atom 1.0 (RFC 4287) with RFC 5005 paging links and enclosures."
render_json_feed = _guarded(_json)
render_json_feed.__doc__ = "JSON Feed 1.1, keys sorted, compact, UTF-8."

RENDERERS: dict[str, Callable[[ChannelMeta, Sequence[FeedItem]], bytes]] = {
    "rss": render_rss,
    "atom": render_atom,
    "json": render_json_feed,
}


def render_feed(fmt: str, meta: ChannelMeta, items: Sequence[FeedItem]) -> bytes:
    """Render ``items`` under ``meta`` as ``fmt`` (``rss``, ``atom`` or ``json``)."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown feed format {fmt!r}") from None
    return renderer(meta, items)


def render_opml(title: str, groups: Sequence[tuple[str, Sequence[tuple[str, str, str]]]],
                created: datetime | None = None) -> bytes:
    """OPML 2.0: ``groups`` of (group title, [(text, feed URL, page URL), …]).

    Each feed is an ``<outline type="rss">`` (the OPML name for any feed).
    """
    opml = etree.Element("opml", version="2.0")
    head = etree.SubElement(opml, "head")
    etree.SubElement(head, "title").text = strip_illegal_chars(title)
    if created is not None:
        etree.SubElement(head, "dateCreated").text = format_datetime(created.astimezone(timezone.utc), usegmt=True)
    body = etree.SubElement(opml, "body")
    for group_title, outlines in groups:
        group = etree.SubElement(body, "outline", text=strip_illegal_chars(group_title))
        for text, xml_url, html_url in outlines:
            clean = strip_illegal_chars(text)
            etree.SubElement(group, "outline", type="rss", text=clean, title=clean,
                             xmlUrl=xml_url, htmlUrl=html_url)
    return bytes(etree.tostring(opml, encoding="UTF-8", xml_declaration=True, pretty_print=True))

