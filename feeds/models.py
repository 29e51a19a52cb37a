"""The stored entities of the feeds side: organizations, releases, sources.

The schema itself is made only by the Alembic migrations in ``migrations/``;
these classes must stay in step with them (a test compares the two).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feeds.db import Base, UTCDateTime

TITLE_MAX = 500
LEAD_MAX = 5000
BODY_MAX = 200_000
CONTACT_MAX = 500
NAME_MAX = 200
SLUG_MAX = 120
URL_MAX = 2048


class Organization(Base):
    """A publisher of releases: a company, an agency, a partner site."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Transliterated, unique, and never changed once used (feed URLs depend on it).
    slug: Mapped[str] = mapped_column(String(SLUG_MAX), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    country_code: Mapped[Optional[str]] = mapped_column(String(2))
    website: Mapped[Optional[str]] = mapped_column(String(URL_MAX))
    description: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    releases: Mapped[list["Release"]] = relationship(back_populates="organization", lazy="raise")


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored.

    ``organization_id`` set: may publish for that organization.
    ``organization_id`` NULL: an administrator token (partner sources, etc.).
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())


class Release(Base):
    """A press release.

    Visible when ``withdrawn_at IS NULL AND published_at <= now``: a future
    ``published_at`` is an embargo, lifted by the clock alone.
    """

    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Permanent identity in every feed (urn:uuid:...): a correction never changes it.
    guid: Mapped[str] = mapped_column(String(64), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="RESTRICT"))
    country_code: Mapped[str] = mapped_column(String(2))
    language: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    slug: Mapped[str] = mapped_column(String(SLUG_MAX))
    lead: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)  # sanitized HTML
    contact: Mapped[Optional[str]] = mapped_column(String(CONTACT_MAX))
    # [{"url": ..., "type": ..., "length": ..., "title": ...}] -> feed enclosures
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    view_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Stemmed words of title, lead and body: what full-text search indexes.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    # Where an ingested release came from.
    source_id: Mapped[Optional[int]] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    source_entry_key: Mapped[Optional[str]] = mapped_column(String(URL_MAX))
    canonical_url: Mapped[Optional[str]] = mapped_column(String(URL_MAX))
    # Lets import and ingestion recognise an unchanged entry without comparing fields.
    content_hash: Mapped[Optional[str]] = mapped_column(String(64))
    import_key: Mapped[Optional[str]] = mapped_column(String(200))

    organization: Mapped[Organization] = relationship(back_populates="releases", lazy="joined")

    __table_args__ = (
        UniqueConstraint("source_id", "source_entry_key", name="uq_releases_source_entry"),
        UniqueConstraint("organization_id", "import_key", name="uq_releases_import_key"),
        Index(
            "ix_releases_visible_newest",
            "published_at",
            "id",
            postgresql_where=text("withdrawn_at IS NULL"),
            sqlite_where=text("withdrawn_at IS NULL"),
        ),
        Index(
            "ix_releases_org_newest",
            "organization_id",
            "published_at",
            "id",
            postgresql_where=text("withdrawn_at IS NULL"),
            sqlite_where=text("withdrawn_at IS NULL"),
        ),
        Index(
            "ix_releases_country_newest",
            "country_code",
            "published_at",
            "id",
            postgresql_where=text("withdrawn_at IS NULL"),
            sqlite_where=text("withdrawn_at IS NULL"),
        ),
        Index("ix_releases_updated", "updated_at"),
    )


class Source(Base):
    """A partner feed that Syndicate polls and ingests."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(URL_MAX))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    country_code: Mapped[str] = mapped_column(String(2))
    interval_minutes: Mapped[int] = mapped_column(Integer, default=30)
    title: Mapped[Optional[str]] = mapped_column(String(TITLE_MAX))
    # HTTP validators for conditional GET
    etag: Mapped[Optional[str]] = mapped_column(String(1024))
    last_modified: Mapped[Optional[str]] = mapped_column(String(128))
    # schedule and lease
    next_check_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[Optional[str]] = mapped_column(String(128))
    lease_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    # outcome
    last_checked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    last_success_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime())
    last_status: Mapped[Optional[int]] = mapped_column(Integer)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    last_warning: Mapped[Optional[str]] = mapped_column(Text)
    error_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    disabled_reason: Mapped[Optional[str]] = mapped_column(Text)
    # a permanent redirect is followed for good only when seen twice in a row
    moved_to: Mapped[Optional[str]] = mapped_column(String(URL_MAX))
    moved_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    releases_ingested: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    organization: Mapped[Organization] = relationship(lazy="joined")

    __table_args__ = (Index("ix_sources_due", "disabled", "next_check_at"),)


class ContentState(Base):
    """One row: a counter bumped in the same transaction as any release change.

    Web workers compare it with the version their feed cache was built at, so a
    publish on any node invalidates every node's cache.
    """

    __tablename__ = "content_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Heartbeat(Base):
    """When a named background job last ran, and on which node."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[Optional[str]] = mapped_column(Text)
