"""The in-process cache of rendered feeds, and the WSGI fast path in front of Flask.

Entries are the finished bytes with their headers (and, on first demand, the
gzip bytes beside them), so a hit costs a dictionary lookup and a header
list. Invalidation is exact:

- a commit in this process that changed releases clears the cache at once
  (``invalidate``, called by the after-commit listener of ``syndicate.websub``);
- changes made by other processes or nodes are seen by comparing
  ``ContentState.version`` at most every ``check_seconds``;
- the cache expires by itself when the next embargoed release becomes
  visible (``next_embargo_after``), so it appears at its time.

A render that started before an invalidation is not stored after it (the
generation counter), and concurrent requests for the same cold feed wait for
one render (a lock per key).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from feeds.db import utcnow
from feeds.store import content_version, next_embargo_after

log = logging.getLogger(__name__)

Key = tuple[str, str]
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
    def build(cls, body: bytes, content_type: str, last_modified: datetime | None) -> "CachedFeed":
        digest = hashlib.blake2b(body, digest_size=16).hexdigest()
        etag, gzip_etag = f'"{digest}"', f'"{digest}-gz"'
        lm = format_datetime(last_modified.astimezone(timezone.utc), usegmt=True) if last_modified else None
        common = [("Cache-Control", CACHE_CONTROL), ("Vary", "Accept-Encoding")]
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


class FeedCache:
    """Rendered feeds by canonical request, valid for one content version."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        check_seconds: float = 1.0,
        max_entries: int = 4096,
        now: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.factory = factory
        self.check_seconds = check_seconds
        self.max_entries = max_entries
        self.now = now
        self.monotonic = monotonic
        self.renders = 0  # how many times a feed was rendered (tests, diagnostics)
        self._entries: dict[Key, CachedFeed] = {}
        self._generation = 0
        self._version: int | None = None
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
            version = content_version(session)
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

    def lookup(self, key: Key) -> CachedFeed | None:
        """The cached entry for ``key`` if it is still valid."""
        self._maybe_refresh()
        return self._entries.get(key)

    def _store(self, keys: Iterable[Key], entry: CachedFeed, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # rendered from data older than an invalidation
            entries = self._entries
            for key in keys:
                entries[key] = entry
            while len(entries) > self.max_entries:
                del entries[next(iter(entries))]  # oldest first

    def get_or_render(self, key: Key, render: Callable[[], CachedFeed], *, aliases: Iterable[Key] = ()) -> CachedFeed:
        """The entry for ``key``, rendering it once however many ask at the same time."""
        keys = [key, *[a for a in aliases if a != key]]
        self._maybe_refresh(wait=True)
        entry = self._entries.get(key)
        if entry is not None:
            self._store(keys[1:], entry, self._generation)
            return entry
        with self._lock:
            slot = self._key_locks.setdefault(key, [threading.Lock(), 0])
            slot[1] += 1
        try:
            with slot[0]:
                entry = self._entries.get(key)
                if entry is not None:
                    self._store(keys[1:], entry, self._generation)
                    return entry
                generation = self._generation
                entry = render()
                self.renders += 1
                self._store(keys, entry, generation)
                return entry
        finally:
            with self._lock:
                slot[1] -= 1
                if slot[1] == 0:
                    self._key_locks.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class FeedCacheMiddleware:
    """Serves cached feeds before Flask sees the request (the fast path).

    Only GET and HEAD under ``/feeds/`` that are already cached are answered
    here; everything else goes to the application unchanged.
    """

    def __init__(self, app: Callable[..., Any], cache: FeedCache, prefix: str = "/feeds/") -> None:
        self.app = app
        self.cache = cache
        self.prefix = prefix

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if (method == "GET" or method == "HEAD") and path.startswith(self.prefix):
            entry = self.cache.lookup((path, environ.get("QUERY_STRING", "")))
            if entry is not None:
                status, headers, body = answer(entry, environ)
                start_response(status, list(headers))
                return [b""] if method == "HEAD" else [body]
        return self.app(environ, start_response)  # type: ignore[no-any-return]
