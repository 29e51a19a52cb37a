"""The publishing API's use cases: reading with the feed filters, and writing.

Each write authenticates the bearer token, checks that the release belongs
to the token's organization, validates the payload and hands it to the store.
Checks run in that order (401, 404, 403, 422) and all of them before anything
is flushed, so a refused request writes nothing. The caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from feeds.channels import parse_feed_request
from feeds.countries import find_country
from feeds.db import utcnow
from feeds.errors import Forbidden, InvalidInput, ReleaseNotFound
from feeds.models import Organization, Release
from feeds.organizations import authenticate
from feeds.store import create_release, list_releases, update_release, withdraw_release
from feeds.types import Page, ReleaseFilter, ReleaseList
from feeds.validate import release_draft

LISTING_PARAMS = ("organization", "country", "q", "lang", "limit", "page")


def query_releases(
    session: Session, args: Mapping[str, Sequence[str]], *, now: datetime | None = None
) -> tuple[ReleaseFilter, ReleaseList]:
    """Visible releases for a listing request with the feed filters and paging.

    ``args`` holds every value of each query parameter. The rules are those of
    ``/feeds/releases.*`` (one parser for both); unknown organizations and
    countries are ``InvalidInput`` naming the parameter, not an empty list,
    so a typo is not mistaken for silence.
    """
    req = parse_feed_request("releases", "json", "", {k: v for k, v in args.items() if k in LISTING_PARAMS})
    countries = []
    for code in req.countries:
        country = find_country(code)
        if country is None:
            raise InvalidInput(f"unknown country {code!r}", field="country")
        countries.append(country.code)
    if req.organizations:
        known = set(session.scalars(select(Organization.slug).where(Organization.slug.in_(req.organizations))))
        missing = [slug for slug in req.organizations if slug not in known]
        if missing:
            raise InvalidInput(f"unknown organization {missing[0]!r}", field="organization")
    flt = ReleaseFilter(organizations=req.organizations, countries=tuple(countries), q=req.q, language=req.lang)
    return flt, list_releases(session, flt, Page(req.page, req.limit), now=now or utcnow())


def publisher_for_token(session: Session, token: str | None, *, now: datetime | None = None) -> Organization:
    """The organization a bearer token publishes for.

    Administrator tokens (no organization) are refused: a release always has
    one publisher, and it is the token that says which.
    """
    row = authenticate(session, token)
    if row.organization_id is None:
        raise Forbidden("an administrator token cannot publish releases; use the organization's own token")
    organization = session.get(Organization, row.organization_id)
    if organization is None:  # the foreign key cascades, so only a race gets here
        raise Forbidden("the token's organization no longer exists")
    row.last_used_at = now or utcnow()
    return organization


def _check_named_organization(payload: object, organization: Organization) -> None:
    named = payload.get("organization") if isinstance(payload, dict) else None
    if isinstance(named, dict):  # the API's own representation, sent back as-is
        named = named.get("slug")
    if named is not None and named != organization.slug:
        raise Forbidden(
            f"this token publishes for {organization.slug!r}, not {named!r}", resource_id=organization.slug
        )


def _own_release(session: Session, organization: Organization, release_id: int) -> Release:
    release = session.get(Release, release_id)
    if release is None:
        raise ReleaseNotFound(f"release {release_id} not found", resource_id=release_id)
    if release.organization_id != organization.id:
        raise Forbidden(f"release {release_id} belongs to another organization", resource_id=release_id)
    return release


def publish_release(session: Session, token: str | None, payload: object, *, now: datetime | None = None) -> Release:
    """Publish a new release for the token's organization (``published_at`` ahead = embargo)."""
    now = now or utcnow()
    organization = publisher_for_token(session, token, now=now)
    _check_named_organization(payload, organization)
    draft = release_draft(payload)
    return create_release(session, organization, draft, now=now)


def correct_release(
    session: Session, token: str | None, release_id: int, payload: object, *, now: datetime | None = None
) -> tuple[Release, bool]:
    """Replace a release's content (same id and guid); returns it and whether anything changed.

    Without ``published_at`` the original time stays. A withdrawn release
    cannot be corrected.
    """
    now = now or utcnow()
    organization = publisher_for_token(session, token, now=now)
    release = _own_release(session, organization, release_id)
    if release.withdrawn_at is not None:
        raise ReleaseNotFound(f"release {release_id} has been withdrawn", resource_id=release_id)
    _check_named_organization(payload, organization)
    draft = release_draft(payload)
    changed = update_release(session, release, draft, now=now)
    return release, changed


def withdraw_own_release(
    session: Session, token: str | None, release_id: int, *, now: datetime | None = None
) -> Release:
    """Withdraw a release of the token's organization; withdrawing twice is harmless."""
    now = now or utcnow()
    organization = publisher_for_token(session, token, now=now)
    release = _own_release(session, organization, release_id)
    withdraw_release(session, release, now=now)
    return release


def release_status(release: Release, now: datetime) -> str:
    """``published``, ``embargoed`` (visible from ``published_at``) or ``withdrawn``."""
    if release.withdrawn_at is not None:
        return "withdrawn"
    if release.published_at > now:
        return "embargoed"
    return "published"
