"""One event behind an alert, shared by the lifecycle and the notifications it queues."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Occurrence:
    """One event behind an alert: what, which event and device, when, and what it said."""

    event_type: str
    event_id: int | None = None
    device_id: str | None = None
    ts: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        """JSON-able, for the alert's history and the notification payload."""
        return {
            "event_type": self.event_type,
            "event_id": self.event_id,
            "device_id": self.device_id,
            "ts": self.ts.isoformat() if self.ts else None,
            "data": dict(self.data),
        }
