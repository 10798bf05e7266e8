"""API fixtures: a migrated database per backend (module), the app on it, tokens and alerts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.app import create_app
from core import schema
from core.access import Viewer
from core.alerts import lifecycle
from core.api_tokens import issue_token
from core.db import make_engine
from core.settings import Settings
from models import Alert, RuleKind, Severity, User
from tests.conftest import make_test_settings
from tests.support.databases import throwaway_database


@dataclass
class ApiDatabase:
    """The database the API under test reads; arrange data in `session()` and commit it."""

    url: str
    engine: Engine

    def session(self) -> Session:
        """A session on the database (commit what the API must see)."""
        return Session(self.engine, expire_on_commit=False)


@pytest.fixture(scope="module")
def api_db(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiDatabase]:
    """A migrated database per backend for one module's API tests."""
    directory = tmp_path_factory.mktemp("api")
    with throwaway_database(db_backend, directory) as url:
        engine = make_engine(make_test_settings(directory, database_url=url))
        schema.upgrade(engine)
        try:
            yield ApiDatabase(url, engine)
        finally:
            engine.dispose()


@pytest.fixture
def api_settings(api_db: ApiDatabase, tmp_path: Path) -> Settings:
    """Settings of the API under test (override with `model_copy(update=...)`)."""
    return make_test_settings(tmp_path, database_url=api_db.url)


@pytest.fixture
def make_client(
    api_db: ApiDatabase, api_settings: Settings
) -> Callable[..., tuple[FastAPI, TestClient]]:
    """`make_client(**settings overrides)`: a new app on the test database and its client."""

    def make(**overrides: Any) -> tuple[FastAPI, TestClient]:
        settings = api_settings.model_copy(update=overrides) if overrides else api_settings
        app = create_app(settings, api_db.engine)
        return app, TestClient(app, raise_server_exceptions=False)

    return make


@pytest.fixture
def client(make_client: Callable[..., tuple[FastAPI, TestClient]]) -> TestClient:
    """A client of the API with the test settings."""
    return make_client()[1]


@pytest.fixture
def make_token(api_db: ApiDatabase, api_settings: Settings) -> Callable[..., str]:
    """`make_token(user, scopes=..., expires_at=...)`: a token the user issued for themselves."""

    def make(user: User, scopes: tuple[str, ...] = ("read",), **options: Any) -> str:
        with api_db.session() as session:
            issued = issue_token(
                session,
                api_settings,
                Viewer.of(user),
                user_id=user.id,
                name="test",
                scopes=scopes,
                **options,
            )
            session.commit()
            return issued.secret

    return make


def raise_for(
    session: Session, resident_id: int, site_id: str, severity: Severity = Severity.CRITICAL
) -> Alert:
    """An open alert about a resident (a fall), flushed."""
    return lifecycle.raise_alert(
        session,
        kind=RuleKind.EVENT,
        severity=severity,
        subject=lifecycle.Subject("resident", str(resident_id), site_id, resident_id),
        title="Fall detected",
        details={"event_type": "fall"},
        occurrence=lifecycle.Occurrence("fall"),
    ).alert


def bearer(token: str, **headers: str) -> dict[str, str]:
    """Request headers carrying the token."""
    return {"Authorization": f"Bearer {token}", **headers}
