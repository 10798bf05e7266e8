"""The ingest service end to end: real broker, real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
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
from core.mqtt_url import parse_broker_url
from core.settings import Settings
from devkit.tcp_proxy import TcpProxy, free_port
from ingest import pipeline as pipeline_module
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
from tests.support.ingest_process import parse_metrics
from tests.support.publisher import publish_all, wait_for_retained
from tests.support.waiting import wait_until

BASE = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)


@pytest.fixture
def ingest_engine(migrated_database_url: str, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database with one site, a resident and a wearable, fall detector."""
    engine = make_engine(make_test_settings(tmp_path, database_url=migrated_database_url))
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
        **{
            "mqtt_shared_group": None,
            "metrics_port": 0,
            "ingest_flush_interval": "50ms",
            **extra,
        },
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


def healthz(service: IngestService) -> tuple[int, dict]:
    """GET /healthz of an in-process service: (status code, JSON body)."""
    assert service.http is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{service.http.port}/healthz") as reply:
            return reply.status, orjson.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def metric(service: IngestService, name: str) -> float:
    """One sample of an in-process service's /metrics."""
    assert service.http is not None
    body = urllib.request.urlopen(f"http://127.0.0.1:{service.http.port}/metrics").read()
    return parse_metrics(body.decode())[name]


def unhealthy_because(service: IngestService, words: str) -> bool:
    """Whether /healthz answers 503 with a reason containing `words`."""
    code, body = healthz(service)
    return code == 503 and any(words in reason for reason in body["reasons"])


def replica_row(engine: Engine, client_id: str) -> IngestReplica | None:
    with engine.connect() as conn:
        return conn.execute(
            select(IngestReplica).where(IngestReplica.client_id == client_id)
        ).one_or_none()


