"""Creating and finding users (caregivers, operators, admins)."""

from __future__ import annotations

import re
from datetime import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.errors import ConflictError, IotCareError, NotFoundError
from core.i18n import LANGUAGES
from core.security import MIN_PASSWORD_LENGTH, hash_password, verify_password
from core.timeutil import utcnow
from models import CaregiverAssignment, Channel, ContactChannel, Resident, Role, User

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


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
    """The active user whose password matches, or None (same answer for any failure)."""
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None or not user.active or not verify_password(user.password_hash, password):
        return None
    user.last_login_at = utcnow()
    return user


def assign(session: Session, user: User, resident: Resident, tier: int = 1) -> None:
    """Make a caregiver responsible for a resident (tier 1 on duty, 2 supervisor)."""
    if user.role is not Role.CAREGIVER:
        raise IotCareError(
            f"Only caregivers are assigned to residents; '{user.username}' is {user.role.value}."
        )
    session.add(CaregiverAssignment(user_id=user.id, resident_id=resident.id, tier=tier))


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
