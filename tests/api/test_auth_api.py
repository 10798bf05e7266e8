"""API tokens: missing, wrong, expired, revoked; scopes, rate limits, problems, request ids."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from api.app import create_app
from core.access import Viewer
from core.api_tokens import authenticate_token, digest, revoke_token
from core.logging import ContextFilter
from core.timeutil import utcnow
from models import ApiToken, AuditEntry, Role, User
from tests.api.conftest import ApiDatabase, bearer
from tests.factories import Factory


@pytest.fixture
def operator(api_db: ApiDatabase) -> User:
    with api_db.session() as session:
        user = Factory(session).user(Role.OPERATOR)
        session.commit()
        return user


def test_no_token_is_a_401_problem_in_the_accepted_language(client: TestClient) -> None:
    response = client.get("/api/v1/alerts", headers={"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    problem = response.json()
    assert problem["type"] == "urn:iotcare:problem:unauthorized"
    assert problem["title"] == "인증되지 않음"
    assert problem["status"] == 401
    assert problem["instance"] == "/api/v1/alerts"
    assert problem["detail"] == "API 토큰을 보내세요: Authorization: Bearer <토큰>."
    english = client.get("/api/v1/alerts", headers={"Accept-Language": "fr, en;q=0.8"})
    assert english.json()["title"] == "Not authenticated"


def test_a_wrong_token_is_refused(client: TestClient) -> None:
    response = client.get("/api/v1/alerts", headers=bearer("ict_" + "x" * 43))
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]


def test_the_token_is_kept_only_as_a_keyed_digest(
    api_db: ApiDatabase, api_settings, make_token: Callable[..., str], operator: User
) -> None:
    token = make_token(operator)
    assert token.startswith("ict_") and len(token) >= 4 + 43
    with api_db.session() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.prefix == token[:12]))
        assert row is not None
        assert token not in (row.digest, row.prefix, row.name)
        assert row.digest == digest(api_settings, token)
        entry = session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "token.create", AuditEntry.target_id == str(row.id)
            )
        )
        assert entry is not None and token not in str(entry.details)


def test_expired_and_revoked_tokens_stop_working(
    client: TestClient, api_db: ApiDatabase, api_settings, make_token, operator: User
) -> None:
    soon = make_token(operator, expires_at=utcnow() + timedelta(minutes=5))
    assert client.get("/api/v1/sites", headers=bearer(soon)).status_code == 200
    with api_db.session() as session:
        later = datetime.now(UTC) + timedelta(minutes=6)
        with pytest.raises(Exception, match="not valid"):
            authenticate_token(session, api_settings, soon, now=later)

    revoked = make_token(operator)
    assert client.get("/api/v1/sites", headers=bearer(revoked)).status_code == 200
    with api_db.session() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.prefix == revoked[:12]))
        assert row is not None and row.last_used_at is not None
        revoke_token(session, Viewer.of(operator), row.id)
        session.commit()
    assert client.get("/api/v1/sites", headers=bearer(revoked)).status_code == 401


def test_an_inactive_user_s_token_stops_working(
    client: TestClient, api_db: ApiDatabase, make_token, operator: User
) -> None:
    token = make_token(operator)
    with api_db.session() as session:
        session.get(User, operator.id).active = False
        session.commit()
    assert client.get("/api/v1/sites", headers=bearer(token)).status_code == 401


def test_scopes_only_narrow_the_role(
    client: TestClient, api_db: ApiDatabase, make_token: Callable[..., str]
) -> None:
    with api_db.session() as session:
        family = Factory(session).user(Role.FAMILY)
        session.commit()
    # Even an admin-scoped token of a family user cannot list alerts: the role decides.
    token = make_token(family, scopes=("admin",))
    response = client.get("/api/v1/alerts", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["type"] == "urn:iotcare:problem:forbidden"


def test_too_many_requests_get_429_with_retry_after(
    make_client: Callable[..., tuple[FastAPI, TestClient]], make_token, operator: User
) -> None:
    _app, client = make_client(api_rate_limit=3, api_anonymous_rate_limit=2)
    token = make_token(operator)
    statuses = [client.get("/api/v1/sites", headers=bearer(token)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/api/v1/sites", headers=bearer(token))
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["title"] == "Too many requests"
    anonymous = [client.get("/api/v1/sites").status_code for _ in range(3)]
    assert anonymous == [401, 401, 429]


def test_request_ids_are_returned_and_logged(
    client: TestClient, make_token, operator: User, caplog: pytest.LogCaptureFixture
) -> None:
    token = make_token(operator)
    caplog.set_level(logging.DEBUG, logger="api")
    caplog.handler.addFilter(ContextFilter())
    given = client.get("/api/v1/sites", headers=bearer(token, **{"X-Request-ID": "abc-123"}))
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/api/v1/alerts/not-a-uuid", headers=bearer(token))
    assert made.status_code == 422
    assert len(made.headers["x-request-id"]) == 32
    assert made.json()["request_id"] == made.headers["x-request-id"]
    assert made.json()["errors"][0]["location"] == "path.alert_id"
    unsafe = client.get("/api/v1/sites", headers=bearer(token, **{"X-Request-ID": "a\tb"}))
    assert unsafe.headers["x-request-id"] != "a\tb"
    # Every line of a request carries its id: the access line and the token check alike (the
    # latter from the worker thread the endpoint's dependencies run in).
    first = [r for r in caplog.records if r.context.get("request_id") == "abc-123"]
    assert {r.name for r in first} == {"api.access", "api.auth"}
    made_lines = [
        r for r in caplog.records if r.context.get("request_id") == made.headers["x-request-id"]
    ]
    assert {r.name for r in made_lines} == {"api.access", "api.auth"}


def test_unknown_paths_are_problems_too(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here", headers={"Accept-Language": "ko"})
    assert response.status_code == 404
    assert response.json()["title"] == "찾을 수 없음"


def test_an_unexpected_error_is_a_500_problem_with_the_request_id(
    api_settings, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database that cannot be opened: the health check's query fails unexpectedly.
    broken = create_engine(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    client = TestClient(create_app(api_settings, broken), raise_server_exceptions=False)
    response = client.get(
        "/api/healthz", headers={"X-Request-ID": "boom-1", "Accept-Language": "ko"}
    )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "boom-1"
    assert response.json()["request_id"] == "boom-1"
    assert response.json()["title"] == "서버 오류"
    assert any(r.exc_info and r.name == "api.access" for r in caplog.records)


def test_the_health_check_answers(client: TestClient) -> None:
    assert client.get("/api/healthz").json() == {"status": "ok"}


def test_the_documentation_is_published_without_a_token(client: TestClient) -> None:
    """/docs (and the bare address) lead to the interactive documentation of the document."""
    for path in ("/", "/docs"):
        moved = client.get(path, follow_redirects=False)
        assert moved.status_code == 307 and moved.headers["location"] == "/api/docs"
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert "/api/openapi.json" in page.text
    document = client.get("/api/openapi.json")
    assert document.status_code == 200 and document.json()["info"]["title"] == "IoT Care API"
