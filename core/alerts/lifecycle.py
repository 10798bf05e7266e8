"""The alert lifecycle: open → acknowledged → resolved, one open alert per rule and subject.

Every change writes alert_history and the audit log in the caller's transaction, and queues its
notifications through core.notify.outbox in that same transaction (transactional outbox).

A repeat is folded into the unresolved alert as an occurrence, each with its own history row. A
repeat raised with `renotify=True` (the instant path does so for every new critical event) is news
again: the alert goes back to open if it was acknowledged, its escalation starts over and the
route hears of it as a repeat. Windowed rules never pass it: a sustained condition re-evaluated
every minute must not page anyone every minute.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import audit
from core.alerts.occurrence import Occurrence
from core.db import session_settings
from core.errors import ConflictError, NotFoundError
from core.notify import outbox
from core.timeutil import utcnow
from models import (
    Alert,
    AlertHistory,
    AlertRule,
    AlertStatus,
    NotificationPurpose,
    RuleKind,
    Severity,
    User,
)


def _notify(
    session: Session,
    alert: Alert,
    purpose: NotificationPurpose,
    occurrence: Occurrence | None = None,
) -> None:
    # Whoever must hear of the change is queued in this same transaction (transactional
    # outbox), with the settings the session was opened with (core.bootstrap's sessions carry
    # them). A session opened without them, as the offline history replay does, queues none.
    settings = session_settings(session)
    if settings is not None:
        outbox.alert_changed(session, alert, purpose, occurrence, settings=settings)


@dataclass(frozen=True)
class Subject:
    """What an alert is about: a resident, a device or a site, with where it is."""

    type: str
    id: str
    site_id: str | None = None
    resident_id: int | None = None
    device_id: str | None = None


@dataclass(frozen=True)
class Raised:
    """The outcome of raising: the alert, whether it is new (else a repeat), whether the repeat
    was notified again, and whether it was an event the alert had counted already."""

    alert: Alert
    created: bool
    renotified: bool = False
    duplicate: bool = False

    @property
    def notified(self) -> bool:
        """Whether this raise queued notifications (deliver them now)."""
        return self.created or self.renotified


def dedupe_key(
    rule_id: int | None, kind: RuleKind, subject: Subject, event_type: str | None = None
) -> str:
    """One open alert per rule (or kind, for rule-less alerts), subject and, for events, type.

    A panic press is never folded into an open fall alert, even when one rule lists both.
    """
    owner = f"rule{rule_id}" if rule_id is not None else f"kind:{kind.value}"
    key = f"{owner}:{subject.type}:{subject.id}"
    return f"{key}:{event_type}" if event_type else key


def _history(
    session: Session,
    alert: Alert,
    action: str,
    actor: User | None = None,
    note: str | None = None,
    at: datetime | None = None,
    **data: Any,
) -> None:
    session.add(
        AlertHistory(
            alert_id=alert.id,
            at=at or utcnow(),
            action=action,
            actor_id=actor.id if actor else None,
            note=note,
            data=data,
        )
    )


def find_unresolved(session: Session, key: str) -> Alert | None:
    """The open or acknowledged alert with this dedupe key, locked for update on PostgreSQL."""
    return session.scalar(
        select(Alert)
        .where(Alert.dedupe_key == key, Alert.status != AlertStatus.RESOLVED)
        .with_for_update()
    )


def _event_type(
    kind: RuleKind, details: dict[str, Any] | None, occurrence: Occurrence | None
) -> str | None:
    if occurrence is not None:
        return occurrence.event_type
    if RuleKind(kind) is RuleKind.EVENT and details and details.get("event_type"):
        return str(details["event_type"])
    return None


def _seen_event(session: Session, alert: Alert, event_id: int) -> bool:
    """Whether the alert counted this event already (a redelivery must not page twice)."""
    found = session.scalar(
        select(AlertHistory.id)
        .where(
            AlertHistory.alert_id == alert.id,
            AlertHistory.action.in_(("opened", "repeated")),
            AlertHistory.data["event_id"].as_integer() == event_id,
        )
        .limit(1)
    )
    return found is not None


def _repeat(
    session: Session,
    alert: Alert,
    now: datetime,
    details: dict[str, Any] | None,
    occurrence: Occurrence | None,
    renotify: bool,
) -> Raised:
    """Count a repeat on `alert`; with `renotify`, make it news again (see the module doc)."""
    event_id = occurrence.event_id if occurrence is not None else None
    if event_id is not None and _seen_event(session, alert, event_id):
        return Raised(alert, created=False, duplicate=True)
    alert.occurrences += 1
    alert.last_seen_at = max(alert.last_seen_at, now)
    if occurrence is not None:
        # Each occurrence lives in its own history row; details stay those of the first.
        record = occurrence.to_data()
    else:
        # Windowed rules read the newest episode back from the details (core.rules.engine).
        if details:
            alert.details = {**alert.details, **details}
        record = {"details": details or {}}
    _history(session, alert, "repeated", at=now, occurrences=alert.occurrences, **record)
    if not renotify:
        return Raised(alert, created=False)
    if alert.status is AlertStatus.ACKNOWLEDGED:
        # It happened again after someone took it on: open again, and the acknowledgement
        # stays in the history (its own row, and the one written here).
        _history(
            session,
            alert,
            "reactivated",
            at=now,
            occurrences=alert.occurrences,
            acknowledged_by=alert.acknowledged_by,
            acknowledged_at=(alert.acknowledged_at.isoformat() if alert.acknowledged_at else None),
            ack_note=alert.ack_note,
        )
        alert.status = AlertStatus.OPEN
        alert.acknowledged_at = alert.acknowledged_by = alert.ack_note = None
        audit.record(
            session, None, "alert.reactivate", "alert", alert.id, occurrences=alert.occurrences
        )
    # Escalation starts over from the first tier; the outbox schedules its next step.
    alert.escalation_level = 1
    alert.next_escalation_at = None
    _notify(session, alert, NotificationPurpose.REPEAT, occurrence)
    return Raised(alert, created=False, renotified=True)


def raise_alert(
    session: Session,
    *,
    kind: RuleKind,
    severity: Severity,
    subject: Subject,
    title: str,
    details: dict[str, Any] | None = None,
    rule: AlertRule | None = None,
    at: datetime | None = None,
    occurrence: Occurrence | None = None,
    renotify: bool = False,
) -> Raised:
    """Open an alert, or count a repeat on the unresolved one with the same key.

    `occurrence` is the event behind it (its type is part of the key; each occurrence is kept in
    the history). `renotify` makes a repeat news again: only for a new critical event, never for
    a windowed rule's re-evaluation of the same condition.
    """
    now = at or utcnow()
    key = dedupe_key(
        rule.id if rule else None, kind, subject, _event_type(kind, details, occurrence)
    )
    existing = find_unresolved(session, key)
    if existing is not None:
        return _repeat(session, existing, now, details, occurrence, renotify)
    alert = Alert(
        id=uuid.uuid4(),
        rule_id=rule.id if rule else None,
        kind=kind,
        severity=severity,
        status=AlertStatus.OPEN,
        subject_type=subject.type,
        subject_id=subject.id,
        dedupe_key=key,
        site_id=subject.site_id,
        resident_id=subject.resident_id,
        device_id=subject.device_id,
        title=title,
        details=details or {},
        occurrences=1,
        opened_at=now,
        last_seen_at=now,
        escalation_level=1,
    )
    try:
        # A savepoint: another writer may open the same alert at the same moment.
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        existing = find_unresolved(session, key)
        if existing is None:
            raise
        return _repeat(session, existing, now, details, occurrence, renotify)
    first = occurrence.to_data() if occurrence is not None else {}
    _history(session, alert, "opened", at=now, severity=severity.value, **first)
    audit.record(
        session, None, "alert.open", "alert", alert.id, title=title, severity=severity.value
    )
    _notify(session, alert, NotificationPurpose.NEW)
    return Raised(alert, created=True)


def get_alert(session: Session, alert_id: uuid.UUID | str) -> Alert:
    """The alert, locked for update, or NotFoundError."""
    key = alert_id if isinstance(alert_id, uuid.UUID) else uuid.UUID(str(alert_id))
    alert = session.scalar(select(Alert).where(Alert.id == key).with_for_update())
    if alert is None:
        raise NotFoundError(f"No alert {alert_id}.", key="errors.alert_missing")
    return alert


def acknowledge(
    session: Session,
    alert_id: uuid.UUID | str,
    user: User,
    note: str | None = None,
    at: datetime | None = None,
) -> Alert:
    """A person takes the alert on: escalation stops. Acknowledging twice is a no-op."""
    alert = get_alert(session, alert_id)
    if alert.status is AlertStatus.RESOLVED:
        raise ConflictError("This alert is already resolved.", key="errors.alert_resolved")
    if alert.status is AlertStatus.ACKNOWLEDGED:
        return alert
    now = at or utcnow()
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = now
    alert.acknowledged_by = user.id
    alert.ack_note = note
    alert.next_escalation_at = None
    _history(session, alert, "acknowledged", user, note, at=now)
    audit.record(session, user, "alert.acknowledge", "alert", alert.id, note=note)
    return alert


def resolve(
    session: Session,
    alert_id: uuid.UUID | str,
    user: User | None,
    note: str | None = None,
    at: datetime | None = None,
) -> Alert:
    """Close the alert, by a person or (user None) automatically when the condition cleared."""
    alert = get_alert(session, alert_id)
    if alert.status is AlertStatus.RESOLVED:
        return alert
    now = at or utcnow()
    alert.status = AlertStatus.RESOLVED
    alert.resolved_at = now
    alert.resolved_by = user.id if user else None
    alert.resolve_note = note
    alert.next_escalation_at = None
    action = "resolved" if user else "auto_resolved"
    _history(session, alert, action, user, note, at=now)
    audit.record(session, user, f"alert.{action}", "alert", alert.id, note=note)
    _notify(session, alert, NotificationPurpose.RESOLVED)
    return alert


def reopen(
    session: Session,
    alert_id: uuid.UUID | str,
    user: User,
    note: str | None = None,
    at: datetime | None = None,
) -> Alert:
    """Reopen a resolved alert (it was not really over); refused if a newer one is open."""
    alert = get_alert(session, alert_id)
    if alert.status is not AlertStatus.RESOLVED:
        raise ConflictError(
            "Only a resolved alert can be reopened.", key="errors.alert_not_resolved"
        )
    if find_unresolved(session, alert.dedupe_key) is not None:
        raise ConflictError(
            "A newer alert for the same rule and subject is open already.",
            key="errors.alert_newer_open",
        )
    now = at or utcnow()
    alert.status = AlertStatus.OPEN
    alert.resolved_at = alert.resolved_by = alert.resolve_note = None
    alert.acknowledged_at = alert.acknowledged_by = alert.ack_note = None
    alert.escalation_level = 1
    alert.last_seen_at = now
    _history(session, alert, "reopened", user, note, at=now)
    audit.record(session, user, "alert.reopen", "alert", alert.id, note=note)
    _notify(session, alert, NotificationPurpose.NEW)
    return alert


def comment(
    session: Session,
    alert_id: uuid.UUID | str,
    user: User,
    note: str,
    at: datetime | None = None,
) -> Alert:
    """A person adds a note to the alert; its state does not change."""
    alert = get_alert(session, alert_id)
    _history(session, alert, "commented", user, note, at=at or utcnow())
    audit.record(session, user, "alert.comment", "alert", alert.id, note=note)
    return alert


def history(session: Session, alert_id: uuid.UUID) -> list[AlertHistory]:
    """Every change of an alert, oldest first."""
    return list(
        session.scalars(
            select(AlertHistory)
            .where(AlertHistory.alert_id == alert_id)
            .order_by(AlertHistory.at, AlertHistory.id)
        )
    )
