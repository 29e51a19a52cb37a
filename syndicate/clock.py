"""The time as the web app sees it: real UTC, or a clock a test injects.

``app.extensions["syndicate.clock"] = lambda: some_utc_datetime`` makes every
view that asks ``now()`` live at that moment, so embargoes can be tested
without waiting and without restarting the app.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from feeds.db import utcnow

CLOCK_KEY = "syndicate.clock"


def now() -> datetime:
    """The current time (timezone-aware UTC)."""
    clock = current_app.extensions.get(CLOCK_KEY)
    return clock() if clock is not None else utcnow()  # type: ignore[no-any-return]
