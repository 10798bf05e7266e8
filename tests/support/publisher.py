"""A real MQTT publisher for tests: QoS1, waits until the broker has every message."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt


def connect(url: str, client_id: str | None = None) -> mqtt.Client:
    """A started paho client (VERSION2 callbacks) connected to `url`."""
    parts = urlsplit(url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"test-pub-{uuid.uuid4().hex[:10]}"
    )
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=30)
    client.loop_start()
    return client


def publish_all(
    url: str,
    messages: Iterable[tuple[str, bytes]],
    qos: int = 1,
    retain: bool = False,
    timeout: float = 60.0,
) -> int:
    """Publish every (topic, payload) and wait for the broker's acknowledgements."""
    client = connect(url)
    try:
        infos = [
            client.publish(topic, payload, qos=qos, retain=retain) for topic, payload in messages
        ]
        for info in infos:
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise AssertionError(f"message {info.mid} was not acknowledged by the broker")
        return len(infos)
    finally:
        client.disconnect()
        client.loop_stop()


def wait_for_retained(url: str, topic: str, expected: bytes, timeout: float = 20.0) -> None:
    """Block until the retained message on `topic` equals `expected` (e.g. a replica online)."""
    import threading

    seen = threading.Event()
    client = connect(url)

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.payload == expected:
            seen.set()

    client.on_message = on_message
    client.subscribe(topic, qos=1)
    try:
        if not seen.wait(timeout):
            raise AssertionError(f"no {expected!r} on {topic} within {timeout:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
