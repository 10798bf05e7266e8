"""A development CA and broker certificate for Mosquitto's TLS listener (port 8883).

`iotcare broker certs` writes the three files deploy/mosquitto/mosquitto-auth.conf reads
(ca.crt, server.crt, server.key) so that every compose profile, the local one included, can start
its broker without a public certificate. The CA's key is never written: the CA signs one server
certificate and is forgotten, so nothing on disk can issue more; run the command again (with
--force) for a new pair, and give devices the new ca.crt. Production uses a real certificate
(deploy/README.md, "Broker TLS").
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)

# The names the broker is reached by on a development machine: the host itself, and the compose
# service name (for platform containers that use mqtts://mosquitto:8883).
DEFAULT_HOSTS = ("localhost", "mosquitto", "127.0.0.1", "::1")
# The group of the broker's user in the eclipse-mosquitto image (uid and gid 1883).
BROKER_GID = 1883
FILES = ("ca.crt", "server.crt", "server.key")
# A little before now, so that a device whose clock runs slightly behind accepts the certificate.
_BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class Authority:
    """A CA's key and self-signed certificate (kept in memory only)."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class WrittenCerts:
    """Where the files went, the names the certificate is valid for, and who may read the key."""

    directory: Path
    hosts: tuple[str, ...]
    not_after: datetime
    key_group: int | None  # the key's group when it could be set to the broker's, else None


def pem(cert: x509.Certificate) -> bytes:
    """The certificate in PEM, as Mosquitto and devices read it."""
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(name: str, days: int = 3650) -> Authority:
    """A self-signed CA (ECDSA P-256) that may sign server certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
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
    return Authority(key, cert)


def _name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def server_certificate(
    ca: Authority, hosts: tuple[str, ...], days: int = 825
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server key and certificate signed by `ca`, valid for each of `hosts` (names or IPs)."""
    if not hosts:
        raise ValueError("a server certificate needs at least one host name")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([_name(h) for h in hosts]),
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
    return key, cert


def existing_files(directory: Path) -> list[Path]:
    """The broker files already in `directory` (which a new pair would replace)."""
    return [directory / name for name in FILES if (directory / name).exists()]


def _share_key_with_broker(path: Path, gid: int) -> int | None:
    """Make the key readable by the broker's group (0640); None when the group cannot be set."""
    try:
        os.chown(path, -1, gid)
    except (PermissionError, OSError) as error:
        log.info("cannot give %s the broker's group %s: %s", path, gid, error)
        return None
    path.chmod(0o640)
    return gid


def write_dev_certs(
    directory: Path,
    hosts: tuple[str, ...] = DEFAULT_HOSTS,
    *,
    days: int = 825,
    ca_name: str = "IoT Care development CA",
    broker_gid: int = BROKER_GID,
) -> WrittenCerts:
    """Write ca.crt, server.crt and server.key (a fresh CA and server pair) into `directory`.

    The key is 0640 with the broker's group when this user may set it; otherwise it is left 0644
    so that the broker container (another user) can read it, which is why this is for development
    only. Replaces existing files: the caller asks before (existing_files).
    """
    unique = tuple(dict.fromkeys(h.strip() for h in hosts if h.strip()))
    ca = make_ca(ca_name)
    key, cert = server_certificate(ca, unique, days)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(pem(ca.cert))
    (directory / "server.crt").write_bytes(pem(cert))
    key_path = directory / "server.key"
    # Created private (no window in which others could read it), widened below only if needed.
    key_path.unlink(missing_ok=True)
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    group = _share_key_with_broker(key_path, broker_gid)
    if group is None:
        key_path.chmod(0o644)
    log.info("wrote a development CA and broker certificate for %s to %s", unique, directory)
    return WrittenCerts(directory, unique, cert.not_valid_after_utc, group)
