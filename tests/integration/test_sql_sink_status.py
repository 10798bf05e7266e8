"""Device status through ingest's SQL sink: its change history, last_seen, and offline alerts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core import registry, schema
from core.contract.payloads import status_payload, telemetry_payload
from core.contract.topics import TopicKind, device_topic
from core.db import make_engine
from core.rules.engine import evaluate_rules
from core.rules.params import validate_params
from core.timeutil import utcnow
from ingest.batch import Batch
from ingest.parse import Limits, apply_message
from ingest.registry_cache import RegistryCache
from ingest.sinks.sql import SqlSink
from models import (
    Alert,
    AlertRule,
    Device,
    DeviceStatus,
    DeviceStatusChange,
    RuleKind,
    ScopeType,
    Severity,
    StatusChangeReason,
)
from tests.conftest import make_test_settings

SITE = "home"


@pytest.fixture
def db(migrated_database_url: str, tmp_path) -> Iterator[Engine]:
    engine = make_engine(make_test_settings(tmp_path, database_url=migrated_database_url))
    schema.upgrade(engine)
    with Session(engine) as session:
        registry.create_site(session, SITE, "Home", "Asia/Seoul")
        for device_id in ("door", "env"):
            registry.add_device(
                session, device_id=device_id, site_id=SITE, device_type="env_sensor"
            )
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def now() -> datetime:
    return utcnow().replace(second=0, microsecond=0)


def sink(engine: Engine) -> SqlSink:
    cache = RegistryCache(refresh_seconds=3600)
    with engine.connect() as connection:
        cache.load(connection)
    return SqlSink(engine, cache, "Asia/Seoul")


def status(device: str, online: bool, at: datetime, firmware: str | None = "1.2") -> Batch:
    batch = Batch()
    topic = device_topic("care", SITE, device, TopicKind.STATUS)
    apply_message(batch, topic, status_payload(online, firmware), at, Limits())
    return batch


def reading(device: str, at: datetime) -> Batch:
    batch = Batch()
    topic = device_topic("care", SITE, device, TopicKind.TELEMETRY)
    apply_message(batch, topic, telemetry_payload(at, {"temperature_c": 21.5}), at, Limits())
    return batch


def changes(engine: Engine, device: str) -> list[tuple[str, datetime, str]]:
    with Session(engine) as session:
        return [
            (str(c.status), c.at, str(c.reason))
            for c in session.scalars(
                select(DeviceStatusChange)
                .where(DeviceStatusChange.device_id == device)
                .order_by(DeviceStatusChange.at)
            )
        ]


def device(engine: Engine, device_id: str) -> Device:
    with Session(engine, expire_on_commit=False) as session:
        found = session.get(Device, device_id)
        assert found is not None
        return found


def minutes(start: datetime, n: float) -> datetime:
    return start + timedelta(minutes=n)


def test_only_changes_of_status_are_recorded_not_heartbeats(db: Engine, now: datetime) -> None:
    writer = sink(db)
    t0 = now - timedelta(hours=2)
    for online, at in [
        (True, t0),
        (True, minutes(t0, 30)),  # heartbeat
        (False, minutes(t0, 40)),  # last will
        (False, minutes(t0, 40)),  # the same message delivered again
        (True, minutes(t0, 50)),
        (True, minutes(t0, 80)),  # heartbeat
    ]:
        writer.write(status("door", online, at))
    assert changes(db, "door") == [
        ("online", t0, "status"),
        ("offline", minutes(t0, 40), "status"),
        ("online", minutes(t0, 50), "status"),
    ]
    stored = device(db, "door")
    assert (stored.status, stored.status_since, stored.last_seen) == (
        DeviceStatus.ONLINE,
        minutes(t0, 50),
        minutes(t0, 80),
    )
    assert StatusChangeReason.STATUS.value == "status"


def test_last_seen_never_moves_backwards(db: Engine, now: datetime) -> None:
    writer = sink(db)
    writer.write(reading("env", now))
    writer.write(status("door", True, now))
    # A history seeded behind the live data: older readings and statuses arrive afterwards.
    older = sink(db)
    older.write(reading("env", now - timedelta(hours=3)))
    older.write(status("door", False, now - timedelta(hours=3)))
    older.write(status("door", True, now - timedelta(hours=2)))
    assert device(db, "env").last_seen == now
    door = device(db, "door")
    # The live status stands; the old change joins the history at its own time.
    assert (door.status, door.status_since, door.last_seen) == (DeviceStatus.ONLINE, now, now)
    assert [(s, at) for s, at, _ in changes(db, "door")] == [
        ("offline", now - timedelta(hours=3)),
        ("online", now - timedelta(hours=2)),
        ("online", now),
    ]


def add_offline_rule(engine: Engine, minutes_: int) -> int:
    with Session(engine) as session:
        rule = AlertRule(
            name="offline",
            kind=RuleKind.DEVICE_OFFLINE,
            params=validate_params(RuleKind.DEVICE_OFFLINE, {"minutes": minutes_}),
            severity=Severity.WARNING,
            scope_type=ScopeType.SITE,
            site_id=SITE,
            auto_resolve=True,
            route=[],
        )
        session.add(rule)
        session.commit()
        return rule.id


def tick(engine: Engine, at: datetime) -> None:
    with Session(engine) as session:
        evaluate_rules(session, at, kinds=[RuleKind.DEVICE_OFFLINE])
        session.commit()


def alerted(engine: Engine, rule_id: int) -> dict[str, Alert]:
    with Session(engine) as session:
        return {
            a.subject_id: a for a in session.scalars(select(Alert).where(Alert.rule_id == rule_id))
        }


def test_offline_alerts_only_once_held_for_the_rules_minutes(db: Engine, now: datetime) -> None:
    rule_id = add_offline_rule(db, 10)
    writer = sink(db)
    t0 = now - timedelta(minutes=30)
    # Both report, then say offline at t0; "door" is back a minute later and keeps reporting.
    for device_id in ("door", "env"):
        writer.write(status(device_id, True, minutes(t0, -5)))
        writer.write(status(device_id, False, t0))
    for minute in range(0, 12):
        at = minutes(t0, minute)
        if minute == 1:
            writer.write(status("door", True, at))
        if minute >= 1:
            writer.write(reading("door", at))
        tick(db, at)
        found = alerted(db, rule_id)
        assert "door" not in found
        assert ("env" in found) == (minute >= 10), minute
    alert = alerted(db, rule_id)["env"]
    assert alert.details["status"] == "offline"
    assert alert.details["offline_since"] == t0.isoformat()
