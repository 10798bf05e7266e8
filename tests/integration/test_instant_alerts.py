"""Critical events through the real broker: one alert, delivery started, the valve closed."""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core import schema, users
from core.alerts import lifecycle
from core.contract.catalogue import EventType
from core.contract.payloads import event_payload
from core.db import make_engine, make_session_factory, session_info, session_scope
from core.notify.escalation import escalate_due
from core.rules.instant import CriticalEventAlerts, StoredEvent
from core.settings import Settings
from ingest.service import IngestService
from models import (
    Alert,
    AlertRule,
    AlertStatus,
    AuditEntry,
    Command,
    CommandStatus,
    Device,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    Role,
    RuleKind,
    Severity,
    Site,
)
from simulator.valve import GasValve
from tests.conftest import make_test_settings
from tests.factories import Factory
from tests.support.publisher import connect, publish_all
from tests.support.waiting import wait_until


@pytest.fixture
def site_engine(migrated_database_url: str, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(make_test_settings(tmp_path, database_url=migrated_database_url))
    schema.upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        factory = Factory(session)
        site = factory.site("home")
        resident = factory.resident(site, name="Kim Young-ja", room="101")
        factory.device("fall_detector", site=site, resident=resident, device_id="fall1")
        factory.device("flame_detector", site=site, device_id="flame1")
        factory.device("gas_valve", site=site, device_id="valve1")
    yield engine
    engine.dispose()


class ValveResponder:
    """The kitchen valve on the broker: obeys close_valve and acknowledges on cmd/ack."""

    def __init__(self, url: str, root: str) -> None:
        self.valve = GasValve("valve1", random.Random(1), time.time())
        self.root = root
        self.commands: list[bytes] = []
        self.client = connect(url)
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_subscribe = lambda *args: ready.set()
        self.client.subscribe(f"{root}/v1/home/valve1/cmd", qos=1)
        assert ready.wait(10)

    def _on_message(self, client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage):
        self.commands.append(message.payload)
        result = self.valve.handle_command(message.payload, datetime.now(UTC))
        if result is not None:
            client.publish(f"{self.root}/v1/home/valve1/cmd/ack", result.ack, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def alerts(engine: Engine) -> list[Alert]:
    with engine.connect() as conn:
        return list(conn.execute(select(Alert).order_by(Alert.opened_at)).all())


def test_fall_and_flame_open_alerts_and_close_the_valve(
    site_engine: Engine, mqtt_url: str, tmp_path: Path
) -> None:
    root = f"t{uuid.uuid4().hex[:10]}"
    settings = make_test_settings(
        tmp_path,
        database_url=site_engine.url.render_as_string(False),
        mqtt_url=mqtt_url,
        mqtt_topic_root=root,
        mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        mqtt_shared_group=None,
        metrics_port=0,
    )
    delivered: list[tuple[float, list[uuid.UUID]]] = []
    service = IngestService(
        settings, site_engine, deliver=lambda ids: delivered.append((time.monotonic(), ids))
    )
    valve = ValveResponder(mqtt_url, root)
    service.start()
    try:
        wait_until(service.client.connected.is_set, message="ingest connected")
        now = datetime.now(UTC)
        fall = (f"{root}/v1/home/fall1/event", event_payload(now, EventType.FALL_DETECTED))
        sent = time.monotonic()
        publish_all(mqtt_url, [fall])
        wait_until(lambda: delivered, timeout=10, message="delivery of the fall alert")
        # Publish to hand-over for delivery, on a loaded 2-core CI machine.
        assert delivered[0][0] - sent < 2.0
        publish_all(mqtt_url, [fall])  # a redelivery of the same event
        publish_all(
            mqtt_url,
            [(f"{root}/v1/home/flame1/event", event_payload(now, EventType.FLAME_DETECTED))],
        )
        wait_until(lambda: len(alerts(site_engine)) == 2, message="flame alert")

        def command() -> Command | None:
            with site_engine.connect() as conn:
                return conn.execute(select(Command)).one_or_none()

        wait_until(
            lambda: command() is not None and command().status is CommandStatus.ACKED,
            timeout=15,
            message="close_valve acknowledged by the valve",
        )
    finally:
        service.stop()
        valve.close()

    fall_alert, flame_alert = alerts(site_engine)
    assert fall_alert.subject_type == "resident" and fall_alert.severity is Severity.CRITICAL
    assert fall_alert.occurrences == 1  # the redelivered event did not count twice
    assert flame_alert.subject_type == "device" and flame_alert.device_id == "flame1"
    assert {a.status for a in (fall_alert, flame_alert)} == {AlertStatus.OPEN}
    cmd = command()
    assert cmd.command == "close_valve" and cmd.alert_id == flame_alert.id
    assert cmd.device_id == "valve1" and cmd.acked_at is not None
    assert valve.valve.state == "closed"
    assert [ids for _, ids in delivered] == [[fall_alert.id], [flame_alert.id]]


def test_disabled_rule_does_not_silence_a_fall(
    site_engine: Engine, mqtt_url: str, tmp_path: Path
) -> None:
    with session_scope(make_session_factory(site_engine)) as session:
        session.add(
            AlertRule(
                name="Falls",
                kind=RuleKind.EVENT,
                severity=Severity.WARNING,
                params={"event_types": ["fall_detected"]},
                site_id="home",
                enabled=False,
            )
        )
        session.add(
            AlertRule(
                name="Doors",
                kind=RuleKind.EVENT,
                severity=Severity.INFO,
                params={"event_types": ["door_opened"]},
                site_id="home",
            )
        )
    root = f"t{uuid.uuid4().hex[:10]}"
    settings = make_test_settings(
        tmp_path,
        database_url=site_engine.url.render_as_string(False),
        mqtt_url=mqtt_url,
        mqtt_topic_root=root,
        mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        mqtt_shared_group=None,
        metrics_port=0,
    )
    service = IngestService(settings, site_engine)
    service.start()
    try:
        wait_until(service.client.connected.is_set, message="ingest connected")
        now = datetime.now(UTC)
        publish_all(
            mqtt_url,
            [
                (f"{root}/v1/home/fall1/event", event_payload(now, EventType.FALL_DETECTED)),
                (f"{root}/v1/home/fall1/event", event_payload(now, EventType.DOOR_OPENED)),
            ],
        )
        wait_until(lambda: len(alerts(site_engine)) == 2, message="two alerts")
    finally:
        service.stop()
    by_title = {a.title: a for a in alerts(site_engine)}
    assert by_title["Fall detected"].severity is Severity.CRITICAL  # the safety net
    assert by_title["Fall detected"].rule_id is None
    assert by_title["Door opened"].severity is Severity.INFO  # the enabled rule


# --- The instant path on both backends, without a broker: what a night shift lives through.

NIGHT = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)  # 03:00 in Seoul
_event_ids = itertools.count(1000)


@pytest.fixture
def outbox_installed(
    db_session: Session, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> Settings:
    """The test's session carries these settings, so alert changes queue notifications."""
    monkeypatch.setattr(users, "hash_password", lambda password: "not-a-real-hash")
    db_session.info.update(session_info(settings))
    return settings


class NightShift:
    """A home at 3 a.m.: Kim with a fall detector and a panic button, a kitchen with a flame
    detector and a gas valve (which reports gas leaks); her caregiver, a supervisor, the night
    caregiver working at the site (assigned to nobody), an operator, and a caregiver of another
    home."""

    def __init__(self, session: Session, factory: Factory) -> None:
        self.session = session
        self.site = factory.site("night")
        self.kim = factory.resident(self.site, name="Kim Young-ja", room="101")
        for device_type, device_id, resident in (
            ("fall_detector", "fall1", self.kim),
            ("panic_button", "panic1", self.kim),
            ("flame_detector", "flame1", None),
            ("gas_valve", "valve1", None),
        ):
            factory.device(device_type, site=self.site, resident=resident, device_id=device_id)
        self.nurse = factory.user(residents=(self.kim,))
        self.supervisor = factory.user()
        users.assign(session, self.supervisor, self.kim, tier=2)
        self.night = factory.user(site_id=self.site.id)
        self.operator = factory.user(Role.OPERATOR, site_id=self.site.id)
        other = factory.site()
        self.elsewhere = factory.user(site_id=other.id, residents=(factory.resident(other),))
        session.flush()
        self.delivered: list[list[uuid.UUID]] = []
        self.dispatched: list[list[uuid.UUID]] = []
        self.alerts = CriticalEventAlerts(
            deliver=self.delivered.append, dispatch=self.dispatched.append
        )

    def event(self, device_id: str, kind: EventType, at: datetime, **data: Any) -> StoredEvent:
        """A newly stored event (a new id each time, as the events table gives)."""
        device = self.session.get(Device, device_id)
        assert device is not None
        return StoredEvent(
            id=next(_event_ids),
            device_id=device_id,
            site_id=device.site_id,
            resident_id=device.resident_id,
            device_type=device.type,
            type=kind.value,
            ts=at,
            data=data,
            received_at=at + timedelta(milliseconds=300),
        )

    def ingest(self, *events: StoredEvent) -> bool:
        """Pass the events through the instant rules and run the after-commit step, as ingest
        does; whether there was anything to do after the commit."""
        after = self.alerts.on_events(self.session, events)
        self.session.flush()
        if after is None:
            return False
        after()
        self.alerts.close()  # wait for the hand-over to the deliverer
        self.alerts._pool = ThreadPoolExecutor(max_workers=1)
        return True

    def alert(self, kind: EventType) -> Alert:
        alert = self.session.scalar(
            select(Alert).where(Alert.dedupe_key.endswith(f":{kind.value}"))
        )
        assert alert is not None, kind
        return alert

    def notifications(self, alert: Alert, purpose: NotificationPurpose) -> list[Notification]:
        return list(
            self.session.scalars(
                select(Notification)
                .where(Notification.alert_id == alert.id, Notification.purpose == purpose)
                .order_by(Notification.id)
            )
        )

    def told(self, alert: Alert, purpose: NotificationPurpose) -> set[int]:
        return {n.recipient_id for n in self.notifications(alert, purpose) if n.recipient_id}

    def commands(self) -> list[Command]:
        return list(self.session.scalars(select(Command).order_by(Command.created_at)))


@pytest.fixture
def shift(db_session: Session, factory: Factory, outbox_installed: Settings) -> NightShift:
    return NightShift(db_session, factory)


def test_fall_then_panic_21_seconds_later_are_two_alerts_both_notified(
    shift: NightShift,
) -> None:
    # One rule for both kinds of call for help: still two alerts, each with its own name.
    shift.session.add(
        AlertRule(
            name="Calls for help",
            kind=RuleKind.EVENT,
            severity=Severity.CRITICAL,
            params={"event_types": ["fall_detected", "button_pressed"]},
            site_id=shift.site.id,
        )
    )
    shift.session.flush()
    assert shift.ingest(shift.event("fall1", EventType.FALL_DETECTED, NIGHT))
    assert shift.ingest(
        shift.event("panic1", EventType.BUTTON_PRESSED, NIGHT + timedelta(seconds=21))
    )
    fall, panic = shift.alert(EventType.FALL_DETECTED), shift.alert(EventType.BUTTON_PRESSED)
    assert fall.id != panic.id
    assert (fall.title, panic.title) == ("Fall detected", "Panic button pressed")
    assert fall.rule_id == panic.rule_id is not None
    assert shift.delivered == [[fall.id], [panic.id]]
    for alert, words in ((fall, "Fall detected"), (panic, "Panic button pressed")):
        new = shift.notifications(alert, NotificationPurpose.NEW)
        assert {n.recipient_id for n in new} == {shift.nurse.id}
        assert all(words in (n.subject or "") for n in new)
        assert all(n.status is NotificationStatus.PENDING for n in new)


def test_a_second_fall_after_acknowledgement_reopens_and_notifies_again(
    shift: NightShift,
) -> None:
    shift.ingest(shift.event("fall1", EventType.FALL_DETECTED, NIGHT, confidence=0.81))
    alert = shift.alert(EventType.FALL_DETECTED)
    lifecycle.acknowledge(
        shift.session, alert.id, shift.nurse, "coming", at=NIGHT + timedelta(minutes=1)
    )
    again = shift.event(
        "fall1", EventType.FALL_DETECTED, NIGHT + timedelta(minutes=4), confidence=0.97
    )
    assert shift.ingest(again)

    assert shift.delivered == [[alert.id], [alert.id]]  # the repeat is delivered at once too
    assert alert.status is AlertStatus.OPEN and alert.occurrences == 2
    assert alert.acknowledged_by is None
    assert alert.escalation_level == 1
    assert alert.next_escalation_at == again.received_at + timedelta(minutes=5)
    # The first fall's details stay; the second lives in the history with its own.
    assert alert.details["data"] == {"confidence": 0.81}
    history = lifecycle.history(shift.session, alert.id)
    assert [h.action for h in history] == ["opened", "acknowledged", "repeated", "reactivated"]
    repeated = history[2].data
    assert (repeated["event_id"], repeated["device_id"], repeated["event_type"]) == (
        again.id,
        "fall1",
        "fall_detected",
    )
    assert repeated["data"] == {"confidence": 0.97}
    assert repeated["ts"] == again.ts.isoformat()
    assert history[3].data["acknowledged_by"] == shift.nurse.id
    assert history[3].data["ack_note"] == "coming"

    repeat = shift.notifications(alert, NotificationPurpose.REPEAT)
    assert {n.recipient_id for n in repeat} == {shift.nurse.id}
    inbox = next(n for n in repeat if n.channel.value == "inbox")
    assert inbox.subject == "[CRITICAL] Again (2×): Fall detected — Kim Young-ja, room 101"
    assert "This time: 2026-11-23 03:04 KST, device fall1" in (inbox.body or "")
    assert "Reported: confidence=0.97" in (inbox.body or "")
    assert "ack=" in (inbox.body or "")


def test_gas_leak_after_an_acknowledged_flame_closes_the_valve_again(shift: NightShift) -> None:
    shift.ingest(shift.event("flame1", EventType.FLAME_DETECTED, NIGHT))
    flame = shift.alert(EventType.FLAME_DETECTED)
    lifecycle.acknowledge(shift.session, flame.id, shift.night, at=NIGHT + timedelta(minutes=2))
    next_day = NIGHT + timedelta(days=1)
    assert shift.ingest(shift.event("valve1", EventType.GAS_LEAK, next_day, ppm=1800))
    gas = shift.alert(EventType.GAS_LEAK)
    assert gas.id != flame.id and gas.title == "Gas leak"
    # And the flame detector fires again: the acknowledged flame alert is open again.
    assert shift.ingest(
        shift.event("flame1", EventType.FLAME_DETECTED, next_day + timedelta(seconds=40))
    )
    assert flame.status is AlertStatus.OPEN and flame.occurrences == 2
    assert shift.told(flame, NotificationPurpose.REPEAT) >= {shift.night.id, shift.nurse.id}

    commands = shift.commands()
    assert [(c.device_id, c.command, c.alert_id) for c in commands] == [
        ("valve1", "close_valve", flame.id),
        ("valve1", "close_valve", gas.id),
        ("valve1", "close_valve", flame.id),
    ]
    assert shift.dispatched == [[c.id] for c in commands]
    assert shift.delivered == [[flame.id], [gas.id], [flame.id]]
    requested = shift.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "command.request")
    ).all()
    assert len(requested) == 3


