"""The demo data set: a few months of a press-release wire, for ``make run``.

The releases live in ``feeds/data/demo_releases.jsonl`` in the import format
and go through the same importer as ``syndicate releases import``, so the
demo exercises the real path (organizations created from names, slugs
transliterated, bodies sanitized, keys making a second load change nothing).
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from feeds.importer import import_releases
from feeds.models import Release
from feeds.types import ImportReport

DEMO_FILE = "demo_releases.jsonl"


def demo_lines() -> list[str]:
    """The lines of the demo file shipped inside the package."""
    text = resources.files("feeds").joinpath("data", DEMO_FILE).read_text(encoding="utf-8")
    return text.splitlines()


def has_releases(session: Session) -> bool:
    """Whether the database holds any release at all (withdrawn ones count)."""
    return session.scalar(select(Release.id).limit(1)) is not None


def load_demo(
    session: Session,
    *,
    now: datetime | None = None,
    if_empty: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport | None:
    """Import the demo releases; with ``if_empty``, only into a database without releases.

    Returns ``None`` when skipped. The caller commits.
    """
    if if_empty and has_releases(session):
        return None
    return import_releases(session, demo_lines(), now=now, progress=progress)
