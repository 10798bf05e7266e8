"""The ingest service end to end: real broker, real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine, func, select

from core import schema
from core.contract.catalogue import EventType
from core.contract.payloads import event_payload, status_payload, telemetry_payload
from core.db import make_engine, make_session_factory, session_scope
from core.settings import Settings
from ingest.service import IngestService
from models import (
    BlockedDevice,
    DeadLetter,
    Device,
    DeviceStatus,
    Event,
    IngestReplica,
    Reading,
)
from tests.conftest import TEST_SECRET, make_test_settings
from tests.factories import Factory
from tests.support.publisher import publish_all, wait_for_retained
from tests.support.tcp_proxy import free_port
from tests.support.waiting import wait_until

BASE = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)


@pytest.fixture
def ingest_engine(empty_database: str, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database with one site, a resident and a wearable, fall detector."""
    engine = make_engine(make_test_settings(tmp_path, database_url=empty_database))
    schema.upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        factory = Factory(session)
        site = factory.site("home")
        resident = factory.resident(site)
        factory.device("wearable", site=site, resident=resident, device_id="wear1")
        factory.device("fall_detector", site=site, resident=resident, device_id="fall1")
    yield engine
    engine.dispose()


def service_settings(tmp_path: Path, database_url: str, mqtt_url: str, **extra) -> Settings:
    return make_test_settings(
        tmp_path,
        database_url=database_url,
        mqtt_url=mqtt_url,
        mqtt_topic_root=f"t{uuid.uuid4().hex[:10]}",
        mqtt_client_id=f"ingest-{uuid.uuid4().hex[:8]}",
        mqtt_shared_group=None,
        metrics_port=0,
        ingest_flush_interval="50ms",
        **extra,
    )


def count(engine: Engine, model, *where) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model).where(*where))


def topic(settings: Settings, device: str, kind: str, site: str = "home") -> str:
    return f"{settings.mqtt_topic_root}/v1/{site}/{device}/{kind}"


def test_messages_are_stored_once_and_bad_ones_dead_lettered(
    ingest_engine: Engine, mqtt_url: str, tmp_path: Path
) -> None:
    settings = service_settings(tmp_path, str(ingest_engine.url.render_as_string(False)), mqtt_url)
    service = IngestService(settings, ingest_engine)
    service.start()
    try:
        wait_until(service.client.connected.is_set, message="ingest connected")
        good = [
            (
                topic(settings, "wear1", "telemetry"),
                telemetry_payload(
                    BASE + timedelta(seconds=i),
                    {"heart_rate": 60 + i % 40, "spo2": 97, "body_temp_c": 36.6},
                ),
            )
            for i in range(300)
        ]
        root = settings.mqtt_topic_root
        bad = [
            (topic(settings, "wear1", "telemetry"), b"{not json"),
            (
                topic(settings, "wear1", "telemetry"),
                orjson.dumps({"ts": "2026-11-22T00:00:00Z", "readings": {"steps": 3}}),
            ),
            (
                topic(settings, "wear1", "telemetry"),
                orjson.dumps({"ts": "2099-01-01T00:00:00Z", "readings": {"spo2": 97}}),
            ),
            (topic(settings, "wear1", "telemetry"), b"{" + b" " * 300_000 + b"}"),
            # Under the root but outside the contract: received, and kept for an operator.
            (f"{root}/v1/home/wear1/telemetry/x", b"{}"),
            (f"{root}/v1/home/wear1/telemetrics", b"{}"),
            (f"{root}/x", b"{}"),
        ]
        # The platform's own publishes under the root are neither data nor dead letters.
        platform = [
            (topic(settings, "wear1", "cmd"), b'{"id": "x"}'),
            (f"{root}/ingest/another-replica/status", status_payload(True)),
        ]
        extras = [
            (topic(settings, "fall1", "event"), event_payload(BASE, EventType.FALL_DETECTED)),
            (topic(settings, "fall1", "status"), status_payload(True, "2.1.0", 64, -55)),
            (
                topic(settings, "stranger", "telemetry"),
                telemetry_payload(BASE, {"temperature_c": 21.5}),
            ),
        ]
        # Everything twice: the second copy is what a redelivery looks like.
        publish_all(mqtt_url, good + bad + platform + extras + good[:50] + extras[:1])
        wait_until(
            lambda: count(ingest_engine, Reading) == 900 + 1, timeout=30, message="all readings"
        )
        wait_until(lambda: count(ingest_engine, DeadLetter) == 7, message="dead letters")
        wait_until(lambda: count(ingest_engine, Event) == 1, message="event")
        skipped = service.metrics.total(service.metrics.skipped)
    finally:
        service.stop()

    with ingest_engine.connect() as conn:
        reasons = sorted(conn.scalars(select(DeadLetter.reason)))
        fall = conn.execute(select(Device).where(Device.id == "fall1")).one()
        stranger = conn.execute(select(Device).where(Device.id == "stranger")).one()
        replica = conn.execute(select(IngestReplica)).one()
        letters = sorted(conn.execute(select(DeadLetter.reason, DeadLetter.topic)).tuples())
    # One subscription, so each message arrived once: one dead letter each, with its reason.
    assert reasons == [
        "future_timestamp",
        "invalid_json",
        "oversized",
        "unknown_metric",
        "unknown_topic",
        "unknown_topic",
        "unknown_topic",
    ]
    assert [t for reason, t in letters if reason == "unknown_topic"] == sorted(
        t for t, _ in bad[-3:]
    )
    assert skipped >= len(platform)
    assert fall.status == DeviceStatus.ONLINE and fall.firmware == "2.1.0"
    assert fall.battery == 64 and fall.last_seen is not None
    assert stranger.quarantined and stranger.site_id == "home"
    assert replica.client_id == settings.mqtt_client_id and replica.written >= 901