def test_a_redelivered_event_is_not_notified_twice(shift: NightShift) -> None:
    flame = shift.event("flame1", EventType.FLAME_DETECTED, NIGHT)
    assert shift.ingest(flame)
    alert = shift.alert(EventType.FLAME_DETECTED)
    before = shift.session.scalar(select(func.count()).select_from(Notification))
    # The same stored event reaching the instant rules again (a retried batch): nothing new.
    assert not shift.ingest(flame)
    assert alert.occurrences == 1
    assert shift.session.scalar(select(func.count()).select_from(Notification)) == before
    assert len(shift.commands()) == 1
    assert shift.delivered == [[alert.id]]


def test_a_site_gas_leak_reaches_the_caregivers_on_duty_there_then_someone_new(
    shift: NightShift, outbox_installed: Settings
) -> None:
    shift.ingest(shift.event("valve1", EventType.GAS_LEAK, NIGHT))
    gas = shift.alert(EventType.GAS_LEAK)
    assert (gas.subject_type, gas.resident_id) == ("device", None)
    # Kim's caregiver (tier 1 at this site), the night caregiver working here, the operator.
    assert shift.told(gas, NotificationPurpose.NEW) == {
        shift.nurse.id,
        shift.night.id,
        shift.operator.id,
    }
    # Nobody answered in 5 minutes: the supervisor, not the same people again.
    assert escalate_due(shift.session, NIGHT + timedelta(minutes=6), settings=outbox_installed) == 1
    assert shift.told(gas, NotificationPurpose.ESCALATION) == {shift.supervisor.id}


