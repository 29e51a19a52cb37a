"""Import releases from JSON Lines: one release per line, as in the API.

Besides the API fields a line carries ``organization`` (a slug or a name; an
unknown name creates the organization with a transliterated slug), and may
carry ``external_id`` (or ``id``) — the release's key in the system it comes
from — and ``view_count``. Re-importing the same file changes nothing: a line
is matched to its release by organization and key, and its content hash says
whether anything changed. Lines without a key are keyed by title and
publication time.

Every line is its own savepoint: a bad line is reported with its number and
reason and the good ones are kept. The caller commits.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Callable, Iterable

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from feeds.db import utcnow
from feeds.errors import FeedsError, InvalidInput
from feeds.models import NAME_MAX, Organization, Release
from feeds.organizations import create_organization, find_organization
from feeds.sanitize import plain_text
from feeds.store import create_release, update_release
from feeds.types import ImportProblem, ImportReport, ReleaseDraft
from feeds.validate import release_draft

IMPORT_FIELDS = frozenset({"organization", "external_id", "id", "view_count"})
KEY_MAX = 200


def find_or_create_organization(
    session: Session, value: object, *, country_code: str, now: datetime
) -> Organization:
    """The organization a line names, by slug or exact name; created when unknown.

    The API's own representation (``{"slug": …, "name": …}``) is accepted
    too, so releases read from one Syndicate can be imported into another.
    """
    if isinstance(value, dict):
        value = value.get("slug") or value.get("name")
    if not isinstance(value, str) or not plain_text(value):
        raise InvalidInput("organization is required (a slug or a name)", field="organization")
    name = plain_text(value)
    if len(name) > NAME_MAX:
        raise InvalidInput(f"organization is longer than {NAME_MAX} characters", field="organization")
    found = find_organization(session, name) or session.scalar(
        select(Organization).where(Organization.name == name).order_by(Organization.id).limit(1)
    )
    if found is not None:
        return found
    return create_organization(session, name, country_code=country_code, now=now)


def import_key(data: dict[str, Any], draft: ReleaseDraft) -> str:
    """The line's ``external_id`` (or ``id``), else a key made of its title and time."""
    for name in ("external_id", "id"):
        value = data.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidInput(f"{name} must be a string or an integer", field=name)
        key = str(value).strip()
        if len(key) > KEY_MAX:
            raise InvalidInput(f"{name} is longer than {KEY_MAX} characters", field=name)
        if key:
            return key
    when = draft.published_at.isoformat() if draft.published_at else ""
    return "auto:" + hashlib.sha256(f"{draft.title}\n{when}".encode()).hexdigest()[:40]


def _view_count(data: dict[str, Any]) -> int | None:
    value = data.get("view_count")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput("view_count must be a non-negative integer", field="view_count")
    return value


def import_release(session: Session, data: object, *, now: datetime) -> str:
    """Store one parsed line; returns ``created``, ``updated`` or ``unchanged``."""
    draft = release_draft(data, extra_fields=IMPORT_FIELDS)
    assert isinstance(data, dict)  # release_draft refuses anything else
    key = import_key(data, draft)
    views = _view_count(data)
    organization = find_or_create_organization(
        session, data.get("organization"), country_code=draft.country_code, now=now
    )
    existing = session.scalar(
        select(Release).where(Release.organization_id == organization.id, Release.import_key == key)
    )
    if existing is None:
        release = create_release(session, organization, draft, now=now, import_key=key)
        if views is not None:
            release.view_count = views
            session.flush()
        return "created"
    if existing.withdrawn_at is not None:
        # Withdrawn on purpose; an old file must not bring it back.
        return "unchanged"
    return "updated" if update_release(session, existing, draft, now=now) else "unchanged"


def _reason(exc: Exception) -> str:
    if isinstance(exc, InvalidInput) and exc.field and exc.field not in exc.message:
        return f"{exc.field}: {exc.message}"
    if isinstance(exc, DBAPIError):
        return f"the database refused it: {str(exc.orig).splitlines()[0]}"
    return str(exc)


def import_releases(
    session: Session,
    lines: Iterable[str],
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import every line; blank lines are skipped, bad lines reported, good ones kept.

    ``progress`` is called with the number of lines done after each line.
    """
    now = now or utcnow()
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    problems: list[ImportProblem] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip().lstrip("\ufeff")
        if text:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(ImportProblem(number, f"not valid JSON: {exc.msg} at column {exc.colno}"))
            else:
                try:
                    with session.begin_nested():
                        counts[import_release(session, data, now=now)] += 1
                except (FeedsError, DBAPIError) as exc:
                    problems.append(ImportProblem(number, _reason(exc)))
        if progress is not None:
            progress(number)
    return ImportReport(problems=problems, **counts)
