"""Per-device MQTT credentials, and Mosquitto's password and ACL files made from the registry.

Each device gets a username (its id) and a random password, shown once. The registry keeps only
Mosquitto's own salted PBKDF2-SHA512 hash of it (the `$7$` lines `mosquitto_passwd` writes), so
both broker files can be rewritten from the registry at any time without any plaintext kept.
The platform's processes (ingest, the command senders in the app and the flows) connect with the
user and password of IOTCARE_MQTT_URL: the one service account, whose hash is written from there.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import signal
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.contract.topics import INBOUND, TopicKind, device_topic, subscription
from core.errors import ConfigError, ConflictError, IotCareError, NotFoundError
from core.mqtt_url import BrokerAddress
from core.security import generate_password
from core.settings import ENV_PREFIX, Settings
from models import Device, User, in_service

# mosquitto_passwd's defaults (Mosquitto 2.x, "sha512-pbkdf2"). Device passwords are 32 random
# letters and digits (about 190 bits), out of reach of guessing at any iteration count, so the
# broker's cheap default keeps a reconnect storm of thousands of devices cheap too.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64
DEVICE_PASSWORD_LENGTH = 32
# The shortest platform password (from IOTCARE_MQTT_URL) the files are written with.
MIN_SERVICE_PASSWORD_LENGTH = 16
# Group may read (Mosquitto runs as its own user, often in another container); others may not.
BROKER_FILE_MODE = 0o640

# Names that are safe in both files: no ':' (password file), no spaces (ACL `user` lines).
_USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
# Where an ingest replica publishes its own retained status and last will: ingest/client.py
# IngestClient.status_topic ({root}/ingest/{client_id}/status); a unit test keeps them in step.
_INGEST_STATUS_LEVEL = "ingest"


@dataclass(frozen=True, slots=True)
class Issued:
    """A device's new credentials: the password exists only here and on the operator's screen."""

    device_id: str
    site_id: str
    username: str
    password: str
    rotated: bool


@dataclass(frozen=True, slots=True)
class Account:
    """One user of the broker files: name, Mosquitto hash, and topics it may write and read."""

    username: str
    password_hash: str
    write: tuple[str, ...]
    read: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """The rendered password and ACL files."""

    passwords: str
    acl: str
    devices: int


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What `write_broker_files` did."""

    password_file: Path
    acl_file: Path
    devices: int
    reloaded: bool
    reload_error: str | None


