"""The hook every newly stored event passes through, so critical events raise alerts at once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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


class InstantRules(Protocol):
    """Evaluated synchronously by ingest, inside the transaction that stores the events."""

    def on_events(self, session: Session, events: Sequence[StoredEvent]) -> list[uuid.UUID]:
        """Open or update alerts for these events; return the ids of alerts to deliver."""
        ...

    def after_commit(self, alert_ids: Sequence[uuid.UUID]) -> None:
        """Called once the transaction committed: start delivery of these alerts."""
        ...


class NoInstantRules:
    """Used until an alert engine is wired in: events are stored, nothing more."""

    def on_events(self, session: Session, events: Sequence[StoredEvent]) -> list[uuid.UUID]:
        """No alert is opened."""
        return []

    def after_commit(self, alert_ids: Sequence[uuid.UUID]) -> None:
        """Nothing to deliver."""
