"""Running the iotcare command in tests: in this process (fast), or as a real process.

A real process costs a Python start and every import (seconds on a busy machine); in this
process a command costs only its own work. Both give a CompletedProcess, so a test reads the
same either way. Tests of start-up itself (bad settings, a busy port) keep the real process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from typer.testing import CliRunner

from tests.conftest import TEST_SECRET


def _environment(database_url: str | None, env: dict[str, str] | None) -> dict[str, str]:
    """The IOTCARE_* variables a command sees: test defaults, the database, then `env`."""
    values = {
        "IOTCARE_ENVIRONMENT": "test",
        "IOTCARE_SECRET_KEY": TEST_SECRET,
        "IOTCARE_LOG_LEVEL": "WARNING",
    }
    if database_url:
        values["IOTCARE_DATABASE_URL"] = database_url
    values.update(env or {})
    return values


def iotcare(
    *args: str,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run `iotcare ARGS` in this process as the entry point would, with only the given IOTCARE_*
    variables set; exit status, stdout and stderr as a CompletedProcess."""
    from cli.main import run
    from core.settings import get_settings

    overrides: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith("IOTCARE_")
    }
    overrides.update(_environment(database_url, env))
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_argv = sys.argv
    runner = CliRunner()
    code = 0
    get_settings.cache_clear()
    with runner.isolation(input=input, env=overrides) as (stdout, stderr, _):
        sys.argv = ["iotcare", *args]
        try:
            run()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        finally:
            sys.argv = saved_argv
            get_settings.cache_clear()
            # The command configured logging onto the captured stderr, which closes now.
            for handler in list(root.handlers):
                if handler not in saved_handlers:
                    root.removeHandler(handler)
                    handler.close()
            root.setLevel(saved_level)
            sys.stdout.flush()
            sys.stderr.flush()
        out, err = stdout.getvalue(), stderr.getvalue()
    return subprocess.CompletedProcess(
        ["iotcare", *args], code, out.decode(errors="replace"), err.decode(errors="replace")
    )


def iotcare_process(
    *args: str,
    database_url: str | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m cli ARGS` as a real process, with only the given IOTCARE_* variables set."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")}
    environment.update(_environment(database_url, env))
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        input=input,
        timeout=timeout,
        check=False,
    )
