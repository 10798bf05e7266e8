"""Ingest loses nothing: the real service (`python -m ingest`) under kills, outages and sharing.

Each test has a Mosquitto of its own, sized so that the broker itself never drops a message
(a queue far larger than the test's traffic, and an in-flight window equal to ingest's), and a
fresh database. Every telemetry message has its own (device, ts) and carries three readings, so
the rows that must exist afterwards are known exactly: a lost message shows as a missing pair,
a doubled or stray write as a count above the expected or a pair nobody sent.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.client import topic_matches_sub
from sqlalchemy import Engine, func, select

from core import schema
from core.contract.payloads import telemetry_payload
from core.db import make_engine, make_session_factory, session_scope
from devkit.mosquitto import PrivateMosquitto, shipped_options
from devkit.tcp_proxy import ProxiedDatabase, proxied_url
from models import DeadLetter, Reading
from simulator.malformed import malformed_cases
from tests.conftest import make_test_settings
from tests.factories import Factory
from tests.support.ingest_process import IngestProcess
from tests.support.publisher import StreamPublisher, publish_all
from tests.support.services import TEST_DATABASE_URL, require
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.system, pytest.mark.timeout(150)]

# The broker's max_inflight_messages and ingest's in-flight window: one value, as in production.
WINDOW = 100
SITE = "home"
DEVICES = tuple(f"wear{n}" for n in range(10))
READINGS_PER_MESSAGE = 3
# In the recent past (never "future"), whole milliseconds as the contract carries them, so
# stored timestamps compare exactly on both backends.
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
RSS_LIMIT = 300 * 1024 * 1024
# Generous: another agent may be running benchmarks on the same two cores.
CATCH_UP_SECONDS = 90.0

Message = tuple[str, bytes]
Key = tuple[str, datetime]


def telemetry(root: str, count: int) -> tuple[list[Message], set[Key]]:
    """`count` telemetry messages spread over DEVICES, each with a unique (device, ts)."""
    messages: list[Message] = []
    expected: set[Key] = set()
    for i in range(count):
        device = DEVICES[i % len(DEVICES)]
        ts = BASE + timedelta(milliseconds=10 * i)
        readings = {"heart_rate": 60 + i % 50, "spo2": 90 + i % 10, "body_temp_c": 36.5}
        messages.append(
            (f"{root}/v1/{SITE}/{device}/telemetry", telemetry_payload(ts, readings, seq=i))
        )
        expected.add((device, ts))
    return messages, expected


@dataclass
class Scene:
    """One test's world: its broker, its database, its topic root and its ingest replicas."""

    broker: PrivateMosquitto
    engine: Engine  # direct connection, for the test's own checks
    database_url: str  # what ingest connects to (perhaps through a proxy)
    root: str
    directory: Path
    replicas: list[IngestProcess] = field(default_factory=list)

    def replica(self, client_id: str | None = None, **settings: str | None) -> IngestProcess:
        """An ingest replica (not started) on this broker and database; None: the default."""
        values: dict[str, str | None] = {
            "mqtt_shared_group": "",
            "ingest_inflight_window": str(WINDOW),
            "mqtt_reconnect_min": "0.2s",
            "mqtt_reconnect_max": "1s",
            "ingest_retry_max": "1s",
        }
        values.update(settings)
        process = IngestProcess(
            database_url=self.database_url,
            mqtt_url=self.broker.url,
            topic_root=self.root,
            client_id=client_id or f"ingest-{uuid.uuid4().hex[:8]}",
            directory=self.directory,
            settings={name: value for name, value in values.items() if value is not None},
        )
        self.replicas.append(process)
        return process

    def started(self, client_id: str | None = None, **settings: str | None) -> IngestProcess:
        """A replica that has subscribed (so nothing published from now on can miss it)."""
        process = self.replica(client_id, **settings).start()
        process.wait_online(timeout=60)
        return process

    def stream(self, messages: list[Message], rate: float) -> StreamPublisher:
        """A publisher of `messages` at `rate` a second through this broker (`with` starts it)."""
        return StreamPublisher(self.broker.url, messages, rate=rate, inflight=WINDOW)

    def rows(self) -> int:
        """Rows in readings."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Reading)) or 0)

    def wait(self, predicate: Callable[[], object], message: str, timeout: float = 60.0) -> None:
        """wait_until, with the replicas' logs in the failure message."""
        try:
            wait_until(predicate, timeout=timeout, interval=0.1, message=message)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.logs()}") from None

    def wait_for_rows(self, count: int, timeout: float = CATCH_UP_SECONDS) -> None:
        """Block until readings holds `count` rows."""
        try:
            self.wait(lambda: self.rows() >= count, f"{count} rows", timeout)
        except AssertionError as error:
            raise AssertionError(f"{self.rows()} rows only; {error}") from None

    def assert_stored_exactly_once(self, expected: set[Key]) -> None:
        """Every expected message has its readings, once; nothing else is there."""
        with self.engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(Reading))
            distinct = conn.scalar(
                select(func.count()).select_from(
                    select(Reading.device_id, Reading.metric, Reading.ts).distinct().subquery()
                )
            )
            per_message = Counter(
                (device, ts) for device, ts in conn.execute(select(Reading.device_id, Reading.ts))
            )
        missing = expected - per_message.keys()
        unexpected = per_message.keys() - expected
        assert not missing, f"{len(missing)} messages lost, e.g. {sorted(missing)[:5]}"
        assert not unexpected, f"{len(unexpected)} unexpected messages: {sorted(unexpected)[:5]}"
        assert total == distinct == len(expected) * READINGS_PER_MESSAGE
        incomplete = {key: n for key, n in per_message.items() if n != READINGS_PER_MESSAGE}
        assert not incomplete, f"messages without exactly {READINGS_PER_MESSAGE} rows: {incomplete}"

    def assert_broker_dropped_nothing(self) -> None:
        """The broker's own limits were not what made (or hid) a loss."""
        assert "dropped" not in self.broker.log_text().lower(), self.broker.log_text()[-3000:]

    def logs(self) -> str:
        """The tail of every replica's log, for failure messages."""
        return "\n".join(f"== {r.client_id}\n{r.log_text()[-3000:]}" for r in self.replicas)

    def close(self) -> None:
        """Kill every replica still running."""
        for process in self.replicas:
            process.close()