def test_non_critical_repeats_stay_folded_and_silent(shift: NightShift) -> None:
    shift.session.add(
        AlertRule(
            name="Doors",
            kind=RuleKind.EVENT,
            severity=Severity.INFO,
            params={"event_types": ["door_opened"]},
            site_id=shift.site.id,
        )
    )
    shift.session.flush()
    door = [
        shift.event("fall1", EventType.DOOR_OPENED, NIGHT + timedelta(seconds=s)) for s in (0, 5, 9)
    ]
    assert shift.ingest(door[0])
    assert not shift.ingest(door[1], door[2])
    alert = shift.alert(EventType.DOOR_OPENED)
    assert alert.occurrences == 3
    assert shift.notifications(alert, NotificationPurpose.REPEAT) == []
    assert shift.delivered == [[alert.id]]


def test_every_critical_event_is_handed_over_for_delivery_at_once(
    site_engine: Engine, mqtt_url: str, tmp_path: Path
) -> None:
    """Through the real broker: a fall, the same fall redelivered, a second fall and a panic
    press 21 s later are each handed to the deliverer within seconds (redelivery excepted)."""
    with session_scope(make_session_factory(site_engine)) as session:
        Factory(session).device("panic_button", site=session.get(Site, "home"), device_id="panic1")
        session.get(Device, "panic1").resident_id = session.get(Device, "fall1").resident_id
    root = f"t{uuid.uuid4().hex[:10]}"
    settings = make_test_settings(
        tmp_path,
        database_url=site_engine.url.render_as_string(False),
        mqtt_url=mqtt_url,
        mqtt_topic_root=root,
        mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        mqtt_shared_group=None,
        metrics_port=0,
    )
    delivered: list[tuple[float, list[uuid.UUID]]] = []
    service = IngestService(
        settings, site_engine, deliver=lambda ids: delivered.append((time.monotonic(), ids))
    )
    service.start()
    t0 = datetime.now(UTC)
    steps = [
        ("fall1", EventType.FALL_DETECTED, t0),
        ("fall1", EventType.FALL_DETECTED, t0),  # redelivered: not handed over again
        ("fall1", EventType.FALL_DETECTED, t0 + timedelta(seconds=3)),
        ("panic1", EventType.BUTTON_PRESSED, t0 + timedelta(seconds=21)),
    ]
    latencies = []
    try:
        wait_until(service.client.connected.is_set, message="ingest connected")
        for n, (device, kind, ts) in enumerate(steps):
            expected = 1 if n < 2 else n
            sent = time.monotonic()
            publish_all(mqtt_url, [(f"{root}/v1/home/{device}/event", event_payload(ts, kind))])
            if n == 1:
                continue
            wait_until(lambda e=expected: len(delivered) >= e, timeout=10, message=f"step {n}")
            latencies.append(delivered[expected - 1][0] - sent)
    finally:
        service.stop()
    by_title = {a.title: a for a in alerts(site_engine)}
    fall, panic = by_title["Fall detected"], by_title["Panic button pressed"]
    assert [ids for _, ids in delivered] == [[fall.id], [fall.id], [panic.id]]
    assert fall.occurrences == 2 and panic.occurrences == 1
    # Publish to hand-over, on a loaded 2-core CI machine (the target is well under 1 s).
    assert max(latencies) < 2.0
