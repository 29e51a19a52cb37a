"""One database session per request, opened lazily and closed on teardown."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session, sessionmaker

from config import Config
from feeds.db import make_session_factory


def init_app(app: Flask, config: Config) -> None:
    app.extensions["syndicate.session_factory"] = make_session_factory(config.database_url)
    app.teardown_appcontext(_close_session)


def session_factory() -> sessionmaker[Session]:
    return current_app.extensions["syndicate.session_factory"]  # type: ignore[no-any-return]


def get_session() -> Session:
    """The request's session, created on first use."""
    if "db_session" not in g:
        g.db_session = session_factory()()
    return g.db_session  # type: ignore[no-any-return]


def get_config() -> Config:
    return current_app.extensions["syndicate.config"]  # type: ignore[no-any-return]


def _close_session(exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()
