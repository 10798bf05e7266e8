"""Silences on both backends: validation, audit, access, and the rule engine holding alarms."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from core import registry
from core.access import AccessDenied, Viewer
from core.contract.catalogue import EventType
from core.errors import ConflictError, NotFoundError
from core.rules.backtest import RuleDraft, backtest
from core.rules.engine import evaluate_rules
from core.silences import (
    SilenceError,
    cancel_as,
    cancel_silence,
    create_as,
    create_silence,
    is_silenced,
    silenced_residents,
    visible_silences,
)
from core.timeutil import utcnow
from models import (
    Alert,
    AlertStatus,
    AuditEntry,
    DeviceStatus,
    NotificationPurpose,
    Role,
    RuleKind,
    SilenceReason,
)
from tests.factories import Factory
from tests.integration import test_instant_alerts as instant
from tests.integration.test_instant_alerts import NIGHT, NightShift
from tests.integration.test_rules_engine import HIGH_HR, add_readings, add_rule, alerts
from tests.support.cli import iotcare

# The instant-alerts tests' fixture that hooks the outbox into the lifecycle.
outbox_installed = instant.outbox_installed

DAY = timedelta(days=1)


@pytest.fixture
def now() -> datetime:
    """A recent minute: factory devices are registered at the real current time."""
    return utcnow().replace(second=0, microsecond=0)


@pytest.fixture
def shift(db_session: Session, factory: Factory, outbox_installed: object) -> NightShift:
    """Kim's home at 3 a.m., with the outbox installed (see test_instant_alerts)."""
    return NightShift(db_session, factory)


def test_create_validates_in_english_and_korean(
    db_session: Session, factory: Factory, now: datetime
) -> None:
    resident = factory.resident()
    nurse = factory.user(residents=(resident,))

    def create(**given: object) -> None:
        fields: dict[str, object] = {
            "scope": "resident",
            "target": resident.id,
            "reason": "away",
            "ends_at": now + DAY,
            "now": now,
        }
        create_silence(db_session, nurse, **(fields | given))  # type: ignore[arg-type]

    with pytest.raises(SilenceError) as error:
        create(starts_at=now + DAY, ends_at=now + timedelta(hours=1))
    assert error.value.localized("en") == "The end must be after the start."
    assert error.value.localized("ko") == "종료 시각은 시작 시각보다 뒤여야 합니다."
    with pytest.raises(SilenceError) as error:
        create(starts_at=now - timedelta(hours=1))
    assert "past" in error.value.localized("en")
    with pytest.raises(SilenceError) as error:
        create(ends_at=now + timedelta(days=91))
    assert error.value.localized("en") == (
        "A silence can last at most 90 days. Choose an earlier end."
    )
    assert "90일" in error.value.localized("ko")
    with pytest.raises(SilenceError) as error:
        create(reason="holiday")
    with pytest.raises(NotFoundError) as missing:
        create(scope="device", target="no-such-device")
    assert missing.value.localized("ko") == "기기 'no-such-device'이(가) 없습니다."
    # A start a few minutes ago (the form was open a while) is fine.
    create(starts_at=now - timedelta(minutes=10))


def test_create_and_cancel_are_audited_and_end_the_hold(
    db_session: Session, factory: Factory, now: datetime
) -> None:
    site = factory.site()
    resident = factory.resident(site)
    wearable = factory.device("wearable", resident=resident)
    nurse = factory.user(residents=(resident,))
    silence = create_silence(
        db_session,
        nurse,
        scope="resident",
        target=resident.id,
        reason=SilenceReason.HOSPITAL,
        note="Seoul National University Hospital",
        ends_at=now + 3 * DAY,
        now=now,
    )
    assert (silence.created_by, silence.starts_at) == (nurse.id, now)
    # The resident, and their devices, are silenced; the site as a whole is not.
    assert is_silenced(db_session, now + DAY, resident_id=resident.id)
    assert is_silenced(db_session, now + DAY, device_id=wearable.id)
    assert not is_silenced(db_session, now + DAY, site_id=site.id)
    assert not is_silenced(db_session, now + 3 * DAY, resident_id=resident.id)

    cancel_silence(db_session, nurse, silence.id, now=now + DAY)
    assert not is_silenced(db_session, now + DAY + timedelta(seconds=1), resident_id=resident.id)
    with pytest.raises(ConflictError):
        cancel_silence(db_session, nurse, silence.id, now=now + 2 * DAY)
    entries = db_session.scalars(
        select(AuditEntry)
        .where(AuditEntry.target_type == "silence", AuditEntry.target_id == str(silence.id))
        .order_by(AuditEntry.id)
    ).all()
    assert [(e.action, e.actor_id) for e in entries] == [
        ("silence.create", nurse.id),
        ("silence.cancel", nurse.id),
    ]
    assert entries[0].details["reason"] == "hospital"
    assert entries[0].details["target"] == str(resident.id)


