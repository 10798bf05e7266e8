"""The hook every newly stored event passes through, so critical events raise alerts at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as written to the events table (redeliveries never reach the hook twice)."""

    id: int
    device_id: str
    site_id: str
    resident_id: int | None
    device_type: str | None
    type: str
    ts: datetime
    data: dict[str, Any]
    received_at: datetime
    quarantined: bool = False


AfterCommit = Callable[[], None]


class InstantRules(Protocol):
    """Evaluated synchronously by ingest, inside the transaction that stores the events."""

    def on_events(self, session: Session, events: Sequence[StoredEvent]) -> AfterCommit | None:
        """Open or update alerts for these events; return what to do once they are committed
        (deliver notifications, publish commands), or None."""
        ...


class NoInstantRules:
    """Used where no alert engine is wired in (tests of ingest alone): events are only stored."""

    def on_events(self, session: Session, events: Sequence[StoredEvent]) -> AfterCommit | None:
        """No alert is opened."""
        return None
