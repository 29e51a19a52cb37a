"""Release queries and writes. Functions take a Session and never commit."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Select, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from feeds.changes import note_change, note_release
from feeds.countries import get_country
from feeds.db import utcnow
from feeds.errors import InvalidInput, ReleaseNotFound
from feeds.models import ContentState, Organization, Release
from feeds.sanitize import html_to_text, plain_text, sanitize_html
from feeds.search import apply_search, search_document
from feeds.slugs import slugify
from feeds.types import Page, ReleaseDraft, ReleaseFilter, ReleaseList


# -- reading -----------------------------------------------------------------


def visible_releases(now: datetime) -> Select[Release]:
    """Releases a reader may see at ``now``: not withdrawn, embargo passed."""
    return select(Release).where(Release.withdrawn_at.is_(None), Release.published_at <= now)


def filter_releases(stmt: Select[Release], flt: ReleaseFilter) -> Select[Release]:
    if flt.organizations:
        org_ids = select(Organization.id).where(Organization.slug.in_(flt.organizations))
        stmt = stmt.where(Release.organization_id.in_(org_ids.scalar_subquery()))
    if flt.countries:
        stmt = stmt.where(Release.country_code.in_([c.upper() for c in flt.countries]))
    if flt.language:
        stmt = stmt.where(Release.language == flt.language)
    if flt.q:
        stmt = apply_search(stmt, flt.q)
    return stmt


def newest_first(stmt: Select[Release]) -> Select[Release]:
    return stmt.order_by(Release.published_at.desc(), Release.id.desc())


def list_releases(session: Session, flt: ReleaseFilter, page: Page, *, now: datetime | None = None) -> ReleaseList:
    """One page of visible releases matching ``flt``, newest first.

    Fetches one row more than the page to know whether a next page exists,
    instead of counting the whole result.
    """
    now = now or utcnow()
    stmt = newest_first(filter_releases(visible_releases(now), flt)).limit(page.size + 1).offset(page.offset)
    rows = list(session.scalars(stmt))
    return ReleaseList(items=rows[: page.size], page=page, has_next=len(rows) > page.size)


def find_release(session: Session, release_id: int) -> Release | None:
    return session.get(Release, release_id)


def get_visible_release(session: Session, release_id: int, *, now: datetime | None = None) -> Release:
    """The release if a reader may see it now, else ``ReleaseNotFound``."""
    now = now or utcnow()
    release = session.scalar(visible_releases(now).where(Release.id == release_id))
    if release is None:
        raise ReleaseNotFound(f"release {release_id} not found", resource_id=release_id)
    return release


def count_view(session: Session, release_id: int) -> int | None:
    """Add one view atomically (the increment happens in SQL, not in Python).

    Returns the new count (``None`` if there is no such release). On SQLite,
    call it at the start of a transaction: a WAL reader that has already read
    cannot become a writer once another connection has committed.
    """
    count: int | None = session.scalar(_COUNT_VIEW, {"release_id": release_id})
    return count


# Built once, on the table rather than the entity: the ORM's bulk-update path
# (statement building, session synchronisation) cost three times the UPDATE itself,
# on every release page view. Loaded Release objects keep their old view_count.
_RELEASES: Table = Release.__table__  # type: ignore[assignment]  # declared as FromClause
_COUNT_VIEW = (
    update(_RELEASES)
    .where(_RELEASES.c.id == bindparam("release_id"))
    .values(view_count=_RELEASES.c.view_count + 1)
    .returning(_RELEASES.c.view_count)
)


def count_releases_by_country(session: Session, *, now: datetime | None = None) -> list[tuple[str, int]]:
    """Every country code with its number of visible releases, by code."""
    now = now or utcnow()
    rows = session.execute(
        select(Release.country_code, func.count())
        .where(Release.withdrawn_at.is_(None), Release.published_at <= now)
        .group_by(Release.country_code)
        .order_by(Release.country_code)
    )
    return [(code, int(n)) for code, n in rows]


def next_embargo_after(session: Session, now: datetime) -> datetime | None:
    """When the next embargoed release becomes visible (caches must expire then)."""
    return session.scalar(
        select(func.min(Release.published_at)).where(Release.withdrawn_at.is_(None), Release.published_at > now)
    )


def content_version(session: Session) -> int:
    return session.scalar(select(ContentState.version).where(ContentState.id == 1)) or 0


def content_changed_at(session: Session) -> datetime | None:
    """When any release was last published, corrected or withdrawn."""
    return session.scalar(select(ContentState.changed_at).where(ContentState.id == 1))


def bump_content_version(session: Session, now: datetime | None = None, *, release: Release | None = None) -> None:
    """Mark that some release changed; done in the same transaction as the change.

    The channels ``release`` is in are noted in ``session.info`` (see ``feeds.changes``).
    """
    session.execute(
        update(ContentState)
        .where(ContentState.id == 1)
        .values(version=ContentState.version + 1, changed_at=now or utcnow())
    )
    note_change(session)
    if release is not None:
        note_release(session, release)


# -- writing -----------------------------------------------------------------


def clean_draft(draft: ReleaseDraft) -> ReleaseDraft:
    """Sanitize and validate a draft; raises ``InvalidInput`` naming the field."""
    title = plain_text(draft.title)
    if not title:
        raise InvalidInput("title must not be empty", field="title")
    lead = plain_text(draft.lead)
    body = sanitize_html(draft.body)
    country = get_country(draft.country_code).code
    return replace(draft, title=title, lead=lead, body=body, country_code=country)


def draft_hash(draft: ReleaseDraft) -> str:
    """A digest of everything a draft says, to recognise an unchanged re-submission."""
    payload = {
        "title": draft.title,
        "lead": draft.lead,
        "body": draft.body,
        "country": draft.country_code,
        "language": draft.language,
        "contact": draft.contact,
        "published_at": draft.published_at.isoformat() if draft.published_at else None,
        "attachments": [a.to_json() for a in draft.attachments],
        "canonical_url": draft.canonical_url,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def release_text(title: str, lead: str, body: str, *, body_text: str | None = None) -> tuple[str, str]:
    """The slug and the search text stored with a release of this cleaned title, lead and body.

    ``body_text`` may give ``html_to_text(body)`` when the caller has it already. Ingestion
    calls this beside the parse (in a parse worker process), so the writer does not.
    """
    text = html_to_text(body) if body_text is None else body_text
    return slugify(title) or "release", search_document(title, lead, text)


def _apply(release: Release, draft: ReleaseDraft) -> None:
    release.title = draft.title
    release.lead = draft.lead
    release.body = draft.body
    release.contact = plain_text(draft.contact) if draft.contact else None
    release.country_code = draft.country_code
    release.language = draft.language
    release.attachments = [a.to_json() for a in draft.attachments]
    release.canonical_url = draft.canonical_url
    release.slug, release.search_text = release_text(draft.title, draft.lead, draft.body)


def create_release(
    session: Session,
    organization: Organization,
    draft: ReleaseDraft,
    *,
    now: datetime | None = None,
    source_id: int | None = None,
    source_entry_key: str | None = None,
    import_key: str | None = None,
) -> Release:
    """Store a new release of ``organization``. The draft is cleaned here."""
    now = now or utcnow()
    release = _new_release(organization, draft, now, source_id, source_entry_key, import_key)
    session.add(release)
    session.flush()
    bump_content_version(session, now, release=release)
    return release


def _new_release(
    organization: Organization,
    draft: ReleaseDraft,
    now: datetime,
    source_id: int | None,
    source_entry_key: str | None,
    import_key: str | None,
    *,
    cleaned: bool = False,
    attach: bool = True,
    digest: str | None = None,
) -> Release:
    if not cleaned:
        draft, digest = clean_draft(draft), None
    published_at = draft.published_at or now
    release = Release(
        guid=f"urn:uuid:{uuid.uuid4()}",
        organization_id=organization.id,
        published_at=published_at,
        created_at=now,
        # An embargoed release is "updated" when it appears, not before.
        updated_at=max(now, published_at),
        view_count=0,
        source_id=source_id,
        source_entry_key=source_entry_key,
        import_key=import_key,
        content_hash=digest or draft_hash(draft),
    )
    _apply(release, draft)
    if attach:
        release.organization = organization
    return release


@dataclass
class _Placed:
    """Where a batch-inserted release shows (for the change notes), without an ORM object."""

    country_code: str
    organization: Organization


def _release_row(
    organization_id: int,
    draft: ReleaseDraft,
    key: str | None,
    now: datetime,
    source_id: int | None,
    digest: str,
    texts: tuple[str, str],
) -> dict[str, object]:
    """The column values ``create_release`` would give the ORM object, as a plain row."""
    published_at = draft.published_at or now
    slug, search_text = texts
    return {
        "guid": f"urn:uuid:{uuid.uuid4()}",
        "organization_id": organization_id,
        "country_code": draft.country_code,
        "language": draft.language,
        "title": draft.title,
        "slug": slug,
        "lead": draft.lead,
        "body": draft.body,
        "contact": plain_text(draft.contact) if draft.contact else None,
        "attachments": [a.to_json() for a in draft.attachments],
        "published_at": published_at,
        "created_at": now,
        "updated_at": max(now, published_at),
        "withdrawn_at": None,
        "view_count": 0,
        "search_text": search_text,
        "source_id": source_id,
        "source_entry_key": key,
        "canonical_url": draft.canonical_url,
        "content_hash": digest,
        "import_key": None,
    }


def create_releases(
    session: Session,
    organization: Organization,
    drafts: Sequence[tuple[ReleaseDraft, str | None]],
    *,
    now: datetime | None = None,
    source_id: int | None = None,
    cleaned: bool = False,
    digests: Sequence[str] | None = None,
    texts: Sequence[tuple[str, str]] | None = None,
) -> int:
    """``create_release`` for many drafts (with their source entry keys) at once; returns how many.

    One executemany INSERT of plain rows (no ORM objects) and one version
    bump instead of a flush and a bump per release: what partner-feed
    ingestion stores, a feed at a time. ``cleaned=True`` says every text
    field already went through ``feeds.sanitize`` (plain_text /
    sanitize_html), so it is not done twice; then ``digests`` may give each
    draft's ``draft_hash`` and ``texts`` its ``release_text`` (slug, search
    text), already computed.
    """
    now = now or utcnow()
    if not drafts:
        return 0
    if digests is not None and len(digests) != len(drafts) or texts is not None and len(texts) != len(drafts):
        raise ValueError("digests and texts must match the drafts one to one")
    rows = []
    countries = set()
    for i, (draft, key) in enumerate(drafts):
        if not cleaned:
            draft = clean_draft(draft)
        digest = digests[i] if cleaned and digests is not None else draft_hash(draft)
        text = texts[i] if cleaned and texts is not None else release_text(draft.title, draft.lead, draft.body)
        rows.append(_release_row(organization.id, draft, key, now, source_id, digest, text))
        countries.add(draft.country_code)
    session.execute(insert(_RELEASES), rows)
    bump_content_version(session, now)
    for country in sorted(countries):
        note_release(session, _Placed(country, organization))
    return len(rows)


def update_release(session: Session, release: Release, draft: ReleaseDraft, *, now: datetime | None = None) -> bool:
    """Correct a release in place: same id and guid, new ``updated_at``.

    Returns False (and writes nothing) when the draft says what is stored already.
    """
    now = now or utcnow()
    draft = clean_draft(draft)
    digest = draft_hash(draft)
    if digest == release.content_hash:
        return False
    note_release(session, release)  # the channels it leaves, if the country changes
    _apply(release, draft)
    if draft.published_at is not None:
        release.published_at = draft.published_at
    release.content_hash = digest
    release.updated_at = max(now, release.published_at)
    session.flush()
    bump_content_version(session, now, release=release)
    return True


def withdraw_release(session: Session, release: Release, *, now: datetime | None = None) -> None:
    """Take a release off every page and feed; the row is kept."""
    now = now or utcnow()
    if release.withdrawn_at is None:
        release.withdrawn_at = now
        release.updated_at = now
        session.flush()
        bump_content_version(session, now, release=release)
