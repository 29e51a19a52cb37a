"""Blueprints, one per area."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Register every area. The feeds blueprint owns the shared response cache
    (feeds and listing pages); the site's fast path looks it up lazily, so the
    order here does not matter to it."""
    from syndicate.web import api, feeds, health, search, site, sources_api, subscribe

    for blueprint in (health.bp, site.bp, api.bp, sources_api.bp, subscribe.bp, feeds.bp, search.bp):
        app.register_blueprint(blueprint)
