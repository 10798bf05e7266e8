"""The embedded demo broker (amqtt) carries QoS1 and retained messages; MQTT 5 and $share not."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from ingest.broker import EmbeddedBroker

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """An embedded broker on a free port, stopped after the test."""
    with EmbeddedBroker("127.0.0.1", 0) as running:
        yield running


class Client:
    """A connected paho client (MQTT 3.1.1) that records what it receives."""

    def __init__(self, broker: EmbeddedBroker, prefix: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.arrived = threading.Event()
        self._subscribed = threading.Event()
        self.paho = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-{uuid.uuid4().hex[:8]}"
        )
        self.paho.on_message = self._on_message
        self.paho.on_subscribe = lambda *_args: self._subscribed.set()
        self.paho.connect(broker.host, broker.port, keepalive=30)
        self.paho.loop_start()

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        self.messages.append(message)
        self.arrived.set()

    def subscribe(self, topic: str) -> None:
        self._subscribed.clear()
        self.paho.subscribe(topic, qos=1)
        assert self._subscribed.wait(10), "no SUBACK"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.messages)

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def test_qos1_message_between_two_clients(broker: EmbeddedBroker) -> None:
    topic = f"care/v1/demo/dev-{uuid.uuid4().hex[:6]}/telemetry"
    subscriber = Client(broker, "sub")
    publisher = Client(broker, "pub")
    try:
        subscriber.subscribe("care/v1/+/+/telemetry")
        info = publisher.paho.publish(topic, b'{"ts": 0, "readings": {"motion": true}}', qos=1)
        info.wait_for_publish(10)
        assert info.is_published()  # PUBACK from the broker

        [message] = subscriber.wait_for(1)
        assert message.topic == topic
        assert message.payload == b'{"ts": 0, "readings": {"motion": true}}'
        assert message.qos == 1
    finally:
        publisher.close()
        subscriber.close()


def test_retained_message_reaches_a_later_subscriber(broker: EmbeddedBroker) -> None:
    topic = f"care/v1/demo/dev-{uuid.uuid4().hex[:6]}/status"
    publisher = Client(broker, "dev")
    try:
        publisher.paho.publish(topic, b'{"state": "online"}', qos=1, retain=True).wait_for_publish(
            10
        )
    finally:
        publisher.close()

    subscriber = Client(broker, "late")
    try:
        subscriber.subscribe("care/v1/demo/+/status")
        [message] = subscriber.wait_for(1)
        assert message.topic == topic
        assert message.payload == b'{"state": "online"}'
        assert message.retain
    finally:
        subscriber.close()


def test_mqtt5_is_refused(broker: EmbeddedBroker) -> None:
    result: list[mqtt.ReasonCode] = []
    done = threading.Event()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="v5-client", protocol=mqtt.MQTTv5
    )

    def on_connect(_c, _u, _flags, reason_code, _props) -> None:
        result.append(reason_code)
        done.set()

    def on_disconnect(*_args) -> None:
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        done.wait(5)
        assert not client.is_connected()
        assert all(code.is_failure for code in result)
    finally:
        client.disconnect()
        client.loop_stop()


def test_shared_subscriptions_are_not_supported(broker: EmbeddedBroker) -> None:
    # `$share/...` is taken literally by amqtt: the subscription matches nothing.
    shared = Client(broker, "shared")
    plain = Client(broker, "plain")
    publisher = Client(broker, "pub")
    try:
        shared.subscribe("$share/ingest/care/v1/+/+/telemetry")
        plain.subscribe("care/v1/+/+/telemetry")
        publisher.paho.publish("care/v1/demo/dev-1/telemetry", b"{}", qos=1).wait_for_publish(10)
        assert len(plain.wait_for(1)) == 1
        time.sleep(0.3)
        assert shared.messages == []
    finally:
        for client in (publisher, plain, shared):
            client.close()


def test_stop_frees_the_port() -> None:
    first = EmbeddedBroker("127.0.0.1", 0).start()
    port = first.port
    first.stop()
    assert not first.running
    with EmbeddedBroker("127.0.0.1", port) as second:
        assert second.port == port
