"""Schemathesis against the API in-process (ASGI), on both backends: no server errors, and every
response (status, content type, body, headers) as the OpenAPI document says.

The schema is loaded at import from an app bound to nothing; the `fuzzed` fixture binds that app
to each backend's seeded database (schemathesis' lazy `from_fixture` loader does not run on
pytest 9: it reads a node attribute pytest no longer has).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import create_engine

from api import OPENAPI_URL
from api.app import bind, create_app
from api.params import CHECKS_BEYOND_SCHEMA
from core.access import Viewer
from core.api_tokens import issue_token
from models import Role, Severity
from tests.api.conftest import ApiDatabase, bearer, raise_for
from tests.conftest import make_test_settings
from tests.factories import Factory

APP = create_app(make_test_settings(Path(tempfile.gettempdir())), engine=create_engine("sqlite://"))
schema = schemathesis.openapi.from_asgi(OPENAPI_URL, APP)
# The token of the backend under test (set by `fuzzed`).
TOKEN: dict[str, str] = {}


@schema.auth(refresh_interval=None)
class BearerToken:
    """The backend's token, on the case itself: the auth checks replay cases without it."""

    def get(self, case: Case, context: Any) -> str:
        return TOKEN.get("value", "")

    def set(self, case: Case, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), **bearer(data)}


@pytest.fixture(scope="module")
def fuzzed(api_db: ApiDatabase, tmp_path_factory: pytest.TempPathFactory) -> str:
    """APP bound to a seeded database of this backend; an admin-scoped operator token."""
    config = make_test_settings(
        tmp_path_factory.mktemp("fuzz"),
        database_url=api_db.url,
        api_rate_limit=1_000_000,
        api_anonymous_rate_limit=1_000_000,
    )
    with api_db.session() as session:
        factory = Factory(session)
        site = factory.site()
        residents = [factory.resident(site) for _ in range(2)]
        operator = factory.user(Role.OPERATOR)
        factory.user(Role.CAREGIVER, residents=(residents[0],))
        for resident in residents:
            raise_for(session, resident.id, site.id)
        raise_for(session, residents[1].id, site.id, Severity.WARNING)
        token = issue_token(
            session,
            config,
            Viewer.of(operator),
            user_id=operator.id,
            name="schemathesis",
            scopes=("admin",),
        ).secret
        session.commit()
    bind(APP, config, api_db.engine)
    TOKEN["value"] = token
    return token


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_keeps_its_contract(case: Case, fuzzed: str) -> None:
    # An operation that checks more than its schema states (and says what, in the document)
    # may refuse a schema-valid request with a 422; every other check still holds for it.
    beyond = CHECKS_BEYOND_SCHEMA in case.operation.definition.raw
    case.call_and_validate(excluded_checks=[positive_data_acceptance] if beyond else None)
