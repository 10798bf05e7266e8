"""API tokens for integrations: issue (shown once), list, revoke, and check a presented token.

A token is `ict_` and 43 URL-safe characters (32 random bytes). Only its HMAC-SHA256 with the
secret key is stored (an Argon2 hash per request would cost tens of milliseconds for nothing:
32 random bytes cannot be guessed, so a keyed digest is as safe and one indexed lookup), plus its
first characters (`prefix`) so people can tell their tokens apart. Rotating the secret key
therefore invalidates every token, like every session and one-click link.

A token acts as its user through the same access layer as the app (core.access.Viewer): a
caregiver's token sees only their residents. Its scopes only narrow what the user may do.
A service account is a user flagged `is_service`: it has a role like anyone, but cannot sign in
to the app (core.users.authenticate refuses it) and acts only through its tokens.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.access import Permission, Viewer, acting_user, require
from core.errors import IotCareError, NotFoundError
from core.security import generate_password, sign
from core.settings import Settings
from core.timeutil import ensure_utc, utcnow
from core.users import create_user
from models import ApiToken, Role, User

TOKEN_PREFIX = "ict_"  # noqa: S105  (a format tag, not a secret)
PREFIX_LENGTH = 12  # "ict_" and 8 random characters: enough to tell tokens apart, useless alone
NAME_MAX_CHARS = 100
# Writing last_used_at on every request would make every read a write; once a minute is enough.
LAST_USED_GRANULARITY = timedelta(minutes=1)
# Keeps these digests apart from anything else keyed with the same secret (sessions, links).
_PURPOSE = b"iotcare.api-token."


class Scope(StrEnum):
    """What a token may be used for, on top of what its user's role allows."""

    READ = "read"  # list and read what the user sees
    ACKNOWLEDGE = "acknowledge"  # acknowledge, resolve and comment on alerts
    WRITE = "write"  # change configuration: devices, rules, silences
    COMMANDS = "commands"  # send actuator commands to devices
    ADMIN = "admin"  # everything the user's role allows


DEFAULT_SCOPES = (Scope.READ,)


class TokenRejected(IotCareError):
    """A presented token is unknown, malformed, expired, revoked, or its user is inactive."""


class TokenError(IotCareError):
    """A token cannot be issued or revoked as asked."""


@dataclass(frozen=True)
class IssuedToken:
    """A new token: the row, and the token itself, shown once and never again."""

    row: ApiToken
    secret: str


@dataclass(frozen=True)
class TokenIdentity:
    """Who a valid token acts as, and what it may be used for."""

    token_id: int
    prefix: str
    viewer: Viewer
    scopes: frozenset[Scope]

    def allows(self, scope: Scope) -> bool:
        """Whether the token's scopes include `scope` (admin includes every scope)."""
        return scope in self.scopes or Scope.ADMIN in self.scopes


def digest(settings: Settings, token: str) -> str:
    """The keyed digest stored for a token."""
    return sign(settings.resolve_secret_key(), _PURPOSE, token)


def parse_scopes(values: list[str] | tuple[str, ...] | None) -> list[Scope]:
    """Scopes from their names, deduplicated in the canonical order; TokenError for unknown."""
    chosen: set[Scope] = set()
    for value in values or DEFAULT_SCOPES:
        try:
            chosen.add(Scope(str(value).strip().lower()))
        except ValueError:
            raise TokenError(
                f"Unknown scope '{value}': use {', '.join(s.value for s in Scope)}.",
                key="errors.tokens.bad_scope",
                scope=value,
                scopes=", ".join(s.value for s in Scope),
            ) from None
    return [scope for scope in Scope if scope in chosen]


def _may_manage(viewer: Viewer, user_id: int) -> None:
    """A person manages their own tokens; an admin (MANAGE_USERS) everyone's."""
    if viewer.user_id != user_id:
        require(viewer, Permission.MANAGE_USERS)
    else:
        require(viewer, Permission.OWN_ACCOUNT)


