"""The broker's TLS listener as shipped, on a Mosquitto of the test's own.

The listener block of deploy/mosquitto/mosquitto-auth.conf (the production config) runs on a free
port with a throwaway CA and server certificate made here. Ingest's client and the platform's
command sender connect over mqtts:// when given the CA (IOTCARE_MQTT_TLS_CA_FILE), and a message
crosses from one to the other; a client trusting only the system's store, or another CA, is
refused; plain MQTT on the TLS port gets no CONNACK.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.mqtt_sender import MqttSender
from ingest.client import BrokerAddress, ClientConfig, IngestClient
from ingest.metrics import IngestMetrics
from tests.support.mosquitto import (
    SHIPPED_CONFIG,
    PrivateMosquitto,
    find_mosquitto,
    mqtt_handshake,
    shipped_tls_listener,
)
from tests.support.tcp_proxy import free_port

PRODUCTION_CONFIG = SHIPPED_CONFIG.with_name("mosquitto-auth.conf")
WAIT = 10.0

pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto not installed")


@dataclass(frozen=True)
class Authority:
    """A CA's key and certificate, and where its certificate is written."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    path: Path


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(directory: Path, name: str) -> Authority:
    """A self-signed CA certificate valid for a day, written to directory/<name>.crt."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{name}.crt"
    path.write_bytes(_pem(cert))
    return Authority(key, cert, path)


def write_server_files(certs: Path, ca: Authority, host: str) -> None:
    """ca.crt, server.crt and server.key (the names the shipped config reads) for `host`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    certs.mkdir(parents=True, exist_ok=True)
    (certs / "ca.crt").write_bytes(_pem(ca.cert))
    (certs / "server.crt").write_bytes(_pem(cert))
    (certs / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (certs / "server.key").chmod(0o600)


@dataclass(frozen=True)
class TlsBroker:
    """A running broker with the shipped TLS listener, and the CAs to trust or not."""

    broker: PrivateMosquitto
    tls_port: int
    ca: Authority
    other_ca: Authority

    @property
    def url(self) -> str:
        """mqtts:// URL of the TLS listener."""
        return f"mqtts://{self.broker.host}:{self.tls_port}"


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    directory = tmp_path_factory.mktemp("broker-tls")
    ca = make_ca(directory, "iotcare-test-ca")
    other_ca = make_ca(directory, "someone-else-ca")
    certs = directory / "certs"
    write_server_files(certs, ca, "127.0.0.1")
    tls_port = free_port("127.0.0.1")
    broker = PrivateMosquitto(
        extra_config=shipped_tls_listener(certs, tls_port, path=PRODUCTION_CONFIG)
    )
    with broker:
        yield TlsBroker(broker, tls_port, ca, other_ca)


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
        tls_ca_file=str(tls_broker.ca.path),
    )
    assert config.address.tls
    client = IngestClient(config, on_message, IngestMetrics())
    client.start()
    try:
        assert client.connected.wait(WAIT), (client.state, tls_broker.broker.log_text())
        sender = MqttSender(
            tls_broker.url, "tls-test", timeout=WAIT, tls_ca_file=tls_broker.ca.path
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
    ca_file = None if trust == "system store" else tls_broker.other_ca.path
    sender = MqttSender(tls_broker.url, "tls-test", timeout=WAIT, tls_ca_file=ca_file)
    with pytest.raises(ssl.SSLCertVerificationError):
        sender.send("care/tls-test/refused", b"x")


def test_plain_mqtt_gets_no_answer_on_the_tls_port(tls_broker: TlsBroker) -> None:
    assert mqtt_handshake(tls_broker.broker.host, tls_broker.broker.port)
    assert not mqtt_handshake(tls_broker.broker.host, tls_broker.tls_port)
