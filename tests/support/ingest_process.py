"""`python -m ingest` as a child process of a test: settings by environment, state via /metrics.

The durability tests kill, restart and starve the real service, which they can only do to a
process of their own. Each IngestProcess keeps its client id and metrics port across restarts,
so a restarted replica gets its broker session back and is polled at the same address.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from core.contract.payloads import status_payload
from devkit.mosquitto import with_parent_death_signal
from devkit.tcp_proxy import free_port
from tests.conftest import TEST_SECRET
from tests.support.publisher import wait_for_retained
from tests.support.waiting import wait_until


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition to {sample name: value summed over its labels}."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_and_labels, _, rest = line.rpartition(" ")
        if not name_and_labels:
            continue
        name = name_and_labels.split("{", 1)[0]
        try:
            value = float(rest)
        except ValueError:
            continue
        values[name] = values.get(name, 0.0) + value
    return values


class IngestProcess:
    """One ingest replica run as `python -m ingest`, configured by IOTCARE_* variables."""

    def __init__(
        self,
        *,
        database_url: str,
        mqtt_url: str,
        topic_root: str,
        client_id: str,
        directory: Path,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        """Configure (but do not start); `settings` maps setting names to values."""
        self.mqtt_url = mqtt_url
        self.topic_root = topic_root
        self.client_id = client_id
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.metrics_port = free_port("127.0.0.1")
        self.log_path = self.directory / f"{client_id}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")}
        values = {
            "environment": "test",
            "secret_key": TEST_SECRET,
            "data_dir": str(self.directory),
            "database_url": database_url,
            "mqtt_url": mqtt_url,
            "mqtt_topic_root": topic_root,
            "mqtt_client_id": client_id,
            "metrics_port": str(self.metrics_port),
            "log_level": "INFO",
        }
        values.update(settings or {})
        env.update({f"IOTCARE_{name.upper()}": value for name, value in values.items()})
        self.env = env
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def status_topic(self) -> str:
        """The replica's retained status topic (online once subscribed, its will otherwise)."""
        return f"{self.topic_root}/ingest/{self.client_id}/status"

    @property
    def pid(self) -> int | None:
        """Process id while running, else None."""
        return self._process.pid if self.running else None  # type: ignore[union-attr]

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit code of the last run (None while running or never started)."""
        return None if self._process is None else self._process.poll()

    def start(self) -> IngestProcess:
        """Start the replica (again); returns at once, see wait_online and wait_connected."""
        if self.running:
            return self
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts}\n".encode())
            log.flush()
            # Dies with the test run even if the test itself is killed (no stray replicas).
            self._process = subprocess.Popen(
                with_parent_death_signal([sys.executable, "-m", "ingest"]),
                env=self.env,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def wait_online(self, timeout: float = 30.0) -> None:
        """Block until the replica published its retained online status (it has subscribed)."""
        self._check_alive()
        wait_for_retained(self.mqtt_url, self.status_topic, status_payload(True), timeout)

    def wait_connected(self, timeout: float = 30.0) -> None:
        """Block until this process's /metrics says it is connected to the broker."""
        wait_until(
            lambda: self._check_alive() or self.metrics().get("iotcare_ingest_connected") == 1,
            timeout=timeout,
            interval=0.1,
            message=f"{self.client_id} connected",
        )

    def _check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            raise AssertionError(
                f"{self.client_id} exited with {self._process.returncode}:\n{self.log_text()}"
            )

    def kill(self) -> None:
        """SIGKILL: no flush, no acknowledgement, no offline status (the will says it)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM (flush and exit cleanly); returns the exit code, SIGKILL after `timeout`."""
        process = self._process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        return process.returncode

    def metrics(self) -> dict[str, float]:
        """Current /metrics, summed over labels; empty while the endpoint does not answer."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return parse_metrics(response.read().decode())
        except OSError:
            return {}

    def received(self) -> float:
        """Messages received by this run of the process (-1 while /metrics does not answer)."""
        return self.metrics().get("iotcare_ingest_messages_received_total", -1.0)

    def written(self) -> float:
        """Rows written by this run of the process (-1 while /metrics does not answer)."""
        return self.metrics().get("iotcare_ingest_rows_written_total", -1.0)

    def rss_bytes(self) -> int:
        """Resident memory of the running process, from /proc/<pid>/status (0 if not running)."""
        pid = self.pid
        if pid is None:
            return 0
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def log_text(self) -> str:
        """Everything the process logged so far, all runs (for assertion messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        """Kill the process if it still runs."""
        self.kill()

    def __enter__(self) -> IngestProcess:
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Kill on exit."""
        self.close()
