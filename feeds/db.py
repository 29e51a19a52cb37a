"""Database plumbing: the declarative base, UTC datetimes, engines and sessions."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

UTC = timezone.utc
# Execution option: take SQLite's write lock when the transaction begins.
WRITE_LOCK_AT_BEGIN = "syndicate_write_lock_at_begin"


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime that is always timezone-aware UTC in Python.

    PostgreSQL keeps ``timestamptz``; SQLite keeps naive UTC text, which sorts
    and compares correctly because every value is written in the same zone.
    Naive datetimes are refused on the way in: they are always a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the database; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web workers read while the scheduler writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the settings Syndicate relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 10})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)

        # pysqlite opens transactions late and on its own terms; let
        # SQLAlchemy emit BEGIN itself so transactions mean what they say.
        @event.listens_for(engine, "connect")
        def _no_pysqlite_begin(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.isolation_level = None

        # A transaction that reads and then writes cannot wait for the write
        # lock in WAL mode: if another writer committed since its snapshot,
        # SQLite answers "database is locked" at once, whatever busy_timeout
        # says. Sessions that write (CLI, scheduler, non-GET requests) take the
        # lock at BEGIN instead, where busy_timeout does apply.
        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get(WRITE_LOCK_AT_BEGIN)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        if "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", 10)
    return create_engine(url, **kwargs)


def make_session_factory(
    url_or_engine: str | Engine, *, writer: bool = False, **kwargs: Any
) -> sessionmaker[Session]:
    """A session factory bound to a database URL or an existing engine.

    ``writer=True`` is for sessions that will write (jobs, commands, form
    posts): on SQLite they queue for the write lock at BEGIN rather than fail
    on upgrading a read snapshot; on PostgreSQL it changes nothing.
    """
    engine = make_engine(url_or_engine, **kwargs) if isinstance(url_or_engine, str) else url_or_engine
    if writer:
        engine = engine.execution_options(**{WRITE_LOCK_AT_BEGIN: True})
    return sessionmaker(bind=engine, expire_on_commit=False)


def writer_factory(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """A factory on the same engine and pool as ``factory`` whose sessions write."""
    engine = factory.kw["bind"]
    return sessionmaker(bind=engine.execution_options(**{WRITE_LOCK_AT_BEGIN: True}), expire_on_commit=False)


def make_unpooled_engine(url: str) -> Engine:
    """An engine without a connection pool, for short-lived CLI work."""
    return make_engine(url, poolclass=NullPool)
