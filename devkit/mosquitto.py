"""A Mosquitto broker of a test's own: its own port, config, persistence and limits.

The durability tests restart, kill and tune the broker, which they must not do to the shared
one (IOTCARE_TEST_MQTT_URL). Each PrivateMosquitto writes a config file into a temp dir, keeps
its persistence database there, and listens on a free 127.0.0.1 port that stays the same across
restarts, so clients with persistent sessions can come back to it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from devkit.tcp_proxy import free_port

MOSQUITTO_ENV = "IOTCARE_TEST_MOSQUITTO_BIN"
SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "mosquitto.conf"
# Where a broker listens, logs and stores, and whom it lets in, are a test broker's own.
_NOT_SHIPPED = frozenset(
    {
        "listener",
        "allow_anonymous",
        "password_file",
        "acl_file",
        "pid_file",
        "persistence_location",
        "log_dest",
        "user",
        # A listener's TLS files (they name paths of the broker's host): `shipped_tls_listener`.
        "cafile",
        "certfile",
        "keyfile",
        "require_certificate",
        "tls_version",
    }
)
_TLS_FILES = frozenset({"cafile", "certfile", "keyfile"})
_TLS_OPTIONS = _TLS_FILES | {"require_certificate", "tls_version"}
_SAVING = "Saving in-memory database"
_SEARCH_DIRS = (
    "/usr/sbin",
    "/usr/local/sbin",
    "/opt/homebrew/sbin",
    "/usr/local/opt/mosquitto/sbin",
)


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary: $IOTCARE_TEST_MOSQUITTO_BIN, PATH, or the usual sbin dirs."""
    configured = os.environ.get(MOSQUITTO_ENV)
    if configured:
        return configured if Path(configured).is_file() else None
    found = shutil.which("mosquitto")
    if found:
        return found
    for directory in _SEARCH_DIRS:
        candidate = Path(directory) / "mosquitto"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def shipped_options(path: Path = SHIPPED_CONFIG) -> dict[str, str]:
    """The options of a shipped Mosquitto config (persistence, autosave, limits), minus the
    listener, authentication, paths and logging, for a test broker that runs as we ship it."""
    options: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        if name not in _NOT_SHIPPED:
            options[name] = value.strip()
    return options


def shipped_tls_listener(
    certs_dir: Path, port: int, host: str = "127.0.0.1", path: Path = SHIPPED_CONFIG
) -> str:
    """The shipped config's TLS listener block (its `cafile`, `certfile`, `keyfile`, TLS version,
    client certificate policy) on host:port, its files taken from `certs_dir` by name; for a test
    broker's `extra_config`, so the test checks the TLS settings we ship."""
    lines: list[str] = []
    in_tls = False
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        if name == "listener":
            in_tls = False
        elif in_tls and name in _TLS_FILES:
            lines.append(f"{name} {certs_dir / Path(value.strip()).name}")
        elif in_tls and name in _TLS_OPTIONS:
            lines.append(line)
        if name == "listener" and value.split()[0] == "8883":
            in_tls = True
            lines.append(f"listener {port} {host}")
    if not lines:
        raise ValueError(f"{path} has no listener 8883")
    return "\n".join(lines) + "\n"


def _mqtt_connect_packet(client_id: str) -> bytes:
    """An MQTT 3.1.1 CONNECT packet with a clean session and no credentials."""
    cid = client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x05"  # protocol name, level 4, clean session, keepalive
    payload = len(cid).to_bytes(2, "big") + cid
    body = variable + payload
    return b"\x10" + bytes([len(body)]) + body


