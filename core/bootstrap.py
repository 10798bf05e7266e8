"""One process bootstrap: settings, logging, the engine, sessions and notification channels.

Every composition root (the CLI, the flows, the app, ingest, the notebooks, the benchmarks)
calls `boot()` once and keeps the Runtime it returns. Its sessions carry the settings
(core.db.session_settings), so an alert change made in any of them queues its notifications
with this process's settings, in the same transaction (core.alerts.lifecycle).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core import settings as settings_module
from core.access import Viewer
from core.db import make_engine, make_session_factory
from core.logging import configure_logging
from core.notify.channels import Channel, make_channels
from core.settings import Settings
from models import Channel as ChannelKind
from models import Role, User

log = logging.getLogger(__name__)

# Processes that say what they do in their own words: their INFO records would only repeat it.
_QUIET_AT_INFO = frozenset({"cli"})
# The analysts' notebooks read as this demo user (all residents) when there is one.
NOTEBOOK_USER = "operator"


@dataclass(frozen=True)
class Runtime:
    """A process's resources: its settings, its one engine, sessions on it, and its channels."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    channels: Mapping[ChannelKind, Channel]

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()


def boot(settings: Settings | None = None, *, process: str = "cli") -> Runtime:
    """Load settings (a bad one raises ConfigError naming it), configure logging for `process`,
    and make the engine, the session factory and the notification channels."""
    settings = settings or settings_module.get_settings()
    logged = settings
    if process in _QUIET_AT_INFO and settings.log_level == "INFO":
        logged = settings.model_copy(update={"log_level": "WARNING"})
    configure_logging(logged, process)
    engine = make_engine(settings)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine, settings),
        channels=make_channels(settings),
    )


class Notebook(NamedTuple):
    """What an analyst's notebook works with: the runtime, an open session and a viewer."""

    runtime: Runtime
    session: Session
    viewer: Viewer


def notebook() -> Notebook:
    """The first cell of every analyst notebook: `rt, session, viewer = notebook()`."""
    # Relative defaults (var/iotcare.db, .env) mean the project's, as for `make demo`, when the
    # notebook is opened from notebooks/ and IOTCARE_DATABASE_URL is not set.
    project = Path(__file__).resolve().parent.parent
    unset = "IOTCARE_DATABASE_URL" not in os.environ and not Path(".env").exists()
    if unset and (project / "pyproject.toml").exists():
        os.chdir(project)
    runtime = boot(process="notebook")
    session = runtime.sessions()
    log.info("Database: %s", runtime.engine.url.render_as_string(hide_password=True))
    user = session.scalar(select(User).where(User.username == NOTEBOOK_USER, User.active.is_(True)))
    if user is not None:
        viewer = Viewer.of(user)
    else:
        viewer = Viewer(user_id=0, username="analyst", display_name="Analyst", role=Role.OPERATOR)
        log.warning("No %r user: run `iotcare seed demo` for the demo data.", NOTEBOOK_USER)
    _wide_tables()
    return Notebook(runtime, session, viewer)


def _wide_tables() -> None:
    import pandas as pd

    pd.set_option("display.max_columns", 30)
