"""One paho-mqtt 2.x client publishing for every simulated device, QoS1, without throttling.

paho keeps at most 20 QoS1 messages in flight by default; we raise that, and bound memory with our
own window of messages published but not yet acknowledged. Over MQTT 5 the window also honours
the broker's Receive Maximum (Mosquitto announces its max_inflight_messages, 20 by default), so
MQTT 3.1.1, the simulator's default, is the fast choice against an untuned broker.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from core import mqtt_url
from core.mqtt_url import BrokerAddress
from core.settings import MqttProtocol
from simulator.errors import SimulatorError

log = logging.getLogger(__name__)

DEFAULT_INFLIGHT = 256
DEFAULT_WINDOW = 20_000


def parse_broker_url(url: str) -> BrokerAddress:
    """mqtt://[user:password@]host[:port] (1883) or mqtts:// (8883); SimulatorError otherwise."""
    try:
        return mqtt_url.parse_broker_url(url)
    except mqtt_url.BrokerUrlError:
        raise SimulatorError(
            "bad_mqtt_url",
            "The broker URL must look like mqtt://user:password@host:1883 (mqtts:// for TLS).",
            url=mqtt_url.redact(url),
        ) from None


class MqttPublisher:
    """A connected MQTT client: publish QoS1 fast, receive commands, wait for acknowledgements."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        protocol: MqttProtocol = MqttProtocol.V311,
        inflight: int = DEFAULT_INFLIGHT,
        window: int = DEFAULT_WINDOW,
        keepalive: int = 30,
        tls_ca_file: Path | None = None,
        tls_insecure: bool = False,
    ) -> None:
        self.address = parse_broker_url(url)
        self.inflight = max(1, inflight)
        self.window = max(self.inflight, window)
        self.keepalive = keepalive
        self.published = 0
        self.acknowledged = 0
        self.incoming: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.reconnected = threading.Event()
        self._subscriptions: list[str] = []
        self._connected = threading.Event()
        self._refusal: str | None = None
        self._ever_connected = False
        self._closing = False
        self._room = threading.Condition()
        self._limit, self._resume_at = self.window, self.window // 2
        self._waiting = False
        version = mqtt.MQTTv5 if protocol is MqttProtocol.V5 else mqtt.MQTTv311
        self._v5 = version == mqtt.MQTTv5
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version)
        if self.address.username:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set(
                ca_certs=str(tls_ca_file) if tls_ca_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(tls_insecure)
        client.max_inflight_messages_set(self.inflight)
        client.max_queued_messages_set(0)  # unbounded in paho; `window` bounds it instead
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self.client = client

    # --- connection

    def connect(self, timeout: float = 10.0) -> None:
        """Connect and start the network thread; SimulatorError when the broker is unusable."""
        label = self.address.label
        try:
            self.client.connect(self.address.host, self.address.port, keepalive=self.keepalive)
        except (OSError, ssl.SSLError, ValueError) as error:
            detail = _describe(error)
            raise SimulatorError(
                "broker_unreachable",
                f"Cannot reach the MQTT broker at {label}: {detail}.",
                broker=label,
                detail=detail,
            ) from None
        self.client.loop_start()
        if not self._connected.wait(timeout):
            self._abandon()
            raise SimulatorError(
                "broker_timeout",
                f"The MQTT broker at {label} did not answer within {timeout:g} s.",
                broker=label,
            )
        if self._refusal is not None:
            self._abandon()
            raise SimulatorError(
                "broker_refused",
                f"The MQTT broker at {label} refused the connection: {self._refusal}.",
                broker=label,
                detail=self._refusal,
            )

    def _abandon(self) -> None:
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self._closing = True
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> MqttPublisher:
        """Connect on entering a with block."""
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        """Close on leaving it."""
        self.close()

    # --- publishing

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Queue a QoS1 message; blocks while `window` messages await acknowledgement."""
        if self.published - self.acknowledged >= self._limit:
            self._wait_for_room(self._resume_at)
        self.published += 1
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self.published -= 1
            log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    @property
    def outstanding(self) -> int:
        """Messages published but not yet acknowledged by the broker."""
        return max(0, self.published - self.acknowledged)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the broker acknowledged everything; False if time ran out."""
        return self._wait_for_room(0, timeout)

    def _wait_for_room(self, limit: int, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._room:
            self._waiting = True
            try:
                while self.published - self.acknowledged > limit:
                    if deadline is not None and time.monotonic() >= deadline:
                        return False
                    self._room.wait(0.05)
            finally:
                self._waiting = False
        return True

    def subscribe(self, topic: str) -> None:
        """Subscribe now and after every reconnect (QoS1); messages land in `incoming`."""
        if topic not in self._subscriptions:
            self._subscriptions.append(topic)
        self.client.subscribe(topic, qos=1)

    # --- paho callbacks (network thread)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        properties: Any = None,
    ) -> None:
        if reason.is_failure:
            self._refusal = str(reason)
            self._connected.set()
            return
        # MQTT 5 brokers may cap what we have in flight (Receive Maximum); paho cannot lower its
        # own limit once connected, so our window honours the cap instead.
        receive_maximum = getattr(properties, "ReceiveMaximum", None) if self._v5 else None
        if receive_maximum and receive_maximum < self.inflight:
            log.info("the broker allows %d QoS1 messages in flight", receive_maximum)
            self._limit, self._resume_at = receive_maximum, receive_maximum - 1
        else:
            self._limit, self._resume_at = self.window, self.window // 2
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        if self._ever_connected:
            log.info("reconnected to the MQTT broker at %s", self.address.label)
            self.reconnected.set()
        self._ever_connected = True
        self._connected.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _properties: Any = None,
    ) -> None:
        if not self._closing:
            log.warning("lost the MQTT broker at %s (%s); reconnecting", self.address.label, reason)

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, _reason: Any, _properties: Any
    ) -> None:
        self.acknowledged += 1
        if self._waiting:
            with self._room:
                self._room.notify_all()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.incoming.put((message.topic, bytes(message.payload)))


def _describe(error: BaseException) -> str:
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    return str(error) or type(error).__name__