def test_a_blocked_device_is_dead_lettered_and_not_registered_again(
    ingest_engine: Engine, mqtt_url: str, tmp_path: Path
) -> None:
    with session_scope(make_session_factory(ingest_engine)) as session:
        session.add(BlockedDevice(device_id="rogue", site_id="home", reason="neighbour's"))
    settings = service_settings(tmp_path, str(ingest_engine.url.render_as_string(False)), mqtt_url)
    service = IngestService(settings, ingest_engine)
    service.start()
    try:
        wait_until(service.client.connected.is_set, message="ingest connected")
        rogue = [
            (topic(settings, "rogue", "telemetry"), telemetry_payload(BASE, {"heart_rate": 70})),
            (topic(settings, "rogue", "event"), event_payload(BASE, EventType.FALL_DETECTED)),
            (topic(settings, "rogue", "status"), status_payload(True, "1.0", 90, -60)),
        ]
        wear = (topic(settings, "wear1", "telemetry"), telemetry_payload(BASE, {"spo2": 97}))
        publish_all(mqtt_url, [*rogue, wear])
        wait_until(lambda: count(ingest_engine, DeadLetter) == 3, message="dead letters")
        wait_until(lambda: count(ingest_engine, Reading) == 1, message="wear1's reading")
    finally:
        service.stop()
    with ingest_engine.connect() as conn:
        letters = conn.execute(select(DeadLetter.reason, DeadLetter.topic)).all()
        assert conn.scalar(select(Device.id).where(Device.id == "rogue")) is None
        assert conn.scalar(select(func.count()).select_from(Event)) == 0
    assert {reason for reason, _ in letters} == {"device_blocked"}
    assert sorted(t.rsplit("/", 1)[1] for _, t in letters) == ["event", "status", "telemetry"]


def test_sigterm_flushes_and_exits_cleanly(
    ingest_engine: Engine, mqtt_url: str, tmp_path: Path
) -> None:
    url = ingest_engine.url.render_as_string(False)
    settings = service_settings(tmp_path, url, mqtt_url)
    port = free_port("127.0.0.1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")}
    env.update(
        {
            "IOTCARE_ENVIRONMENT": "test",
            "IOTCARE_SECRET_KEY": TEST_SECRET,
            "IOTCARE_DATABASE_URL": url,
            "IOTCARE_MQTT_URL": mqtt_url,
            "IOTCARE_MQTT_TOPIC_ROOT": settings.mqtt_topic_root,
            "IOTCARE_MQTT_CLIENT_ID": settings.mqtt_client_id or "",
            "IOTCARE_MQTT_SHARED_GROUP": "",
            "IOTCARE_METRICS_PORT": str(port),
            # Nothing but the SIGTERM flush may write these.
            "IOTCARE_INGEST_FLUSH_INTERVAL": "60s",
            "IOTCARE_INGEST_IDLE_FLUSH": "60s",
            "IOTCARE_INGEST_INFLIGHT_WINDOW": "1000",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        # The replica publishes its retained online status once subscribed.
        wait_for_retained(
            mqtt_url,
            f"{settings.mqtt_topic_root}/ingest/{settings.mqtt_client_id}/status",
            status_payload(True),
        )
        # Fewer than the broker's in-flight window (20), so all are delivered before the flush.
        publish_all(
            mqtt_url,
            [
                (
                    topic(settings, "wear1", "telemetry"),
                    telemetry_payload(BASE + timedelta(seconds=i), {"spo2": 96}),
                )
                for i in range(15)
            ],
        )
        wait_until(lambda: received(port) == 15, message="15 messages received")
        assert count(ingest_engine, Reading) == 0
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert count(ingest_engine, Reading) == 15
    assert "stopped" in stderr


def received(port: int) -> float:
    """iotcare_ingest_messages_received_total from a replica's /metrics."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
    except OSError:
        return -1
    for line in body.decode().splitlines():
        if line.startswith("iotcare_ingest_messages_received_total"):
            return float(line.split()[1])
    return -1
