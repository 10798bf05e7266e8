"""Device credentials against a real Mosquitto started with the generated password and ACL files.

A device may publish only under its own topics and receive only its own commands; the platform's
account (from IOTCARE_MQTT_URL) reads everything devices publish; a wrong password is refused at
CONNECT; a revoked or rotated password stops working once the files are rewritten and the broker
has reloaded them (SIGHUP through IOTCARE_MOSQUITTO_PID_FILE).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import device_credentials as dc
from core import registry, schema
from core.contract.topics import INBOUND, TopicKind, device_topic, subscription
from core.db import make_engine, make_session_factory, session_scope
from core.errors import ConfigError, ConflictError, NotFoundError
from core.settings import Settings
from devkit.mosquitto import PrivateMosquitto
from models import AuditEntry, Device
from tests.conftest import make_test_settings
from tests.factories import Factory
from tests.support.cli import iotcare

SERVICE_USER = "iotcare-platform"
SERVICE_PASSWORD = "platform-password-0123456789"
WAIT = 5.0


class Client:
    """A paho client that records its CONNACK, SUBACKs and messages."""

    def __init__(self, broker: PrivateMosquitto, username: str, password: str) -> None:
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.disconnected = threading.Event()
        self.reason: Any = None
        self.granted: list[Any] = []
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.mqtt = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"{username}-{uuid.uuid4().hex[:8]}"
        )
        self.mqtt.username_pw_set(username, password)
        self.mqtt.on_connect = self._on_connect
        self.mqtt.on_subscribe = self._on_subscribe
        self.mqtt.on_message = self._on_message
        self.mqtt.on_disconnect = self._on_disconnect
        self.mqtt.connect(broker.host, broker.port, keepalive=30)
        self.mqtt.loop_start()
        if not self.connected.wait(WAIT):
            self.close()
            raise TimeoutError(f"no CONNACK for {username}:\n{broker.log_text()}")

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.reason = reason
        self.connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, _reason: Any, _props: Any) -> None:
        self.disconnected.set()

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, reasons: Any, _props: Any) -> None:
        self.granted = list(reasons)
        self.subscribed.set()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload))

    @property
    def accepted(self) -> bool:
        """Whether the broker accepted the CONNECT."""
        return self.reason is not None and not self.reason.is_failure

    def subscribe(self, *topics: str) -> list[Any]:
        """Subscribe at QoS 1 and return the broker's per-topic answers."""
        self.subscribed.clear()
        self.mqtt.subscribe([(topic, 1) for topic in topics])
        assert self.subscribed.wait(WAIT), "no SUBACK"
        return self.granted

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        info = self.mqtt.publish(topic, payload, qos=1)
        info.wait_for_publish(WAIT)
        assert info.is_published()

    def received(self) -> list[tuple[str, bytes]]:
        """Messages so far."""
        with self._lock:
            return list(self.messages)

    def wait_for(self, payload: bytes) -> None:
        """Block until a message with this payload arrived."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            if any(p == payload for _, p in self.received()):
                return
            time.sleep(0.02)
        raise AssertionError(f"{payload!r} not received; got {self.received()}")

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.mqtt.disconnect()
        self.mqtt.loop_stop()


def connect_until(broker: PrivateMosquitto, username: str, password: str, accepted: bool) -> Client:
    """Connect repeatedly until the broker accepts (or refuses) it; the reload is asynchronous."""
    deadline = time.monotonic() + WAIT
    while True:
        client = Client(broker, username, password)
        if client.accepted == accepted or time.monotonic() > deadline:
            return client
        client.close()
        time.sleep(0.1)


@pytest.fixture
def clients() -> Any:
    """Factory of Clients, all closed after the test."""
    made: list[Client] = []

    def make(broker: PrivateMosquitto, username: str, password: str) -> Client:
        client = Client(broker, username, password)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def broker_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings naming the broker files in tmp_path and the platform account."""
    values: dict[str, Any] = {
        "mqtt_url": f"mqtt://{SERVICE_USER}:{SERVICE_PASSWORD}@127.0.0.1:1883",
        "mosquitto_password_file": tmp_path / "broker" / "passwords",
        "mosquitto_acl_file": tmp_path / "broker" / "acl",
    }
    values.update(overrides)
    return make_test_settings(tmp_path, **values)


