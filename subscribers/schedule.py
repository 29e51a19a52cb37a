"""When digests are due: local hours in the subscriber's zone, turned into UTC.

Pure functions of their arguments (no clock, no database), so daylight-saving
changes are tested with plain datetimes. A local hour that does not exist on
a given day (clocks jump forward) is delivered at the first moment after the
jump; an hour that happens twice (clocks go back) is delivered at the first
of the two. Each occurrence has a period key (the local date for daily, the
ISO week for weekly), which is what makes a digest unique: whatever the
clock does, one period is one mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from subscribers.models import DAILY, IMMEDIATE, WEEKLY

UTC = timezone.utc
# An immediate subscriber gets at most one mail in this time: what arrives
# meanwhile is batched into the next one.
IMMEDIATE_GAP = timedelta(minutes=5)


@dataclass(frozen=True)
class Occurrence:
    """One scheduled delivery time (UTC) and the period it stands for."""

    at: datetime
    period: str


@dataclass(frozen=True)
class Schedule:
    """A subscription's timing: frequency, local hour, weekday (0 = Monday), zone."""

    frequency: str
    hour: int
    weekday: int | None
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def local_time_at(day: date, hour: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of ``hour``:00 on ``day`` in ``tz`` (fold=0: see the module doc)."""
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)


def _period(schedule: Schedule, day: date) -> str:
    if schedule.frequency == WEEKLY:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.isoformat()


def _occurrences_around(schedule: Schedule, moment: datetime) -> list[Occurrence]:
    tz = schedule.tz
    local_day = moment.astimezone(tz).date()
    span = 8 if schedule.frequency == WEEKLY else 1
    result = []
    for offset in range(-span, span + 2):
        day = local_day + timedelta(days=offset)
        if schedule.frequency == WEEKLY and day.weekday() != (schedule.weekday or 0):
            continue
        result.append(Occurrence(local_time_at(day, schedule.hour, tz), _period(schedule, day)))
    return result


def next_occurrence(schedule: Schedule, after: datetime) -> Occurrence:
    """The first scheduled delivery strictly after ``after``."""
    if schedule.frequency == IMMEDIATE:
        return Occurrence(after, "")
    return min((o for o in _occurrences_around(schedule, after) if o.at > after), key=lambda o: o.at)


def latest_occurrence(schedule: Schedule, now: datetime) -> Occurrence:
    """The last scheduled delivery at or before ``now`` (the period a late digest is for)."""
    if schedule.frequency == IMMEDIATE:
        return Occurrence(now, "")
    return max((o for o in _occurrences_around(schedule, now) if o.at <= now), key=lambda o: o.at)


def first_due(schedule: Schedule, now: datetime) -> datetime:
    """When a subscription confirmed (or rescheduled) at ``now`` is first due."""
    if schedule.frequency == IMMEDIATE:
        return now
    return next_occurrence(schedule, now).at


def immediate_period(last_seq: int) -> str:
    """Period key of an immediate digest: the newest arrival it covers."""
    return f"s{last_seq}"


__all__ = [
    "DAILY",
    "IMMEDIATE",
    "IMMEDIATE_GAP",
    "WEEKLY",
    "Occurrence",
    "Schedule",
    "first_due",
    "immediate_period",
    "latest_occurrence",
    "local_time_at",
    "next_occurrence",
]
