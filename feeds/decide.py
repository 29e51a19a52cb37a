"""What to do after a fetch: pure decisions, no I/O.

Given what storage knows about a source (``SourceForUpdate``, ``KnownEntry``)
and what the fetch and parse brought (``FetchResult``, ``ParsedFeed`` or an
error), decide when to look again, whether to relink or disable the source,
and which entries become new releases or corrections.

Timing rules: the interval with ±10 % jitter (derived from the source id and
the time, so it is repeatable and spreads sources apart); ``Cache-Control:
max-age`` and RSS ``ttl`` may lengthen it up to ``MAX_HINTED_INTERVAL``, never
shorten it; errors back off exponentially from the interval up to
``MAX_BACKOFF`` and keep retrying at that pace; ``Retry-After`` is never
undercut (capped at ``MAX_BACKOFF`` too, so no source silently dies).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from feeds.errors import FetchError, SourceError
from feeds.models import BODY_MAX, LEAD_MAX, TITLE_MAX, URL_MAX
from feeds.sanitize import html_to_text, plain_text, sanitize_html
from feeds.store import draft_hash, release_text
from feeds.types import FetchResult, ParsedEntry, ParsedFeed, ReleaseDraft, SourceForUpdate

MAX_BACKOFF = timedelta(hours=24)
MAX_HINTED_INTERVAL = timedelta(hours=6)
MIN_DELAY = timedelta(minutes=1)
JITTER = 0.10
MOVED_CONFIRMATIONS = 2  # a permanent redirect seen on this many fetches in a row relinks
LEAD_EXCERPT = 400
MAX_ATTACHMENTS = 20
DEFAULT_LANGUAGE = "ru"
_LANGUAGE = re.compile(r"^([a-zA-Z]{2,3})(?:[-_].*)?$")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class KnownEntry:
    """What storage holds for one entry key of a source."""

    release_id: int
    content_hash: str | None
    published_at: datetime


@dataclass(frozen=True)
class EntryIntent:
    """Store ``draft`` under ``key``: a new release (``release_id`` None) or a correction."""

    key: str
    draft: ReleaseDraft
    content_hash: str
    release_id: int | None = None
    # ``feeds.store.release_text`` of the draft, when computed ahead (new entries).
    slug: str | None = None
    search_text: str | None = None


@dataclass(frozen=True)
class EntryPlan:
    creates: tuple[EntryIntent, ...] = ()
    updates: tuple[EntryIntent, ...] = ()
    unchanged: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class SourceUpdate:
    """The new state of a source row after one refresh (``None`` = leave as is where noted)."""

    next_check_at: datetime
    last_checked_at: datetime
    last_status: int | None
    error_count: int
    last_error: str | None
    last_success_at: datetime | None = None  # None: unchanged
    last_warning: str | None = None
    keep_warning: bool = False
    etag: str | None = None
    last_modified: str | None = None
    keep_validators: bool = True
    url: str | None = None  # a new URL after a confirmed permanent redirect
    moved_to: str | None = None
    moved_count: int = 0
    keep_moved: bool = False
    disabled: bool = False
    disabled_reason: str | None = None
    title: str | None = None  # None: unchanged
    outcome: str = "ok"
    notes: tuple[str, ...] = field(default_factory=tuple)


# -- timing ----------------------------------------------------------------------


def jitter_fraction(source_id: int, now: datetime) -> float:
    """A repeatable number in [-JITTER, +JITTER] for this source at this time."""
    digest = hashlib.blake2b(f"{source_id}:{now.isoformat()}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") / 2**64 * 2 - 1) * JITTER


def next_check_at(
    now: datetime,
    *,
    source_id: int,
    interval_minutes: int,
    error_count: int = 0,
    retry_after: float | None = None,
    max_age: float | None = None,
    ttl_minutes: int | None = None,
) -> datetime:
    """When to look at a source again (see the module docstring for the rules)."""
    base = timedelta(minutes=max(1, interval_minutes))
    if error_count > 0:
        base = min(MAX_BACKOFF, base * 2 ** min(error_count - 1, 30))
    else:
        hints = [timedelta(seconds=max_age or 0), timedelta(minutes=ttl_minutes or 0)]
        hint = max(hints)
        if hint > base:
            base = min(hint, max(base, MAX_HINTED_INTERVAL))
    delay = min(base * (1 + jitter_fraction(source_id, now)), MAX_BACKOFF)
    if retry_after:
        delay = max(delay, min(timedelta(seconds=retry_after), MAX_BACKOFF))
    return now + max(delay, MIN_DELAY)


# -- the source row ----------------------------------------------------------------


def decide_success(
    source: SourceForUpdate, fetched: FetchResult, parsed: ParsedFeed | None, now: datetime
) -> SourceUpdate:
    """A fetch that answered 200 (``parsed`` given) or 304 (``parsed`` None)."""
    url: str | None = None
    moved_to: str | None = None
    moved_count = 0
    notes: list[str] = []
    if fetched.permanent_url and fetched.permanent_url != source.url:
        if fetched.permanent_url == source.moved_to:
            moved_count = source.moved_count + 1
        else:
            moved_count = 1
        moved_to = fetched.permanent_url
        if moved_count >= MOVED_CONFIRMATIONS and len(moved_to) <= URL_MAX:
            url, moved_to, moved_count = fetched.permanent_url, None, 0
            notes.append(f"moved permanently to {url}")
    return SourceUpdate(
        next_check_at=next_check_at(
            now,
            source_id=source.id,
            interval_minutes=source.interval_minutes,
            max_age=fetched.max_age,
            ttl_minutes=parsed.ttl_minutes if parsed else None,
        ),
        last_checked_at=now,
        last_status=fetched.status,
        error_count=0,
        last_error=None,
        last_success_at=now,
        last_warning=parsed.warning if parsed else None,
        keep_warning=parsed is None,
        etag=(fetched.etag or "")[:1024] or None,
        last_modified=(fetched.last_modified or "")[:128] or None,
        # A 304 need not repeat the validators; keep ours unless it sends new ones.
        keep_validators=fetched.not_modified and not (fetched.etag or fetched.last_modified),
        url=url,
        moved_to=moved_to,
        moved_count=moved_count,
        title=plain_text(parsed.title)[:TITLE_MAX] or None if parsed else None,
        outcome="ok" if parsed else "not modified",
        notes=tuple(notes),
    )


def decide_failure(source: SourceForUpdate, error: SourceError, now: datetime) -> SourceUpdate:
    """A fetch or parse that failed: back off, or disable for good on 410 Gone."""
    status = error.status if isinstance(error, FetchError) else None
    retry_after = error.retry_after if isinstance(error, FetchError) else None
    errors = source.error_count + 1
    gone = isinstance(error, FetchError) and error.permanent and status == 410
    return SourceUpdate(
        next_check_at=next_check_at(
            now,
            source_id=source.id,
            interval_minutes=source.interval_minutes,
            error_count=errors,
            retry_after=retry_after,
        ),
        last_checked_at=now,
        last_status=status,
        error_count=errors,
        last_error=error.message[:2000],
        keep_warning=True,
        keep_moved=True,
        disabled=gone,
        disabled_reason=f"410 Gone: the partner removed the feed (seen {now:%Y-%m-%d %H:%M} UTC)" if gone else None,
        outcome="disabled" if gone else "error",
    )


# -- entries -----------------------------------------------------------------------


def _key_part(kind: str, value: str) -> str:
    key = f"{kind}:{value}"
    if len(key) <= 1000:
        return key
    return f"{kind}-sha256:{hashlib.sha256(value.encode('utf-8')).hexdigest()}"


def entry_key(entry: ParsedEntry) -> str | None:
    """Identity of an entry within its source: its id, else its link, else a hash of title and date."""
    if entry.id:
        return _key_part("id", entry.id)
    if entry.link:
        return _key_part("link", entry.link)
    when = entry.published or entry.updated
    if not entry.title.strip() and when is None:
        return None
    payload = f"{entry.title.strip()}\n{when.isoformat() if when else ''}"
    return "hash:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()


def feed_language(parsed: ParsedFeed) -> str:
    match = _LANGUAGE.match(parsed.language or "")
    return match.group(1).lower() if match else DEFAULT_LANGUAGE


def _excerpt(text: str, limit: int) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,.;:-—")
    return (cut or text[:limit]) + "…"


def _published_at(published: datetime | None, updated: datetime | None, now: datetime,
                  known_published: datetime | None) -> datetime:
    """The entry's date unless it has none or it is in the future: then the time first seen."""
    if published and published <= now:
        return published
    if known_published is not None:
        return known_published
    if updated and updated <= now:
        return updated
    return now


