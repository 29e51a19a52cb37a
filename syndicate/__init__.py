"""The running service: the Flask app, the command line and the scheduler.

The only package that imports Flask or ``config``; ``feeds`` and
``subscribers`` know nothing of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask

from config import Config

if TYPE_CHECKING:  # pragma: no cover
    pass

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
STATIC = Path(__file__).resolve().parent / "static"


def create_app(config: Config | None = None) -> Flask:
    """Build the web application. Nothing happens at import time."""
    from syndicate import db, errors, i18n
    from syndicate.web import register_blueprints

    config = config or Config.from_env()
    app = Flask(
        __name__,
        template_folder=str(TEMPLATES),
        static_folder=str(STATIC),
        static_url_path="/static",
    )
    app.config.update(
        SECRET_KEY=config.secret_key,
        TESTING=config.testing,
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.base_url.startswith("https://"),
    )
    app.extensions["syndicate.config"] = config
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    db.init_app(app, config)
    i18n.init_app(app, config)
    register_blueprints(app)
    errors.register_error_handlers(app)
    return app
