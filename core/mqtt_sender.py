"""A short-lived MQTT publisher for processes that are not ingest (flows, the app): commands."""

from __future__ import annotations

import ssl
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt

from core.errors import ConfigError
from core.mqtt_url import BrokerAddress

if TYPE_CHECKING:
    from core.settings import Settings


class MqttSender:
    """Connects, publishes at QoS 1, waits for the broker's acknowledgement, disconnects."""

    def __init__(
        self,
        url: str,
        client_prefix: str = "iotcare-sender",
        timeout: float = 10.0,
        *,
        tls_ca_file: Path | str | None = None,
        tls_insecure: bool = False,
    ) -> None:
        address = BrokerAddress.from_url(url)
        self.host = address.host
        self.tls = address.tls
        self.port = address.port
        self.username = address.username
        self.password = address.password
        self.client_prefix = client_prefix
        self.timeout = timeout
        # mqtts://: the broker's certificate is checked against this CA bundle (None: the
        # system's trust store), and its name against the host unless tls_insecure.
        self.tls_ca_file = str(tls_ca_file) if tls_ca_file else None
        self.tls_insecure = tls_insecure
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings, client_prefix: str, timeout: float = 10.0
    ) -> MqttSender:
        """A sender for IOTCARE_MQTT_URL with the IOTCARE_MQTT_TLS_* settings."""
        if not settings.mqtt_url:
            raise ConfigError("IOTCARE_MQTT_URL is not set")
        return cls(
            settings.mqtt_url,
            client_prefix,
            timeout,
            tls_ca_file=settings.mqtt_tls_ca_file,
            tls_insecure=settings.mqtt_tls_insecure,
        )

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
                client.tls_set(ca_certs=self.tls_ca_file, cert_reqs=ssl.CERT_REQUIRED)
                client.tls_insecure_set(self.tls_insecure)
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
