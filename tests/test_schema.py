"""The schema is made by the migrations, and the models agree with them."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import feeds.models  # noqa: F401
import subscribers.models  # noqa: F401
from feeds.db import Base, make_unpooled_engine
from feeds.schema import head_revision, is_up_to_date


def test_migrations_reach_head_and_match_the_models(database_url: str) -> None:
    assert is_up_to_date(database_url)
    engine = make_unpooled_engine(database_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = [d for d in compare_metadata(ctx, Base.metadata) if not _is_virtual_table(d)]
            assert diff == [], f"models and migrations differ: {diff}"
            assert ctx.get_current_revision() == head_revision()
    finally:
        engine.dispose()


def _is_virtual_table(diff: object) -> bool:
    # Search index tables (FTS5 on SQLite) are made by migrations but have no model.
    text = repr(diff)
    return "_fts" in text


def test_release_indexes_serve_newest_first_queries(database_url: str) -> None:
    engine = make_unpooled_engine(database_url)
    try:
        names = {ix["name"] for ix in inspect(engine).get_indexes("releases")}
    finally:
        engine.dispose()
    assert {"ix_releases_visible_newest", "ix_releases_org_newest", "ix_releases_country_newest"} <= names
