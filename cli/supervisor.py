"""Running the demo's processes side by side, and stopping them all together."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


@dataclass
class Child:
    """One supervised process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]


class ProcessGroup:
    """Child processes started in order and stopped in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        """Start `python -m cli <args>` with its output in <log_dir>/<name>.log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [sys.executable, "-m", "cli", *args],
            env={**os.environ, **env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C in the terminal reaches us, and we stop children in order.
            start_new_session=True,
        )
        child = Child(name, process, log_path, log_file)
        self.children.append(child)
        return child

    def exited(self) -> Child | None:
        """A child that has exited, if any."""
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM each child, newest first, waiting for each to exit (then SIGKILL)."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
                try:
                    child.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop in %.0f s; killing it", child.name, timeout)
                    child.process.kill()
                    child.process.wait()
            child.log_file.close()
        self.children.clear()

    def wait(
        self,
        stop_requested: Callable[[], bool],
        run_for: float | None,
        every: Callable[[], None] | None = None,
        period: float = 1.0,
    ) -> Child | None:
        """Block until asked to stop, `run_for` seconds pass, or a child exits (returned);
        call `every` about once a `period` meanwhile."""
        deadline = time.monotonic() + run_for if run_for is not None else None
        next_call = time.monotonic()
        while not stop_requested():
            died = self.exited()
            if died is not None:
                return died
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
            if every is not None and now >= next_call:
                try:
                    every()
                except Exception:
                    log.exception("demo display failed")
                next_call = now + period
            time.sleep(0.2)
        return None
