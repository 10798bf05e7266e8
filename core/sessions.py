"""Signed-in app sessions that survive a browser reload, enforced and revocable on the server.

Signing in stores a session row and gives the browser a token `s1.<session id>.<signature>`
(an HMAC with the secret key). The token alone grants nothing: each use looks the row up, so the
session timeout (from sign-in) is checked here, and signing out deletes the row, after which the
token is refused even if it was copied (the app keeps it in a cookie: dashboards/components/auth).
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.security import sign, signature_matches
from core.settings import Settings
from core.timeutil import ensure_utc, utcnow
from models import AppSession, User

TOKEN_VERSION = "s1"  # noqa: S105  (a format tag, not a secret)
# Keeps these signatures apart from anything else signed with the same key (ack links).
_PURPOSE = b"iotcare.session."


def _parse(settings: Settings, token: str) -> str | None:
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION:
        return None
    body = f"{parts[0]}.{parts[1]}"
    if not signature_matches(settings.resolve_secret_key(), _PURPOSE, body, parts[2]):
        return None
    return parts[1]


def start_session(
    session: Session, settings: Settings, user: User, now: datetime | None = None
) -> str:
    """Record a new session for a user who just signed in; the signed token for the browser."""
    at = ensure_utc(now or utcnow())
    session_id = secrets.token_urlsafe(24)
    # Housekeeping on the way: sessions past their timeout can never be resumed.
    session.execute(
        delete(AppSession).where(AppSession.signed_in_at < at - settings.session_timeout)
    )
    session.add(AppSession(id=session_id, user_id=user.id, signed_in_at=at, last_seen_at=at))
    body = f"{TOKEN_VERSION}.{session_id}"
    return f"{body}.{sign(settings.resolve_secret_key(), _PURPOSE, body)}"


def resume_session(
    session: Session, settings: Settings, token: str, now: datetime | None = None
) -> tuple[User, datetime] | None:
    """(active user, signed-in time) of a live session, or None: forged, ended, expired.

    An expired session's row is deleted, so its token stays refused.
    """
    at = ensure_utc(now or utcnow())
    session_id = _parse(settings, token)
    row = session.get(AppSession, session_id) if session_id else None
    if row is None:
        return None
    signed_in_at = ensure_utc(row.signed_in_at)
    user = session.get(User, row.user_id)
    if at - signed_in_at > settings.session_timeout or user is None or not user.active:
        session.delete(row)
        return None
    row.last_seen_at = at
    return user, signed_in_at


def end_session(session: Session, settings: Settings, token: str) -> None:
    """Sign out: the session's row goes, and with it every copy of the token."""
    session_id = _parse(settings, token)
    if session_id:
        session.execute(delete(AppSession).where(AppSession.id == session_id))
