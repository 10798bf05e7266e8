"""Creating and finding users (caregivers, operators, admins)."""

from __future__ import annotations

import math
import re
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core import audit
from core.errors import ConflictError, IotCareError, NotFoundError
from core.i18n import LANGUAGES
from core.security import MIN_PASSWORD_LENGTH, hash_password, verify_password
from core.timeutil import ensure_utc, utcnow
from models import (
    CaregiverAssignment,
    Channel,
    ContactChannel,
    FamilyLink,
    Resident,
    Role,
    SignInFailure,
    User,
)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

# Sign-in throttling: after USER_FAILURE_LIMIT failures for one username (or CLIENT_FAILURE_LIMIT
# from one client, which may be a whole care home behind one address) within FAILURE_WINDOW,
# sign-in is locked for FIRST_LOCK, doubling with each further failure up to FAILURE_WINDOW.
FAILURE_WINDOW = timedelta(minutes=15)
USER_FAILURE_LIMIT = 5
CLIENT_FAILURE_LIMIT = 20
FIRST_LOCK = timedelta(seconds=30)


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role | str,
    display_name: str | None = None,
    language: str = "en",
    site_id: str | None = None,
    quiet_hours: tuple[time, time] | None = None,
    actor: User | None = None,
) -> User:
    """Create a user after checking username, password strength, role and language."""
    username = username.strip().lower()
    if not USERNAME_RE.match(username):
        raise IotCareError(
            f"Username '{username}' is not valid: use 2-64 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter or digit."
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise IotCareError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    try:
        role = Role(role)
    except ValueError:
        raise IotCareError(
            f"Unknown role '{role}': use one of {', '.join(r.value for r in Role)}."
        ) from None
    if language not in LANGUAGES:
        raise IotCareError(f"Unknown language '{language}': use one of {', '.join(LANGUAGES)}.")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ConflictError(f"A user named '{username}' exists already.")
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        password_hash=hash_password(password),
        language=language,
        site_id=site_id,
        quiet_start=quiet_hours[0] if quiet_hours else None,
        quiet_end=quiet_hours[1] if quiet_hours else None,
    )
    session.add(user)
    session.flush()
    session.add(ContactChannel(user_id=user.id, channel=Channel.INBOX, address=username))
    audit.record(session, actor, "user.create", "user", user.id, role=role.value)
    return user


def get_user(session: Session, username: str) -> User:
    """The user with this username, or NotFoundError."""
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFoundError(f"No user named '{username}'.")
    return user


def set_password(session: Session, user: User, password: str, actor: User | None = None) -> None:
    """Replace a user's password (hashed) and audit it."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise IotCareError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")
    user.password_hash = hash_password(password)
    audit.record(session, actor, "user.password", "user", user.id)


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user whose password matches, or None (same answer, same time, any failure)."""
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    # Service accounts act only through API tokens: they never sign in to the app.
    active = user if user is not None and user.active and not user.is_service else None
    # Unknown and inactive users are checked against a dummy hash: as slow as a wrong password.
    matches = verify_password(active.password_hash if active else None, password)
    if active is None or not matches:
        return None
    active.last_login_at = utcnow()
    return active


class SignInLocked(IotCareError):
    """Too many failed sign-ins for this username or from this client: wait until `until`."""

    def __init__(self, until: datetime, now: datetime) -> None:
        minutes = max(1, math.ceil((until - now).total_seconds() / 60))
        super().__init__(
            f"Too many failed sign-ins. Try again in {minutes} minute(s).",
            key=f"errors.sign_in_locked.{'one' if minutes == 1 else 'other'}",
            minutes=minutes,
        )
        self.until = until


def _locked_until(
    session: Session, column: InstrumentedAttribute[Any], value: str, limit: int, now: datetime
) -> datetime | None:
    failures = list(
        session.scalars(
            select(SignInFailure.at)
            .where(column == value, SignInFailure.at > now - FAILURE_WINDOW)
            .order_by(SignInFailure.at)
        )
    )
    if len(failures) < limit:
        return None
    # Each failure past the limit doubles the wait, up to the window itself.
    delay = min(FIRST_LOCK * 2 ** (len(failures) - limit), FAILURE_WINDOW)
    until = ensure_utc(failures[-1]) + delay
    return until if until > now else None


