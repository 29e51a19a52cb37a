"""Fixtures built by the factory: ``config``, ``session``, ``app``, ``client``, ``runner``.

Every test that takes ``database_url`` (directly or through the fixtures
above) runs on SQLite and, when ``TEST_DATABASE_URL`` is set, again on that
database (PostgreSQL in CI).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from config import Config
from feeds.db import Base, make_engine, make_unpooled_engine, make_session_factory
from feeds.schema import drop_postgres_schema, upgrade_database

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if TEST_DATABASE_URL else [])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "syndicate.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL test database, emptied and migrated once per run."""
    assert TEST_DATABASE_URL
    drop_postgres_schema(TEST_DATABASE_URL)
    upgrade_database(TEST_DATABASE_URL)
    return TEST_DATABASE_URL


def reset_postgres(url: str) -> None:
    """Empty every table and restore the rows the migrations seed."""
    engine = make_unpooled_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO content_state (id, version, changed_at) VALUES (1, 0, now())"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        target = tmp_path / "syndicate.db"
        shutil.copyfile(sqlite_template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url


@pytest.fixture
def backend(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Config:
    return Config(
        database_url=database_url,
        base_url="http://127.0.0.1:8000",
        secret_key="test-secret-key-not-for-production",
        mail_url=f"maildir://{tmp_path}/mail",
        instance_path=tmp_path,
        testing=True,
    )


@pytest.fixture
def session_factory(config: Config) -> Iterator[sessionmaker[Session]]:
    factory = make_session_factory(make_engine(config.database_url))
    yield factory
    factory.kw["bind"].dispose()


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as s:
        yield s


@pytest.fixture
def app(config: Config) -> Iterator[Any]:
    from syndicate import create_app

    application = create_app(config)
    yield application
    application.extensions["syndicate.session_factory"].kw["bind"].dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def clock(app: Any) -> Any:
    """Inject a test clock into the app: views, embargoes and the response cache follow it."""
    from appclock import T0, Clock

    clock = Clock(T0)
    app.extensions["syndicate.clock"] = clock
    app.extensions["syndicate.feed_cache"].monotonic = lambda: clock.mono
    return clock


@pytest.fixture
def runner(config: Config) -> Callable[..., Result]:
    """``runner("releases", "import", path)`` runs the real CLI against the test database."""
    from syndicate.cli import Context, cli

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), obj=Context(config), input=input, catch_exceptions=False)

    return invoke