def test_who_may_silence_what(db_session: Session, factory: Factory, now: datetime) -> None:
    site = factory.site()
    mine, theirs = factory.resident(site), factory.resident(site)
    device = factory.device("env_sensor", site=site)
    nurse = Viewer.of(factory.user(residents=(mine,)))
    operator = Viewer.of(factory.user(Role.OPERATOR))
    until = now + DAY
    own = create_as(
        db_session, nurse, scope="resident", target=mine.id, reason="away", ends_at=until, now=now
    )
    with pytest.raises(AccessDenied):
        create_as(
            db_session,
            nurse,
            scope="resident",
            target=theirs.id,
            reason="away",
            ends_at=until,
            now=now,
        )
    with pytest.raises(AccessDenied):
        create_as(
            db_session, nurse, scope="site", target=site.id, reason="maintenance", ends_at=until
        )
    window = create_as(
        db_session,
        operator,
        scope="device",
        target=device.id,
        reason="maintenance",
        ends_at=until,
        now=now,
    )
    with pytest.raises(AccessDenied):
        cancel_as(db_session, nurse, window.id, now=now)
    # The caregiver sees their resident's silence only; the operator sees both.
    assert [v.id for v in visible_silences(db_session, nurse, now)] == [own.id]
    assert {v.id for v in visible_silences(db_session, operator, now)} >= {own.id, window.id}
    (badge,) = silenced_residents(db_session, nurse, now + timedelta(minutes=1))
    assert (badge.resident_id, badge.reason, badge.until, badge.by_site) == (
        mine.id,
        SilenceReason.AWAY,
        until,
        False,
    )
    cancel_as(db_session, nurse, own.id, now=now + timedelta(minutes=2))
    assert silenced_residents(db_session, nurse, now + timedelta(minutes=3)) == []


def test_engine_holds_a_silenced_residents_alarms_then_raises_after(
    db_session: Session, factory: Factory, now: datetime
) -> None:
    site = factory.site()
    away, home = factory.resident(site), factory.resident(site)
    away_band = factory.device("wearable", resident=away)
    home_band = factory.device("wearable", resident=home)
    rule = add_rule(db_session, RuleKind.THRESHOLD, HIGH_HR, site=site)
    for band in (away_band, home_band):
        add_readings(db_session, band.id, "heart_rate", now - timedelta(minutes=7), [130] * 30)
    silence = create_silence(
        db_session,
        None,
        scope="resident",
        target=away.id,
        reason="away",
        starts_at=now - timedelta(minutes=10),
        ends_at=now + DAY,
        now=now,
    )
    result = evaluate_rules(db_session, now)
    assert result.held == 1
    assert [a.resident_id for a in alerts(db_session, rule)] == [home.id]

    # Back early: the silence ends, and the still-high heart rate alerts at the next tick.
    cancel_silence(db_session, None, silence.id, now=now + timedelta(minutes=5))
    later = evaluate_rules(db_session, now + timedelta(minutes=6))
    assert later.held == 0
    assert sorted(a.resident_id for a in alerts(db_session, rule)) == sorted([away.id, home.id])


def test_site_and_device_maintenance_windows(
    db_session: Session, factory: Factory, now: datetime
) -> None:
    maintained, other = factory.site(), factory.site()

    def offline(site: object) -> str:
        return factory.device(
            "env_sensor",
            site=site,  # type: ignore[arg-type]
            status=DeviceStatus.OFFLINE,
            status_since=now - timedelta(hours=2),
            last_seen=now - timedelta(hours=2),
        ).id

    in_maintenance, elsewhere, unplugged, neighbour = (
        offline(maintained),
        offline(other),
        offline(other),
        offline(other),
    )
    rule = add_rule(db_session, RuleKind.DEVICE_OFFLINE, {"minutes": 30})
    for scope, target in (("site", maintained.id), ("device", unplugged)):
        create_silence(
            db_session,
            None,
            scope=scope,
            target=target,
            reason="maintenance",
            ends_at=now + timedelta(hours=4),
            now=now,
        )
    result = evaluate_rules(db_session, now)
    alerted = {a.subject_id for a in alerts(db_session, rule)}
    assert in_maintenance not in alerted and unplugged not in alerted
    assert {elsewhere, neighbour} <= alerted
    assert result.held >= 2
    # After the window, the device still offline alerts.
    evaluate_rules(db_session, now + timedelta(hours=4, minutes=1))
    alerted = {a.subject_id for a in alerts(db_session, rule)}
    assert {in_maintenance, unplugged} <= alerted