def _clean(entry: ParsedEntry, *, country_code: str, language: str,
           now: datetime) -> tuple[ReleaseDraft | None, str | None]:
    """``entry_draft`` for an entry not seen before, and the body's text if it was needed here."""
    body = sanitize_html((entry.content_html or entry.summary_html)[:BODY_MAX], base_url=entry.base_url)
    title = plain_text(entry.title)
    body_text: str | None = None
    if entry.content_html and entry.summary_html.strip():
        lead = _excerpt(plain_text(entry.summary_html), LEAD_MAX)
    else:
        body_text = html_to_text(body)
        lead = _excerpt(body_text.split("\n", 1)[0], LEAD_EXCERPT)
    if not title:
        if body_text is None:
            body_text = html_to_text(body)
        title = _excerpt(body_text, 120) or (entry.link or "")
    if not title:
        return None, body_text
    canonical = entry.link if entry.link and len(entry.link) <= URL_MAX else None
    draft = ReleaseDraft(
        title=_excerpt(title, TITLE_MAX - 1),
        lead=_SPACES.sub(" ", lead).strip(),
        body=body,
        country_code=country_code,
        language=language,
        published_at=_published_at(entry.published, entry.updated, now, None),
        attachments=tuple(a for a in entry.enclosures if len(a.url) <= URL_MAX)[:MAX_ATTACHMENTS],
        canonical_url=canonical,
    )
    return draft, body_text


