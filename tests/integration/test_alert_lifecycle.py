"""Alert lifecycle: one open alert per rule and subject, acknowledge, resolve, reopen, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.errors import ConflictError, NotFoundError
from models import AlertStatus, AuditEntry, Role, RuleKind, Severity
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


def test_outbox_hook_runs_in_the_same_transaction(
    db_session: Session, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(
        lifecycle,
        "_outbox_hooks",
        [lambda session, alert, purpose, _occurrence: calls.append((alert.title, purpose.value))],
    )
    resident = factory.resident(factory.site("site"))
    alert = fall(db_session, resident.id).alert
    fall(db_session, resident.id)
    lifecycle.resolve(db_session, alert.id, None)
    assert calls == [("Fall detected", "new"), ("Fall detected", "resolved")]
    assert db_session.scalar(select(func.count()).select_from(type(alert))) == 1