def migrated_engine(database_url: str, directory: Path) -> Engine:
    """An engine on a migrated database with SITE and DEVICES registered."""
    engine = make_engine(make_test_settings(directory, database_url=database_url))
    schema.upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        factory = Factory(session)
        site = factory.site(SITE)
        resident = factory.resident(site)
        for device in DEVICES:
            factory.device("wearable", site=site, resident=resident, device_id=device)
    return engine


@pytest.fixture
def broker(private_mosquitto: Callable[..., PrivateMosquitto]) -> PrivateMosquitto:
    """A broker of the test's own that queues far more than any test sends, never dropping."""
    return private_mosquitto(
        max_inflight_messages=WINDOW, max_queued_messages=1_000_000, max_queued_bytes=0
    )


@pytest.fixture
def scene_for(
    empty_database: str, broker: PrivateMosquitto, tmp_path: Path
) -> Iterator[Callable[[str | None], Scene]]:
    """Factory: the test's Scene, ingest reaching the database directly or at another URL."""
    engine = migrated_engine(empty_database, tmp_path)
    scenes: list[Scene] = []

    def make(ingest_database_url: str | None = None) -> Scene:
        scene = Scene(
            broker=broker,
            engine=engine,
            database_url=ingest_database_url or empty_database,
            root=f"t{uuid.uuid4().hex[:10]}",
            directory=tmp_path / "ingest",
        )
        scenes.append(scene)
        return scene

    try:
        yield make
    finally:
        for scene in scenes:
            scene.close()
        engine.dispose()


@pytest.fixture
def scene(scene_for: Callable[[str | None], Scene]) -> Scene:
    """The test's Scene, ingest reaching the database directly."""
    return scene_for(None)


@pytest.fixture
def shipped_scene(
    empty_database: str, private_mosquitto: Callable[..., PrivateMosquitto], tmp_path: Path
) -> Iterator[Scene]:
    """A Scene whose broker runs deploy/mosquitto/mosquitto.conf (minus listener and auth)."""
    engine = migrated_engine(empty_database, tmp_path)
    scene = Scene(
        broker=private_mosquitto(options=shipped_options()),
        engine=engine,
        database_url=empty_database,
        root=f"t{uuid.uuid4().hex[:10]}",
        directory=tmp_path / "ingest",
    )
    try:
        yield scene
    finally:
        scene.close()
        engine.dispose()


