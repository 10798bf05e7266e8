"""Composition root of a flows process: settings, logging, one engine, sessions and channels.

Made by core.bootstrap.boot on first use, once per process (a `serve` process runs many flow
runs; a work-pool worker starts a process per run). Tasks take what they need from `runtime()`;
tests and the CLI install their own settings with `use(settings)`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.orm import Session

from core.db import session_scope
from core.process import LazyRuntime
from core.settings import Settings
from core.timeutil import utcnow

log = logging.getLogger(__name__)

# Waits between the attempts of a failed task: a database restart or a lock timeout is over
# within these; anything longer fails the run, visibly, and the next scheduled run catches up.
RETRIES = 3
RETRY_DELAYS = [10, 60, 300]
# Loggers whose records Prefect forwards to the run's logs in its UI (see prefect.yaml too).
EXTRA_LOGGERS = "core,expectations,flows"


class FlowRuntime(LazyRuntime):
    """Process resources of the flows, made on first use."""

    process = "flows"

    def _booted(self) -> None:
        _one_console()

    @property
    def database_url(self) -> str:
        """The engine's URL with its password (for Great Expectations' own engine)."""
        return self.engine.url.render_as_string(hide_password=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block succeeds (core.db.session_scope)."""
        with session_scope(self.sessions) as session:
            yield session


def _one_console() -> None:
    # Prefect puts its own console handler on the root logger; ours (console or JSON, with the
    # run's context) is already there, and two would print every record twice.
    from prefect.logging.handlers import PrefectConsoleHandler

    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, PrefectConsoleHandler):
            root.removeHandler(handler)


_runtime: FlowRuntime | None = None
_lock = threading.Lock()


def runtime() -> FlowRuntime:
    """The process's flow runtime."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = FlowRuntime()
        return _runtime


def use(settings: Settings | None) -> FlowRuntime:
    """Replace the runtime with one on these settings (tests, the CLI); None: the defaults."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
        _runtime = FlowRuntime(settings)
        return _runtime


def reset() -> None:
    """Forget the runtime, releasing its engine."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
        _runtime = None


def log_flow_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """on_failure hook: one line saying which run failed, with what, and its parameters."""
    log.error(
        "flow %s run %s failed: %s; parameters %s. Scheduled runs continue; the next one "
        "catches up (watermarks), or start one now from the Prefect UI or `iotcare flows run`.",
        flow.name,
        flow_run.name,
        state.message,
        dict(flow_run.parameters or {}),
        extra={"flow": flow.name, "flow_run": str(flow_run.id)},
    )


def run_name(prefix: str, parameter: str | None = None) -> Callable[[], str]:
    """A flow_run_name callable: the prefix and the run's reference time (a parameter, or now)."""

    def name() -> str:
        from prefect.runtime import flow_run

        value = (flow_run.parameters or {}).get(parameter) if parameter else None
        when = value if value is not None else utcnow()
        text = when.strftime("%Y-%m-%d %H:%M") if hasattr(when, "hour") else str(when)
        return f"{prefix} {text}"

    return name
