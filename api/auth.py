"""Who calls: the bearer token's user (as a core.access Viewer), its scopes, and rate limits.

A token acts as its user through the same access layer as the app, so a caregiver's token sees
only their residents; the endpoint's scope narrows that further. Requests are counted per token,
and without a valid token per client address, in in-process token buckets (api.ratelimit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.problems import NotAuthenticated, RateLimited, ScopeMissing
from core.api_tokens import Scope, TokenIdentity, TokenRejected, authenticate_token
from core.settings import Settings

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token (`ict_…`) from the admin or Account page, or `iotcare tokens "
    "create`: `Authorization: Bearer ict_…`.",
)


def settings_of(request: Request) -> Settings:
    """The API process's settings."""
    return request.app.state.settings  # type: ignore[no-any-return]


def db_session(request: Request) -> Iterator[Session]:
    """A session for one request; endpoints commit what they change, the rest is rolled back."""
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


def client_address(request: Request) -> str:
    """The calling address as the API sees it (behind Caddy: the proxy's, see docs/api.md)."""
    return request.client.host if request.client else "unknown"


def limit_anonymous(request: Request) -> None:
    """Count a request without a valid token against its client address."""
    wait = request.app.state.anonymous_limits.take(f"ip:{client_address(request)}")
    if wait is not None:
        raise RateLimited(wait)


def current_token(
    request: Request,
    session: Annotated[Session, Depends(db_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> TokenIdentity:
    """The valid token of the request (401 otherwise), counted against its rate limit."""
    if credentials is None:
        limit_anonymous(request)
        raise NotAuthenticated(
            "Send an API token: Authorization: Bearer <token>.", key="errors.api.no_token"
        )
    try:
        identity = authenticate_token(session, settings_of(request), credentials.credentials)
    except TokenRejected:
        limit_anonymous(request)
        raise
    # last_used_at, when it moved (at most once a minute per token).
    session.commit()
    request.state.language = identity.viewer.language
    log.debug("token %s acts as %s", identity.prefix, identity.viewer.username)
    request.state.token_prefix = identity.prefix
    wait = request.app.state.token_limits.take(f"token:{identity.token_id}")
    if wait is not None:
        raise RateLimited(wait)
    return identity


def scoped(scope: Scope) -> Callable[..., TokenIdentity]:
    """A dependency: the request's token, which must carry `scope` (or admin); 403 otherwise."""

    def check(identity: Annotated[TokenIdentity, Depends(current_token)]) -> TokenIdentity:
        if not identity.allows(scope):
            raise ScopeMissing(
                f"This token lacks the '{scope.value}' scope.",
                key="errors.api.scope_missing",
                scope=scope.value,
            )
        return identity

    return check


Session_ = Annotated[Session, Depends(db_session)]
Reader = Annotated[TokenIdentity, Depends(scoped(Scope.READ))]
Acknowledger = Annotated[TokenIdentity, Depends(scoped(Scope.ACKNOWLEDGE))]
Writer = Annotated[TokenIdentity, Depends(scoped(Scope.WRITE))]
Commander = Annotated[TokenIdentity, Depends(scoped(Scope.COMMANDS))]
Administrator = Annotated[TokenIdentity, Depends(scoped(Scope.ADMIN))]