def test_an_alert_open_before_the_silence_is_left_and_still_resolves(
    db_session: Session, factory: Factory, now: datetime
) -> None:
    resident = factory.resident()
    band = factory.device("wearable", resident=resident)
    rule = add_rule(db_session, RuleKind.THRESHOLD, HIGH_HR)
    add_readings(db_session, band.id, "heart_rate", now - timedelta(minutes=7), [130] * 15)
    evaluate_rules(db_session, now)
    (alert,) = alerts(db_session, rule)
    create_silence(
        db_session,
        None,
        scope="resident",
        target=resident.id,
        reason="hospital",
        ends_at=now + DAY,
        now=now + timedelta(minutes=1),
    )
    evaluate_rules(db_session, now + timedelta(minutes=2))
    (alert,) = alerts(db_session, rule)
    assert alert.status is AlertStatus.OPEN  # not closed by the silence
    add_readings(db_session, band.id, "heart_rate", now + timedelta(minutes=2), [80, 80])
    result = evaluate_rules(db_session, now + timedelta(minutes=3))
    assert result.resolved == [alert.id]


def test_inactivity_counts_quiet_time_from_the_silences_end(
    db_session: Session, factory: Factory
) -> None:
    site = factory.site(timezone="Asia/Seoul")
    resident = factory.resident(site, active_hours=(time(7, 0), time(22, 0)))
    sensor = factory.device("motion_sensor", resident=resident)
    # 07:50 in Seoul: she moved, then left for the hospital until 11:30 (no movement since).
    moved = datetime(2026, 3, 9, 22, 50, tzinfo=UTC)
    back = datetime(2026, 3, 10, 2, 30, tzinfo=UTC)
    add_readings(db_session, sensor.id, "motion", moved, [1] + [0] * 40, step=timedelta(minutes=10))
    create_silence(
        db_session,
        None,
        scope="resident",
        target=resident.id,
        reason="hospital",
        starts_at=moved + timedelta(minutes=10),
        ends_at=back,
        now=moved + timedelta(minutes=5),
    )
    rule = add_rule(db_session, RuleKind.INACTIVITY, {"max_minutes": 90}, site=site)
    during = evaluate_rules(db_session, back - timedelta(minutes=30))
    assert during.held == 1 and alerts(db_session, rule) == []
    # 30 minutes after her return: 220 minutes since she moved, but only 30 since the silence.
    assert evaluate_rules(db_session, back + timedelta(minutes=30)).opened == []
    assert alerts(db_session, rule) == []
    # 90 quiet minutes after the return: now it is news.
    evaluate_rules(db_session, back + timedelta(minutes=90))
    (alert,) = alerts(db_session, rule)
    assert alert.details["since"] == back.isoformat()


def test_backtest_applies_the_same_holds(
    db_session: Session, factory: Factory, now: datetime
) -> None:
    site = factory.site()
    device = factory.device("env_sensor", site=site)
    add_readings(db_session, device.id, "temperature_c", now - timedelta(hours=5), [35.0] * 600)
    draft = RuleDraft(
        kind=RuleKind.THRESHOLD,
        params={"metric": "temperature_c", "op": ">", "value": 30, "for_minutes": 10},
        site_id=site.id,
    )
    before = backtest(db_session, draft, now, days=1)
    assert before.fired >= 1
    create_silence(
        db_session,
        None,
        scope="site",
        target=site.id,
        reason="maintenance",
        starts_at=now - timedelta(hours=6),
        ends_at=now + DAY,
        now=now - timedelta(hours=6),
    )
    assert backtest(db_session, draft, now, days=1).fired == 0


def test_a_fall_in_hospital_still_alerts_and_notifies(shift: NightShift) -> None:
    create_silence(
        shift.session,
        shift.nurse,
        scope="resident",
        target=shift.kim.id,
        reason="hospital",
        starts_at=NIGHT - timedelta(hours=1),
        ends_at=NIGHT + 3 * DAY,
        now=NIGHT - timedelta(hours=1),
    )
    create_silence(
        shift.session,
        shift.operator,
        scope="site",
        target=shift.site.id,
        reason="maintenance",
        ends_at=NIGHT + timedelta(hours=2),
        now=NIGHT - timedelta(minutes=5),
    )
    assert is_silenced(shift.session, NIGHT, resident_id=shift.kim.id)
    assert shift.ingest(shift.event("fall1", EventType.FALL_DETECTED, NIGHT))
    assert shift.ingest(shift.event("flame1", EventType.FLAME_DETECTED, NIGHT))
    fall, flame = shift.alert(EventType.FALL_DETECTED), shift.alert(EventType.FLAME_DETECTED)
    assert shift.delivered == [[fall.id], [flame.id]]
    assert shift.told(fall, NotificationPurpose.NEW) == {shift.nurse.id}
    assert shift.told(flame, NotificationPurpose.NEW)


