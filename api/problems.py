"""Errors as RFC 9457 problem details (application/problem+json), in the reader's language.

Every error the API returns is one of these: validation (422), a missing or bad token (401),
a role or scope that does not allow it (403), something missing or not the caller's to see
(404), a state that forbids it (409), too many requests (429, with Retry-After). `title` and
`detail` are in the token user's language, else the Accept-Language one, else English; the
detail is the same catalogue message the app shows.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.ratelimit import retry_after_header
from core.access import AccessDenied
from core.api_tokens import TokenError, TokenRejected
from core.errors import ConflictError, IotCareError, NotFoundError
from core.i18n import LANGUAGES, normalize_language, translate

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:iotcare:problem:"


class ProblemField(BaseModel):
    """One invalid value of a request."""

    location: str = Field(description="Where: body, query, path or header, then the field.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field(description="A URN naming the kind of problem, e.g. urn:iotcare:problem:…")
    title: str = Field(
        description="Short summary of the kind of problem, in the reader's language."
    )
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong this time, in the reader's language.")
    instance: str = Field(description="The request path.")
    request_id: str | None = Field(None, description="The request's X-Request-ID.")
    errors: list[ProblemField] | None = Field(None, description="Invalid values (422 only).")


class NotAuthenticated(IotCareError):
    """No bearer token was given."""


class ScopeMissing(IotCareError):
    """The token's scopes do not include what the endpoint needs."""


class InvalidRequest(IotCareError):
    """A value of the request is not acceptable (beyond what the schema can say)."""


class RateLimited(IotCareError):
    """Too many requests from one token or address: wait `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("Too many requests.", key="errors.api.rate_limited")
        self.retry_after = retry_after


# Exception class → (status, problem slug); the first matching class wins.
_STATUS: tuple[tuple[type[IotCareError], int, str], ...] = (
    (NotAuthenticated, 401, "unauthorized"),
    (TokenRejected, 401, "unauthorized"),
    (ScopeMissing, 403, "insufficient-scope"),
    (AccessDenied, 403, "forbidden"),
    (NotFoundError, 404, "not-found"),
    (ConflictError, 409, "conflict"),
    (RateLimited, 429, "rate-limited"),
    (InvalidRequest, 422, "validation"),
    (TokenError, 422, "validation"),
)
_SLUG_BY_STATUS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    422: "validation",
    429: "rate-limited",
    500: "server-error",
}


def request_language(request: Request) -> str:
    """The token user's language when authenticated, else the best Accept-Language one."""
    chosen = getattr(request.state, "language", None)
    if chosen:
        return normalize_language(chosen)
    return accept_language(request.headers.get("accept-language"))


def accept_language(header: str | None) -> str:
    """The first of our languages in an Accept-Language header, by q value; else English."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        code = tag.strip().replace("_", "-").split("-")[0].lower()
        if code in LANGUAGES and quality > 0:
            ranked.append((-quality, position, code))
    return min(ranked)[2] if ranked else normalize_language(None)


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: list[ProblemField] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The problem+json response for `status`."""
    lang = request_language(request)
    kind = slug or _SLUG_BY_STATUS.get(status, "bad-request")
    body = Problem(
        type=TYPE_BASE + kind,
        title=translate(f"api.problem.{kind}", lang),
        status=status,
        detail=detail,
        instance=request.url.path,
        request_id=getattr(request.state, "request_id", None),
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers={**(headers or {}), "Content-Language": lang},
    )


def _iotcare_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, IotCareError)
    lang = request_language(request)
    status, slug = next(
        ((code, name) for kind, code, name in _STATUS if isinstance(error, kind)),
        (422, "validation"),
    )
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="iotcare"'
    if isinstance(error, RateLimited):
        headers["Retry-After"] = retry_after_header(error.retry_after)
    return problem_response(request, status, error.localized(lang), slug=slug, headers=headers)


def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    lang = request_language(request)
    fields = [
        ProblemField(
            location=".".join(str(part) for part in item.get("loc", ())),
            message=str(item.get("msg", "")),
        )
        for item in error.errors()
    ]
    names = ", ".join(field.location for field in fields) or "-"
    detail = translate("errors.api.invalid_fields", lang, fields=names)
    return problem_response(request, 422, detail, errors=fields)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this path.

    Starlette's 405 names only the methods of the first route matching the path, but a path
    may have one route per method (GET /devices and POST /devices).
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    lang = request_language(request)
    slug = _SLUG_BY_STATUS.get(error.status_code, "bad-request")
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(
        request,
        error.status_code,
        translate(f"errors.api.http.{slug}", lang),
        slug=slug,
        headers=headers,
    )


def server_error(request: Request, request_id: str) -> JSONResponse:
    """The 500 problem for an unexpected error (logged by the caller with its traceback)."""
    request.state.request_id = request_id
    return problem_response(
        request, 500, translate("errors.api.http.server-error", request_language(request))
    )


def install(app: FastAPI) -> None:
    """Answer every error of `app` with a problem detail."""
    app.add_exception_handler(IotCareError, _iotcare_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Anything else becomes a 500 problem in api.middleware.RequestIdMiddleware.


def _described(description: str) -> dict[str, Any]:
    # Problem's schema is added to the document's components by api.app.openapi_document.
    return {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# The error responses every authenticated operation may give, for the OpenAPI document.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _described("The request body cannot be read (not JSON, or not UTF-8)."),
    401: _described("No token, or a token that is unknown, expired or revoked."),
    403: _described("The token's role or scopes do not allow this."),
    404: _described("Not found, or not the token user's to see."),
    409: _described("The resource's state does not allow this."),
    422: _described("A value of the request is not valid."),
    429: _described("Too many requests: wait Retry-After seconds."),
}
