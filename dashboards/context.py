"""The app's composition root: settings, one engine per server process, sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core import settings as settings_module
from core.db import make_engine, make_session_factory, session_scope
from core.logging import configure_logging
from core.notify import outbox
from core.settings import Settings


@dataclass(frozen=True)
class AppContext:
    """What every page needs from the process: settings and the database."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]


@st.cache_resource(show_spinner=False)
def app_context() -> AppContext:
    """Built once per server process (a bad setting raises ConfigError naming it)."""
    settings = settings_module.get_settings()
    configure_logging(settings, process="dashboard")
    # Alert changes made in the app (acknowledge, resolve, reopen) queue their notifications.
    outbox.install(settings)
    engine = make_engine(settings)
    return AppContext(settings=settings, engine=engine, sessions=make_session_factory(engine))


@contextmanager
def db_session() -> Iterator[Session]:
    """A session for one piece of page work: committed on success, rolled back on error."""
    with session_scope(app_context().sessions) as session:
        yield session