def shipped_replica(scene: Scene) -> IngestProcess:
    """A replica with the settings we ship: default subscription, docker-compose's window."""
    window = shipped_options()["max_inflight_messages"]
    return scene.started(mqtt_shared_group=None, ingest_inflight_window=window)


def test_a_broker_restart_with_the_shipped_settings_loses_nothing(shipped_scene: Scene) -> None:
    scene = shipped_scene
    messages, expected = telemetry(scene.root, 6000)
    thirds = [messages[i : i + 2000] for i in range(0, 6000, 2000)]
    replica = shipped_replica(scene)
    publish_all(scene.broker.url, thirds[0])  # while ingest runs
    replica.terminate()
    publish_all(scene.broker.url, thirds[1])  # queued in ingest's session
    # Orderly stop (what `docker compose restart mosquitto` sends): everything is saved first.
    scene.broker.stop()
    scene.broker.start()
    # Devices are back before ingest is: the restored subscription must queue these too.
    publish_all(scene.broker.url, thirds[2])
    replica.start()
    replica.wait_connected(timeout=60)
    scene.wait_for_rows(len(expected) * READINGS_PER_MESSAGE)
    assert replica.terminate() == 0, replica.log_text()

    scene.assert_stored_exactly_once(expected)
    scene.assert_broker_dropped_nothing()
    assert "session present: True" in replica.log_text()


def test_a_broker_crash_loses_only_what_arrived_since_its_last_autosave(
    shipped_scene: Scene,
) -> None:
    scene = shipped_scene
    messages, expected = telemetry(scene.root, 3000)
    replica = shipped_replica(scene)
    replica.terminate()
    saves = scene.broker.saves()
    publish_all(scene.broker.url, messages)  # queued in ingest's session
    # The shipped autosave_interval writes them to disk within seconds, unasked.
    scene.broker.wait_for_save(saves, timeout=3 * float(shipped_options()["autosave_interval"]))
    scene.broker.kill()  # SIGKILL: no save on the way out
    scene.broker.start()
    replica.start()
    replica.wait_connected(timeout=60)
    scene.wait_for_rows(len(expected) * READINGS_PER_MESSAGE)
    assert replica.terminate() == 0, replica.log_text()

    scene.assert_stored_exactly_once(expected)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"], ids=["mqtt311", "mqtt5"])
def test_kill_9_mid_stream_loses_and_duplicates_nothing(scene: Scene, protocol: str) -> None:
    messages, expected = telemetry(scene.root, 3000)
    replica = scene.started(mqtt_protocol=protocol)
    received_by_runs: list[float] = []
    with scene.stream(messages, rate=600) as publisher:
        for fraction in (0.3, 0.6):
            publisher.wait_sent(int(len(messages) * fraction))
            scene.wait(lambda: replica.written() > 0, "ingest writing")
            received_by_runs.append(replica.received())
            replica.kill()  # mid-batch: received, perhaps written, not all acknowledged
            # Traffic goes on while it is down: the broker queues it in the replica's session.
            sent = publisher.sent
            publisher.wait_sent(min(len(messages), sent + 150))
            replica.start()  # same client id: the broker redelivers what was not acknowledged
            replica.wait_connected(timeout=60)
        publisher.wait_acknowledged(timeout=CATCH_UP_SECONDS)
        scene.wait_for_rows(len(expected) * READINGS_PER_MESSAGE)
    assert replica.terminate() == 0, replica.log_text()

    scene.assert_stored_exactly_once(expected)
    scene.assert_broker_dropped_nothing()
    assert replica.starts == 3
    assert all(n > 0 for n in received_by_runs), received_by_runs
    # Both restarts found the session (and its unacknowledged messages) the kill left behind.
    assert replica.log_text().count("session present: True") == 2, replica.log_text()


