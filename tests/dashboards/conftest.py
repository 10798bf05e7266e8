"""AppTest fixtures: a seeded database per backend and the app signed in as any of its users."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from core.access import Viewer
from core.db import make_engine, session_info
from core.seed import seed_demo
from core.settings import Settings, get_settings
from core.timeutil import utcnow
from dashboards.components.i18n import LANGUAGE_KEY
from models import Base, User
from tests.conftest import TEST_SECRET, make_test_settings
from tests.support.databases import migrated_database, single_backend

APP = Path(__file__).resolve().parents[2] / "dashboards" / "streamlit_app.py"
VIEWER_KEY = "iotcare.viewer"
SIGNED_IN_AT_KEY = "iotcare.signed_in_at"


@dataclass
class AppDatabase:
    """The seeded demo database the app under test reads, and the demo staff's passwords."""

    url: str
    engine: Engine
    passwords: dict[str, str]
    site_id: str

    def session(self, settings: Settings | None = None) -> Session:
        """A session to arrange and inspect data (commit what the app must see); with settings,
        alerts it changes queue their notifications, as the app's own sessions do."""
        return Session(self.engine, expire_on_commit=False, info=session_info(settings))

    def user(self, username: str) -> User:
        """A demo user by name (caregiver1..5, operator, admin)."""
        with self.session() as session:
            user = session.scalar(select(User).where(User.username == username))
            assert user is not None, username
            return user


@pytest.fixture(scope="session")
def db_backend() -> str:
    """Pages run on one backend: their queries run on both in tests/integration."""
    return single_backend()


@pytest.fixture(scope="module")
def app_db(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppDatabase]:
    """A migrated database with the demo site seeded, per backend, for a module's page tests."""
    directory = tmp_path_factory.mktemp("app")
    with migrated_database(db_backend, directory) as url:
        engine = make_engine(make_test_settings(directory, database_url=url))
        with Session(engine, expire_on_commit=False) as session:
            seeded = seed_demo(session)
            session.commit()
        passwords = {login.username: login.password for login in seeded.logins}
        try:
            yield AppDatabase(url, engine, passwords, seeded.site_id)
        finally:
            engine.dispose()


def empty_tables(db: AppDatabase, *models: type[Base]) -> None:
    """Delete every row of these tables (tests that need a known state start from none)."""
    with db.engine.begin() as conn:
        for model in models:
            conn.execute(model.__table__.delete())


@pytest.fixture
def open_app(
    app_db: AppDatabase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., AppTest]]:
    """`open_app(username, page, query, language, context, cookies)`: the app run once, signed in
    as them; `cookies` are what the browser sends when it connects (AppTest cannot seed them)."""
    env = {
        "IOTCARE_ENVIRONMENT": "test",
        "IOTCARE_DATABASE_URL": app_db.url,
        "IOTCARE_SECRET_KEY": TEST_SECRET,
        "IOTCARE_DATA_DIR": str(tmp_path),
        "IOTCARE_LOG_LEVEL": "WARNING",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    st.cache_resource.clear()
    st.cache_data.clear()

    def open_(
        username: str | None = None,
        page: str | None = None,
        query: dict[str, Any] | None = None,
        timeout: float = 60,
        language: str | None = None,
        context: dict[str, Any] | None = None,
        cookies: dict[str, str] | None = None,
    ) -> AppTest:
        sent = dict(cookies or {})
        monkeypatch.setattr("dashboards.components.auth.sent_cookies", lambda: sent)
        at = AppTest.from_file(str(APP), default_timeout=timeout)
        at.context = dict(context or {})  # what the browser tells st.context (e.g. its locale)
        for key, value in (query or {}).items():
            at.query_params[key] = value
        if username is not None:
            viewer = Viewer.of(app_db.user(username))
            at.session_state[VIEWER_KEY] = viewer
            at.session_state[SIGNED_IN_AT_KEY] = utcnow()
            # As after signing in: the page speaks the user's language (Korean for caregivers).
            at.session_state[LANGUAGE_KEY] = language or viewer.language
        at.run()
        if page is not None:
            at.switch_page(f"app_pages/{page}.py").run()
        return at

    yield open_
    from dashboards.context import app_context

    with contextlib.suppress(Exception):  # the app may never have built its context
        app_context().engine.dispose()
    st.cache_resource.clear()
    get_settings.cache_clear()


def texts(at: AppTest) -> str:
    """Everything readable on the page (markdown, captions, titles, alerts, metrics), joined."""
    parts: list[str] = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "info",
        "success",
        "warning",
        "error",
        "text",
    ):
        parts.extend(str(element.value) for element in getattr(at, kind))
    parts.extend(f"{metric.label} {metric.value}" for metric in at.metric)
    return "\n".join(parts)


def no_exception(at: AppTest) -> None:
    """Fail with the page's traceback if it raised."""
    assert not at.exception, "\n".join(str(e.value) for e in at.exception)
