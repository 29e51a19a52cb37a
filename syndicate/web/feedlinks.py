"""Where a channel's feeds live, for autodiscovery tags and feed buttons.

Paths come from ``feeds.channels.FeedRequest``, the same code that serves
them, so a page can never advertise a feed URL the feed routes do not answer.
Templates call ``feed_links(kind, key)`` (registered as a Jinja global).
"""

from __future__ import annotations

from dataclasses import dataclass

from feeds.channels import FORMATS, FeedRequest

MEDIA_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
LABELS = {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}


@dataclass(frozen=True)
class FeedLink:
    """One feed of a channel: format, media type, label and URL."""

    fmt: str
    media_type: str
    label: str
    url: str


def channel_feed_links(kind: str, key: str = "", *, base_url: str = "") -> list[FeedLink]:
    """RSS, Atom and JSON Feed links of a stable channel.

    ``kind`` is ``all``, ``organization`` (``key`` = slug) or ``country``
    (``key`` = alpha-2 code, any case). Without ``base_url`` the URLs are
    root-relative, which is what autodiscovery tags want.
    """
    if kind == "country":
        key = key.lower()
    return [
        FeedLink(fmt, MEDIA_TYPES[fmt], LABELS[fmt], base_url + FeedRequest(kind=kind, fmt=fmt, key=key).path)
        for fmt in FORMATS
    ]
