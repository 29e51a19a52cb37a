"""The in-process cache of rendered feeds and pages, and the WSGI fast path in front of Flask.

Entries are the finished bytes with their headers (and, on first demand, the
gzip bytes beside them), so a hit costs a dictionary lookup and a header
list. Feeds use it, and so do the site's listing pages, the release page's
fragment and ``GET /api/releases`` (keys are tuples of strings; feeds use
``(path, query)``, the others a tuple that starts with their own tag).
Invalidation is exact:

- a commit in this process that changed releases clears the cache at once
  (``invalidate``, called by the after-commit listener of ``syndicate.websub``);
- changes made by other processes or nodes are seen by comparing the content
  version (``ContentState.version``, and the organizations, which pages list
  even without releases) at most every ``check_seconds``;
- the cache expires by itself when the next embargoed release becomes
  visible (``next_embargo_after``), so it appears at its time;
- an entry stored with ``max_age`` is also rendered again after that many
  seconds: pages that show view counts, which change without a new version.

A render that started before an invalidation is not stored after it (the
generation counter), and concurrent requests for the same cold key wait for
one render (a lock per key).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from feeds.db import utcnow
from feeds.models import Organization
from feeds.store import content_version, next_embargo_after

log = logging.getLogger(__name__)

Key = tuple[str, ...]
E = TypeVar("E")
_FOREVER = float("inf")
CACHE_CONTROL = "public, no-cache"  # readers revalidate (a cheap 304), so changes show at once


@dataclass
class CachedFeed:
    """Rendered bytes with the validators and headers of both encodings."""

    body: bytes
    content_type: str
    etag: str
    last_modified: str | None
    last_modified_ts: float | None
    headers: list[tuple[str, str]]
    gzip_etag: str
    gzip_body: bytes | None = None
    gzip_headers: list[tuple[str, str]] = field(default_factory=list)
    not_modified_headers: list[tuple[str, str]] = field(default_factory=list)
    _gzip_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(
        cls, body: bytes, content_type: str, last_modified: datetime | None, *, vary: Iterable[str] = ()
    ) -> "CachedFeed":
        """An entry for ``body``; ``vary`` names request headers the body depends on besides Accept-Encoding."""
        digest = hashlib.blake2b(body, digest_size=16).hexdigest()
        etag, gzip_etag = f'"{digest}"', f'"{digest}-gz"'
        lm = format_datetime(last_modified.astimezone(timezone.utc), usegmt=True) if last_modified else None
        common = [("Cache-Control", CACHE_CONTROL), ("Vary", ", ".join(("Accept-Encoding", *vary)))]
        if lm:
            common.append(("Last-Modified", lm))
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("ETag", etag), *common]
        return cls(
            body=body,
            content_type=content_type,
            etag=etag,
            last_modified=lm,
            last_modified_ts=int(last_modified.timestamp()) if last_modified else None,
            headers=headers,
            gzip_etag=gzip_etag,
            not_modified_headers=common,
        )

    def gzipped(self) -> tuple[bytes, list[tuple[str, str]]]:
        """The gzip body and headers, compressed once on first demand."""
        if self.gzip_body is None:
            with self._gzip_lock:
                if self.gzip_body is None:
                    # mtime=0: the same bytes give the same gzip bytes.
                    data = gzip.compress(self.body, compresslevel=6, mtime=0)
                    self.gzip_headers = [
                        ("Content-Type", self.content_type), ("Content-Length", str(len(data))),
                        ("Content-Encoding", "gzip"), ("ETag", self.gzip_etag), *self.not_modified_headers,
                    ]
                    self.gzip_body = data
        return self.gzip_body, self.gzip_headers


@lru_cache(maxsize=256)
def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (``gzip;q=0`` does not)."""
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


@lru_cache(maxsize=256)
def _http_date(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _etag_matches(header: str, entry: CachedFeed) -> bool:
    if header == entry.etag or header == entry.gzip_etag:
        return True
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]  # If-None-Match uses the weak comparison
        if tag in (entry.etag, entry.gzip_etag, "*"):
            return True
    return False


