"""Interface language (ru by default, en available) and the site time zone."""

from __future__ import annotations

from flask import Flask, g, request
from flask_babel import Babel

from config import LANGUAGES, Config

TRANSLATIONS = __import__("pathlib").Path(__file__).resolve().parent / "translations"


def select_locale() -> str:
    """``?lang=`` first, then the ``lang`` cookie, then Accept-Language, then the default."""
    config: Config = request.environ.get("syndicate.config") or _app_config()
    asked = request.args.get("lang") or request.cookies.get("lang")
    if asked in LANGUAGES:
        return asked
    best = request.accept_languages.best_match(LANGUAGES)
    return best or config.language


def _app_config() -> Config:
    from syndicate.db import get_config

    return get_config()


def current_language() -> str:
    if "lang" not in g:
        g.lang = select_locale()
    return g.lang  # type: ignore[no-any-return]


def init_app(app: Flask, config: Config) -> None:
    Babel(
        app,
        locale_selector=current_language,
        timezone_selector=lambda: config.timezone,
        default_locale=config.language,
        default_timezone=config.timezone,
        default_translation_directories=str(TRANSLATIONS),
    )