def entry_draft(
    entry: ParsedEntry,
    *,
    country_code: str,
    language: str,
    now: datetime,
    known_published: datetime | None = None,
) -> ReleaseDraft | None:
    """The release an entry becomes, cleaned as ``feeds.store.clean_draft`` would:
    the body through the one HTML allow-list (relative URLs made absolute
    against the entry's base), title and lead plain text.

    No usable date (none, or in the future): the time it was first seen
    (``known_published`` when storage has seen it before). ``None`` for an
    entry with nothing to show.
    """
    draft, _text = _clean(entry, country_code=country_code, language=language, now=now)
    if draft is None or known_published is None:
        return draft
    return replace(draft, published_at=_published_at(entry.published, entry.updated, now, known_published))


@dataclass(frozen=True)
class PreparedEntry:
    """An entry made ready for storage as far as neither storage nor the clock matter.

    ``prepare_entry`` makes it right after the parse (in a parse worker
    process when the pass has them), so the one writing thread only settles
    the date against what storage knows and inserts. ``draft`` is
    ``entry_draft`` for an entry not seen before (None: nothing to show),
    ``digest`` its ``draft_hash``, ``slug`` and ``search_text`` its
    ``feeds.store.release_text``; ``published`` and ``updated`` are the
    entry's own dates.
    """

    key: str | None
    draft: ReleaseDraft | None = None
    digest: str = ""
    slug: str = ""
    search_text: str = ""
    published: datetime | None = None
    updated: datetime | None = None


def prepare_entry(entry: ParsedEntry, *, country_code: str, language: str, now: datetime) -> PreparedEntry:
    """Everything ``plan_entries`` and the store would compute for this entry, done ahead (pure)."""
    key = entry_key(entry)
    if key is None:  # never stored: nothing to compute
        return PreparedEntry(key)
    draft, body_text = _clean(entry, country_code=country_code, language=language, now=now)
    if draft is None:
        return PreparedEntry(key)
    slug, search_text = release_text(draft.title, draft.lead, draft.body, body_text=body_text)
    return PreparedEntry(key, draft, draft_hash(draft), slug, search_text, entry.published, entry.updated)


def prepare_entries(parsed: ParsedFeed, *, country_code: str, now: datetime) -> tuple[PreparedEntry, ...]:
    """``prepare_entry`` for every entry of a feed, in the feed's language."""
    language = feed_language(parsed)
    return tuple(prepare_entry(e, country_code=country_code, language=language, now=now) for e in parsed.entries)


def _settle(prepared: PreparedEntry, *, country_code: str, language: str, now: datetime,
            known_published: datetime | None) -> tuple[ReleaseDraft, str] | None:
    """The prepared draft and digest, redone only where storage or the clock says otherwise."""
    draft = prepared.draft
    if draft is None:
        return None
    published = _published_at(prepared.published, prepared.updated, now, known_published)
    if (draft.published_at, draft.country_code, draft.language) == (published, country_code, language):
        return draft, prepared.digest
    draft = replace(draft, published_at=published, country_code=country_code, language=language)
    return draft, draft_hash(draft)


def plan_entries(
    entries: Iterable[ParsedEntry | PreparedEntry],
    known: Mapping[str, KnownEntry],
    *,
    country_code: str,
    language: str,
    now: datetime,
) -> EntryPlan:
    """New entries become creates, changed ones updates (same release), unchanged ones nothing.

    ``entries`` are parsed entries, or entries ``prepare_entry`` made ready
    ahead (the work done is the same; prepared entries are only checked
    against storage and the clock).
    """
    creates: list[EntryIntent] = []
    updates: list[EntryIntent] = []
    seen: set[str] = set()
    unchanged = skipped = 0
    for item in entries:
        if isinstance(item, PreparedEntry):
            key = item.key
        else:
            key = entry_key(item)
        if key is None or key in seen:
            skipped += 1
            continue
        seen.add(key)
        old = known.get(key)
        if not isinstance(item, PreparedEntry):
            item = prepare_entry(item, country_code=country_code, language=language, now=now)
        settled = _settle(item, country_code=country_code, language=language, now=now,
                          known_published=old.published_at if old else None)
        if settled is None:
            skipped += 1
            continue
        # The draft was cleaned with the store's own functions, so this is the hash the store keeps
        # (if cleaning twice ever changed something, update_release would find nothing to do).
        draft, digest = settled
        if old is None:
            creates.append(EntryIntent(key, draft, digest, slug=item.slug, search_text=item.search_text))
        elif old.content_hash != digest:
            updates.append(EntryIntent(key, draft, digest, release_id=old.release_id))
        else:
            unchanged += 1
    return EntryPlan(tuple(creates), tuple(updates), unchanged, skipped)
