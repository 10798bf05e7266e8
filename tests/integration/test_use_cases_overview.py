"""core.use_cases.overview: who sees which cards, states, vitals and trends, movement, devices."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import event
from sqlalchemy.orm import Session

from core.access import Viewer
from core.alerts.lifecycle import Subject, acknowledge, raise_alert, resolve
from core.rollups import floor_bucket
from core.timeutil import utcnow
from core.use_cases.overview import (
    CareState,
    Problem,
    Trend,
    resident_overview,
    trend_of,
)
from models import (
    DeviceStatus,
    Reading,
    Role,
    Rollup,
    RollupPeriod,
    RuleKind,
    Severity,
)
from tests.factories import Factory

NOW = floor_bucket(utcnow(), RollupPeriod.HOUR) + timedelta(minutes=30)


def alert(session: Session, resident, severity: Severity, key: str = "x"):
    return raise_alert(
        session,
        kind=RuleKind.EVENT,
        severity=severity,
        subject=Subject("resident", f"{resident.id}-{key}", resident.site_id, resident.id),
        title=f"{severity} {key}",
        details={"event_type": "fall_detected"},
        at=NOW - timedelta(minutes=5),
    ).alert


def healthy(factory: Factory, resident, kind: str = "wearable", **fields):
    fields.setdefault("status", DeviceStatus.ONLINE)
    fields.setdefault("last_seen", NOW)
    fields.setdefault("battery", 80)
    return factory.device(kind, resident=resident, **fields)


@contextlib.contextmanager
def counting(session: Session) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = session.get_bind()
    engine = getattr(engine, "engine", engine)

    def record(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_caregivers_get_cards_of_their_residents_only(db_session, factory) -> None:
    site = factory.site()
    mine = factory.resident(site, name="Mine", room="1")
    other = factory.resident(site, name="Other", room="2")
    gone = factory.resident(site, name="Moved out", room="3")
    gone.active = False
    caregiver = Viewer.of(factory.user(Role.CAREGIVER, residents=(mine, gone)))
    operator = Viewer.of(factory.user(Role.OPERATOR))
    alert(db_session, other, Severity.CRITICAL)
    db_session.flush()

    cards = resident_overview(db_session, caregiver, now=NOW).cards
    assert [c.name for c in cards] == ["Mine"]
    assert cards[0].state is CareState.OK and cards[0].alerts == ()
    everyone = resident_overview(db_session, operator, now=NOW)
    assert [c.name for c in everyone.cards] == ["Other", "Mine"]  # the critical one first
    assert everyone.counts == {CareState.CRITICAL: 1, CareState.ATTENTION: 0, CareState.OK: 1}


def test_states_worst_first_from_alerts_and_devices(db_session, factory) -> None:
    site = factory.site()
    residents = {
        name: factory.resident(site, name=name)
        for name in ("A fine", "B acked", "C warning", "D battery", "E critical", "F resolved")
    }
    for resident in residents.values():
        healthy(factory, resident)
    alert(db_session, residents["E critical"], Severity.CRITICAL)
    acked = alert(db_session, residents["B acked"], Severity.CRITICAL)
    alert(db_session, residents["C warning"], Severity.WARNING)
    done = alert(db_session, residents["F resolved"], Severity.CRITICAL)
    operator = factory.user(Role.OPERATOR)
    acknowledge(db_session, acked.id, operator)
    resolve(db_session, done.id, operator)
    healthy(factory, residents["D battery"], "panic_button", battery=9)
    db_session.flush()

    overview = resident_overview(db_session, Viewer.of(operator), now=NOW)
    order = [(c.name, c.state) for c in overview.cards if c.name in residents]
    assert order == [
        ("E critical", CareState.CRITICAL),
        ("B acked", CareState.ATTENTION),  # critical but someone is on it
        ("C warning", CareState.ATTENTION),
        ("D battery", CareState.ATTENTION),
        ("A fine", CareState.OK),
        ("F resolved", CareState.OK),
    ]
    battery = next(c for c in overview.cards if c.name == "D battery")
    assert [(p.type, p.problems, p.battery) for p in battery.device_problems] == [
        ("panic_button", (Problem.BATTERY_LOW,), 9)
    ]


def test_device_problems(db_session, factory) -> None:
    resident = factory.resident(name="Devices")
    healthy(factory, resident, "wearable")
    healthy(factory, resident, "door_sensor", status=DeviceStatus.OFFLINE)
    healthy(factory, resident, "bed_sensor", last_seen=None, status=DeviceStatus.UNKNOWN)
    healthy(factory, resident, "motion_sensor", last_seen=NOW - timedelta(hours=3))
    healthy(factory, resident, "env_sensor", quarantined=True, battery=3)
    # A decommissioned device is no problem any more, however silent and flat it is.
    healthy(
        factory,
        resident,
        "panic_button",
        status=DeviceStatus.OFFLINE,
        battery=1,
        decommissioned_at=NOW - timedelta(days=1),
    )
    caregiver = Viewer.of(factory.user(Role.CAREGIVER, residents=(resident,)))
    (card,) = resident_overview(db_session, caregiver, now=NOW).cards
    assert {p.type: p.problems for p in card.device_problems} == {
        "door_sensor": (Problem.OFFLINE,),
        "bed_sensor": (Problem.NEVER_SEEN,),
        "motion_sensor": (Problem.SILENT,),
        "env_sensor": (Problem.BATTERY_LOW, Problem.QUARANTINED),
    }
    assert card.state is CareState.ATTENTION


def test_vitals_newest_source_wins_with_a_trend_from_the_last_closed_hour(
    db_session, factory
) -> None:
    resident = factory.resident(name="Vitals")
    wearable = healthy(factory, resident, "wearable")
    bed = healthy(factory, resident, "bed_sensor")
    hour = floor_bucket(NOW, RollupPeriod.HOUR) - timedelta(hours=1)
    db_session.add_all(
        [
            Reading(
                device_id=wearable.id, metric="heart_rate", ts=NOW - timedelta(minutes=9), value=61
            ),
            Reading(device_id=bed.id, metric="heart_rate", ts=NOW - timedelta(minutes=1), value=88),
            Reading(device_id=bed.id, metric="heart_rate", ts=NOW + timedelta(minutes=5), value=99),
            Reading(device_id=wearable.id, metric="spo2", ts=NOW - timedelta(minutes=2), value=93),
            Reading(
                device_id=wearable.id, metric="body_temp_c", ts=NOW - timedelta(hours=7), value=37
            ),
            Rollup(
                device_id=bed.id,
                metric="heart_rate",
                period=RollupPeriod.HOUR,
                bucket=hour,
                count=60,
                min=70,
                max=80,
                mean=75.0,
            ),
            Rollup(
                device_id=wearable.id,
                metric="spo2",
                period=RollupPeriod.HOUR,
                bucket=hour,
                count=60,
                min=95,
                max=99,
                mean=97.0,
            ),
        ]
    )
    db_session.flush()
    operator = Viewer.of(factory.user(Role.OPERATOR))
    card = next(
        c for c in resident_overview(db_session, operator, now=NOW).cards if c.name == "Vitals"
    )
    # The future reading is ignored; body temperature is too old (over 6 h) to show.
    assert [(v.metric, v.value, v.trend) for v in card.vitals] == [
        ("heart_rate", 88.0, Trend.UP),
        ("spo2", 93.0, Trend.DOWN),
    ]


def test_trend_tolerance() -> None:
    assert trend_of("heart_rate", 79, 75) is Trend.STEADY
    assert trend_of("heart_rate", 81, 75) is Trend.UP
    assert trend_of("body_temp_c", 36.5, 36.9) is Trend.DOWN
    assert trend_of("spo2", 97, None) is None


def test_last_movement_is_the_latest_motion_in_any_room(db_session, factory) -> None:
    resident = factory.resident(name="Walker", room="201")
    bedroom = healthy(factory, resident, "motion_sensor", room="201")
    bathroom = healthy(factory, resident, "motion_sensor", room="201-bath")
    still = factory.resident(name="Still")
    quiet = healthy(factory, still, "motion_sensor")
    db_session.add_all(
        [
            Reading(device_id=bedroom.id, metric="motion", ts=NOW - timedelta(minutes=40), value=1),
            Reading(
                device_id=bathroom.id, metric="motion", ts=NOW - timedelta(minutes=15), value=1
            ),
            Reading(device_id=bedroom.id, metric="motion", ts=NOW - timedelta(minutes=1), value=0),
            Reading(device_id=quiet.id, metric="motion", ts=NOW - timedelta(days=8), value=1),
        ]
    )
    db_session.flush()
    operator = Viewer.of(factory.user(Role.OPERATOR))
    cards = {c.name: c for c in resident_overview(db_session, operator, now=NOW).cards}
    assert cards["Walker"].last_movement == NOW - timedelta(minutes=15)
    assert cards["Walker"].movement_room == "201-bath"
    assert cards["Still"].last_movement is None  # over a week ago: not looked for


def test_the_number_of_queries_does_not_grow_with_residents(db_session, factory) -> None:
    site = factory.site()
    operator = Viewer.of(factory.user(Role.OPERATOR))

    def add(n: int) -> None:
        for _ in range(n):
            resident = factory.resident(site)
            healthy(factory, resident, "wearable")
            healthy(factory, resident, "motion_sensor", battery=5)
            alert(db_session, resident, Severity.WARNING)
        db_session.flush()

    add(1)
    with counting(db_session) as few:
        resident_overview(db_session, operator, now=NOW)
    add(10)
    with counting(db_session) as many:
        cards = resident_overview(db_session, operator, now=NOW).cards
    assert len(cards) >= 11
    assert len(many) == len(few) <= 6


def test_a_site_alert_shows_on_every_overview_of_its_site(db_session, factory) -> None:
    site, elsewhere = factory.site(timezone="Asia/Seoul"), factory.site()
    mine = factory.resident(site, name="Mine", room="1")
    other = factory.resident(site, name="Other", room="2")
    far = factory.resident(elsewhere, name="Far", room="9")
    caregiver = Viewer.of(factory.user(Role.CAREGIVER, residents=(mine,)))
    other_site = Viewer.of(factory.user(Role.CAREGIVER, residents=(far,)))
    boss = factory.user(Role.OPERATOR)
    operator = Viewer.of(boss)
    valve = factory.device("gas_valve", site=site, room="kitchen")
    healthy(factory, other)  # another resident's device: its alerts stay theirs
    leak = raise_alert(
        db_session,
        kind=RuleKind.EVENT,
        severity=Severity.CRITICAL,
        subject=Subject("device", valve.id, site.id, None, valve.id),
        title="Gas leak",
        details={"event_type": "gas_leak"},
        at=NOW - timedelta(minutes=3),
    ).alert
    db_session.flush()

    for viewer in (caregiver, operator):
        overview = resident_overview(db_session, viewer, now=NOW)
        assert [a.id for a in overview.site_alerts] == [leak.id]
        assert [a.id for a in overview.critical_site_alerts] == [leak.id]
        gas = overview.site_alerts[0]
        assert (gas.room, gas.device_type, gas.site_name) == ("kitchen", "gas_valve", site.name)
        assert gas.timezone == "Asia/Seoul" and gas.opened_at == NOW - timedelta(minutes=3)
        # Nobody at the site is "all well" during a gas leak; the other site's residents are.
        states = {card.name: (card.state, card.site_alert) for card in overview.cards}
        assert states["Mine"] == (CareState.ATTENTION, True)
        assert overview.counts[CareState.OK] == (1 if viewer is operator else 0)
    assert resident_overview(db_session, operator, now=NOW).counts[CareState.ATTENTION] == 2

    far_view = resident_overview(db_session, other_site, now=NOW)
    assert far_view.site_alerts == []
    assert [(c.name, c.state) for c in far_view.cards] == [("Far", CareState.OK)]

    # Acknowledged: still on the overview until resolved; resolved: gone, all well again.
    acknowledge(db_session, leak.id, boss, note="valve closed")
    overview = resident_overview(db_session, caregiver, now=NOW)
    assert overview.site_alerts[0].status.value == "acknowledged"
    assert overview.counts[CareState.ATTENTION] == 1
    resolve(db_session, leak.id, boss, note="aired out")
    overview = resident_overview(db_session, caregiver, now=NOW)
    assert overview.site_alerts == [] and overview.counts[CareState.OK] == 1
