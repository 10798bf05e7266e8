"""core.use_cases.analysis: alert response, false-alarm candidates, daily vitals, completeness."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from core.access import AccessDenied, Viewer
from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.use_cases import analysis as q
from models import (
    AlertRule,
    DeadLetter,
    Resident,
    Role,
    Rollup,
    RollupPeriod,
    RuleKind,
    ScopeType,
    Severity,
    User,
)
from tests.factories import Factory

T0 = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
START, END = T0 - timedelta(days=1), T0 + timedelta(days=14)


@dataclass
class World:
    caregiver: Viewer
    operator: Viewer
    mine: Resident
    other: Resident
    wearable: str
    other_wearable: str
    checked: str  # acknowledged after 3 minutes, resolved after 20
    panic: str  # resolved after 2 minutes, never acknowledged, "False alarm" note
    offline: list[str]  # the same device offline three times


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def world(db_session: Session, factory: Factory) -> World:
    site = factory.site()
    mine, other = factory.resident(site, name="Mine"), factory.resident(site, name="Other")
    nurse: User = factory.user(Role.CAREGIVER, residents=(mine,), site_id=site.id)
    boss: User = factory.user(Role.OPERATOR, site_id=site.id)
    wearable = factory.device("wearable", resident=mine)
    other_wearable = factory.device("wearable", resident=other)
    rule = AlertRule(
        name="High heart rate",
        kind=RuleKind.THRESHOLD,
        severity=Severity.WARNING,
        params={"metric": "heart_rate", "op": ">", "value": 120, "for_minutes": 5},
        scope_type=ScopeType.SITE,
        site_id=site.id,
        route=[],
    )
    db_session.add(rule)
    db_session.flush()

    def raise_(kind, severity, subject, minutes, rule=None, details=None) -> str:
        return str(
            lifecycle.raise_alert(
                db_session,
                kind=kind,
                severity=severity,
                subject=subject,
                title=f"{kind.value} {subject.id}",
                details=details or {},
                rule=rule,
                at=_at(minutes),
            ).alert.id
        )

    about_mine = Subject("resident", str(mine.id), site.id, mine.id, wearable.id)
    checked = raise_(RuleKind.THRESHOLD, Severity.WARNING, about_mine, 0, rule)
    lifecycle.acknowledge(db_session, checked, nurse, at=_at(3))
    lifecycle.resolve(db_session, checked, nurse, "Checked by hand; fine.", at=_at(20))
    panic = raise_(
        RuleKind.EVENT,
        Severity.CRITICAL,
        about_mine,
        60,
        details={"event_type": "button_pressed"},
    )
    lifecycle.resolve(db_session, panic, nurse, "False alarm: pressed by mistake.", at=_at(62))
    device = Subject("device", other_wearable.id, site.id, other.id, other_wearable.id)
    offline = []
    for day in range(3):
        alert_id = raise_(RuleKind.DEVICE_OFFLINE, Severity.WARNING, device, 24 * 60 * day + 120)
        lifecycle.resolve(db_session, alert_id, None, "cleared", at=_at(24 * 60 * day + 150))
        offline.append(alert_id)
    return World(
        Viewer.of(nurse), Viewer.of(boss), mine, other, wearable.id, other_wearable.id,
        checked, panic, offline,
    )  # fmt: skip


def test_alert_responses_measure_minutes_and_follow_access(
    db_session: Session, world: World
) -> None:
    frame = q.alert_responses(db_session, world.operator, START, END)
    assert list(frame.columns) == q.RESPONSE_COLUMNS
    assert set(frame["id"]) == {world.checked, world.panic, *world.offline}
    checked = frame.set_index("id").loc[world.checked]
    assert checked["minutes_to_ack"] == pytest.approx(3)
    assert checked["minutes_to_resolve"] == pytest.approx(20)
    assert checked["rule"] == "High heart rate" and checked["resident"] == "Mine"
    assert frame.set_index("id").loc[world.panic, "rule"] == "(event)"
    # A caregiver sees the alerts about their residents only.
    mine = q.alert_responses(db_session, world.caregiver, START, END)
    assert set(mine["id"]) == {world.checked, world.panic}
    assert q.alert_responses(db_session, world.operator, END, END + timedelta(days=1)).empty


def test_time_to_acknowledge_per_rule_and_week(db_session: Session, world: World) -> None:
    weekly = q.time_to_acknowledge(db_session, world.operator, START, END)
    assert list(weekly.columns) == q.ACK_COLUMNS
    heart = weekly[weekly["rule"] == "High heart rate"].iloc[0]
    assert heart["alerts"] == 1 and heart["acknowledged"] == 1 and heart["ack_rate"] == 1
    assert heart["median_minutes_to_ack"] == pytest.approx(3)
    offline = weekly[weekly["rule"] == "(device_offline)"]
    assert offline["alerts"].sum() == 3 and offline["acknowledged"].sum() == 0
    empty = q.time_to_acknowledge(db_session, world.operator, END, END + timedelta(days=1))
    assert empty.empty and list(empty.columns) == q.ACK_COLUMNS


def test_false_alarm_candidates_and_summary(db_session: Session, world: World) -> None:
    found = q.false_alarm_candidates(db_session, world.operator, START, END).set_index("id")
    assert world.checked not in found.index  # acknowledged and resolved normally
    assert found.loc[world.panic, "reasons"] == "quick, noted"
    for alert_id in world.offline:  # auto-resolved, but the same device three times
        assert found.loc[alert_id, "reasons"] == "repeated"
    summary = q.false_alarm_summary(db_session, world.operator, START, END).set_index("rule")
    assert summary.loc["(device_offline)", "candidates"] == 3
    assert summary.loc["(device_offline)", "share"] == 1.0
    assert summary.loc["High heart rate", "candidates"] == 0
    assert summary.loc["(event)", "noted"] == 1
    mine = q.false_alarm_candidates(db_session, world.caregiver, START, END)
    assert set(mine["id"]) == {world.panic}


def _rollup(session: Session, device: str, metric: str, day: int, mean: float, count: int) -> None:
    session.add(
        Rollup(
            device_id=device,
            metric=metric,
            period=RollupPeriod.DAY,
            bucket=datetime(2031, 3, 3 + day, tzinfo=UTC),
            count=count,
            min=mean - 10,
            max=mean + 10,
            mean=mean,
            p95=mean + 8,
        )
    )


def test_daily_vitals_and_completeness(db_session: Session, world: World) -> None:
    for day in range(3):
        _rollup(db_session, world.wearable, "heart_rate", day, 70 + day, 720)
        _rollup(db_session, world.wearable, "spo2", day, 97, 720)
    _rollup(db_session, world.other_wearable, "heart_rate", 0, 80, 360)
    db_session.flush()
    vitals = q.daily_vitals(db_session, world.caregiver, world.mine.id, START, END)
    assert list(vitals.columns) == q.DAILY_VITALS_COLUMNS
    heart = vitals[vitals["metric"] == "heart_rate"].sort_values("day")
    assert list(heart["mean"]) == pytest.approx([70, 71, 72])
    assert list(heart["count"]) == [720, 720, 720]
    with pytest.raises(AccessDenied):
        q.daily_vitals(db_session, world.caregiver, world.other.id, START, END)

    complete = q.reading_completeness(db_session, world.operator, START, END)
    first = complete[complete["day"] == datetime(2031, 3, 3, tzinfo=UTC)].iloc[0]
    assert first["device_type"] == "wearable"
    assert first["reporting"] == 2 and first["readings"] == 720 * 2 + 360
    assert first["devices"] >= 2
    with pytest.raises(AccessDenied):  # data quality is for operators
        q.reading_completeness(db_session, world.caregiver, START, END)


def test_dead_letters_per_day(db_session: Session, world: World) -> None:
    for minutes, reason in ((0, "bad_json"), (5, "bad_json"), (24 * 60, "unknown_metric")):
        db_session.add(
            DeadLetter(
                topic="care/v1/x/y/telemetry",
                payload=b"{",
                payload_size=1,
                reason=reason,
                detail="test",
                received_at=_at(minutes),
            )
        )
    db_session.flush()
    frame = q.dead_letters_daily(db_session, world.operator, START, END)
    assert list(frame.columns) == q.DEAD_LETTER_COLUMNS
    assert frame.set_index(["reason"])["count"].to_dict() == {"bad_json": 2, "unknown_metric": 1}
    assert q.dead_letters_daily(db_session, world.operator, END, END + timedelta(days=1)).empty
    with pytest.raises(AccessDenied):
        q.dead_letters_daily(db_session, world.caregiver, START, END)


def test_completeness_counts_devices_in_service_that_day(
    db_session: Session, world: World, factory: Factory
) -> None:
    """A decommissioned wearable counts as registered up to the day it left service, not after."""

    def registered(day: int) -> int:
        complete = q.reading_completeness(db_session, world.operator, START, END)
        row = complete[complete["day"] == datetime(2031, 3, 3, tzinfo=UTC) + timedelta(days=day)]
        return int(row[row["device_type"] == "wearable"].iloc[0]["devices"])

    for day in range(3):
        _rollup(db_session, world.wearable, "heart_rate", day, 70, 720)
    db_session.flush()
    before = [registered(day) for day in range(3)]
    # Retired during day 1 (it reported that morning), and one retired long ago.
    factory.device("wearable", decommissioned_at=T0 + timedelta(days=1, hours=3))
    factory.device("wearable", decommissioned_at=T0 - timedelta(days=30))
    assert [registered(day) for day in range(3)] == [before[0] + 1, before[1] + 1, before[2]]