# --- Mosquitto's password hash


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def mosquitto_hash(
    password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """Mosquitto's `$7$` hash: PBKDF2-HMAC-SHA512, `$7$<iterations>$<b64 salt>$<b64 hash>`."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_mosquitto_hash(password_hash: str, password: str) -> bool:
    """Whether the password matches a `$7$` hash, as Mosquitto checks it at CONNECT."""
    parts = password_hash.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac(
        "sha512", password.encode("utf-8"), salt, int(parts[2]), len(expected)
    )
    return hmac.compare_digest(digest, expected)


# --- issuing and revoking


def _device(session: Session, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise NotFoundError(f"No device with id '{device_id}'.")
    return device


def provision(
    session: Session, device_id: str, *, rotate: bool = False, actor: User | None = None
) -> Issued:
    """Give a registered device a username and a new random password (rotate: replace it)."""
    device = _device(session, device_id)
    if device.quarantined:
        raise ConflictError(
            f"Device '{device_id}' is quarantined: accept it into the registry before giving "
            "it broker credentials."
        )
    if device.decommissioned_at is not None:
        raise ConflictError(
            f"Device '{device_id}' is decommissioned: it gets no broker credentials.",
            key="errors.care.device_retired",
            device=device_id,
        )
    if device.credentials_hash and not rotate:
        raise ConflictError(
            f"Device '{device_id}' has broker credentials already; use --rotate to replace "
            "its password (the old one stops working once the broker files are rewritten)."
        )
    rotated = device.credentials_hash is not None
    password = generate_password(DEVICE_PASSWORD_LENGTH)
    device.mqtt_username = device.id
    device.credentials_hash = mosquitto_hash(password)
    session.flush()
    action = "device.credentials.rotate" if rotated else "device.credentials.issue"
    audit.record(session, actor, action, "device", device.id)
    return Issued(device.id, device.site_id, device.mqtt_username, password, rotated)


def revoke(session: Session, device_id: str, *, actor: User | None = None) -> bool:
    """Remove a device's broker credentials; False when it had none."""
    device = _device(session, device_id)
    if device.credentials_hash is None and device.mqtt_username is None:
        return False
    device.mqtt_username = None
    device.credentials_hash = None
    session.flush()
    audit.record(session, actor, "device.credentials.revoke", "device", device.id)
    return True


# --- the accounts and the files


def device_account(device: Device, topic_root: str) -> Account:
    """A device may write its own inbound topics and read its own commands, nothing else."""
    assert device.mqtt_username is not None and device.credentials_hash is not None
    site, device_id = device.site_id, device.id
    return Account(
        username=device.mqtt_username,
        password_hash=device.credentials_hash,
        write=tuple(device_topic(topic_root, site, device_id, kind) for kind in INBOUND),
        read=(device_topic(topic_root, site, device_id, TopicKind.CMD),),
    )


def service_account(settings: Settings) -> Account:
    """The platform's account (IOTCARE_MQTT_URL): reads all device messages, writes commands."""
    name = f"{ENV_PREFIX}MQTT_URL"
    if not settings.mqtt_url:
        raise ConfigError(
            f"{name} is not set: the broker files need the platform's own account "
            f"({name}=mqtt://USER:PASSWORD@HOST:1883)."
        )
    address = BrokerAddress.from_url(settings.mqtt_url)
    username = address.username or ""
    password = address.password or ""
    if not username or not password:
        raise ConfigError(
            f"{name} has no user and password: the platform's processes need their own broker "
            "account once anonymous clients are refused (mqtt://USER:PASSWORD@HOST:1883)."
        )
    if not _USERNAME_RE.match(username):
        raise ConfigError(
            f"The user in {name} cannot be written to Mosquitto's files: use 1-128 letters, "
            "digits, '_', '.', '@' or '-'."
        )
    if len(password) < MIN_SERVICE_PASSWORD_LENGTH:
        raise ConfigError(
            f"The password in {name} is shorter than {MIN_SERVICE_PASSWORD_LENGTH} characters: "
            "use a long random one."
        )
    root = settings.mqtt_topic_root
    return Account(
        username=username,
        password_hash=mosquitto_hash(password),
        write=(subscription(root, TopicKind.CMD), f"{root}/{_INGEST_STATUS_LEVEL}/+/status"),
        read=tuple(subscription(root, kind) for kind in INBOUND),
    )


def render_password_file(accounts: Iterable[Account]) -> str:
    """Mosquitto's password file: one `username:$7$...` line per account, hashes only."""
    return "".join(f"{account.username}:{account.password_hash}\n" for account in accounts)


def render_acl_file(accounts: Iterable[Account]) -> str:
    """Mosquitto's ACL file: a `user` block per account; no rule applies to anyone else."""
    lines = [
        "# Generated by `iotcare devices write-broker-files` from the device registry.",
        "# Do not edit: the next provisioning rewrites it.",
    ]
    for account in accounts:
        lines += ["", f"user {account.username}"]
        lines += [f"topic write {topic}" for topic in account.write]
        lines += [f"topic read {topic}" for topic in account.read]
    return "\n".join(lines) + "\n"


def credentialed_devices(session: Session) -> Sequence[Device]:
    """Devices in service that hold broker credentials, by id (a decommissioned one has none)."""
    query = (
        select(Device)
        .where(
            Device.credentials_hash.is_not(None),
            Device.mqtt_username.is_not(None),
            in_service(),
        )
        .order_by(Device.id)
    )
    return session.scalars(query).all()


def build_broker_files(session: Session, settings: Settings) -> BrokerFiles:
    """Both files for the platform account and every device with credentials."""
    service = service_account(settings)
    devices = [device_account(d, settings.mqtt_topic_root) for d in credentialed_devices(session)]
    if any(d.username == service.username for d in devices):
        raise ConflictError(
            f"A device's broker username is '{service.username}', the platform's own user in "
            f"{ENV_PREFIX}MQTT_URL: choose another user there."
        )
    accounts = [service, *devices]
    return BrokerFiles(render_password_file(accounts), render_acl_file(accounts), len(devices))


def write_atomically(path: Path, text: str, mode: int = BROKER_FILE_MODE) -> None:
    """Replace a file in one step (temp file in the same directory, fsync, rename).

    Mosquitto re-reads the file on SIGHUP at any moment: it must see the old file or the new
    one, never half of one. An existing file's group is kept, so a file made readable for
    Mosquitto's group once stays readable after every rewrite.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    group = path.stat().st_gid if path.exists() else None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        if group is not None:
            # Not in that group: the file keeps ours (docs/mqtt.md says how to set it up).
            with contextlib.suppress(PermissionError):
                os.fchown(fd, -1, group)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # Some filesystems do not sync directories; the rename is still atomic.
    finally:
        os.close(fd)


def reload_broker(pid_file: Path) -> None:
    """Tell Mosquitto to re-read its password and ACL files (SIGHUP to the pid in pid_file)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError) as error:
        raise IotCareError(f"cannot read a process id from {pid_file}: {error}") from None
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as error:
        raise IotCareError(f"cannot signal process {pid}: {error.strerror}") from None


def broker_file_paths(settings: Settings) -> tuple[Path, Path] | None:
    """The configured password and ACL file paths, or None when neither is set."""
    password_file, acl_file = settings.mosquitto_password_file, settings.mosquitto_acl_file
    if password_file is None and acl_file is None:
        return None
    if password_file is None or acl_file is None:
        raise ConfigError(
            f"Set both {ENV_PREFIX}MOSQUITTO_PASSWORD_FILE and {ENV_PREFIX}MOSQUITTO_ACL_FILE "
            "(or neither)."
        )
    return password_file, acl_file


def write_broker_files(session: Session, settings: Settings) -> WriteResult:
    """Rewrite both files from the registry, then ask Mosquitto to reload when a pid file is set."""
    paths = broker_file_paths(settings)
    if paths is None:
        raise ConfigError(
            f"Set {ENV_PREFIX}MOSQUITTO_PASSWORD_FILE and {ENV_PREFIX}MOSQUITTO_ACL_FILE to the "
            "files Mosquitto's password_file and acl_file name."
        )
    files = build_broker_files(session, settings)
    password_file, acl_file = paths
    # ACL first: a reload between the two writes must not let a new password in before its rules.
    write_atomically(acl_file, files.acl)
    write_atomically(password_file, files.passwords)
    reloaded, error = False, None
    if settings.mosquitto_pid_file is not None:
        try:
            reload_broker(settings.mosquitto_pid_file)
            reloaded = True
        except IotCareError as failure:
            error = str(failure)
    return WriteResult(password_file, acl_file, files.devices, reloaded, error)
