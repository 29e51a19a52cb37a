"""The injected clock of web tests: wall time for the views, monotonic time for the cache."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

T0 = datetime(2025, 3, 26, 9, 0, tzinfo=timezone.utc)


class Clock:
    """Both clocks move together, so cache re-checks and embargoes follow the test's time."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.mono = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        step = timedelta(**delta)
        self.now += step
        self.mono += step.total_seconds()