def issue_token(
    session: Session,
    settings: Settings,
    viewer: Viewer,
    *,
    user_id: int,
    name: str,
    scopes: list[str] | tuple[str, ...] | None = None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """Issue a token for `user_id` (the viewer's own, or anyone's for an admin); audited."""
    _may_manage(viewer, user_id)
    actor = acting_user(session, viewer)
    owner = session.get(User, user_id)
    if owner is None or not owner.active:
        raise NotFoundError(f"No active user {user_id}.", key="errors.tokens.user_missing")
    label = name.strip()
    if not label or len(label) > NAME_MAX_CHARS:
        raise TokenError(
            f"Name the token in 1 to {NAME_MAX_CHARS} characters.",
            key="errors.tokens.bad_name",
            limit=NAME_MAX_CHARS,
        )
    at = ensure_utc(now or utcnow())
    if expires_at is not None and ensure_utc(expires_at) <= at:
        raise TokenError("The expiry must be in the future.", key="errors.tokens.past_expiry")
    chosen = parse_scopes(list(scopes) if scopes else None)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=owner.id,
        name=label,
        prefix=secret[:PREFIX_LENGTH],
        digest=digest(settings, secret),
        scopes=[scope.value for scope in chosen],
        created_at=at,
        created_by=actor.id,
        expires_at=ensure_utc(expires_at) if expires_at else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "token.create",
        "token",
        row.id,
        user=owner.username,
        name=label,
        prefix=row.prefix,
        scopes=row.scopes,
        expires_at=row.expires_at.isoformat() if row.expires_at else None,
    )
    return IssuedToken(row, secret)


def list_tokens(session: Session, viewer: Viewer, user_id: int | None = None) -> list[ApiToken]:
    """Tokens of one user (own, or anyone's for an admin), or every token (admin); newest first."""
    if user_id is None:
        require(viewer, Permission.MANAGE_USERS)
    else:
        _may_manage(viewer, user_id)
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list(session.scalars(query))


def token_state(token: ApiToken, now: datetime | None = None) -> str:
    """active, expired or revoked (a key under tokens.state in the catalogue)."""
    at = ensure_utc(now or utcnow())
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and ensure_utc(token.expires_at) <= at:
        return "expired"
    return "active"


def revoke_token(
    session: Session, viewer: Viewer, token_id: int, now: datetime | None = None
) -> ApiToken:
    """Revoke a token (the viewer's own, or anyone's for an admin); revoking twice is a no-op."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFoundError(f"No token {token_id}.", key="errors.tokens.missing", token=token_id)
    _may_manage(viewer, token.user_id)
    if token.revoked_at is not None:
        return token
    actor = acting_user(session, viewer)
    token.revoked_at = ensure_utc(now or utcnow())
    audit.record(session, actor, "token.revoke", "token", token.id, prefix=token.prefix)
    return token


def authenticate_token(
    session: Session, settings: Settings, presented: str, now: datetime | None = None
) -> TokenIdentity:
    """Who a presented token acts as; TokenRejected (one message for every cause) otherwise.

    Marks the token used (at most once a minute). The caller commits.
    """
    at = ensure_utc(now or utcnow())
    text = presented.strip()
    if not text.startswith(TOKEN_PREFIX) or len(text) > 200:
        raise TokenRejected("The API token is not valid.", key="errors.tokens.rejected")
    row = session.scalar(select(ApiToken).where(ApiToken.digest == digest(settings, text)))
    if row is None or token_state(row, at) != "active":
        raise TokenRejected("The API token is not valid.", key="errors.tokens.rejected")
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise TokenRejected("The API token is not valid.", key="errors.tokens.rejected")
    if row.last_used_at is None or at - ensure_utc(row.last_used_at) >= LAST_USED_GRANULARITY:
        row.last_used_at = at
    scopes = frozenset(Scope(value) for value in row.scopes if value in Scope._value2member_map_)
    return TokenIdentity(row.id, row.prefix, Viewer.of(user), scopes)


def create_service_account(
    session: Session,
    viewer: Viewer,
    *,
    username: str,
    role: Role | str,
    display_name: str | None = None,
    site_id: str | None = None,
    language: str = "en",
) -> User:
    """An admin creates a service account: a user with a role that acts only through tokens."""
    require(viewer, Permission.MANAGE_USERS)
    actor = acting_user(session, viewer)
    if Role(role) is Role.FAMILY:
        raise TokenError(
            "A service account cannot be a family user.", key="errors.tokens.family_service"
        )
    # The password is random and never shown: nobody signs in as a service account anyway.
    user = create_user(
        session,
        username=username,
        password=generate_password(32),
        role=role,
        display_name=display_name,
        language=language,
        site_id=site_id,
        actor=actor,
    )
    # Never told of alerts either (core.notify.routes leaves service accounts out).
    user.is_service = True
    audit.record(session, actor, "user.service_account", "user", user.id, role=user.role.value)
    return user
