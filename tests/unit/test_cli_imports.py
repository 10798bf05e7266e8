"""Building the `iotcare` command tree stays cheap: `iotcare --help` imports none of the heavy
libraries (each command imports what it needs when it runs)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "alembic", "prefect", "streamlit", "fastapi", "apprise", "great_expectations")


def test_command_tree_imports_no_heavy_library() -> None:
    code = f"import sys, cli.main; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _default(command: object, name: str) -> object:
    return inspect.signature(command).parameters[name].default.default  # type: ignore[arg-type]


def test_option_defaults_match_the_simulator() -> None:
    """The defaults the CLI states without importing the simulator are the simulator's own."""
    from cli.seed import history
    from cli.simulate import simulate
    from simulator.history import DEFAULT_INTERVAL
    from simulator.publisher import DEFAULT_INFLIGHT

    assert _default(history, "interval") == DEFAULT_INTERVAL
    assert _default(simulate, "inflight") == DEFAULT_INFLIGHT
