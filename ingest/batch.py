"""A write batch: everything parsed from a run of messages, written in one go, then acked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.contract.payloads import StatusMessage


@dataclass(slots=True)
class ReadingRow:
    """One row of the readings table, with the topic's site for sinks that tag by it."""

    device_id: str
    metric: str
    ts: datetime
    value: float
    site_id: str


@dataclass(slots=True)
class EventRow:
    """One event to store (and to pass through the instant rules)."""

    device_id: str
    site_id: str
    type: str
    ts: datetime
    data: dict[str, Any]


@dataclass(slots=True)
class DeadLetterRow:
    """One message that broke the contract."""

    topic: str
    payload: bytes
    payload_size: int
    reason: str
    detail: str
    received_at: datetime


@dataclass(slots=True)
class StatusRow:
    """The latest status a device reported in this batch."""

    device_id: str
    site_id: str
    status: StatusMessage
    received_at: datetime


@dataclass(slots=True)
class AckRow:
    """A device's answer to a command."""

    command_id: uuid.UUID
    device_id: str
    ok: bool
    detail: str | None
    received_at: datetime


@dataclass
class Batch:
    """Rows gathered since the last flush, plus the MQTT message ids to acknowledge after."""

    readings: list[ReadingRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    statuses: dict[str, StatusRow] = field(default_factory=dict)
    acks: list[AckRow] = field(default_factory=list)
    # device id -> (site id, latest receive time): last_seen and unknown-device quarantine.
    seen: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    messages: int = 0
    oldest_ts: datetime | None = None

    def rows(self) -> int:
        """Rows this batch will write (what the size trigger counts)."""
        return (
            len(self.readings)
            + len(self.events)
            + len(self.dead_letters)
            + len(self.statuses)
            + len(self.acks)
        )

    def is_empty(self) -> bool:
        """Nothing to write and nothing to acknowledge."""
        return self.messages == 0
