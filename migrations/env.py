"""Alembic environment: migrations run on SQLite and PostgreSQL alike."""

from __future__ import annotations

from alembic import context

from feeds.db import Base, make_unpooled_engine
import feeds.models  # noqa: F401  (registers the tables)

try:  # subscribers may not be importable in a stripped-down deployment
    import subscribers.models  # noqa: F401
except ImportError:  # pragma: no cover
    pass

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_unpooled_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():  # pragma: no cover
    raise SystemExit("offline migrations are not supported; run `syndicate db upgrade`")
run_migrations_online()
