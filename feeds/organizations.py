"""Organizations and their API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from feeds.countries import get_country
from feeds.db import utcnow
from feeds.errors import InvalidInput, OrganizationNotFound, Unauthorized
from feeds.models import NAME_MAX, ApiToken, Organization, Release
from feeds.sanitize import plain_text
from feeds.slugs import slugify

TOKEN_PREFIX = "syn_"


def find_organization(session: Session, slug: str) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.slug == slug))


def get_organization(session: Session, slug: str) -> Organization:
    org = find_organization(session, slug)
    if org is None:
        raise OrganizationNotFound(f"organization {slug!r} not found", resource_id=slug)
    return org


def list_organizations(session: Session, *, now: datetime | None = None) -> list[tuple[Organization, int]]:
    """Every organization with its number of releases (withdrawn ones left out), by name.

    With ``now``, embargoed releases are left out of the counts too (what a
    reader may see). Sorted in Python: SQLite's ``lower()`` knows no Cyrillic.
    """
    conditions: list[ColumnElement[bool]] = [Release.withdrawn_at.is_(None)]
    if now is not None:
        conditions.append(Release.published_at <= now)
    counts = (
        select(Release.organization_id, func.count().label("n"))
        .where(*conditions)
        .group_by(Release.organization_id)
        .subquery()
    )
    rows = session.execute(
        select(Organization, func.coalesce(counts.c.n, 0)).outerjoin(
            counts, counts.c.organization_id == Organization.id
        )
    )
    return sorted(((org, int(n)) for org, n in rows), key=lambda row: (row[0].name.casefold(), row[0].slug))


def unique_slug(session: Session, name: str) -> str:
    base = slugify(name, max_length=60) or "organization"
    slug, n = base, 1
    while session.scalar(select(Organization.id).where(Organization.slug == slug)) is not None:
        n += 1
        slug = f"{base}-{n}"
    return slug


def create_organization(
    session: Session,
    name: str,
    *,
    country_code: str | None = None,
    website: str | None = None,
    description: str | None = None,
    slug: str | None = None,
    now: datetime | None = None,
) -> Organization:
    """A new organization with a unique transliterated slug (fixed from now on)."""
    clean_name = plain_text(name)
    if not clean_name:
        raise InvalidInput("organization name must not be empty", field="name")
    if len(clean_name) > NAME_MAX:
        raise InvalidInput(f"organization name is longer than {NAME_MAX} characters", field="name")
    if slug is not None:
        if slugify(slug) != slug:
            raise InvalidInput(f"slug {slug!r} must be lower-case latin letters, digits and hyphens", field="slug")
        if find_organization(session, slug) is not None:
            raise InvalidInput(f"slug {slug!r} is taken", field="slug")
    org = Organization(
        slug=slug or unique_slug(session, clean_name),
        name=clean_name,
        country_code=get_country(country_code).code if country_code else None,
        website=website,
        description=description,
        created_at=now or utcnow(),
    )
    session.add(org)
    session.flush()
    return org


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, organization: Organization | None, *, now: datetime | None = None) -> str:
    """Create a bearer token and return it; only its hash is kept.

    ``organization`` None makes an administrator token.
    """
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            organization_id=organization.id if organization else None,
            token_hash=hash_token(token),
            created_at=now or utcnow(),
        )
    )
    session.flush()
    return token


def authenticate(session: Session, token: str | None) -> ApiToken:
    """The live token row for a presented bearer token, else ``Unauthorized``."""
    if not token:
        raise Unauthorized("a bearer token is required")
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("the bearer token is not valid")
    return row