def test_provision_rotate_revoke(db_session: Session, factory: Factory) -> None:
    device = factory.device(device_id="wear-1")
    issued = dc.provision(db_session, "wear-1")
    assert (issued.username, issued.site_id, issued.rotated) == ("wear-1", device.site_id, False)
    assert len(issued.password) == dc.DEVICE_PASSWORD_LENGTH
    assert device.mqtt_username == "wear-1"
    assert device.credentials_hash is not None
    assert issued.password not in device.credentials_hash
    assert dc.verify_mosquitto_hash(device.credentials_hash, issued.password)

    with pytest.raises(ConflictError, match="--rotate"):
        dc.provision(db_session, "wear-1")
    rotated = dc.provision(db_session, "wear-1", rotate=True)
    assert rotated.rotated and rotated.password != issued.password
    assert dc.verify_mosquitto_hash(device.credentials_hash, rotated.password)
    assert not dc.verify_mosquitto_hash(device.credentials_hash, issued.password)

    assert dc.revoke(db_session, "wear-1") is True
    assert (device.mqtt_username, device.credentials_hash) == (None, None)
    assert dc.revoke(db_session, "wear-1") is False
    actions = db_session.scalars(
        select(AuditEntry.action).where(AuditEntry.target_id == "wear-1").order_by(AuditEntry.id)
    ).all()
    assert actions[-3:] == [
        "device.credentials.issue",
        "device.credentials.rotate",
        "device.credentials.revoke",
    ]


def test_unknown_and_quarantined_devices_get_no_credentials(
    db_session: Session, factory: Factory
) -> None:
    with pytest.raises(NotFoundError):
        dc.provision(db_session, "no-such-device")
    factory.device(device_id="stray-1", quarantined=True)
    with pytest.raises(ConflictError, match="quarantined"):
        dc.provision(db_session, "stray-1")


def test_a_device_named_like_the_platform_user_is_refused(
    db_session: Session, factory: Factory, tmp_path: Path
) -> None:
    factory.device(device_id=SERVICE_USER)
    dc.provision(db_session, SERVICE_USER)
    with pytest.raises(ConflictError, match="platform's own user"):
        dc.build_broker_files(db_session, broker_settings(tmp_path))


