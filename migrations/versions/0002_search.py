"""search: full-text index over releases.search_text

SQLite: an FTS5 external-content table ``releases_fts`` over
``releases.search_text`` (Snowball stems written by Python), kept in step by
triggers. PostgreSQL: a GIN index on ``to_tsvector('simple', search_text)``;
the 'simple' configuration neither stems nor drops stop words, because the
stems are computed in Python for both databases and must match identically.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# The tokenizer keeps diacritics (й stays й) and splits on what is not a
# letter or digit, which is how feeds.search cuts words.
_SQLITE_UP = [
    """
    CREATE VIRTUAL TABLE releases_fts USING fts5(
        search_text,
        content='releases',
        content_rowid='id',
        tokenize='unicode61 remove_diacritics 0'
    )
    """,
    """
    CREATE TRIGGER releases_fts_ai AFTER INSERT ON releases BEGIN
        INSERT INTO releases_fts(rowid, search_text) VALUES (new.id, new.search_text);
    END
    """,
    """
    CREATE TRIGGER releases_fts_ad AFTER DELETE ON releases BEGIN
        INSERT INTO releases_fts(releases_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
    END
    """,
    """
    CREATE TRIGGER releases_fts_au AFTER UPDATE OF search_text ON releases BEGIN
        INSERT INTO releases_fts(releases_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
        INSERT INTO releases_fts(rowid, search_text) VALUES (new.id, new.search_text);
    END
    """,
    # Rows that existed before this revision.
    "INSERT INTO releases_fts(releases_fts) VALUES ('rebuild')",
]

_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS releases_fts_au",
    "DROP TRIGGER IF EXISTS releases_fts_ad",
    "DROP TRIGGER IF EXISTS releases_fts_ai",
    "DROP TABLE IF EXISTS releases_fts",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_UP:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(
            "CREATE INDEX ix_releases_search_fts ON releases "
            "USING gin (to_tsvector('simple'::regconfig, search_text))"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_DOWN:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_releases_search_fts")