def sign_in(
    session: Session,
    username: str,
    password: str,
    *,
    client: str | None = None,
    now: datetime | None = None,
) -> User | None:
    """Authenticate with throttling: the user, None for a wrong password, or SignInLocked.

    Failures count per username (known or not, so a lock reveals nothing about who exists) and
    per client; while locked, even the right password is refused without being checked. Every
    failure and refusal is audited in the caller's transaction.
    """
    at = ensure_utc(now or utcnow())
    name = username.strip().lower()[:64]
    client = client[:64] if client else None
    locks = [_locked_until(session, SignInFailure.username, name, USER_FAILURE_LIMIT, at)]
    if client:
        locks.append(_locked_until(session, SignInFailure.client, client, CLIENT_FAILURE_LIMIT, at))
    until = max((lock for lock in locks if lock), default=None)
    if until is not None:
        audit.record(
            session,
            None,
            "user.sign_in_locked",
            "user",
            name,
            client=client,
            until=until.isoformat(),
        )
        raise SignInLocked(until, at)
    user = authenticate(session, name, password)
    if user is None:
        session.add(SignInFailure(username=name, client=client, at=at))
        audit.record(session, None, "user.sign_in_failed", "user", name, client=client)
        return None
    # Success clears this username's count; rows older than the window no longer count at all.
    session.execute(
        delete(SignInFailure).where(
            (SignInFailure.username == name) | (SignInFailure.at < at - FAILURE_WINDOW)
        )
    )
    audit.record(session, user, "user.sign_in", "user", user.id, client=client)
    return user


def assign(session: Session, user: User, resident: Resident, tier: int = 1) -> None:
    """Make a caregiver responsible for a resident (tier 1 on duty, 2 supervisor)."""
    if user.role is not Role.CAREGIVER:
        raise IotCareError(
            f"Only caregivers are assigned to residents; '{user.username}' is {user.role.value}."
        )
    session.add(CaregiverAssignment(user_id=user.id, resident_id=resident.id, tier=tier))


def link_family(
    session: Session, user: User, resident: Resident, relation: str | None = None
) -> FamilyLink:
    """Link a family user to a resident they follow (their state and daily report)."""
    if user.role is not Role.FAMILY:
        raise IotCareError(
            f"Only family users follow residents; '{user.username}' is {user.role.value}.",
            key="errors.family_role_only",
            username=user.username,
        )
    existing = session.scalar(
        select(FamilyLink).where(
            FamilyLink.user_id == user.id, FamilyLink.resident_id == resident.id
        )
    )
    if existing is not None:
        existing.relation = relation or existing.relation
        return existing
    link = FamilyLink(user_id=user.id, resident_id=resident.id, relation=relation or None)
    session.add(link)
    session.flush()
    return link


def change_own_password(session: Session, user: User, current: str, new: str) -> None:
    """A person replaces their own password, proving they know the current one."""
    if not verify_password(user.password_hash, current):
        raise IotCareError("The current password is not right.", key="errors.password_wrong")
    if len(new) < MIN_PASSWORD_LENGTH:
        raise IotCareError(
            f"The password must have at least {MIN_PASSWORD_LENGTH} characters.",
            key="errors.password_short",
            n=MIN_PASSWORD_LENGTH,
        )
    set_password(session, user, new, actor=user)


def update_preferences(
    session: Session,
    user: User,
    *,
    language: str | None = None,
    quiet_hours: tuple[time, time] | bool | None = False,
    actor: User | None = None,
) -> None:
    """Change a user's language and/or quiet hours (None clears them; False leaves them)."""
    changed: dict[str, str | None] = {}
    if language is not None:
        if language not in LANGUAGES:
            raise IotCareError(f"Unknown language '{language}'.", key="errors.language_unknown")
        user.language = language
        changed["language"] = language
    if quiet_hours is not False:
        if quiet_hours is None or quiet_hours is True:
            user.quiet_start = user.quiet_end = None
            changed["quiet_hours"] = None
        else:
            start, end = quiet_hours
            if start == end:
                raise IotCareError(
                    "Quiet hours must start and end at different times.",
                    key="errors.quiet_hours_empty",
                )
            user.quiet_start, user.quiet_end = start, end
            changed["quiet_hours"] = f"{start:%H:%M}-{end:%H:%M}"
    if changed:
        audit.record(session, actor or user, "user.preferences", "user", user.id, **changed)
