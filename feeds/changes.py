"""Which channels a transaction changed, so feeds can be invalidated and hubs pinged.

The store notes every release it creates, corrects or withdraws in
``session.info``; whoever owns the session reads the notes after commit (a
cache, a WebSub notifier) and drops them on rollback. Only the stable,
nameable channels are noted: ``all``, one organization, one country.
Filtered feeds are invalidated with everything else by the content version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

CHANGES_KEY = "feeds.changed_channels"


@dataclass(frozen=True, order=True)
class ChannelRef:
    """A stable channel: ``kind`` is ``all``, ``organization`` or ``country``."""

    kind: str
    key: str = ""  # organization slug or lower-case country code


ALL = ChannelRef("all")


class _ReleaseLike(Protocol):
    country_code: str

    @property
    def organization(self) -> object: ...


def note_change(session: Session, *refs: ChannelRef) -> None:
    """Record that the current transaction changes ``refs`` (and the ``all`` channel)."""
    changed: set[ChannelRef] = session.info.setdefault(CHANGES_KEY, set())
    changed.add(ALL)
    changed.update(refs)


def note_release(session: Session, release: _ReleaseLike) -> None:
    """Record the channels ``release`` is in, as it stands now."""
    refs = [ChannelRef("country", release.country_code.lower())]
    slug = getattr(release.organization, "slug", None)
    if isinstance(slug, str):
        refs.append(ChannelRef("organization", slug))
    note_change(session, *refs)


def pop_changes(session: Session) -> set[ChannelRef]:
    """The channels noted since the last pop (after a commit), forgetting them."""
    changed: set[ChannelRef] = session.info.pop(CHANGES_KEY, set())
    return changed


def discard_changes(session: Session) -> None:
    """Forget the notes of a transaction that was rolled back."""
    session.info.pop(CHANGES_KEY, None)
