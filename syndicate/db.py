"""One database session per request, opened lazily and closed on teardown."""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy.orm import Session, sessionmaker

from config import Config
from feeds.db import make_session_factory, writer_factory

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask, config: Config) -> None:
    readers = make_session_factory(config.database_url)
    app.extensions["syndicate.session_factory"] = readers
    # Same engine and pool; sessions of requests that change data take the
    # write lock when they begin (see feeds.db.make_session_factory).
    app.extensions["syndicate.writer_session_factory"] = writer_factory(readers)
    app.teardown_appcontext(_close_session)


def session_factory() -> sessionmaker[Session]:
    return current_app.extensions["syndicate.session_factory"]  # type: ignore[no-any-return]


def get_session() -> Session:
    """The request's session, created on first use: a writer's for POST, PUT, DELETE…"""
    if "db_session" not in g:
        writes = has_request_context() and request.method not in READ_METHODS
        key = "syndicate.writer_session_factory" if writes else "syndicate.session_factory"
        g.db_session = current_app.extensions[key]()
    return g.db_session  # type: ignore[no-any-return]


def get_config() -> Config:
    return current_app.extensions["syndicate.config"]  # type: ignore[no-any-return]


def _close_session(exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()