def listening_port_outside_ephemeral_range() -> int:
    """A free port no outgoing connection is given while the proxy's listener is cut."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(max(1024, low - 10_000), low), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")


class ThreadKiller(BaseException):
    """Escapes every `except Exception`: ends the thread it is raised in, as a bug could."""


def test_a_message_ingest_fails_on_is_dead_lettered_and_the_rest_flows_on(
    ingest_engine: Engine, mqtt_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A parser bug on one payload, raised inside Pipeline.submit on the MQTT thread.
    real = pipeline_module.apply_message

    def buggy(batch, topic, payload, *args, **kwargs):
        if payload == b'{"boom": 1}':
            raise KeyError("boom")
        return real(batch, topic, payload, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "apply_message", buggy)
    settings = service_settings(tmp_path, str(ingest_engine.url.render_as_string(False)), mqtt_url)
    service = IngestService(settings, ingest_engine)
    service.start()
    try:
        wait_until(service.client.connected.is_set, message="ingest connected")
        readings = [
            (
                topic(settings, "wear1", "telemetry"),
                telemetry_payload(BASE + timedelta(seconds=i), {"spo2": 97}),
            )
            for i in range(20)
        ]
        poison = (topic(settings, "wear1", "telemetry"), b'{"boom": 1}')
        publish_all(mqtt_url, [*readings[:10], poison, *readings[10:]])
        wait_until(lambda: count(ingest_engine, Reading) == 20, message="readings around it")
        wait_until(lambda: count(ingest_engine, DeadLetter) == 1, message="its dead letter")
        assert service.client.alive() and service.client.connected.is_set()
        assert service.health()[0], service.health()[1]
        assert service.metrics.total(service.metrics.callback_errors) == 1
        assert service.metrics.total(service.metrics.received) == 21
    finally:
        service.stop()
    with ingest_engine.connect() as conn:
        letter = conn.execute(
            select(DeadLetter.reason, DeadLetter.topic, DeadLetter.payload, DeadLetter.detail)
        ).one()
    assert (letter.reason, letter.topic, letter.payload) == ("internal_error", poison[0], poison[1])
    assert "KeyError" in (letter.detail or "")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_health_reports_a_dead_mqtt_thread(
    ingest_engine: Engine, mqtt_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killer(*_args, **_kwargs):
        raise ThreadKiller("the MQTT thread dies")

    settings = service_settings(
        tmp_path,
        str(ingest_engine.url.render_as_string(False)),
        mqtt_url,
        metrics_port=free_port("127.0.0.1"),
        ingest_heartbeat_interval="200ms",
    )
    service = IngestService(settings, ingest_engine)
    service.start()
    try:
        wait_until(service.client.connected.is_set, message="ingest connected")
        wait_until(lambda: healthz(service)[0] == 200, message="healthy at first")
        monkeypatch.setattr(pipeline_module, "apply_message", killer)
        publish_all(mqtt_url, [(topic(settings, "wear1", "telemetry"), b"{}")])
        wait_until(
            lambda: unhealthy_because(service, "MQTT network thread is not running"),
            message="/healthz reporting the dead thread",
        )
        assert metric(service, "iotcare_ingest_connected") == 0
        assert metric(service, "iotcare_ingest_healthy") == 0
        wait_until(
            lambda: (
                (row := replica_row(ingest_engine, service.client_id)) is not None
                and not row.connected
                and "MQTT network thread" in (row.last_error or "")
            ),
            message="the heartbeat reporting it",
        )
    finally:
        service.stop()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_health_reports_a_dead_flusher(
    ingest_engine: Engine, mqtt_url: str, tmp_path: Path
) -> None:
    class DeadlySink:
        name = "deadly"

        def write(self, batch: object) -> None:
            raise ThreadKiller("the flusher dies")

        def backlog_bytes(self) -> int:
            return 0

        def close(self) -> None:
            pass

    settings = service_settings(
        tmp_path,
        str(ingest_engine.url.render_as_string(False)),
        mqtt_url,
        metrics_port=free_port("127.0.0.1"),
    )
    service = IngestService(settings, ingest_engine, extra_sinks=[DeadlySink()])
    service.start()
    try:
        wait_until(service.client.connected.is_set, message="ingest connected")
        assert healthz(service)[0] == 200
        publish_all(mqtt_url, [(topic(settings, "wear1", "telemetry"), b"{}")])
        wait_until(
            lambda: unhealthy_because(service, "flusher thread is not running"),
            message="/healthz reporting the dead flusher",
        )
        assert metric(service, "iotcare_ingest_healthy") == 0
    finally:
        service.stop()


def test_health_reports_a_batch_whose_write_never_returns(
    ingest_engine: Engine, mqtt_url: str, tmp_path: Path
) -> None:
    release = threading.Event()

    class BlockingSink:
        name = "blocking"

        def write(self, batch: object) -> None:
            release.wait(60)

        def backlog_bytes(self) -> int:
            return 0

        def close(self) -> None:
            pass

    settings = service_settings(
        tmp_path,
        str(ingest_engine.url.render_as_string(False)),
        mqtt_url,
        metrics_port=free_port("127.0.0.1"),
        ingest_heartbeat_interval="200ms",
    )
    service = IngestService(settings, ingest_engine, extra_sinks=[BlockingSink()], stuck_after=1.0)
    service.start()
    try:
        wait_until(service.client.connected.is_set, message="ingest connected")
        assert healthz(service)[0] == 200
        reading = telemetry_payload(BASE, {"spo2": 97})
        publish_all(mqtt_url, [(topic(settings, "wear1", "telemetry"), reading)])
        wait_until(
            lambda: unhealthy_because(service, "waited"),
            message="/healthz reporting the stuck batch",
        )
        # Connected, threads alive, nothing failing: only the stuck write is wrong.
        _, body = healthz(service)
        assert body["connected"] and body["mqtt_thread"] and body["flusher"], body
        assert body["failing_for_seconds"] == 0, body
        wait_until(
            lambda: (
                (row := replica_row(ingest_engine, service.client_id)) is not None
                and not row.connected
                and "waited" in (row.last_error or "")
            ),
            message="the heartbeat reporting it",
        )
        release.set()
        wait_until(lambda: healthz(service)[0] == 200, message="healthy once the write returns")
        assert count(ingest_engine, Reading) == 1
    finally:
        release.set()
        service.stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"], ids=["mqtt311", "mqtt5"])
def test_retained_garbage_is_dead_lettered_once_across_reconnects(
    ingest_engine: Engine, mqtt_url: str, tmp_path: Path, protocol: str
) -> None:
    broker = parse_broker_url(mqtt_url)
    # Outgoing connections (the publisher's, say) would otherwise take the port while it is cut.
    proxy = TcpProxy(
        broker.host,
        broker.port,
        port=listening_port_outside_ephemeral_range(),
    ).start()
    settings = service_settings(
        tmp_path,
        str(ingest_engine.url.render_as_string(False)),
        f"mqtt://{proxy.host}:{proxy.port}",
        mqtt_protocol=protocol,
        mqtt_reconnect_min="100ms",
        mqtt_reconnect_max="300ms",
    )
    garbage = (topic(settings, "wear1", "status"), b"{garbage")
    publish_all(mqtt_url, [garbage], retain=True)
    service = IngestService(settings, ingest_engine)
    try:
        service.start()
        wait_until(lambda: count(ingest_engine, DeadLetter) == 1, message="the dead letter")
        for i in range(2):
            proxy.cut()
            # A refused reconnect: the cut is complete (and the old listener gone).
            wait_until(
                lambda: service.client.state.startswith("unreachable"), message="disconnected"
            )
            proxy.restore()
            wait_until(service.client.connected.is_set, message="reconnected")
            # Published after resubscribing, so stored only after any retained redelivery.
            marker = telemetry_payload(BASE + timedelta(seconds=i), {"spo2": 97})
            publish_all(mqtt_url, [(topic(settings, "wear1", "telemetry"), marker)])
            wait_until(lambda n=i + 1: count(ingest_engine, Reading) == n, message="marker")
        assert count(ingest_engine, DeadLetter) == 1
        assert service.metrics.total(service.metrics.skipped) >= 2
        if protocol == "5":
            # A restarted replica finds its subscription in the session: nothing is resent.
            service.stop()
            service = IngestService(settings, ingest_engine)
            service.start()
            wait_until(service.client.connected.is_set, message="restarted and connected")
            marker = telemetry_payload(BASE + timedelta(minutes=1), {"spo2": 97})
            publish_all(mqtt_url, [(topic(settings, "wear1", "telemetry"), marker)])
            wait_until(lambda: count(ingest_engine, Reading) == 3, message="marker")
            assert count(ingest_engine, DeadLetter) == 1
    finally:
        service.stop()
        proxy.close()
        publish_all(mqtt_url, [(garbage[0], b"")], retain=True)  # clear it from the broker
