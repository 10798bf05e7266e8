"""The harnesses durability tests stand on: private Mosquitto, TCP proxy, private PostgreSQL.

If these do not behave like the real thing (sessions survive a broker restart, limits drop
messages, a cut proxy looks like a dead database), the ingest tests built on them prove nothing.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt
import psycopg2
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.engine import make_url

from devkit.mosquitto import PrivateMosquitto
from devkit.tcp_proxy import ProxiedDatabase
from tests.support.postgres_instance import PrivatePostgres

pytestmark = pytest.mark.timeout(60)

MakeBroker = Callable[..., PrivateMosquitto]


class Subscriber:
    """A paho subscriber with a persistent session that records what it receives."""

    def __init__(
        self, broker: PrivateMosquitto, client_id: str, *, v5: bool, manual_ack: bool = False
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.v5 = v5
        self.manual_ack = manual_ack
        self.payloads: list[bytes] = []
        self.session_present: bool | None = None
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._client: mqtt.Client | None = None

    def connect(self) -> None:
        if self.v5:
            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=self.manual_ack,
            )
        else:
            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                clean_session=False,
                manual_ack=self.manual_ack,
            )
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_args: self._subscribed.set()
        client.on_message = lambda _c, _u, message: self.payloads.append(message.payload)
        self._connected.clear()
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
            client.connect(
                self.broker.host, self.broker.port, clean_start=False, properties=properties
            )
        else:
            client.connect(self.broker.host, self.broker.port)
        client.loop_start()
        self._client = client
        assert self._connected.wait(10), "subscriber did not connect"

    def _on_connect(self, _client, _userdata, flags, reason_code, _properties) -> None:
        assert not reason_code.is_failure, reason_code
        self.session_present = flags.session_present
        self._connected.set()

    def subscribe(self, topic: str) -> None:
        assert self._client is not None
        self._subscribed.clear()
        self._client.subscribe(topic, qos=1)
        assert self._subscribed.wait(10), "no SUBACK"

    def disconnect(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.payloads) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.payloads)

    def settle(self, quiet: float = 0.5, timeout: float = 10.0) -> list[bytes]:
        """Wait until nothing new has arrived for `quiet` seconds."""
        deadline = time.monotonic() + timeout
        seen = -1
        while len(self.payloads) != seen and time.monotonic() < deadline:
            seen = len(self.payloads)
            time.sleep(quiet)
        return list(self.payloads)


def publish(broker: PrivateMosquitto, topic: str, payloads: list[bytes]) -> None:
    """Publish every payload at QoS1 and wait until the broker has acknowledged each."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for info in [client.publish(topic, payload, qos=1) for payload in payloads]:
            info.wait_for_publish(10)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def offline_subscriber(broker: PrivateMosquitto, topic: str, *, v5: bool = False) -> Subscriber:
    """A subscriber that subscribed with a persistent session and then went away."""
    subscriber = Subscriber(broker, f"ingest-{uuid.uuid4().hex[:8]}", v5=v5)
    subscriber.connect()
    subscriber.subscribe(topic)
    subscriber.disconnect()
    return subscriber


def topic() -> str:
    return f"care/v1/site-{uuid.uuid4().hex[:6]}/dev-1/telemetry"


# --- private Mosquitto


@pytest.mark.parametrize("v5", [False, True], ids=["mqtt311-clean-session-false", "mqtt5-expiry"])
def test_queued_messages_survive_an_orderly_broker_restart(
    private_mosquitto: MakeBroker, v5: bool
) -> None:
    broker = private_mosquitto()
    name = topic()
    subscriber = offline_subscriber(broker, name, v5=v5)
    sent = [f'{{"seq": {i}}}'.encode() for i in range(5)]
    publish(broker, name, sent)

    broker.restart()
    subscriber.connect()  # no new SUBSCRIBE: the session must bring the subscription back

    try:
        assert subscriber.session_present is True
        assert subscriber.wait_for(len(sent)) == sent, broker.log_text()
    finally:
        subscriber.disconnect()


def test_a_kill_keeps_what_was_saved(private_mosquitto: MakeBroker) -> None:
    broker = private_mosquitto()
    name = topic()
    subscriber = offline_subscriber(broker, name)
    publish(broker, name, [b"saved"])
    broker.save()

    broker.kill()
    broker.start()
    subscriber.connect()

    try:
        assert subscriber.wait_for(1) == [b"saved"], broker.log_text()
    finally:
        subscriber.disconnect()


