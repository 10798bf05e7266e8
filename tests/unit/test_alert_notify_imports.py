"""The lifecycle imports the outbox, which imports the links, which act through the lifecycle:
whichever of them a process imports first, the import succeeds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "module",
    ["core.alerts.lifecycle", "core.notify.outbox", "core.notify.links", "core.notify.escalation"],
)
def test_importing_first(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
