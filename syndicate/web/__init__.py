"""Blueprints, one per area."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from syndicate.web import health

    app.register_blueprint(health.bp)
