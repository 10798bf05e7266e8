"""The windowed rule engine on a real database (SQLite and PostgreSQL), with factory-made data."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from core.alerts import lifecycle
from core.rules.engine import evaluate_rules
from core.rules.events import match_event_rules
from core.rules.instant import StoredEvent
from core.rules.params import validate_params
from core.timeutil import utcnow
from models import (
    Alert,
    AlertHistory,
    AlertRule,
    AlertStatus,
    AuditEntry,
    DeviceStatus,
    Event,
    JobWatermark,
    QualityRun,
    Reading,
    ResidentRoutine,
    RuleKind,
    RuleOverride,
    ScopeType,
    Severity,
    Site,
)
from tests.factories import Factory

HIGH_HR = {"metric": "heart_rate", "op": ">", "value": 120, "for_minutes": 5, "hysteresis": 5}


@pytest.fixture
def now() -> datetime:
    """A recent minute: factory devices are registered at the real current time."""
    return utcnow().replace(second=0, microsecond=0)


def add_rule(
    session: Session,
    kind: RuleKind,
    params: dict[str, Any],
    *,
    site: Site | None = None,
    auto_resolve: bool = True,
    **fields: Any,
) -> AlertRule:
    rule = AlertRule(
        name=f"{kind.value} rule",
        kind=kind,
        params=validate_params(kind, params),
        severity=Severity.WARNING,
        scope_type=fields.pop("scope_type", ScopeType.SITE),
        site_id=site.id if site else None,
        auto_resolve=auto_resolve,
        route=[],
        **fields,
    )
    session.add(rule)
    session.flush()
    return rule


def add_readings(
    session: Session,
    device_id: str,
    metric: str,
    start: datetime,
    values: list[float],
    step: timedelta = timedelta(seconds=30),
) -> None:
    session.add_all(
        Reading(device_id=device_id, metric=metric, ts=start + i * step, value=v)
        for i, v in enumerate(values)
    )
    session.flush()


def alerts(session: Session, rule: AlertRule) -> list[Alert]:
    session.flush()
    session.expire_all()
    return list(
        session.scalars(select(Alert).where(Alert.rule_id == rule.id).order_by(Alert.opened_at))
    )


def test_sustained_high_heart_rate_repeat_and_recovery(
    db_session: Session, factory: Factory, now: datetime
) -> None:
    site = factory.site()
    resident = factory.resident(site)
    wearable = factory.device("wearable", resident=resident)
    rule = add_rule(db_session, RuleKind.THRESHOLD, HIGH_HR, site=site, auto_resolve=False)
    start = now - timedelta(minutes=7)
    add_readings(db_session, wearable.id, "heart_rate", start, [100, 100] + [130] * 13)

    first = evaluate_rules(db_session, now)
    (alert,) = alerts(db_session, rule)
    assert first.opened == [alert.id]
    assert (alert.subject_type, alert.subject_id) == ("resident", str(resident.id))
    assert (alert.resident_id, alert.device_id, alert.site_id) == (
        resident.id,
        wearable.id,
        site.id,
    )
    assert alert.details["value"] == 130
    assert alert.details["rule"] == "Heart rate above 120 bpm for 5 minutes"
    assert alert.title == f"{rule.name}: {resident.name}"

    # The same tick again, and a later tick of the same episode: nothing changes.
    assert evaluate_rules(db_session, now).opened == []
    later = evaluate_rules(db_session, now + timedelta(minutes=1))
    assert later.opened == later.repeated == []
    (alert,) = alerts(db_session, rule)
    assert alert.occurrences == 1

    # Back to normal (the rule does not auto-resolve), then high again: a repeat.
    add_readings(db_session, wearable.id, "heart_rate", now + timedelta(minutes=1), [90, 90])
    evaluate_rules(db_session, now + timedelta(minutes=2))
    add_readings(db_session, wearable.id, "heart_rate", now + timedelta(minutes=2), [135] * 12)
    repeat = evaluate_rules(db_session, now + timedelta(minutes=8))
    (alert,) = alerts(db_session, rule)
    assert repeat.repeated == [alert.id]
    assert alert.occurrences == 2
    assert alert.status is AlertStatus.OPEN
    actions = db_session.scalars(
        select(AlertHistory.action).where(AlertHistory.alert_id == alert.id)
    ).all()
    assert sorted(actions) == ["opened", "repeated"]


def test_hysteresis_then_auto_resolve(db_session: Session, factory: Factory, now: datetime) -> None:
    resident = factory.resident()
    wearable = factory.device("wearable", resident=resident)
    rule = add_rule(db_session, RuleKind.THRESHOLD, HIGH_HR)
    add_readings(db_session, wearable.id, "heart_rate", now - timedelta(minutes=6), [130] * 13)
    assert len(evaluate_rules(db_session, now).opened) == 1

    # 118: under the limit, inside the 5 bpm band: still open.
    add_readings(db_session, wearable.id, "heart_rate", now + timedelta(seconds=30), [118])
    assert evaluate_rules(db_session, now + timedelta(minutes=1)).resolved == []
    # 114: recovered beyond the band: resolved automatically.
    add_readings(db_session, wearable.id, "heart_rate", now + timedelta(seconds=90), [114])
    result = evaluate_rules(db_session, now + timedelta(minutes=2))
    (alert,) = alerts(db_session, rule)
    assert result.resolved == [alert.id]
    assert alert.status is AlertStatus.RESOLVED
    assert alert.resolved_by is None
    assert alert.resolve_note == "Resolved automatically: the condition no longer holds."


def test_scope_overrides_and_quarantine(
    db_session: Session, factory: Factory, now: datetime
) -> None:
    here, there = factory.site(), factory.site()
    calm = factory.resident(here)  # override: their limit is 140
    racing = factory.resident(here)
    elsewhere = factory.resident(there)
    in_bed = factory.resident(here)
    wearables = {
        r.id: factory.device("wearable", resident=r) for r in (calm, racing, elsewhere, in_bed)
    }
    unregistered = factory.device("wearable", resident=in_bed, quarantined=True)
    bed = factory.device("bed_sensor", resident=in_bed)
    site_rule = add_rule(db_session, RuleKind.THRESHOLD, HIGH_HR, site=here)
    db_session.add(RuleOverride(rule_id=site_rule.id, resident_id=calm.id, params={"value": 140}))
    bed_rule = add_rule(
        db_session,
        RuleKind.THRESHOLD,
        {**HIGH_HR, "value": 100},
        scope_type=ScopeType.DEVICE_TYPE,
        device_type="bed_sensor",
    )
    one_rule = add_rule(
        db_session,
        RuleKind.THRESHOLD,
        {**HIGH_HR, "value": 125},
        scope_type=ScopeType.RESIDENT,
        resident_id=racing.id,
    )
    start = now - timedelta(minutes=6)
    for resident_id, device in wearables.items():
        value = 90 if resident_id == in_bed.id else 130
        add_readings(db_session, device.id, "heart_rate", start, [value] * 13)
    add_readings(db_session, unregistered.id, "heart_rate", start, [200] * 13)
    add_readings(db_session, bed.id, "heart_rate", start, [110] * 13)

    evaluate_rules(db_session, now)
    assert [a.resident_id for a in alerts(db_session, site_rule)] == [racing.id]
    assert [(a.resident_id, a.device_id) for a in alerts(db_session, bed_rule)] == [
        (in_bed.id, bed.id)
    ]
    assert [a.resident_id for a in alerts(db_session, one_rule)] == [racing.id]


def test_invalid_rule_is_skipped_and_reported(
    db_session: Session, factory: Factory, now: datetime
) -> None:
    resident = factory.resident()
    factory.device("wearable", resident=resident)
    broken = add_rule(db_session, RuleKind.BATTERY_LOW, {"below_pct": 15})
    broken.params = {"below_pct": "low"}
    db_session.flush()
    result = evaluate_rules(db_session, now)
    assert list(result.invalid) == [str(broken.id)]
    assert result.rules == 0


def test_device_offline_and_battery(db_session: Session, factory: Factory, now: datetime) -> None:
    site = factory.site()
    silent = factory.device(
        "motion_sensor", site=site, status=DeviceStatus.ONLINE, last_seen=now - timedelta(hours=1)
    )
    # Offline for 40 minutes; its last message (an offline heartbeat) 2 minutes ago.
    said_offline = factory.device(
        "door_sensor",
        site=site,
        status=DeviceStatus.OFFLINE,
        status_since=now - timedelta(minutes=40),
        last_seen=now - timedelta(minutes=2),
    )
    # Said offline 5 minutes ago: not yet for the rule's 30 minutes.
    factory.device(
        "env_sensor",
        site=site,
        status=DeviceStatus.OFFLINE,
        status_since=now - timedelta(minutes=5),
        last_seen=now - timedelta(minutes=5),
    )
    fine = factory.device("wearable", site=site, status=DeviceStatus.ONLINE, last_seen=now)
    factory.device(
        "panic_button",
        site=site,
        status=DeviceStatus.OFFLINE,
        last_seen=now - timedelta(hours=3),
        quarantined=True,
    )
    offline_rule = add_rule(db_session, RuleKind.DEVICE_OFFLINE, {"minutes": 30}, site=site)
    fine.battery = 80  # the status says 80 %, but the latest reading says 9 %
    add_readings(db_session, fine.id, "battery_pct", now - timedelta(minutes=20), [12, 9])
    silent.battery = 50
    battery_rule = add_rule(db_session, RuleKind.BATTERY_LOW, {"below_pct": 15}, site=site)

    evaluate_rules(db_session, now)
    offline = alerts(db_session, offline_rule)
    assert sorted(a.subject_id for a in offline) == sorted([silent.id, said_offline.id])
    assert {a.subject_type for a in offline} == {"device"}
    (low,) = alerts(db_session, battery_rule)
    assert (low.subject_id, low.details["battery_pct"], low.details["source"]) == (
        fine.id,
        9,
        "reading",
    )

    # The door sensor comes back: its alert resolves; the silent one stays open.
    said_offline.status = DeviceStatus.ONLINE
    said_offline.last_seen = now + timedelta(minutes=1)
    db_session.flush()
    result = evaluate_rules(db_session, now + timedelta(minutes=2))
    by_device = {a.subject_id: a for a in alerts(db_session, offline_rule)}
    assert result.resolved == [by_device[said_offline.id].id]
    assert by_device[silent.id].status is AlertStatus.OPEN


def test_inactivity_with_routine_in_local_time(db_session: Session, factory: Factory) -> None:
    site = factory.site(timezone="Asia/Seoul")
    # 03:00 UTC is 12:00 in Seoul: inside the active hours.
    now = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
    usual = factory.resident(site, active_hours=(time(7, 0), time(22, 0)))
    routine = factory.resident(site, active_hours=(time(7, 0), time(22, 0)))
    asleep = factory.resident(site, active_hours=(time(7, 0), time(22, 0)), timezone="UTC")
    sensors = {r.id: factory.device("motion_sensor", resident=r) for r in (usual, routine, asleep)}
    for sensor in sensors.values():
        # Movement 100 minutes ago, then none (motion false every 10 minutes).
        add_readings(
            db_session,
            sensor.id,
            "motion",
            now - timedelta(minutes=100),
            [1] + [0] * 10,
            step=timedelta(minutes=10),
        )
    db_session.add(ResidentRoutine(resident_id=routine.id, hour=12, usual_gap_minutes=50, days=14))
    rule = add_rule(
        db_session,
        RuleKind.INACTIVITY,
        {"max_minutes": 90, "use_routine": True, "factor": 1.5, "min_minutes": 60},
    )
    evaluate_rules(db_session, now)
    # usual: no routine, 100 ≥ 90 minutes. routine: 100 ≥ 50 × 1.5 = 75 minutes.
    # asleep: 03:00 in UTC is outside their active hours → no alarm.
    found = {a.resident_id: a for a in alerts(db_session, rule)}
    assert set(found) == {usual.id, routine.id}
    assert found[routine.id].details["limit_source"] == "routine"
    assert found[routine.id].details["limit_minutes"] == 75
    assert found[usual.id].details["limit_source"] == "fixed"
    assert found[usual.id].device_id == sensors[usual.id].id

    # A movement event clears it.
    db_session.add(
        Event(
            device_id=sensors[usual.id].id,
            site_id=site.id,
            resident_id=usual.id,
            type="motion",
            ts=now + timedelta(minutes=1),
            data={},
        )
    )
    db_session.flush()
    result = evaluate_rules(db_session, now + timedelta(minutes=2))
    assert result.resolved == [found[usual.id].id]


def test_night_exit_once_per_opening_even_after_manual_resolve(
    db_session: Session, factory: Factory
) -> None:
    site = factory.site(timezone="Asia/Seoul")
    resident = factory.resident(site)
    door = factory.device("door_sensor", resident=resident)
    rule = add_rule(
        db_session, RuleKind.NIGHT_EXIT, {"start": "22:00", "end": "06:00"}, auto_resolve=False
    )
    opened = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)  # 00:30 in Seoul
    add_readings(
        db_session,
        door.id,
        "door_open",
        opened - timedelta(minutes=10),
        [0, 1, 0],
        step=timedelta(minutes=10),
    )
    first = evaluate_rules(db_session, opened + timedelta(minutes=11))
    (alert,) = alerts(db_session, rule)
    assert first.opened == [alert.id]
    assert alert.details["local_time"] == "00:30"
    lifecycle.resolve(db_session, alert.id, factory.user(), "checked, back in bed")
    again = evaluate_rules(db_session, opened + timedelta(minutes=12))
    assert again.opened == again.repeated == []
    assert len(alerts(db_session, rule)) == 1
    mark = db_session.get(JobWatermark, "rules.night_exit")
    assert mark is not None and mark.watermark == opened + timedelta(minutes=12)


def test_data_quality_failure(db_session: Session, factory: Factory, now: datetime) -> None:
    rule = add_rule(db_session, RuleKind.DATA_QUALITY, {"suites": ["readings"]})
    for suite, success in (("readings", False), ("events", False)):
        db_session.add(
            QualityRun(
                suite=suite,
                window_start=now - timedelta(hours=1),
                window_end=now,
                started_at=now - timedelta(minutes=3),
                finished_at=now - timedelta(minutes=2),
                success=success,
                evaluated=10,
                failed=3,
            )
        )
    db_session.flush()
    evaluate_rules(db_session, now)
    (alert,) = alerts(db_session, rule)
    assert (alert.subject_type, alert.subject_id, alert.details["failed"]) == (
        "suite",
        "readings",
        3,
    )
    # Only windowed kinds asked for: the data-quality rule is not evaluated.
    assert evaluate_rules(db_session, now, kinds=[RuleKind.THRESHOLD]).rules == 0


def test_match_event_rules(db_session: Session, factory: Factory, now: datetime) -> None:
    site = factory.site()
    resident = factory.resident(site)
    falls = add_rule(db_session, RuleKind.EVENT, {"event_types": ["fall_detected"]}, site=site)
    fire = add_rule(db_session, RuleKind.EVENT, {"event_types": ["flame_detected"]})
    mine = add_rule(
        db_session,
        RuleKind.EVENT,
        {"event_types": ["fall_detected"]},
        scope_type=ScopeType.RESIDENT,
        resident_id=resident.id,
    )
    rules = [falls, fire, mine]
    event = StoredEvent(
        1, "d1", site.id, resident.id, "fall_detector", "fall_detected", now, {}, now
    )
    assert match_event_rules(rules, event) == [falls, mine]
    other = StoredEvent(2, "d2", "elsewhere", None, "fall_detector", "fall_detected", now, {}, now)
    assert match_event_rules(rules, other) == []
    assert match_event_rules(rules, event, quarantined=True) == []


def test_two_ticks_at_once_open_one_alert(engine: Engine) -> None:
    """Two engine processes ticking at the same moment, each in its own transaction."""
    sessions = sessionmaker(engine, expire_on_commit=False)
    now = utcnow().replace(second=0, microsecond=0)
    with sessions.begin() as session:
        factory = Factory(session)
        site = factory.site(f"conc-{uuid.uuid4().hex[:8]}")
        resident = factory.resident(site)
        wearable = factory.device("wearable", resident=resident)
        add_readings(session, wearable.id, "heart_rate", now - timedelta(minutes=6), [130] * 13)
        rule = add_rule(session, RuleKind.THRESHOLD, HIGH_HR, site=site)
        site_id, rule_id, device_id = site.id, rule.id, wearable.id
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def tick() -> None:
        try:
            with sessions() as session:
                barrier.wait(timeout=10)
                results.append(evaluate_rules(session, now, kinds=[RuleKind.THRESHOLD]))
                session.commit()
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=tick) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        with sessions() as session:
            found = session.scalars(select(Alert).where(Alert.rule_id == rule_id)).all()
            assert [(a.status, a.occurrences) for a in found] == [(AlertStatus.OPEN, 1)]
        assert sorted(len(r.opened) for r in results) == [0, 1]
    finally:
        with sessions.begin() as session:
            ids = session.scalars(select(Alert.id).where(Alert.rule_id == rule_id)).all()
            session.execute(
                delete(AuditEntry).where(AuditEntry.target_id.in_([str(i) for i in ids]))
            )
            session.execute(delete(Alert).where(Alert.rule_id == rule_id))
            session.execute(delete(AlertRule).where(AlertRule.id == rule_id))
            session.execute(delete(Reading).where(Reading.device_id == device_id))
            session.execute(delete(Site).where(Site.id == site_id))


# --- rules read a metric from any device that sends it; defaults quiet on ordinary days


def test_a_metric_is_read_from_any_registered_device_that_sends_it(
    db_session: Session, factory: Factory, now: datetime
) -> None:
    site = factory.site()
    resident = factory.resident(site)
    # The catalogue lists gas_ppm for gas valves, but ingest accepts it from any device.
    env = factory.device("env_sensor", resident=resident)
    stray = factory.device("env_sensor", resident=resident, quarantined=True)
    gas = add_rule(
        db_session,
        RuleKind.THRESHOLD,
        {"metric": "gas_ppm", "op": ">", "value": 100, "for_minutes": 2},
        site=site,
    )
    for device in (env, stray):
        add_readings(db_session, device.id, "gas_ppm", now - timedelta(minutes=4), [400] * 8)
    evaluate_rules(db_session, now)
    (alert,) = alerts(db_session, gas)
    assert (alert.resident_id, alert.device_id) == (resident.id, env.id)


def test_motion_from_any_device_counts_for_inactivity(
    db_session: Session, factory: Factory
) -> None:
    site = factory.site(timezone="UTC")
    resident = factory.resident(site, active_hours=(time(7, 0), time(22, 0)))
    sensor = factory.device("motion_sensor", resident=resident)
    wearable = factory.device("wearable", resident=resident)
    now = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    rule = add_rule(db_session, RuleKind.INACTIVITY, {"max_minutes": 150}, site=site)
    # The room sensor saw nobody since 09:00 (the resident is out), the wearable felt movement.
    add_readings(db_session, sensor.id, "motion", now - timedelta(hours=5), [1] + [0] * 30)
    add_readings(db_session, wearable.id, "motion", now - timedelta(minutes=20), [1, 0])
    evaluate_rules(db_session, now)
    assert alerts(db_session, rule) == []
    # The same day with the wearable's movement missing does alarm.
    db_session.execute(delete(Reading).where(Reading.device_id == wearable.id))
    evaluate_rules(db_session, now + timedelta(minutes=1))
    (alert,) = alerts(db_session, rule)
    assert alert.device_id == sensor.id


def test_a_resident_without_motion_data_gets_one_setup_notice(
    db_session: Session, factory: Factory
) -> None:
    site = factory.site(timezone="UTC")
    new = factory.resident(site, active_hours=(time(7, 0), time(22, 0)))
    sensor = factory.device("motion_sensor", resident=new)
    rule = add_rule(db_session, RuleKind.INACTIVITY, {"max_minutes": 150}, site=site)
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 8 hours into the active hours
    new.created_at = now - timedelta(days=1)
    # Just admitted (10 minutes ago): the sensor's first reading is usually moments away.
    admitted = factory.resident(site, active_hours=(time(7, 0), time(22, 0)))
    factory.device("motion_sensor", resident=admitted)
    admitted.created_at = now - timedelta(minutes=10)

    def setup_notices() -> list[Alert]:
        db_session.flush()
        db_session.expire_all()
        return list(
            db_session.scalars(
                select(Alert).where(Alert.resident_id == new.id, Alert.rule_id.is_(None))
            )
        )

    for minute in range(3):  # not repeated every tick
        evaluate_rules(db_session, now + timedelta(minutes=minute))
    assert alerts(db_session, rule) == []  # no inactivity alert: nobody knows
    (notice,) = setup_notices()
    assert (notice.severity, notice.kind, notice.occurrences) == (
        Severity.INFO,
        RuleKind.INACTIVITY,
        1,
    )
    assert notice.details["setup"] is True and notice.device_id == sensor.id
    assert notice.title.startswith("Setup: no motion data yet")
    assert not db_session.scalars(select(Alert).where(Alert.resident_id == admitted.id)).all()

    # Resolved by hand, it does not come back.
    lifecycle.resolve(db_session, notice.id, None, "sensor ordered", at=now + timedelta(minutes=3))
    evaluate_rules(db_session, now + timedelta(minutes=4))
    assert [n.status for n in setup_notices()] == [AlertStatus.RESOLVED]

    # A second new resident's notice resolves itself with the first motion data, and only then
    # does inactivity count, from when the data began.
    later = factory.resident(site, active_hours=(time(7, 0), time(22, 0)))
    later.created_at = now - timedelta(hours=2)
    other = factory.device("motion_sensor", resident=later)
    evaluate_rules(db_session, now + timedelta(minutes=5))
    (open_notice,) = db_session.scalars(
        select(Alert).where(Alert.resident_id == later.id, Alert.rule_id.is_(None))
    )
    add_readings(db_session, other.id, "motion", now + timedelta(minutes=6), [0])
    result = evaluate_rules(db_session, now + timedelta(minutes=7))
    assert open_notice.id in result.resolved
    assert [a for a in alerts(db_session, rule) if a.resident_id == later.id] == []


def test_night_exit_from_each_residents_active_hours(db_session: Session, factory: Factory) -> None:
    site = factory.site(timezone="UTC")
    owl = factory.resident(site, active_hours=(time(9, 0), time(23, 30)))
    bird = factory.resident(site, active_hours=(time(5, 0), time(20, 0)))
    doors = {r.id: factory.device("door_sensor", resident=r) for r in (owl, bird)}
    rule = add_rule(db_session, RuleKind.NIGHT_EXIT, {}, site=site, auto_resolve=False)
    opened = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)
    for door in doors.values():
        add_readings(
            db_session,
            door.id,
            "door_open",
            opened - timedelta(minutes=5),
            [0, 1],
            step=timedelta(minutes=5),
        )
    evaluate_rules(db_session, opened + timedelta(minutes=2))
    assert [a.resident_id for a in alerts(db_session, rule)] == [bird.id]