def test_a_broker_restart_mid_stream_loses_and_duplicates_nothing(scene: Scene) -> None:
    messages, expected = telemetry(scene.root, 3000)
    replica = scene.started()
    with scene.stream(messages, rate=600) as publisher:
        publisher.wait_sent(len(messages) // 3)
        scene.wait(lambda: replica.written() > 0, "ingest writing")
        # Orderly stop: Mosquitto saves sessions, queues and in-flight messages, then exits.
        scene.broker.stop()
        sent = publisher.sent
        publisher.wait_sent(min(len(messages), sent + 300))  # published into the void meanwhile
        scene.wait(
            lambda: replica.metrics().get("iotcare_ingest_connected") == 0,
            "ingest noticing the broker is gone",
        )
        scene.broker.start()
        replica.wait_connected(timeout=60)
        publisher.wait_acknowledged(timeout=CATCH_UP_SECONDS)
        publisher_lost_broker = bool(publisher.disconnects)
        scene.wait_for_rows(len(expected) * READINGS_PER_MESSAGE)
    metrics = replica.metrics()
    assert replica.terminate() == 0, replica.log_text()

    scene.assert_stored_exactly_once(expected)
    scene.assert_broker_dropped_nothing()
    assert publisher_lost_broker, "the publisher never lost the broker"
    assert metrics["iotcare_ingest_reconnects_total"] >= 2
    assert "connected to broker" in replica.log_text()
    assert "session present: True" in replica.log_text()


@pytest.mark.postgres
def test_a_database_outage_applies_back_pressure_and_catches_up(
    db_backend: str, request: pytest.FixtureRequest
) -> None:
    if db_backend != "postgresql":
        pytest.skip("a SQLite file cannot be made unreachable; the outage runs on PostgreSQL")
    database: ProxiedDatabase = request.getfixturevalue("postgres_proxy")
    empty_database: str = request.getfixturevalue("empty_database")
    proxy = database.proxy
    scene = request.getfixturevalue("scene_for")(proxied_url(empty_database, proxy))
    messages, expected = telemetry(scene.root, 4000)
    replica = scene.started()
    with scene.stream(messages, rate=500) as publisher:
        publisher.wait_sent(len(messages) // 4)
        scene.wait(lambda: replica.written() > 0, "ingest writing")

        cut_at = time.monotonic()
        proxy.cut()
        # A dead database must make writes fail fast (refused, reset), never hang.
        scene.wait(
            lambda: replica.metrics().get("iotcare_ingest_write_failures_total", 0) > 0,
            "a failed write",
            timeout=20,
        )
        failed_after = time.monotonic() - cut_at
        time.sleep(0.5)  # acks queued before the cut, and the deliveries they allowed, settle
        before = replica.metrics()
        sent_before = publisher.sent
        samples: list[dict[str, Any]] = []
        outage_end = time.monotonic() + 4.0
        while time.monotonic() < outage_end:
            now = replica.metrics()
            samples.append(
                {
                    "written": now.get("iotcare_ingest_rows_written_total"),
                    "received": now.get("iotcare_ingest_messages_received_total"),
                    "rss": replica.rss_bytes(),
                }
            )
            time.sleep(0.2)
        published_meanwhile = publisher.sent - sent_before
        proxy.restore()

        publisher.wait_acknowledged(timeout=CATCH_UP_SECONDS)
        scene.wait_for_rows(len(expected) * READINGS_PER_MESSAGE)
    assert replica.terminate() == 0, replica.log_text()

    # Nothing written, so nothing acknowledged; the broker held everything past the window.
    written_before = before["iotcare_ingest_rows_written_total"]
    received_before = before["iotcare_ingest_messages_received_total"]
    assert {s["written"] for s in samples} == {written_before}
    received = [s["received"] for s in samples]
    assert max(received) - received_before <= WINDOW, received
    # What ingest holds unwritten (so unacknowledged) is at most the broker's in-flight window.
    assert max(received) - written_before / READINGS_PER_MESSAGE <= WINDOW, (received, before)
    assert published_meanwhile > 3 * WINDOW, published_meanwhile
    assert max(s["rss"] for s in samples) < RSS_LIMIT, samples
    assert failed_after < 10, f"the first write failed only {failed_after:.1f} s after the cut"
    scene.assert_stored_exactly_once(expected)
    scene.assert_broker_dropped_nothing()
    assert "stores reachable again" in replica.log_text()


def test_two_replicas_on_a_shared_subscription_split_the_load(scene: Scene) -> None:
    messages, expected = telemetry(scene.root, 4000)
    replicas = [scene.replica(f"ingest-{name}", mqtt_shared_group="ingest") for name in "ab"]
    for replica in replicas:
        replica.start()
    for replica in replicas:
        replica.wait_online(timeout=60)
    with scene.stream(messages, rate=1500) as publisher:
        publisher.wait_acknowledged(timeout=CATCH_UP_SECONDS)
        scene.wait_for_rows(len(expected) * READINGS_PER_MESSAGE)
    received = [replica.received() for replica in replicas]
    for replica in replicas:
        assert replica.terminate() == 0, replica.log_text()

    scene.assert_stored_exactly_once(expected)
    scene.assert_broker_dropped_nothing()
    assert sum(received) >= len(messages), received
    assert min(received) >= 0.2 * len(messages), f"unbalanced split: {received}"


def test_malformed_traffic_is_dead_lettered_and_valid_traffic_around_it_stored(
    scene: Scene,
) -> None:
    valid, expected = telemetry(scene.root, 2000)
    now = datetime.now(UTC)
    # Ingest subscribes to everything under the root; what lies outside it never reaches it.
    cases = [
        case
        for case in malformed_cases(scene.root, SITE, DEVICES[0], now, wall=now)
        if topic_matches_sub(f"{scene.root}/#", case.topic)
    ]
    assert len(cases) >= 10, [case.name for case in cases]
    messages: list[Message] = []
    bad: list[Message] = []
    reasons: Counter[tuple[str, str]] = Counter()
    for index, message in enumerate(valid):
        messages.append(message)
        if index % 40 == 20:
            case = cases[len(bad) % len(cases)]
            messages.append((case.topic, case.payload))
            bad.append((case.topic, case.payload))
            reasons[(case.topic, case.reason.value)] += 1
    replica = scene.started()
    with scene.stream(messages, rate=2000) as publisher:
        publisher.wait_acknowledged(timeout=CATCH_UP_SECONDS)
        scene.wait_for_rows(len(expected) * READINGS_PER_MESSAGE)
        scene.wait(
            lambda: replica.metrics().get("iotcare_ingest_dead_letters_total", 0) >= len(bad),
            f"{len(bad)} dead letters counted",
            timeout=CATCH_UP_SECONDS,
        )
    assert replica.terminate() == 0, replica.log_text()

    scene.assert_stored_exactly_once(expected)
    with scene.engine.connect() as conn:
        letters = conn.execute(
            select(DeadLetter.topic, DeadLetter.reason, DeadLetter.payload, DeadLetter.payload_size)
        ).all()
    assert Counter((topic, reason) for topic, reason, _, _ in letters) == reasons
    sizes = Counter((topic, bytes(payload), size) for topic, _, payload, size in letters)
    assert sizes == Counter((topic, payload[:16_384], len(payload)) for topic, payload in bad)
    assert {reason for _, reason in reasons} >= {
        "invalid_json",
        "schema",
        "unknown_metric",
        "out_of_range",
        "future_timestamp",
        "bad_timestamp",
        "oversized",
        "unknown_event",
        "unknown_topic",
    }


@pytest.mark.postgres
@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux socket options")
def test_database_connections_give_up_on_a_silent_host(tmp_path: Path) -> None:
    # A host that vanishes without a reset answers nothing, not even a refusal; with the kernel
    # defaults a write then blocks ingest's flusher for 15 min to 2 h. Measured in a network
    # namespace with its loopback downed mid-write: blocked > 60 s before, fails in 20-30 s now.
    require(TEST_DATABASE_URL is not None, "PostgreSQL", "IOTCARE_TEST_DATABASE_URL")
    assert TEST_DATABASE_URL is not None
    engine = make_engine(make_test_settings(tmp_path, database_url=TEST_DATABASE_URL))
    try:
        with engine.connect() as conn:
            fd = conn.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
            with socket.socket(fileno=os.dup(fd)) as sock:
                options = {
                    "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    "interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    "count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                    "user_timeout_ms": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
                }
    finally:
        engine.dispose()
    assert options == {
        "keepalive": 1,
        "idle": 10,
        "interval": 5,
        "count": 3,
        "user_timeout_ms": 20_000,
    }
