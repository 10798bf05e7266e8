"""Composition root of the API process: settings, engine, sessions, rate limits and routers.

A resource is a module api/routers/<resource>.py with a `router`; adding it to ROUTERS below is
the one line that publishes it (under /api/v1, with the problem responses documented).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine

from api import API_PREFIX, DOCS_URL, OPENAPI_URL, VERSION_PREFIX, problems
from api.middleware import RequestIdMiddleware
from api.ratelimit import TokenBuckets
from api.routers import (
    ack,
    alerts,
    commands,
    devices,
    health,
    readings,
    reports,
    residents,
    residents_admin,
    rules,
    silences,
    sites,
    sites_admin,
)
from core.db import make_engine, make_session_factory
from core.settings import Settings

API_VERSION = "1.0.0"

# Resource routers, each published under /api/v1.
ROUTERS = (
    alerts.router,
    sites.router,
    sites_admin.router,
    residents.router,
    residents_admin.router,
    readings.router,
    reports.router,
    devices.router,
    commands.router,
    rules.router,
    silences.router,
)

DESCRIPTION = """The IoT Care HTTP API for integrations: alerts, sites and residents, readings and
rollups (JSON or CSV), care reports, devices, commands, rules and silences, acting as
the token's user with the same access rules as the app (a caregiver's token sees only their
residents). Create a token on the Account page, the admin page's Tokens tab, or with
`iotcare tokens create`; send it as `Authorization: Bearer ict_…`.

Errors are RFC 9457 problem details (`application/problem+json`) in the token user's language
(else Accept-Language). Every response carries an `X-Request-ID` (yours, if you sent one).
"""


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The API application; `engine` defaults to a new one on settings.database_url."""
    app = FastAPI(
        title="IoT Care API",
        version=API_VERSION,
        description=DESCRIPTION,
        docs_url=DOCS_URL,
        redoc_url=None,
        openapi_url=OPENAPI_URL,
    )
    bind(app, settings, engine or make_engine(settings))
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix=VERSION_PREFIX, responses=problems.PROBLEM_RESPONSES)
    # People's pages and the health check, not integrations' operations: not in the document.
    app.include_router(ack.router, prefix=API_PREFIX)
    app.include_router(health.router, prefix=API_PREFIX)
    # Someone opening the API's own address at /docs (or /) is sent to the documentation.
    for path in ("/", "/docs"):
        app.add_api_route(path, _to_docs, include_in_schema=False, methods=["GET"])
    app.add_middleware(RequestIdMiddleware)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app


def _to_docs() -> RedirectResponse:
    return RedirectResponse(DOCS_URL, status_code=307)


def bind(app: FastAPI, settings: Settings, engine: Engine) -> None:
    """(Re)attach the process resources: settings, engine, sessions and fresh rate limits."""
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_session_factory(engine, settings)
    app.state.token_limits = TokenBuckets(settings.api_rate_limit)
    app.state.anonymous_limits = TokenBuckets(settings.api_anonymous_rate_limit)


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of `app`, with the problem-detail schemas (made once, then cached)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        problem = problems.Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(problem.pop("$defs", {}))
        schemas["Problem"] = problem
        app.openapi_schema = document
    return app.openapi_schema


def render(settings: Settings) -> str:
    """docs/openapi.json: the document, stably formatted (a test keeps the file equal to it)."""
    app = create_app(settings, engine=_no_engine())
    return json.dumps(openapi_document(app), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def _no_engine() -> Engine:
    # Rendering the document connects to nothing: an in-memory SQLite engine is never used.
    from sqlalchemy import create_engine

    return create_engine("sqlite://")
