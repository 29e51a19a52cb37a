"""Database plumbing: UTC datetimes and SQLite's write lock."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, StatementError

from feeds.db import make_engine, make_session_factory, utcnow, writer_factory
from feeds.models import Heartbeat


def _table(path: Path) -> str:
    url = f"sqlite:///{path / 'lock.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    return url


def test_a_reader_that_turns_writer_fails_where_a_writer_session_waits(tmp_path: Path) -> None:
    readers = make_session_factory(_table(tmp_path))
    writers = writer_factory(readers)

    # The failure the writer sessions exist for: a read snapshot cannot be
    # upgraded once another connection has committed.
    stale = readers()
    stale.execute(text("SELECT count(*) FROM t")).all()
    with writers() as other:
        other.execute(text("INSERT INTO t VALUES (1)"))
        other.commit()
    with pytest.raises(OperationalError, match="locked"):
        stale.execute(text("INSERT INTO t VALUES (2)"))
    stale.rollback()
    stale.close()

    # A writer session holds the lock from BEGIN; a second writer queues behind it.
    first = writers()
    first.execute(text("SELECT count(*) FROM t")).all()
    done: list[str] = []

    def second_writer() -> None:
        with writers() as s:
            s.execute(text("INSERT INTO t VALUES (3)"))
            s.commit()
            done.append("second")

    thread = threading.Thread(target=second_writer)
    thread.start()
    thread.join(timeout=0.3)
    assert done == []  # still waiting for the lock
    first.execute(text("INSERT INTO t VALUES (4)"))
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert done == ["second"]
    with readers() as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar() == 3
    readers.kw["bind"].dispose()


def test_datetimes_come_back_aware_utc_and_naive_ones_are_refused(session) -> None:  # type: ignore[no-untyped-def]
    moscow = timezone(timedelta(hours=3))
    at = datetime(2023, 9, 5, 8, 27, tzinfo=moscow)
    session.add(Heartbeat(name="t", node="n", at=at))
    session.commit()
    session.expire_all()
    stored = session.get(Heartbeat, "t").at
    assert stored == at and stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored.hour == 5
    session.add(Heartbeat(name="naive", node="n", at=datetime(2023, 9, 5, 8, 27)))
    with pytest.raises(StatementError, match="naive datetime"):
        session.commit()
    session.rollback()
    assert utcnow().tzinfo is timezone.utc