def answer(entry: CachedFeed, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, headers and body for ``entry`` under the request's conditional headers."""
    gz = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
    inm = environ.get("HTTP_IF_NONE_MATCH")
    if inm is not None:
        fresh = _etag_matches(inm, entry)
    else:
        ims = environ.get("HTTP_IF_MODIFIED_SINCE")
        since = _http_date(ims) if ims else None
        fresh = since is not None and entry.last_modified_ts is not None and entry.last_modified_ts <= since
    if fresh:
        etag = entry.gzip_etag if gz else entry.etag
        return "304 Not Modified", [("ETag", etag), *entry.not_modified_headers], b""
    if gz:
        body, headers = entry.gzipped()
        return "200 OK", headers, body
    return "200 OK", entry.headers, entry.body


def site_version(session: Session) -> Hashable:
    """What the cached documents are built from, as one comparable value.

    The content version changes with every release change; organizations are
    added without one (``syndicate organizations add``) and the organizations
    index lists them even before their first release, so their number and
    newest id count too (organizations are never edited or removed).
    """
    organizations = session.execute(select(func.count(Organization.id), func.max(Organization.id))).one()
    return content_version(session), int(organizations[0]), organizations[1]


class FeedCache:
    """Rendered feeds and pages by canonical request, valid for one content version."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        check_seconds: float = 1.0,
        max_entries: int = 4096,
        now: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        version: Callable[[Session], Hashable] = site_version,
    ) -> None:
        self.factory = factory
        self.check_seconds = check_seconds
        self.max_entries = max_entries
        self.now = now
        self.monotonic = monotonic
        self.version = version
        self.renders = 0  # how many times an entry was rendered (tests, diagnostics)
        # key -> (entry, monotonic time it must be rendered again by; inf = only on invalidation)
        self._entries: dict[Key, tuple[Any, float]] = {}
        self._generation = 0
        self._version: Hashable = None
        self._checked_at = float("-inf")
        self._expires_at: datetime | None = None
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._key_locks: dict[Key, list[Any]] = {}

    # -- validity -------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget every entry now (a release changed in this process)."""
        with self._lock:
            self._entries = {}
            self._generation += 1
            self._checked_at = float("-inf")  # learn the new version and embargo soon

    def _stale(self) -> bool:
        if self.monotonic() - self._checked_at >= self.check_seconds:
            return True
        expires = self._expires_at
        return expires is not None and self.now() >= expires

    def refresh(self) -> None:
        """Compare the content version and the next embargo with the database."""
        now = self.now()
        with self.factory() as session:
            version = self.version(session)
            next_embargo = next_embargo_after(session, now)
        with self._lock:
            expired = self._expires_at is not None and now >= self._expires_at
            if version != self._version or expired:
                self._entries = {}
                self._generation += 1
            self._version = version
            self._expires_at = next_embargo
            self._checked_at = self.monotonic()

    def _maybe_refresh(self, *, wait: bool = False) -> None:
        if not self._stale():
            return
        # One thread asks the database; the others keep serving meanwhile,
        # except that an embargo that has been reached is never served past,
        # and a thread about to render waits (it would render stale data).
        if not self._refresh_lock.acquire(blocking=False):
            expires = self._expires_at
            if wait or (expires is not None and self.now() >= expires):
                with self._refresh_lock:
                    pass
            return
        try:
            self.refresh()
        except Exception:  # the database being away must not take cached feeds down
            log.exception("feed cache: could not check the content version")
            self._checked_at = self.monotonic()
        finally:
            self._refresh_lock.release()

    # -- lookups --------------------------------------------------------------

    def _fresh(self, key: Key) -> Any:
        slot = self._entries.get(key)
        if slot is None or (slot[1] != _FOREVER and self.monotonic() >= slot[1]):
            return None
        return slot[0]

    def lookup(self, key: Key) -> Any:
        """The cached entry for ``key`` if it is still valid, else ``None``."""
        self._maybe_refresh()
        return self._fresh(key)

    def _store(self, keys: Iterable[Key], entry: Any, generation: int, until: float) -> None:
        with self._lock:
            if generation != self._generation:
                return  # rendered from data older than an invalidation
            entries = self._entries
            for key in keys:
                entries.pop(key, None)  # re-inserted last: eviction takes the oldest first
                entries[key] = (entry, until)
            while len(entries) > self.max_entries:
                del entries[next(iter(entries))]

    def _alias(self, keys: list[Key], entry: Any) -> None:
        if len(keys) > 1:
            self._store(keys[1:], entry, self._generation, self._entries.get(keys[0], (None, 0.0))[1])

    def get_or_render(
        self, key: Key, render: Callable[[], E], *, aliases: Iterable[Key] = (), max_age: float | None = None
    ) -> E:
        """The entry for ``key``, rendering it once however many ask at the same time.

        ``aliases`` are other keys for the same entry (the raw request of a
        canonical key). With ``max_age`` (seconds) the entry is rendered again
        once that old, even if nothing was invalidated.
        """
        keys = [key, *[a for a in aliases if a != key]]
        self._maybe_refresh(wait=True)
        cached = self._fresh(key)
        if cached is not None:
            self._alias(keys, cached)
            return cached  # type: ignore[no-any-return]
        with self._lock:
            slot = self._key_locks.setdefault(key, [threading.Lock(), 0])
            slot[1] += 1
        try:
            with slot[0]:
                cached = self._fresh(key)
                if cached is not None:  # rendered by the request this one waited for
                    self._alias(keys, cached)
                    return cached  # type: ignore[no-any-return]
                generation = self._generation
                until = _FOREVER if max_age is None else self.monotonic() + max_age
                entry = render()
                self.renders += 1
                self._store(keys, entry, generation, until)
                return entry
        finally:
            with self._lock:
                slot[1] -= 1
                if slot[1] == 0:
                    self._key_locks.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class FeedCacheMiddleware:
    """Serves cached entries before Flask sees the request (the fast path).

    By default, GET and HEAD under ``prefix`` (feeds) that are already cached
    under ``(path, query)`` are answered here; ``key_for`` maps a request to
    its key instead (``None``: not for the fast path), for other users of the
    cache. ``cache`` may be a function returning the cache, for an installer
    that runs before the cache exists. Everything else goes to the
    application unchanged.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        cache: FeedCache | Callable[[], FeedCache | None],
        prefix: str = "/feeds/",
        *,
        key_for: Callable[[dict[str, Any]], Key | None] | None = None,
    ) -> None:
        self.app = app
        self._cache = cache if isinstance(cache, FeedCache) else None
        self._get_cache = None if isinstance(cache, FeedCache) else cache
        self.prefix = prefix
        self.key_for = key_for or self._feed_key

    @property
    def cache(self) -> FeedCache | None:
        return self._cache if self._get_cache is None else self._get_cache()

    def _feed_key(self, environ: dict[str, Any]) -> Key | None:
        path = environ.get("PATH_INFO", "")
        return (path, environ.get("QUERY_STRING", "")) if path.startswith(self.prefix) else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "GET" or method == "HEAD":
            key = self.key_for(environ)
            cache = self.cache if key is not None else None
            if key is not None and cache is not None:
                entry = cache.lookup(key)
                if isinstance(entry, CachedFeed):
                    status, headers, body = answer(entry, environ)
                    start_response(status, list(headers))
                    return [b""] if method == "HEAD" else [body]
        return self.app(environ, start_response)  # type: ignore[no-any-return]
