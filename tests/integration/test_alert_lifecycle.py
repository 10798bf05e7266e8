"""Alert lifecycle: one open alert per rule and subject, acknowledge, resolve, reopen, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.db import session_info
from core.errors import ConflictError, NotFoundError
from core.notify import outbox
from core.settings import Settings
from models import Alert, AlertStatus, AuditEntry, NotificationPurpose, Role, RuleKind, Severity
from tests.factories import Factory

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def fall(session: Session, resident_id: int, at: datetime = T0) -> lifecycle.Raised:
    return lifecycle.raise_alert(
        session,
        kind=RuleKind.EVENT,
        severity=Severity.CRITICAL,
        subject=Subject("resident", str(resident_id), "site", resident_id, "fall1"),
        title="Fall detected",
        details={"event": "fall_detected"},
        at=at,
    )


def test_repeat_raises_occurrences_not_a_new_alert(db_session: Session, factory: Factory) -> None:
    resident = factory.resident(factory.site("site"))
    first = fall(db_session, resident.id)
    second = fall(db_session, resident.id, T0 + timedelta(minutes=1))
    assert first.created and not second.created
    assert second.alert.id == first.alert.id
    assert second.alert.occurrences == 2
    assert second.alert.last_seen_at == T0 + timedelta(minutes=1)
    actions = [h.action for h in lifecycle.history(db_session, first.alert.id)]
    assert actions == ["opened", "repeated"]


def test_acknowledge_then_resolve_then_a_new_alert(db_session: Session, factory: Factory) -> None:
    resident = factory.resident(factory.site("site"))
    nurse = factory.user(Role.CAREGIVER, residents=(resident,))
    alert = fall(db_session, resident.id).alert
    lifecycle.acknowledge(db_session, alert.id, nurse, "on my way", at=T0 + timedelta(minutes=2))
    assert alert.status is AlertStatus.ACKNOWLEDGED and alert.acknowledged_by == nurse.id
    assert alert.next_escalation_at is None
    # A repeat while acknowledged still counts on the same alert.
    assert not fall(db_session, resident.id, T0 + timedelta(minutes=3)).created
    lifecycle.resolve(db_session, alert.id, nurse, "helped up, no injury")
    assert alert.status is AlertStatus.RESOLVED and alert.resolve_note == "helped up, no injury"
    again = fall(db_session, resident.id, T0 + timedelta(hours=1))
    assert again.created and again.alert.id != alert.id
    audited = db_session.scalars(
        select(AuditEntry.action).where(AuditEntry.target_id == str(alert.id))
    ).all()
    assert {"alert.open", "alert.acknowledge", "alert.resolved"} <= set(audited)


def test_auto_resolve_and_reopen(db_session: Session, factory: Factory) -> None:
    resident = factory.resident(factory.site("site"))
    nurse = factory.user(Role.CAREGIVER, residents=(resident,))
    alert = fall(db_session, resident.id).alert
    lifecycle.resolve(db_session, alert.id, None, "condition cleared")
    assert alert.resolved_by is None
    assert lifecycle.history(db_session, alert.id)[-1].action == "auto_resolved"
    lifecycle.reopen(db_session, alert.id, nurse, "still on the floor")
    assert alert.status is AlertStatus.OPEN and alert.resolved_at is None
    with pytest.raises(ConflictError):
        lifecycle.reopen(db_session, alert.id, nurse)


def test_reopen_refused_when_a_newer_alert_is_open(db_session: Session, factory: Factory) -> None:
    resident = factory.resident(factory.site("site"))
    nurse = factory.user(Role.CAREGIVER, residents=(resident,))
    old = fall(db_session, resident.id).alert
    lifecycle.resolve(db_session, old.id, nurse)
    fall(db_session, resident.id, T0 + timedelta(hours=2))
    with pytest.raises(ConflictError, match="newer alert"):
        lifecycle.reopen(db_session, old.id, nurse)


def test_acknowledging_a_resolved_or_missing_alert(db_session: Session, factory: Factory) -> None:
    resident = factory.resident(factory.site("site"))
    nurse = factory.user(Role.CAREGIVER, residents=(resident,))
    alert = fall(db_session, resident.id).alert
    lifecycle.resolve(db_session, alert.id, nurse)
    with pytest.raises(ConflictError):
        lifecycle.acknowledge(db_session, alert.id, nurse)
    with pytest.raises(NotFoundError):
        lifecycle.acknowledge(db_session, "00000000-0000-0000-0000-000000000000", nurse)


def test_the_outbox_is_called_in_the_same_transaction_with_the_sessions_settings(
    db_session: Session, factory: Factory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str, Settings]] = []

    def queued(session: Session, alert: Alert, purpose: NotificationPurpose, *_: Any, **kw: Any):
        assert session is db_session
        calls.append((alert.subject_id, purpose.value, kw["settings"]))

    monkeypatch.setattr(outbox, "alert_changed", queued)
    site = factory.site("site")
    unnoticed, resident = factory.resident(site), factory.resident(site)
    fall(db_session, unnoticed.id)  # a session opened without settings queues nothing
    assert calls == []
    db_session.info.update(session_info(settings))
    alert = fall(db_session, resident.id).alert
    fall(db_session, resident.id)
    lifecycle.resolve(db_session, alert.id, None)
    rid = str(resident.id)
    assert calls == [(rid, "new", settings), (rid, "resolved", settings)]
    assert db_session.scalar(select(func.count()).select_from(Alert)) == 2


def event(
    session: Session, resident_id: int, kind: str, event_id: int, at: datetime, **data: object
) -> lifecycle.Raised:
    """An event alert of the rule-less safety net, as the instant path raises it."""
    return lifecycle.raise_alert(
        session,
        kind=RuleKind.EVENT,
        severity=Severity.CRITICAL,
        subject=Subject("resident", str(resident_id), "site", resident_id, "dev1"),
        title=kind,
        details={"event_type": kind, "event_id": event_id, "data": data},
        at=at,
        occurrence=lifecycle.Occurrence(kind, event_id, "dev1", at, dict(data)),
        renotify=True,
    )


def test_each_event_type_is_its_own_alert(db_session: Session, factory: Factory) -> None:
    resident = factory.resident(factory.site("site"))
    fall_ = event(db_session, resident.id, "fall_detected", 1, T0)
    panic = event(db_session, resident.id, "button_pressed", 2, T0 + timedelta(seconds=21))
    assert fall_.created and panic.created
    assert fall_.alert.id != panic.alert.id
    assert panic.alert.details["event_type"] == "button_pressed"
    assert panic.alert.dedupe_key.endswith(":button_pressed")


def test_every_occurrence_keeps_its_own_details(db_session: Session, factory: Factory) -> None:
    resident = factory.resident(factory.site("site"))
    first = event(db_session, resident.id, "fall_detected", 1, T0, g=2.5).alert
    for n, g in ((2, 3.1), (3, 4.0)):
        event(db_session, resident.id, "fall_detected", n, T0 + timedelta(minutes=n), g=g)
    assert first.occurrences == 3
    assert first.details["data"] == {"g": 2.5}  # the first occurrence, never overwritten
    rows = lifecycle.history(db_session, first.id)
    assert [(h.action, h.data.get("event_id"), h.data.get("data")) for h in rows] == [
        ("opened", 1, {"g": 2.5}),
        ("repeated", 2, {"g": 3.1}),
        ("repeated", 3, {"g": 4.0}),
    ]
    assert rows[2].data["ts"] == (T0 + timedelta(minutes=3)).isoformat()
    assert rows[2].data["occurrences"] == 3
    # The same event again (a redelivery that got this far) is not another occurrence.
    again = event(db_session, resident.id, "fall_detected", 3, T0 + timedelta(minutes=9))
    assert again.duplicate and not again.renotified and first.occurrences == 3


def test_windowed_repeats_still_update_the_details_the_engine_reads(
    db_session: Session, factory: Factory
) -> None:
    resident = factory.resident(factory.site("site"))
    subject = Subject("resident", str(resident.id), "site", resident.id, "w1")

    def high(at: datetime, episode: str) -> lifecycle.Raised:
        return lifecycle.raise_alert(
            db_session,
            kind=RuleKind.THRESHOLD,
            severity=Severity.CRITICAL,
            subject=subject,
            title="High heart rate",
            details={"value": 130, "episode_start": episode},
            at=at,
        )

    alert = high(T0, "2026-11-22T00:55:00+00:00").alert
    repeat = high(T0 + timedelta(minutes=30), "2026-11-22T01:25:00+00:00")
    assert not repeat.renotified and not repeat.created
    assert alert.details["episode_start"] == "2026-11-22T01:25:00+00:00"
    assert lifecycle.history(db_session, alert.id)[-1].data["details"]["episode_start"] == (
        "2026-11-22T01:25:00+00:00"
    )
