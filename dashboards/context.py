"""The app's composition root: one boot (core.bootstrap) per server process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.orm import Session

from core.bootstrap import Runtime, boot
from core.db import session_scope


@st.cache_resource(show_spinner=False)
def app_context() -> Runtime:
    """What every page needs from the process (settings, the database, the channels), built once
    per server process (a bad setting raises ConfigError naming it)."""
    return boot(process="dashboard")


@contextmanager
def db_session() -> Iterator[Session]:
    """A session for one piece of page work: committed on success, rolled back on error."""
    with session_scope(app_context().sessions) as session:
        yield session