def test_cli_adds_lists_and_ends_silences(empty_database: str) -> None:
    assert iotcare("db", "upgrade", database_url=empty_database).returncode == 0
    engine = create_engine(empty_database)
    with Session(engine) as session:
        site = registry.create_site(session, "home", "Home", "Asia/Seoul")
        resident = registry.create_resident(session, site, "Park Soon-ja")
        session.commit()
        resident_id = resident.id
    engine.dispose()

    added = iotcare(
        "silences",
        "add",
        "--resident",
        str(resident_id),
        "--until",
        "3d",
        "--reason",
        "hospital",
        "--note",
        "Asan Medical Center",
        database_url=empty_database,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("Silence 1: resident") and "(hospital)" in added.stdout
    listed = iotcare("silences", "list", database_url=empty_database)
    [row] = listed.stdout.splitlines()
    assert row.split()[:4] == ["1", "resident", str(resident_id), "hospital"]
    both = iotcare(
        "silences", "add", "--site", "home", "--device", "x", "--until", "1h",
        "--reason", "maintenance", database_url=empty_database, env={"IOTCARE_LANGUAGE": "ko"},
    )  # fmt: skip
    assert both.returncode == 1
    assert "정확히 하나" in both.stderr and "Traceback" not in both.stderr
    past = iotcare(
        "silences", "add", "--site", "home", "--until", "2020-01-01T00:00",
        "--reason", "maintenance", database_url=empty_database,
    )  # fmt: skip
    assert past.returncode == 1 and "past" in past.stderr
    assert iotcare("silences", "end", "1", database_url=empty_database).returncode == 0
    assert iotcare("silences", "list", database_url=empty_database).stdout.strip() == (
        "No silences now or coming."
    )
    again = iotcare("silences", "end", "1", database_url=empty_database)
    assert again.returncode == 1 and "over already" in again.stderr


def test_a_night_exit_during_the_silence_is_not_news_after_it(
    db_session: Session, factory: Factory
) -> None:
    site = factory.site(timezone="Asia/Seoul")
    resident = factory.resident(site)
    door = factory.device("door_sensor", resident=resident)
    rule = add_rule(
        db_session,
        RuleKind.NIGHT_EXIT,
        {"start": "22:00", "end": "06:00"},
        site=site,
        auto_resolve=False,
    )
    opened = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)  # 00:30 in Seoul
    # Leaving with family for the night: the door opens at 00:30, the silence ends at 00:35.
    create_silence(
        db_session,
        None,
        scope="resident",
        target=resident.id,
        reason="away",
        starts_at=opened - timedelta(minutes=30),
        ends_at=opened + timedelta(minutes=5),
        now=opened - timedelta(minutes=30),
    )
    add_readings(
        db_session,
        door.id,
        "door_open",
        opened - timedelta(minutes=10),
        [0, 1, 0, 0, 1, 0],
        step=timedelta(minutes=10),
    )
    # The tick after the silence ended still holds the opening made during it...
    first = evaluate_rules(db_session, opened + timedelta(minutes=11))
    assert first.held == 1 and alerts(db_session, rule) == []
    # ...but the door opening again at 01:00, after the silence, alerts.
    evaluate_rules(db_session, opened + timedelta(minutes=41))
    (alert,) = alerts(db_session, rule)
    assert alert.details["local_time"] == "01:00"


def test_the_setup_notice_waits_for_the_residents_return(
    db_session: Session, factory: Factory, now: datetime
) -> None:
    site = factory.site()
    resident = factory.resident(site)  # no motion sensor yet
    add_rule(db_session, RuleKind.INACTIVITY, {"max_minutes": 90}, site=site)
    create_silence(
        db_session,
        None,
        scope="resident",
        target=resident.id,
        reason="hospital",
        ends_at=now + timedelta(hours=2),
        now=now,
    )

    def notices() -> list[Alert]:
        db_session.flush()
        return list(db_session.scalars(select(Alert).where(Alert.resident_id == resident.id)))

    evaluate_rules(db_session, now + timedelta(hours=1))
    assert notices() == []
    evaluate_rules(db_session, now + timedelta(hours=2, minutes=1))
    (notice,) = notices()
    assert notice.details["setup"] is True
