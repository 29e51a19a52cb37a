"""Blueprints, one per area."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from syndicate.web import health

    app.register_blueprint(health.bp)
    from syndicate.web import sources_api; app.register_blueprint(sources_api.bp)
    from syndicate.web import api, site; app.register_blueprint(site.bp); app.register_blueprint(api.bp)
    from syndicate.web import subscribe; app.register_blueprint(subscribe.bp)
    from syndicate.web import feeds, search
    app.register_blueprint(feeds.bp)
    app.register_blueprint(search.bp)
