"""After a commit that changed releases: invalidate feed caches and ping the WebSub hub.

``feeds.store`` notes the channels a transaction touches in ``session.info``
(``feeds.changes``). ``install_change_listeners`` hooks a session factory so
that, after each commit, those notes reach whoever cares: the web workers'
feed cache and, when ``SYNDICATE_WEBSUB_HUB`` is set, the hub, which is told
``hub.mode=publish`` with ``hub.url`` for each affected feed. The hub is
called on a background thread, never on the request thread; a failure is
logged, never raised.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlencode

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from feeds.changes import ChannelRef, discard_changes, pop_changes
from feeds.channels import FORMATS, FeedRequest

log = logging.getLogger(__name__)

ChangeHandler = Callable[[set[ChannelRef]], None]


def feed_urls(base_url: str, changes: Iterable[ChannelRef]) -> list[str]:
    """Every feed URL (all formats) of the stable channels in ``changes``, sorted."""
    urls = set()
    for ref in changes:
        for fmt in FORMATS:
            urls.add(base_url + FeedRequest(kind=ref.kind, fmt=fmt, key=ref.key).path)
    return sorted(urls)


class WebSubNotifier:
    """Tells a hub that feeds changed, one POST a feed URL, on its own thread."""

    def __init__(self, hub_url: str, base_url: str, *, timeout: float = 10.0) -> None:
        self.hub_url = hub_url
        self.base_url = base_url
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="websub")

    def notify(self, changes: set[ChannelRef]) -> Future[list[str]]:
        """Queue the publish pings for ``changes``; returns the future of the URLs sent."""
        return self._executor.submit(self.send, feed_urls(self.base_url, changes))

    def send(self, urls: list[str]) -> list[str]:
        """POST ``hub.mode=publish&hub.url=…`` for each URL; returns those the hub accepted."""
        accepted = []
        for url in urls:
            data = urlencode({"hub.mode": "publish", "hub.url": url}).encode("ascii")
            request = urllib.request.Request(
                self.hub_url, data=data, method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Syndicate WebSub"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (configured hub)
                    response.read(1024)
                    accepted.append(url)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                log.warning("WebSub hub %s refused or unreachable for %s: %s", self.hub_url, url, exc)
        return accepted

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def install_change_listeners(factory: sessionmaker[Session], handler: ChangeHandler) -> None:
    """Call ``handler(changes)`` after every commit of ``factory``'s sessions that changed releases."""

    def _after_commit(session: Session) -> None:
        changes = pop_changes(session)
        if changes:
            try:
                handler(changes)
            except Exception:  # a cache or hub problem must not fail a committed write
                log.exception("change handler failed")

    def _after_rollback(session: Session) -> None:
        discard_changes(session)

    event.listen(factory, "after_commit", _after_commit)
    event.listen(factory, "after_rollback", _after_rollback)


def install_websub(factory: sessionmaker[Session], hub_url: str | None, base_url: str) -> WebSubNotifier | None:
    """For processes without a feed cache (the scheduler): ping the hub after commits."""
    if not hub_url:
        return None
    notifier = WebSubNotifier(hub_url, base_url)
    install_change_listeners(factory, lambda changes: notifier.notify(changes) and None)
    return notifier
