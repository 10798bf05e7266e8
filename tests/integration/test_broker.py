"""The configured test broker carries QoS1 messages (the ground the ingest tests stand on)."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt

from core.mqtt_url import parse_broker_url


def connect(url: str, client_id: str) -> mqtt.Client:
    address = parse_broker_url(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if address.username:
        client.username_pw_set(address.username, address.password)
    client.connect(address.host, address.port, keepalive=30)
    return client


def test_qos1_round_trip(mqtt_url: str) -> None:
    topic = f"iotcare-test/{uuid.uuid4().hex}/telemetry"
    received: list[bytes] = []
    subscribed = threading.Event()
    got = threading.Event()

    sub = connect(mqtt_url, f"sub-{uuid.uuid4().hex[:8]}")
    sub.on_subscribe = lambda *args: subscribed.set()

    def on_message(_client, _userdata, message) -> None:
        received.append(message.payload)
        got.set()

    sub.on_message = on_message
    sub.loop_start()
    sub.subscribe(topic, qos=1)
    assert subscribed.wait(10)

    pub = connect(mqtt_url, f"pub-{uuid.uuid4().hex[:8]}")
    pub.loop_start()
    pub.publish(topic, b'{"ts": 0}', qos=1).wait_for_publish(10)
    assert got.wait(10)
    assert received == [b'{"ts": 0}']
    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()