def test_max_queued_messages_drops_the_rest_for_an_offline_subscriber(
    private_mosquitto: MakeBroker,
) -> None:
    broker = private_mosquitto(max_queued_messages=10)
    assert "max_queued_messages 10\n" in broker.config_path.read_text()
    name = topic()
    subscriber = offline_subscriber(broker, name)
    sent = [str(i).encode() for i in range(50)]
    publish(broker, name, sent)

    subscriber.connect()
    try:
        received = subscriber.settle()
    finally:
        subscriber.disconnect()

    assert received == sent[:10]
    assert "Outgoing messages are being dropped" in broker.log_text()


def test_a_large_queue_limit_keeps_every_message(private_mosquitto: MakeBroker) -> None:
    broker = private_mosquitto(max_queued_messages=100_000, max_inflight_messages=1000)
    name = topic()
    subscriber = offline_subscriber(broker, name)
    sent = [str(i).encode() for i in range(2000)]
    publish(broker, name, sent)

    subscriber.connect()
    try:
        received = subscriber.wait_for(len(sent))
    finally:
        subscriber.disconnect()

    assert received == sent
    assert "dropped" not in broker.log_text()


def test_max_inflight_messages_bounds_unacknowledged_deliveries(
    private_mosquitto: MakeBroker,
) -> None:
    broker = private_mosquitto(max_inflight_messages=5)
    name = topic()
    subscriber = Subscriber(broker, f"ingest-{uuid.uuid4().hex[:8]}", v5=False, manual_ack=True)
    subscriber.connect()
    subscriber.subscribe(name)
    try:
        publish(broker, name, [str(i).encode() for i in range(30)])
        # Never acknowledged, so the broker stops after its in-flight window.
        assert len(subscriber.settle()) == 5
    finally:
        subscriber.disconnect()


def test_the_broker_is_gone_after_close(private_mosquitto: MakeBroker) -> None:
    broker = private_mosquitto()
    pid = broker.pid
    assert pid is not None
    broker.close()
    assert not broker.running
    assert not broker.directory.exists()


# --- TCP proxy in front of the system PostgreSQL


def _connect(url: str) -> psycopg2.extensions.connection:
    parts = make_url(url)
    return psycopg2.connect(
        host=parts.host,
        port=parts.port,
        user=parts.username,
        password=parts.password,
        dbname=parts.database,
        connect_timeout=3,
    )


def _select_one(url: str) -> int:
    connection = _connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


def test_the_proxy_cuts_and_restores_a_database(postgres_proxy: ProxiedDatabase) -> None:
    proxy = postgres_proxy.proxy
    connection = _connect(postgres_proxy.url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        assert proxy.active_connections == 1

        proxy.cut()

        with (
            pytest.raises((psycopg2.OperationalError, psycopg2.InterfaceError)),
            connection.cursor() as cursor,
        ):
            cursor.execute("SELECT 1")
        with pytest.raises(psycopg2.OperationalError):
            _select_one(postgres_proxy.url)
    finally:
        connection.close()

    proxy.restore()
    assert _select_one(postgres_proxy.url) == 1


def test_a_cut_fails_a_statement_waiting_for_its_answer(postgres_proxy: ProxiedDatabase) -> None:
    # A cut that left such a statement waiting (the proxy's reader threads once kept the sockets
    # open) would make a test of ingest hang instead of seeing the database go away.
    connection = _connect(postgres_proxy.url)
    marker = f"cut-{uuid.uuid4().hex[:8]}"
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_sleep(5) /* {marker} */")
        except psycopg2.Error as error:
            outcome["error"] = error

    def running() -> bool:
        with _connect(postgres_proxy.url) as probe, probe.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s",
                (f"%{marker}%",),
            )
            found = bool(cursor.fetchone()[0])
        probe.close()
        return found

    thread = threading.Thread(target=run, daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + 5
        while not running():
            assert time.monotonic() < deadline, "the statement never started"
            time.sleep(0.02)
        postgres_proxy.proxy.cut()
        thread.join(3)
        assert not thread.is_alive(), "the statement still waits for an answer after the cut"
        assert isinstance(outcome.get("error"), psycopg2.OperationalError), outcome
    finally:
        if not thread.is_alive():  # close() would wait on the stuck statement forever
            connection.close()


# --- private PostgreSQL


def test_a_private_postgres_serves_stops_and_recovers_from_a_kill(
    private_postgres: PrivatePostgres,
) -> None:
    assert _select_one(private_postgres.url) == 1

    private_postgres.kill()
    assert not private_postgres.running
    with pytest.raises(psycopg2.OperationalError):
        _select_one(private_postgres.url)

    private_postgres.start()  # crash recovery
    assert _select_one(private_postgres.url) == 1

    private_postgres.stop()
    assert not private_postgres.running
    with pytest.raises(psycopg2.OperationalError):
        _select_one(private_postgres.url)