def mqtt_handshake(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether an MQTT broker at host:port answers a CONNECT with a CONNACK."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_mqtt_connect_packet(f"probe-{uuid.uuid4().hex[:12]}"))
            reply = sock.recv(4)
            if reply[:1] == b"\x20":
                sock.sendall(b"\xe0\x00")  # DISCONNECT, so no will and no session linger
                return True
            return False
    except OSError:
        return False


def with_parent_death_signal(command: list[str]) -> list[str]:
    """Prefix `setpriv --pdeathsig KILL` (Linux) so the process dies with the thread starting it.

    A test run that is itself killed then leaves no broker or database behind. Start such
    processes from a thread that outlives them (the main thread), or the kernel kills them early.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return command
    return [setpriv, "--pdeathsig", "KILL", "--", *command]


class PrivateMosquitto:
    """A Mosquitto process with its own config, port and persistence dir; a context manager."""

    def __init__(
        self,
        *,
        max_inflight_messages: int = 20,
        max_queued_messages: int = 1000,
        max_queued_bytes: int = 0,
        autosave_interval: int = 1,
        persistence: bool = True,
        password_file: Path | str | None = None,
        acl_file: Path | str | None = None,
        allow_anonymous: bool = True,
        persistent_client_expiration: str | None = None,
        extra_config: str = "",
        options: Mapping[str, str] | None = None,
        die_with_parent: bool = True,
        binary: str | None = None,
        port: int | None = None,
        directory: Path | str | None = None,
    ) -> None:
        """Configure (but do not start) a broker; limits default to Mosquitto's own defaults.

        `options` (e.g. `shipped_options()`) override any of the settings above by name.
        """
        found = binary or find_mosquitto()
        if found is None:
            raise FileNotFoundError(
                f"mosquitto binary not found (install mosquitto or set {MOSQUITTO_ENV})"
            )
        self.binary = found
        self.die_with_parent = die_with_parent
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self._own_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="iotcare-mosquitto-"))
        self.data_dir = self.directory / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.directory / "mosquitto.conf"
        self.log_path = self.directory / "mosquitto.log"
        self.limits: dict[str, int | str] = {
            "max_inflight_messages": max_inflight_messages,
            "max_queued_messages": max_queued_messages,
            "max_queued_bytes": max_queued_bytes,
        }
        self.options: dict[str, int | str] = {
            "persistence": "true" if persistence else "false",
            # A low interval bounds what a SIGKILL loses; SIGTERM always saves.
            "autosave_interval": autosave_interval,
            **self.limits,
        }
        if persistent_client_expiration is not None:
            self.options["persistent_client_expiration"] = persistent_client_expiration
        self.options.update(options or {})
        self.limits = {name: self.options[name] for name in self.limits}
        self.config_path.write_text(
            self._render_config(
                password_file=password_file,
                acl_file=acl_file,
                allow_anonymous=allow_anonymous,
                extra_config=extra_config,
            )
        )
        self._process: subprocess.Popen[bytes] | None = None

    def _render_config(
        self,
        *,
        password_file: Path | str | None,
        acl_file: Path | str | None,
        allow_anonymous: bool,
        extra_config: str,
    ) -> str:
        lines = [
            "# Generated by devkit/mosquitto.py",
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if allow_anonymous else 'false'}",
            f"persistence_location {self.data_dir}/",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp true",
        ]
        lines += [f"{name} {value}" for name, value in self.options.items()]
        if os.name == "posix" and os.geteuid() == 0:
            # As root Mosquitto would switch to the `mosquitto` user, who cannot write the temp
            # dir; a test broker on loopback may stay root.
            lines.append("user root")
        if password_file is not None:
            lines.append(f"password_file {password_file}")
        if acl_file is not None:
            lines.append(f"acl_file {acl_file}")
        if extra_config:
            lines.append(extra_config.strip())
        return "\n".join(lines) + "\n"

    @property
    def url(self) -> str:
        """Broker URL for clients and settings: mqtt://127.0.0.1:PORT."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id while running, else None."""
        return self._process.pid if self.running else None  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        """The broker's log so far (for assertion messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout: float = 10.0) -> PrivateMosquitto:
        """Start the broker and wait until it answers MQTT CONNECTs."""
        if self.running:
            return self
        command = [self.binary, "-c", str(self.config_path)]
        self._process = subprocess.Popen(
            with_parent_death_signal(command) if self.die_with_parent else command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_until_ready(timeout)
        return self

    def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Block until the broker accepts MQTT connections; raise if it died or timed out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self._process.returncode}:\n{self.log_text()}"
                )
            if mqtt_handshake(self.host, self.port, timeout=0.5):
                return
            time.sleep(0.05)
        raise TimeoutError(
            f"mosquitto not ready on {self.url} after {timeout}s:\n{self.log_text()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Orderly stop (SIGTERM): Mosquitto saves sessions and queued messages, then exits."""
        self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Crash (SIGKILL): whatever was not autosaved yet is lost."""
        self._signal_and_wait(signal.SIGKILL, 10.0)

    def restart(self, timeout: float = 10.0) -> None:
        """Orderly stop then start on the same port with the same persistence."""
        self.stop(timeout)
        self.start(timeout)

    def saves(self) -> int:
        """How many times the broker has saved its in-memory database so far (from its log)."""
        return self.log_text().count(_SAVING)

    def save(self, timeout: float = 10.0) -> None:
        """Make the running broker write its persistence file now (SIGUSR1) and wait for it."""
        if self._process is None or not self.running:
            return
        saves = self.saves()
        self._process.send_signal(signal.SIGUSR1)
        self.wait_for_save(saves, timeout)

    def wait_for_save(self, saves: int, timeout: float = 10.0) -> None:
        """Wait until the broker has saved more than `saves` times, the last file in place."""
        deadline = time.monotonic() + timeout
        pending = self.data_dir / "mosquitto.db.new"
        while time.monotonic() < deadline:
            # Mosquitto logs first, writes mosquitto.db.new, then renames it into place.
            if self.saves() > saves and not pending.exists():
                time.sleep(0.05)
                if not pending.exists():
                    return
            time.sleep(0.02)
        raise TimeoutError(f"mosquitto did not save within {timeout}s:\n{self.log_text()}")

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            self._process = None
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        self._process = None

    def close(self) -> None:
        """Kill the broker if still running and remove its temp dir."""
        self.kill()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PrivateMosquitto:
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Kill and clean up on exit."""
        self.close()
