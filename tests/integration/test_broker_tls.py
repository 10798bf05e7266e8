"""The broker's TLS listener as shipped, on a Mosquitto of the test's own.

The listener block of deploy/mosquitto/mosquitto-auth.conf (the production config) runs on a free
port with the development CA and server certificate `iotcare broker certs` writes (the files
every compose profile's broker needs). Ingest's client and the platform's command sender connect
over mqtts:// when given that CA (IOTCARE_MQTT_TLS_CA_FILE), and a message crosses from one to
the other; a client trusting only the system's store, or another CA, is refused; plain MQTT on
the TLS port gets no CONNACK.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from typer.testing import CliRunner

from cli import broker as broker_cli
from cli import context
from core.broker_certs import make_ca, pem
from core.mqtt_sender import MqttSender
from devkit.mosquitto import (
    SHIPPED_CONFIG,
    PrivateMosquitto,
    find_mosquitto,
    mqtt_handshake,
    shipped_tls_listener,
)
from devkit.tcp_proxy import free_port
from ingest.client import BrokerAddress, ClientConfig, IngestClient
from ingest.metrics import IngestMetrics

PRODUCTION_CONFIG = SHIPPED_CONFIG.with_name("mosquitto-auth.conf")
WAIT = 10.0

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto not installed")


def broker_certs_command(*args: str):
    """`iotcare broker certs ARGS` in this process (its output and exit code)."""
    context.reset()
    try:
        return CliRunner().invoke(broker_cli.app, ["certs", *args])
    finally:
        context.reset()
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "_iotcare", False):  # bound to CliRunner's closed streams
                logging.getLogger().removeHandler(handler)


@dataclass(frozen=True)
class TlsBroker:
    """A running broker with the shipped TLS listener, and the CAs to trust or not."""

    broker: PrivateMosquitto
    tls_port: int
    certs: Path
    other_ca: Path

    @property
    def url(self) -> str:
        """mqtts:// URL of the TLS listener."""
        return f"mqtts://{self.broker.host}:{self.tls_port}"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    directory = tmp_path_factory.mktemp("broker-tls")
    certs = directory / "certs"
    made = broker_certs_command("--out", str(certs), "--host", "broker.test")
    assert made.exit_code == 0, made.output
    other_ca = directory / "someone-else-ca.crt"
    other_ca.write_bytes(pem(make_ca("someone-else-ca").cert))
    tls_port = free_port("127.0.0.1")
    broker = PrivateMosquitto(
        extra_config=shipped_tls_listener(certs, tls_port, path=PRODUCTION_CONFIG)
    )
    with broker:
        yield TlsBroker(broker, tls_port, certs, other_ca)


def test_the_shipped_tls_listener_is_what_the_test_broker_runs(tls_broker: TlsBroker) -> None:
    config = tls_broker.broker.config_path.read_text()
    assert f"listener {tls_broker.tls_port} 127.0.0.1" in config
    assert "require_certificate false" in config
    assert "tls_version tlsv1.2" in config


def test_ingest_client_and_command_sender_talk_over_tls_with_the_ca(
    tls_broker: TlsBroker,
) -> None:
    received: list[tuple[str, bytes]] = []
    arrived = threading.Event()

    def on_message(topic: str, payload: bytes, _delivery: object) -> None:
        received.append((topic, payload))
        arrived.set()

    config = ClientConfig(
        address=BrokerAddress.from_url(tls_broker.url),
        client_id=f"ingest-tls-{uuid.uuid4().hex[:8]}",
        topic_root="care",
        mqtt5=False,
        tls_ca_file=str(tls_broker.certs / "ca.crt"),
    )
    assert config.address.tls
    client = IngestClient(config, on_message, IngestMetrics())
    client.start()
    try:
        assert client.connected.wait(WAIT), (client.state, tls_broker.broker.log_text())
        sender = MqttSender(
            tls_broker.url, "tls-test", timeout=WAIT, tls_ca_file=tls_broker.certs / "ca.crt"
        )
        topic = f"care/tls-test/{uuid.uuid4().hex[:8]}"
        # The subscription follows the CONNACK: send until ingest has one, never sleep blindly.
        deadline = time.monotonic() + WAIT
        while not arrived.is_set() and time.monotonic() < deadline:
            sender.send(topic, b"over tls")
            arrived.wait(0.2)
        assert (topic, b"over tls") in received, tls_broker.broker.log_text()
    finally:
        client.stop()
    log = tls_broker.broker.log_text()
    assert f"on port {tls_broker.tls_port}" in log


@pytest.mark.parametrize("trust", ["system store", "another CA"])
def test_a_client_without_the_ca_is_refused(tls_broker: TlsBroker, trust: str) -> None:
    ca_file = None if trust == "system store" else tls_broker.other_ca
    sender = MqttSender(tls_broker.url, "tls-test", timeout=WAIT, tls_ca_file=ca_file)
    with pytest.raises(ssl.SSLCertVerificationError):
        sender.send("care/tls-test/refused", b"x")


def test_plain_mqtt_gets_no_answer_on_the_tls_port(tls_broker: TlsBroker) -> None:
    assert mqtt_handshake(tls_broker.broker.host, tls_broker.broker.port)
    assert not mqtt_handshake(tls_broker.broker.host, tls_broker.tls_port)


def test_the_generated_files_name_the_development_hosts_and_the_broker_reads_the_key(
    tls_broker: TlsBroker,
) -> None:
    cert = x509.load_pem_x509_certificate((tls_broker.certs / "server.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"broker.test", "localhost", "mosquitto"}
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    ca = x509.load_pem_x509_certificate((tls_broker.certs / "ca.crt").read_bytes())
    assert cert.issuer == ca.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    mode = stat.S_IMODE((tls_broker.certs / "server.key").stat().st_mode)
    assert mode & (stat.S_IWGRP | stat.S_IWOTH) == 0 and mode & stat.S_IRGRP
    assert not (tls_broker.certs / "ca.key").exists()  # the CA signs once and is forgotten


def test_certs_refuses_to_replace_files_without_force(tmp_path: Path) -> None:
    first = broker_certs_command("--out", str(tmp_path))
    assert first.exit_code == 0, first.output
    assert "mqtts://HOST:8883" in first.output
    before = (tmp_path / "ca.crt").read_bytes()
    again = broker_certs_command("--out", str(tmp_path))
    assert again.exit_code != 0
    assert isinstance(again.exception, Exception) and "--force" in str(
        again.exception.localized("en")  # type: ignore[attr-defined]
    )
    assert (tmp_path / "ca.crt").read_bytes() == before
    forced = broker_certs_command("--out", str(tmp_path), "--force")
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "ca.crt").read_bytes() != before
