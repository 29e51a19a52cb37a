"""``/healthz``: database reachability and the scheduler's last run."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import select, text

from feeds.models import Heartbeat
from syndicate.db import get_session

bp = Blueprint("health", __name__)


@bp.get("/ping")
def ping() -> Response:
    """A trivial endpoint: what the benchmarks compare the feed fast path with."""
    return Response("ok", mimetype="text/plain")


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    session = get_session()
    body: dict[str, object] = {"status": "ok"}
    try:
        session.execute(text("SELECT 1"))
        body["database"] = "ok"
        beats = session.scalars(select(Heartbeat)).all()
        body["scheduler"] = {
            beat.name: {"last_run": beat.at.isoformat(), "node": beat.node, "detail": beat.detail}
            for beat in beats
        }
    except Exception as exc:  # the point of a health check is to report, not to raise
        body.update(status="error", database=f"unreachable: {exc.__class__.__name__}")
        return jsonify(body), 503
    return jsonify(body), 200
