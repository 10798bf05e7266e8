"""Device credentials: Mosquitto's hash format, the password and ACL files, atomic writes."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from paho.mqtt.client import topic_matches_sub

from core import device_credentials as dc
from core.contract.topics import INBOUND, TopicKind, device_topic
from core.errors import ConfigError, IotCareError
from ingest.client import IngestClient
from models import Device
from tests.conftest import make_test_settings

SERVICE_URL = "mqtt://iotcare-platform:platform-password-0123456789@127.0.0.1:1883"
# Made by `mosquitto_passwd -c -b pw alice s3cret` (Mosquitto 2.0.11).
REFERENCE_LINE = (
    "alice:$7$101$RDItl0iF0++oaeFF$IqjkYNCGt7DpbCkzEONQi6wFcZwQpsYrnNpbx4lGuAWG3UJFGyL1fvngI/"
    "2rBUkDY3cpHwWzJCFxLRNpc5xm9A=="
)
HASH_RE = re.compile(r"^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$")


def device(device_id: str, site: str = "s1", password: str = "device-password") -> Device:
    return Device(
        id=device_id,
        site_id=site,
        mqtt_username=device_id,
        credentials_hash=dc.mosquitto_hash(password),
    )


def test_hash_has_mosquittos_format() -> None:
    hashed = dc.mosquitto_hash("s3cret")
    assert HASH_RE.match(hashed), hashed
    assert dc.mosquitto_hash("s3cret") != hashed  # a fresh salt each time
    assert dc.verify_mosquitto_hash(hashed, "s3cret")
    assert not dc.verify_mosquitto_hash(hashed, "s3cret!")


def test_hash_reproduces_mosquitto_passwd_exactly() -> None:
    """Same password, salt and iterations as the reference line: the same bytes."""
    reference = REFERENCE_LINE.split(":", 1)[1]
    salt = base64.b64decode(reference.split("$")[3])
    assert dc.mosquitto_hash("s3cret", salt=salt) == reference
    assert dc.verify_mosquitto_hash(reference, "s3cret")
    assert not dc.verify_mosquitto_hash(reference, "S3cret")


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd missing")
def test_verifies_a_fresh_mosquitto_passwd_line(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    password = "Zq8-a long one with spaces and ünïcode"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(path), "bob", password], check=True, timeout=10
    )
    username, hashed = path.read_text().strip().split(":", 1)
    assert username == "bob"
    assert HASH_RE.match(hashed)
    assert dc.verify_mosquitto_hash(hashed, password)
    assert not dc.verify_mosquitto_hash(hashed, password[:-1])


@pytest.mark.parametrize("broken", ["", "$6$abc$def", "$7$x$AAAA$AAAA", "$7$101$!!$AAAA", "plain"])
def test_broken_hashes_do_not_verify(broken: str) -> None:
    assert not dc.verify_mosquitto_hash(broken, "anything")


def test_device_account_allows_its_own_topics_only() -> None:
    account = dc.device_account(device("a1", "s1"), "care")
    own = {kind: device_topic("care", "s1", "a1", kind) for kind in TopicKind}
    other = {kind: device_topic("care", "s1", "b2", kind) for kind in TopicKind}
    assert set(account.write) == {own[kind] for kind in INBOUND}
    assert account.read == (own[TopicKind.CMD],)
    for kind in TopicKind:
        assert not any(topic_matches_sub(p, other[kind]) for p in account.write + account.read)
    assert not any(topic_matches_sub(p, own[TopicKind.CMD]) for p in account.write)


def test_service_account_reads_every_device_and_writes_commands(tmp_path: Path) -> None:
    settings = make_test_settings(tmp_path, mqtt_url=SERVICE_URL, mqtt_topic_root="home")
    account = dc.service_account(settings)
    assert account.username == "iotcare-platform"
    assert dc.verify_mosquitto_hash(account.password_hash, "platform-password-0123456789")
    for kind in INBOUND:
        assert any(
            topic_matches_sub(p, device_topic("home", "s9", "d9", kind)) for p in account.read
        )
        assert not any(
            topic_matches_sub(p, device_topic("home", "s9", "d9", kind)) for p in account.write
        )
    cmd = device_topic("home", "s9", "d9", TopicKind.CMD)
    assert any(topic_matches_sub(p, cmd) for p in account.write)
    assert not any(topic_matches_sub(p, cmd) for p in account.read)
    # Each ingest replica publishes its own status (and last will); the account must allow it.
    replica = SimpleNamespace(config=SimpleNamespace(topic_root="home", client_id="ingest-a"))
    status = IngestClient.status_topic.fget(replica)  # type: ignore[attr-defined]
    assert any(topic_matches_sub(p, status) for p in account.write)


def test_service_account_password_is_decoded_like_the_clients_do(tmp_path: Path) -> None:
    url = "mqtt://svc%40x:p%40ss-word-with-%3A-in-it@broker:1883"
    account = dc.service_account(make_test_settings(tmp_path, mqtt_url=url))
    assert account.username == "svc@x"
    assert dc.verify_mosquitto_hash(account.password_hash, "p@ss-word-with-:-in-it")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "IOTCARE_MQTT_URL is not set"),
        ("mqtt://127.0.0.1:1883", "no user and password"),
        ("mqtt://svc@127.0.0.1:1883", "no user and password"),
        ("mqtt://svc:short@127.0.0.1:1883", "shorter than 16"),
        ("mqtt://a%3Ab:platform-password-0123@127.0.0.1:1883", "cannot be written"),
    ],
)
def test_service_account_needs_real_credentials(
    tmp_path: Path, url: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        dc.service_account(make_test_settings(tmp_path, mqtt_url=url))


def test_password_file_holds_hashes_only() -> None:
    accounts = [
        dc.device_account(device("a1", password="plain-a1-password"), "care"),
        dc.device_account(device("b2", password="plain-b2-password"), "care"),
    ]
    text = dc.render_password_file(accounts)
    lines = text.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["a1", "b2"]
    assert all(HASH_RE.match(line.split(":", 1)[1]) for line in lines)
    assert "plain-a1-password" not in text and "plain-b2-password" not in text
    assert dc.verify_mosquitto_hash(lines[0].split(":", 1)[1], "plain-a1-password")


def test_acl_file_has_a_user_block_per_account() -> None:
    text = dc.render_acl_file([dc.device_account(device("a1", "s1"), "care")])
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert body == [
        "user a1",
        "topic write care/v1/s1/a1/telemetry",
        "topic write care/v1/s1/a1/event",
        "topic write care/v1/s1/a1/status",
        "topic write care/v1/s1/a1/cmd/ack",
        "topic read care/v1/s1/a1/cmd",
    ]
    # Nothing before the first `user` line: such rules would apply to anonymous clients.
    first = text.splitlines().index("user a1")
    assert all(not line or line.startswith("#") for line in text.splitlines()[:first])


def test_atomic_write_replaces_the_file_with_mode_0640(tmp_path: Path) -> None:
    path = tmp_path / "broker" / "passwords"
    dc.write_atomically(path, "one\n")
    first_inode = path.stat().st_ino
    dc.write_atomically(path, "two\n")
    assert path.read_text() == "two\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert path.stat().st_ino != first_inode  # renamed into place, not rewritten in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["passwords"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "acl"
    dc.write_atomically(path, "old\n")

    def broken_replace(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(dc.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        dc.write_atomically(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["acl"]  # no temp file left behind


def test_both_paths_or_neither(tmp_path: Path) -> None:
    assert dc.broker_file_paths(make_test_settings(tmp_path)) is None
    one = make_test_settings(tmp_path, mosquitto_password_file=tmp_path / "pw")
    with pytest.raises(ConfigError, match="IOTCARE_MOSQUITTO_ACL_FILE"):
        dc.broker_file_paths(one)


def test_reload_sends_sighup_to_the_pid_in_the_file(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(f"{sleeper.pid}\n")
        dc.reload_broker(pid_file)
        assert sleeper.wait(5) == -signal.SIGHUP
    finally:
        if sleeper.poll() is None:
            os.kill(sleeper.pid, signal.SIGKILL)
            sleeper.wait(5)


def test_reload_explains_a_missing_pid_file(tmp_path: Path) -> None:
    with pytest.raises(IotCareError, match="cannot read a process id"):
        dc.reload_broker(tmp_path / "nothing.pid")
