"""A throwaway PostgreSQL server of a test's own: initdb into a temp dir, its own port, trust auth.

For tests that must stop, crash or restart the database itself. Outage tests that only need the
database to become unreachable should prefer a TcpProxy in front of the shared server (cheaper).
PostgreSQL refuses to run as root, so as root initdb and the server run as the `postgres` OS user
from a temp dir that user owns. The postmaster runs as our own child rather than daemonized by
pg_ctl: after a SIGKILL we reap it at once, whereas an orphaned postmaster can linger as a zombie
(init reaps late in some containers) and its lock files then block the restart.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from devkit.mosquitto import with_parent_death_signal
from devkit.tcp_proxy import free_port

PG_BIN_ENV = "IOTCARE_TEST_PG_BIN"
RUN_AS = "postgres"
_STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def find_pg_bin() -> Path | None:
    """Directory with initdb and postgres: $IOTCARE_TEST_PG_BIN, PATH, or the newest Debian one."""
    configured = os.environ.get(PG_BIN_ENV)
    if configured:
        path = Path(configured)
        return path if (path / "postgres").is_file() and (path / "initdb").is_file() else None
    on_path = shutil.which("initdb")
    if on_path and (Path(on_path).parent / "postgres").is_file():
        return Path(on_path).parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


def _running_as_root() -> bool:
    return os.name == "posix" and os.geteuid() == 0


class PrivatePostgres:
    """A PostgreSQL server in a temp dir on a free 127.0.0.1 port; a context manager."""

    def __init__(
        self,
        *,
        bin_dir: Path | str | None = None,
        port: int | None = None,
        user: str = "postgres",
        settings: dict[str, str] | None = None,
        die_with_parent: bool = True,
    ) -> None:
        """Configure (but do not create) a server; `settings` are extra postgres -c options."""
        found = Path(bin_dir) if bin_dir else find_pg_bin()
        if found is None:
            raise FileNotFoundError(f"PostgreSQL server binaries not found (set {PG_BIN_ENV})")
        self.bin_dir = found
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.user = user
        self.die_with_parent = die_with_parent
        self.settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        self.settings.update(settings or {})
        self._as_root = _running_as_root()
        # Under /tmp rather than pytest's tmp_path: the postgres user must be able to reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="iotcare-postgres-"))
        self.data_dir = self.directory / "data"
        self.log_path = self.directory / "postgres.log"
        if self._as_root:
            account = pwd.getpwnam(RUN_AS)
            os.chown(self.directory, account.pw_uid, account.pw_gid)
        self._initialised = False
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `postgres` database: postgresql+psycopg2://user@host:port/postgres."""
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another database on this server."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{database}"

    @property
    def dsn(self) -> str:
        """libpq connection string for psycopg2.connect()."""
        return f"host={self.host} port={self.port} user={self.user} dbname=postgres"

    def _as_postgres(self) -> dict[str, Any]:
        """subprocess options that run a command as the postgres OS user when we are root."""
        if not self._as_root:
            return {}
        account = pwd.getpwnam(RUN_AS)
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def log_text(self) -> str:
        """The server log so far (for assertion messages)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def initdb(self) -> None:
        """Create the cluster (trust auth, no fsync: it is thrown away)."""
        if self._initialised:
            return
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.directory,
            check=False,
            **self._as_postgres(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}): {result.stderr.strip()}")
        self._initialised = True

    def start(self, timeout: float = 30.0) -> PrivatePostgres:
        """initdb if needed, then start the server and wait until it accepts connections."""
        self.initdb()
        if self.running:
            return self
        command = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.directory),
            "-c",
            f"listen_addresses={self.host}",
        ]
        for name, value in self.settings.items():
            command += ["-c", f"{name}={value}"]
        if self.die_with_parent:
            command = with_parent_death_signal(command)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
                **self._as_postgres(),
            )
        self._wait_until_ready(timeout)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(f"postgres exited with {code}:\n{self.log_text()}")
            if self._pid_file_says_ready() and _accepts(self.host, self.port):
                return
            time.sleep(0.05)
        raise TimeoutError(f"postgres not ready after {timeout}s:\n{self.log_text()}")

    def _pid_file_says_ready(self) -> bool:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    @property
    def pid(self) -> int | None:
        """Postmaster process id while running, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the postmaster is alive."""
        return self.pid is not None

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Shut down as pg_ctl would (mode: smart, fast or immediate) and wait for the exit."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(_STOP_SIGNALS[mode])
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._process = None

    def restart(self) -> None:
        """Fast stop, then start again on the same port with the same data."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """Crash the server: SIGKILL the postmaster and its backends (the next start recovers)."""
        process = self._process
        if process is None:
            return
        children = _children_of(process.pid)
        for victim in (process.pid, *children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        process.wait(10)
        self._process = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in children):
            time.sleep(0.02)

    def close(self) -> None:
        """Stop the server (immediately) and remove its temp dir."""
        self.stop(mode="immediate", timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop and clean up on exit."""
        self.close()


def _accepts(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    """Whether pid exists and is not a zombie."""
    if not Path("/proc").is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _children_of(pid: int) -> list[int]:
    """Direct children of pid, from /proc (the postmaster's backends and helpers)."""
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children