def test_broker_enforces_each_devices_own_topics(
    db_session: Session,
    factory: Factory,
    private_mosquitto: Callable[..., PrivateMosquitto],
    clients: Callable[..., Client],
    tmp_path: Path,
) -> None:
    site = factory.site("home-1")
    factory.device(device_id="dev-a", site=site)
    factory.device(device_id="dev-b", site=site)
    a = dc.provision(db_session, "dev-a")
    b = dc.provision(db_session, "dev-b")
    settings = broker_settings(tmp_path, mosquitto_pid_file=tmp_path / "mosquitto.pid")
    result = dc.write_broker_files(db_session, settings)
    assert result.devices == 2 and not result.reloaded  # no broker yet: no pid to signal
    passwords = result.password_file.read_text()
    assert a.password not in passwords and SERVICE_PASSWORD not in passwords

    broker = private_mosquitto(
        password_file=result.password_file, acl_file=result.acl_file, allow_anonymous=False
    )
    (tmp_path / "mosquitto.pid").write_text(f"{broker.pid}\n")
    root = settings.mqtt_topic_root
    topic = lambda device, kind: device_topic(root, "home-1", device, kind)  # noqa: E731

    # The platform subscribes as ingest does: shared subscriptions to every inbound kind.
    platform = clients(broker, SERVICE_USER, SERVICE_PASSWORD)
    assert platform.accepted
    granted = platform.subscribe(*(subscription(root, kind, "ingest") for kind in INBOUND))
    assert not any(code.is_failure for code in granted), granted

    device_a = clients(broker, "dev-a", a.password)
    assert device_a.accepted, broker.log_text()
    device_a.publish(topic("dev-a", TopicKind.TELEMETRY), b"a-own")
    platform.wait_for(b"a-own")
    # Under B's topic: the broker acknowledges (MQTT 3.1.1 cannot say no) but delivers nothing.
    device_a.publish(topic("dev-b", TopicKind.TELEMETRY), b"a-as-b")
    device_a.publish(topic("dev-b", TopicKind.STATUS), b"a-as-b-status")
    device_a.publish(topic("dev-a", TopicKind.CMD), b"a-commands-itself")
    device_a.publish(topic("dev-a", TopicKind.EVENT), b"a-marker")
    platform.wait_for(b"a-marker")
    time.sleep(0.3)
    payloads = [p for _, p in platform.received()]
    assert payloads == [b"a-own", b"a-marker"], payloads

    # A receives its own commands and not B's. (Mosquitto 2.0 may grant the subscription to B's
    # topic; its `topic read` rule is checked again on every delivery, which is what counts.)
    granted = device_a.subscribe(topic("dev-a", TopicKind.CMD), topic("dev-b", TopicKind.CMD))
    assert not granted[0].is_failure, granted
    platform.publish(topic("dev-b", TopicKind.CMD), b"cmd-for-b")
    platform.publish(topic("dev-a", TopicKind.CMD), b"cmd-for-a")
    device_a.wait_for(b"cmd-for-a")
    time.sleep(0.3)
    assert [p for _, p in device_a.received()] == [b"cmd-for-a"]

    # A wrong password, a device's password under another name: refused at CONNECT.
    assert not clients(broker, "dev-a", b.password).accepted
    assert not clients(broker, "dev-a", a.password + "x").accepted
    assert not clients(broker, "nobody", a.password).accepted
    device_b = clients(broker, "dev-b", b.password)
    assert device_b.accepted

    # Revoke B and rotate A: the rewrite signals the broker, which reloads both files.
    dc.revoke(db_session, "dev-b")
    rotated = dc.provision(db_session, "dev-a", rotate=True)
    result = dc.write_broker_files(db_session, settings)
    assert result.reloaded and result.devices == 1, result
    # On reload Mosquitto also drops connected clients whose credentials are gone.
    assert device_b.disconnected.wait(WAIT), broker.log_text()
    refused_b = connect_until(broker, "dev-b", b.password, accepted=False)
    refused_b.close()
    assert not refused_b.accepted, broker.log_text()
    old_a = connect_until(broker, "dev-a", a.password, accepted=False)
    old_a.close()
    assert not old_a.accepted
    new_a = clients(broker, "dev-a", rotated.password)
    assert new_a.accepted
    new_a.publish(topic("dev-a", TopicKind.TELEMETRY), b"a-rotated")
    platform.wait_for(b"a-rotated")

    # After a restart too (the files, not the broker's memory, are the truth).
    broker.restart()
    assert not clients(broker, "dev-b", b.password).accepted
    assert clients(broker, "dev-a", rotated.password).accepted


# --- the CLI, as an operator runs it


def printed_password(output: str) -> str:
    """The password line of `devices provision` (English or Korean)."""
    for line in output.splitlines():
        label, _, value = line.strip().partition(": ")
        if label in ("password", "비밀번호"):
            return value
    raise AssertionError(f"no password in:\n{output}")


