"""Instant rules: critical events open an alert in the transaction that stores them, and after the
commit their notifications are delivered and any automatic actuator command is published.

Ingest calls the policy through one hook (`InstantRules.on_events`, in its SQL sink) for every
newly stored event; the seeded history calls the same policy at each event's own time.

Event-kind rules come from the database (operators edit them). As a safety net, a critical event
(fall, panic button, flame, smoke, gas) that no enabled rule matches still opens a critical alert,
and flame, smoke or gas still closes the site's gas valves: a disabled rule must not mean a
missed fall. That holds for quarantined devices too (rules ignore them): a fall detector
installed before an operator accepted it is still someone's fall detector.

Every critical event reaches a person: one arriving while its alert is still open or acknowledged
is raised with `renotify`, so the route hears of it again (as a repeat, with this event's time and
data), an acknowledged alert opens again and its escalation starts over. Every flame, smoke or
gas event asks for the site's valves to close, whatever alert it was folded into: a second leak
must not meet a valve that was reopened after the first. Other events repeat silently.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.alerts import lifecycle
from core.alerts.lifecycle import Occurrence
from core.commands import request_command, site_valves
from core.contract.catalogue import CRITICAL_EVENTS, EventType
from core.rules.events import event_subject, match_event_rules
from models import AlertRule, RuleKind, Severity

log = logging.getLogger(__name__)


# --- the hook ingest calls


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


# --- the policy

VALVE_EVENTS = frozenset({EventType.FLAME_DETECTED, EventType.SMOKE_DETECTED, EventType.GAS_LEAK})
CLOSE_VALVE = "close_valve"
_TITLES = {
    EventType.FALL_DETECTED: "Fall detected",
    EventType.BUTTON_PRESSED: "Panic button pressed",
    EventType.FLAME_DETECTED: "Flame detected",
    EventType.SMOKE_DETECTED: "Smoke detected",
    EventType.GAS_LEAK: "Gas leak",
    EventType.DOOR_OPENED: "Door opened",
    EventType.MOTION: "Motion",
    EventType.WANDERING: "Wandering",
}

Deliver = Callable[[list[uuid.UUID]], object]
Dispatch = Callable[[list[uuid.UUID]], object]


class CriticalEventAlerts:
    """The InstantRules ingest runs: event rules, safety net, automatic valve closing."""

    def __init__(
        self, deliver: Deliver, dispatch: Dispatch, refresh_seconds: float = 30.0, workers: int = 4
    ) -> None:
        self.deliver = deliver
        self.dispatch = dispatch
        self.refresh_seconds = refresh_seconds
        self._rules: list[AlertRule] = []
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        # Delivery talks to SMTP/Telegram/webhooks: never on the flusher thread.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="instant-alert")

    def _event_rules(self, session: Session) -> list[AlertRule]:
        with self._lock:
            if time.monotonic() - self._loaded_at >= self.refresh_seconds:
                rules = session.scalars(
                    select(AlertRule).where(
                        AlertRule.enabled.is_(True), AlertRule.kind == RuleKind.EVENT
                    )
                ).all()
                for rule in rules:
                    session.expunge(rule)
                self._rules = list(rules)
                self._loaded_at = time.monotonic()
            return self._rules

    def on_events(self, session: Session, events: Sequence[StoredEvent]) -> AfterCommit | None:
        """Open or re-notify alerts (and request valve commands) for the events; deliver after
        commit."""
        rules = self._event_rules(session)
        notified: list[uuid.UUID] = []
        commands: list[uuid.UUID] = []
        for event in events:
            matched: list[AlertRule | None] = list(
                match_event_rules(rules, event, quarantined=event.quarantined)
            )
            critical = event.type in CRITICAL_EVENTS
            if not matched and critical:
                matched = [None]
            occurrence = Occurrence(
                event_type=event.type,
                event_id=event.id,
                device_id=event.device_id,
                ts=event.ts,
                data=dict(event.data or {}),
            )
            close_valves = event.type in VALVE_EVENTS
            command_alert: uuid.UUID | None = None
            fresh = False
            for rule in matched:
                raised = lifecycle.raise_alert(
                    session,
                    kind=RuleKind.EVENT,
                    severity=rule.severity if rule else Severity.CRITICAL,
                    subject=event_subject(event),
                    title=_TITLES.get(EventType(event.type), event.type),
                    details={
                        "event_type": event.type,
                        "event_id": event.id,
                        "device_id": event.device_id,
                        "data": event.data,
                    },
                    rule=rule,
                    at=event.received_at,
                    occurrence=occurrence,
                    renotify=critical,
                )
                if raised.duplicate:
                    continue  # this very event was handled already
                fresh = True
                command_alert = command_alert or raised.alert.id
                if raised.notified and raised.alert.id not in notified:
                    notified.append(raised.alert.id)
                    log.warning(
                        "alert %s %s: %s at %s/%s (occurrence %d)",
                        raised.alert.id,
                        "opened" if raised.created else "notified again",
                        event.type,
                        event.site_id,
                        event.device_id,
                        raised.alert.occurrences,
                    )
                action = (rule.params or {}).get("action") if rule is not None else None
                if action == CLOSE_VALVE and raised.notified:
                    close_valves = True
            if close_valves and fresh:
                # Once per event, however many rules matched it.
                for valve in site_valves(session, event.site_id):
                    command = request_command(
                        session,
                        valve.id,
                        CLOSE_VALVE,
                        alert_id=command_alert,
                        reason=f"{event.type} reported by {event.device_id}",
                    )
                    commands.append(command.id)
        if not notified and not commands:
            return None
        return lambda: self._after_commit(notified, commands)

    def _after_commit(self, notified: list[uuid.UUID], commands: list[uuid.UUID]) -> None:
        # Alerts just opened and alerts notified again alike: every occurrence at once.
        if commands:
            self._pool.submit(self._safely, self.dispatch, commands)
        if notified:
            self._pool.submit(self._safely, self.deliver, notified)

    @staticmethod
    def _safely(action: Callable[[list[uuid.UUID]], object], ids: list[uuid.UUID]) -> None:
        try:
            action(ids)
        except Exception:  # the sweepers retry what this first attempt could not do
            log.exception("instant follow-up failed for %s; the sweeper will retry", ids)

    def close(self) -> None:
        """Finish follow-ups in progress."""
        self._pool.shutdown(wait=True)
