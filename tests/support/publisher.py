"""A real MQTT publisher for tests: QoS1, waits until the broker has every message."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from types import TracebackType

import paho.mqtt.client as mqtt

from core.mqtt_url import parse_broker_url


def connect(url: str, client_id: str | None = None) -> mqtt.Client:
    """A started paho client (VERSION2 callbacks) connected to `url`."""
    address = parse_broker_url(url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"test-pub-{uuid.uuid4().hex[:10]}"
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(address.host, address.port, keepalive=30)
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


class StreamPublisher:
    """Publishes (topic, payload) pairs at QoS1 from a thread, at a steady rate, like a fleet.

    It survives broker restarts: the session is persistent and paho re-sends every publish the
    broker has not acknowledged once it is connected again (the loop thread reconnects).
    """

    def __init__(
        self,
        url: str,
        messages: Sequence[tuple[str, bytes]],
        *,
        rate: float = 1000.0,
        client_id: str | None = None,
        inflight: int = 100,
    ) -> None:
        """Configure (but do not start) a stream of `messages` at `rate` messages a second."""
        if len(messages) >= 65535:
            raise ValueError("at most 65,534 messages: acknowledgements are matched by message id")
        self.url = url
        self.messages = list(messages)
        self.rate = rate
        self.client_id = client_id or f"test-stream-{uuid.uuid4().hex[:10]}"
        self.inflight = inflight
        self._mids: list[int] = []
        self._acked: set[int] = set()
        self.disconnects: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._client: mqtt.Client | None = None

    def start(self) -> StreamPublisher:
        """Connect, then publish in a background thread (once: starting again does nothing)."""
        if self._client is not None:
            return self
        address = parse_broker_url(self.url)
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False
        )
        if address.username:
            client.username_pw_set(address.username, address.password)
        client.max_inflight_messages_set(self.inflight)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
        # PUBACKs by message id: a publish made while disconnected keeps its NO_CONN result code
        # on its MQTTMessageInfo even once re-sent and acknowledged, so that cannot be asked.
        client.on_publish = lambda _c, _u, mid, _rc, _p: self._acked.add(mid)
        client.on_disconnect = lambda _c, _u, _f, rc, _p: self.disconnects.append(str(rc))
        client.connect(address.host, address.port, keepalive=10)
        client.loop_start()
        self._client = client
        self._thread = threading.Thread(target=self._run, name="stream-publisher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._client is not None
        started = time.monotonic()
        try:
            for index, (topic, payload) in enumerate(self.messages):
                ahead = started + index / self.rate - time.monotonic()
                if ahead > 0.002 and self._stop.wait(ahead):
                    return
                if self._stop.is_set():
                    return
                # Queued by paho even while disconnected; sent or re-sent once connected.
                self._mids.append(self._client.publish(topic, payload, qos=1).mid)
        except BaseException as error:  # surfaced by wait_acknowledged
            self._error = error

    @property
    def sent(self) -> int:
        """Messages handed to paho so far."""
        return len(self._mids)

    def acknowledged(self) -> int:
        """Messages the broker has acknowledged (PUBACK) so far."""
        return len(self._acked.intersection(self._mids))

    def wait_sent(self, count: int, timeout: float = 60.0) -> None:
        """Block until at least `count` messages were handed to paho."""
        deadline = time.monotonic() + timeout
        while self.sent < count:
            if self._error is not None:
                raise AssertionError(f"publisher failed: {self._error!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.sent} of {count} messages sent in {timeout} s")
            time.sleep(0.01)

    def wait_acknowledged(self, timeout: float = 60.0) -> None:
        """Block until every message was sent and acknowledged by the broker."""
        self.wait_sent(len(self.messages), timeout)
        deadline = time.monotonic() + timeout
        while (done := self.acknowledged()) < len(self.messages):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the broker acknowledged {done} of {len(self.messages)} in {timeout} s"
                )
            time.sleep(0.05)

    def close(self) -> None:
        """Stop publishing and disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def __enter__(self) -> StreamPublisher:
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop on exit."""
        self.close()
