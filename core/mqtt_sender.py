"""A short-lived MQTT publisher for processes that are not ingest (flows, the app): commands."""

from __future__ import annotations

import threading
import uuid
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

from core.errors import ConfigError


class MqttSender:
    """Connects, publishes at QoS 1, waits for the broker's acknowledgement, disconnects."""

    def __init__(
        self, url: str, client_prefix: str = "iotcare-sender", timeout: float = 10.0
    ) -> None:
        parts = urlsplit(url)
        if not parts.hostname:
            raise ConfigError("Invalid setting IOTCARE_MQTT_URL: no host")
        self.host = parts.hostname
        self.tls = parts.scheme in ("mqtts", "ssl")
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.client_prefix = client_prefix
        self.timeout = timeout
        self._lock = threading.Lock()

    def send(self, topic: str, payload: bytes) -> None:
        """Publish one message and return once the broker has it; raise on any failure."""
        with self._lock:
            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2,
                client_id=f"{self.client_prefix}-{uuid.uuid4().hex[:12]}",
            )
            if self.username:
                client.username_pw_set(self.username, self.password)
            if self.tls:
                client.tls_set()
            client.connect(self.host, self.port, keepalive=30)
            client.loop_start()
            try:
                info = client.publish(topic, payload, qos=1)
                info.wait_for_publish(self.timeout)
                if not info.is_published():
                    raise TimeoutError(f"broker did not acknowledge {topic} in {self.timeout} s")
            finally:
                client.disconnect()
                client.loop_stop()