def test_cli_provision_rotate_revoke(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(make_test_settings(tmp_path, database_url=database_url))
    schema.upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        registry.create_site(session, "home-1", "Home", "Asia/Seoul")
        registry.add_device(session, device_id="dev-a", site_id="home-1", device_type="wearable")
    engine.dispose()
    files = tmp_path / "broker"
    env = {
        "IOTCARE_DATABASE_URL": database_url,
        "IOTCARE_MQTT_URL": f"mqtt://{SERVICE_USER}:{SERVICE_PASSWORD}@127.0.0.1:1883",
        "IOTCARE_MOSQUITTO_PASSWORD_FILE": str(files / "passwords"),
        "IOTCARE_MOSQUITTO_ACL_FILE": str(files / "acl"),
        "LANG": "en_US.UTF-8",
    }

    first = iotcare("devices", "provision", "dev-a", env=env)
    assert first.returncode == 0, first.stderr
    password = printed_password(first.stdout)
    assert "Mosquitto files written" in first.stdout
    assert "SIGHUP" in first.stdout  # no pid file: the operator is told to reload
    lines = dict(line.split(":", 1) for line in (files / "passwords").read_text().splitlines())
    assert set(lines) == {SERVICE_USER, "dev-a"}
    assert dc.verify_mosquitto_hash(lines["dev-a"], password)
    assert password not in (files / "passwords").read_text()
    assert "user dev-a" in (files / "acl").read_text()

    again = iotcare("devices", "provision", "dev-a", env=env)
    assert again.returncode == 1 and "--rotate" in again.stderr
    assert "Traceback" not in again.stderr

    rotated = iotcare("devices", "provision", "dev-a", "--rotate", env={**env, "LANG": "ko_KR"})
    assert rotated.returncode == 0, rotated.stderr
    assert "새 브로커 비밀번호" in rotated.stdout
    new_password = printed_password(rotated.stdout)
    lines = dict(line.split(":", 1) for line in (files / "passwords").read_text().splitlines())
    assert dc.verify_mosquitto_hash(lines["dev-a"], new_password)

    revoked = iotcare("devices", "revoke", "dev-a", env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert (files / "passwords").read_text().splitlines()[0].startswith(f"{SERVICE_USER}:")
    assert len((files / "passwords").read_text().splitlines()) == 1
    assert "user dev-a" not in (files / "acl").read_text()

    rewritten = iotcare("devices", "write-broker-files", env=env)
    assert rewritten.returncode == 0, rewritten.stderr
    assert "0 devices" in rewritten.stdout


def test_cli_checks_the_platform_account_before_changing_anything(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(make_test_settings(tmp_path, database_url=database_url))
    schema.upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        registry.create_site(session, "home-1", "Home", "Asia/Seoul")
        registry.add_device(session, device_id="dev-a", site_id="home-1", device_type="wearable")
    env = {
        "IOTCARE_DATABASE_URL": database_url,
        "IOTCARE_MQTT_URL": "mqtt://127.0.0.1:1883",
        "IOTCARE_MOSQUITTO_PASSWORD_FILE": str(tmp_path / "passwords"),
        "IOTCARE_MOSQUITTO_ACL_FILE": str(tmp_path / "acl"),
    }
    result = iotcare("devices", "provision", "dev-a", env=env)
    assert result.returncode == 1
    assert "IOTCARE_MQTT_URL has no user and password" in result.stderr
    assert "Traceback" not in result.stderr
    with session_scope(make_session_factory(engine)) as session:
        assert session.get(Device, "dev-a").credentials_hash is None  # type: ignore[union-attr]
    engine.dispose()

    unconfigured = iotcare(
        "devices", "write-broker-files", env={"IOTCARE_DATABASE_URL": database_url}
    )
    assert unconfigured.returncode == 1
    assert "IOTCARE_MOSQUITTO_PASSWORD_FILE" in unconfigured.stderr


def test_service_account_is_required_for_the_files(tmp_path: Path, db_session: Session) -> None:
    with pytest.raises(ConfigError):
        dc.write_broker_files(db_session, broker_settings(tmp_path, mqtt_url=None))
