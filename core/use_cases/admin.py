"""Users and access for admins: accounts, roles, caregiver assignments, contact channels, quiet
hours.

Built on core.users (create_user, set_password, assign, update_preferences), which checks
things with English-only messages: every function here validates first and raises with a
catalogue key, so the admin reads what is wrong in their language. Every change is audited
with the acting admin. No change may leave the platform without an active administrator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from urllib.parse import urlsplit

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit, users
from core.access import ROLE_PERMISSIONS, Permission, Viewer, acting_user, require
from core.errors import ConflictError, IotCareError, NotFoundError
from core.i18n import LANGUAGES
from core.notify.channels import normalize_phone, parse_ntfy_address
from core.security import MIN_PASSWORD_LENGTH, generate_password
from models import (
    CaregiverAssignment,
    Channel,
    ContactChannel,
    FamilyLink,
    Resident,
    Role,
    Site,
    User,
)

TIERS = (1, 2)
USER_COLUMNS = [
    "user_id",
    "username",
    "display_name",
    "role",
    "language",
    "site_id",
    "active",
    "is_service",
    "quiet_start",
    "quiet_end",
    "residents",
    "channels",
    "created_at",
    "last_login_at",
]
ASSIGNMENT_COLUMNS = [
    "assignment_id",
    "user_id",
    "username",
    "display_name",
    "resident_id",
    "resident",
    "room",
    "site_id",
    "tier",
]
FAMILY_COLUMNS = [
    "link_id",
    "user_id",
    "username",
    "display_name",
    "resident_id",
    "resident",
    "room",
    "relation",
]
CHANNEL_COLUMNS = ["channel_id", "channel", "address", "enabled"]
EMAIL_RE = re.compile(r"^[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
# A numeric chat id (groups and channels are negative) or a public @channelname.
TELEGRAM_RE = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
MAX_DISPLAY_NAME = 200


def _require(viewer: Viewer) -> None:
    require(viewer, Permission.MANAGE_USERS)


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"No user {user_id}.", key="errors.admin.user_missing")
    return user


# --- reading


def list_users(session: Session, viewer: Viewer, *, include_inactive: bool = True) -> pd.DataFrame:
    """Every user with role, language, site, state, quiet hours and counts, by username."""
    _require(viewer)
    # Residents a caregiver is assigned to, or a family user follows.
    residents = (
        select(func.count())
        .where(CaregiverAssignment.user_id == User.id)
        .correlate(User)
        .scalar_subquery()
    ) + (
        select(func.count()).where(FamilyLink.user_id == User.id).correlate(User).scalar_subquery()
    )
    channels = (
        select(func.count())
        .where(ContactChannel.user_id == User.id, ContactChannel.enabled.is_(True))
        .correlate(User)
        .scalar_subquery()
    )
    query = select(User, residents.label("residents"), channels.label("channels"))
    if not include_inactive:
        query = query.where(User.active.is_(True))
    rows = session.execute(query.order_by(User.username)).all()
    return pd.DataFrame(
        [
            {
                "user_id": u.id,
                "username": u.username,
                "display_name": u.display_name,
                "role": Role(u.role).value,
                "language": u.language,
                "site_id": u.site_id,
                "active": u.active,
                "is_service": bool(u.is_service),
                "quiet_start": u.quiet_start,
                "quiet_end": u.quiet_end,
                "residents": int(n_res or 0),
                "channels": int(n_ch or 0),
                "created_at": u.created_at,
                "last_login_at": u.last_login_at,
            }
            for u, n_res, n_ch in rows
        ],
        columns=USER_COLUMNS,
    )


def role_permissions(viewer: Viewer) -> dict[Role, list[Permission]]:
    """What each role may do, in the order of the Permission enum."""
    _require(viewer)
    return {role: [p for p in Permission if p in ROLE_PERMISSIONS[role]] for role in Role}


def list_sites(session: Session, viewer: Viewer) -> list[tuple[str, str]]:
    """(id, name) of every site, by name."""
    _require(viewer)
    return [(s.id, s.name) for s in session.scalars(select(Site).order_by(Site.name, Site.id))]


def list_residents(session: Session, viewer: Viewer) -> pd.DataFrame:
    """Active residents (id, name, room, site) to assign caregivers to, by site and name."""
    _require(viewer)
    rows = session.scalars(
        select(Resident)
        .where(Resident.active.is_(True))
        .order_by(Resident.site_id, Resident.name, Resident.id)
    ).all()
    return pd.DataFrame(
        [{"resident_id": r.id, "name": r.name, "room": r.room, "site_id": r.site_id} for r in rows],
        columns=["resident_id", "name", "room", "site_id"],
    )


def list_assignments(
    session: Session,
    viewer: Viewer,
    *,
    user_id: int | None = None,
    resident_id: int | None = None,
) -> pd.DataFrame:
    """Caregiver assignments (optionally of one caregiver or resident), by resident and tier."""
    _require(viewer)
    query = select(CaregiverAssignment, User, Resident).join(
        User, User.id == CaregiverAssignment.user_id
    )
    query = query.join(Resident, Resident.id == CaregiverAssignment.resident_id)
    if user_id is not None:
        query = query.where(CaregiverAssignment.user_id == user_id)
    if resident_id is not None:
        query = query.where(CaregiverAssignment.resident_id == resident_id)
    rows = session.execute(
        query.order_by(Resident.name, CaregiverAssignment.tier, User.username)
    ).all()
    return pd.DataFrame(
        [
            {
                "assignment_id": a.id,
                "user_id": u.id,
                "username": u.username,
                "display_name": u.display_name,
                "resident_id": r.id,
                "resident": r.name,
                "room": r.room,
                "site_id": r.site_id,
                "tier": a.tier,
            }
            for a, u, r in rows
        ],
        columns=ASSIGNMENT_COLUMNS,
    )


def list_channels(session: Session, viewer: Viewer, user_id: int) -> pd.DataFrame:
    """A user's contact channels, by channel and id."""
    _require(viewer)
    _user(session, user_id)
    rows = session.scalars(
        select(ContactChannel)
        .where(ContactChannel.user_id == user_id)
        .order_by(ContactChannel.channel, ContactChannel.id)
    ).all()
    return pd.DataFrame(
        [
            {
                "channel_id": c.id,
                "channel": Channel(c.channel).value,
                "address": c.address,
                "enabled": c.enabled,
            }
            for c in rows
        ],
        columns=CHANNEL_COLUMNS,
    )


# --- validation with translated messages


def _check_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise IotCareError(f"Unknown role '{role}'.", key="errors.admin.role_unknown") from None


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise IotCareError(f"Unknown language '{language}'.", key="errors.language_unknown")
    return language


def _check_site(session: Session, site_id: str | None) -> str | None:
    site_id = (site_id or "").strip() or None
    if site_id is not None and session.get(Site, site_id) is None:
        raise NotFoundError(f"No site '{site_id}'.", key="errors.admin.site_missing", site=site_id)
    return site_id


def _check_display_name(display_name: str | None, fallback: str) -> str:
    name = (display_name or "").strip() or fallback
    if len(name) > MAX_DISPLAY_NAME:
        raise IotCareError(
            "The display name is too long.", key="errors.admin.name_long", n=MAX_DISPLAY_NAME
        )
    return name


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise IotCareError(
            f"The password must have at least {MIN_PASSWORD_LENGTH} characters.",
            key="errors.admin.password_short",
            n=MIN_PASSWORD_LENGTH,
        )


def _check_quiet_hours(quiet_hours: tuple[time, time] | None) -> None:
    if quiet_hours is not None and quiet_hours[0] == quiet_hours[1]:
        raise IotCareError(
            "Quiet hours must start and end at different times.", key="errors.quiet_hours_empty"
        )


def validate_address(channel: Channel | str, address: str) -> str:
    """The address cleaned up, or IotCareError saying in words what is wrong with it."""
    try:
        kind = Channel(channel)
    except ValueError:
        raise IotCareError(
            f"Unknown channel '{channel}'.", key="errors.admin.channel_unknown"
        ) from None
    address = address.strip()
    if not address:
        raise IotCareError("Enter an address.", key="errors.admin.address_empty")
    if len(address) > 500:
        raise IotCareError("The address is too long.", key="errors.admin.address_long", n=500)
    if kind is Channel.EMAIL and not EMAIL_RE.match(address):
        raise IotCareError(
            f"'{address}' is not an e-mail address.", key="errors.admin.email_invalid"
        )
    if kind is Channel.TELEGRAM and not TELEGRAM_RE.match(address):
        raise IotCareError(
            f"'{address}' is not a Telegram chat id.", key="errors.admin.telegram_invalid"
        )
    if kind is Channel.WEBHOOK:
        parts = urlsplit(address)
        if parts.scheme not in {"http", "https"} or not parts.hostname or " " in address:
            raise IotCareError(
                f"'{address}' is not an http(s) URL.", key="errors.admin.webhook_invalid"
            )
    if kind is Channel.NTFY:
        try:
            parse_ntfy_address(address)
        except ValueError:
            raise IotCareError(
                f"'{address}' is not an ntfy topic or topic URL.", key="errors.admin.ntfy_invalid"
            ) from None
    if kind is Channel.SMS:
        try:
            # Stored in E.164, so the same phone written two ways is one contact.
            address = normalize_phone(address)
        except ValueError:
            raise IotCareError(
                f"'{address}' is not a phone number in E.164 form.",
                key="errors.admin.phone_invalid",
            ) from None
    if kind is Channel.INBOX:
        raise IotCareError(
            "Every user has one in-app inbox already.", key="errors.admin.inbox_fixed"
        )
    return address


def _other_active_admins(session: Session, user_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN, User.active.is_(True), User.id != user_id)
        )
        or 0
    )


def _keep_an_admin(session: Session, user: User) -> None:
    """Refuse a change that would leave no active administrator."""
    if (
        Role(user.role) is Role.ADMIN
        and user.active
        and _other_active_admins(session, user.id) == 0
    ):
        raise ConflictError(
            f"'{user.username}' is the last active administrator.",
            key="errors.admin.last_admin",
        )


# --- changes


@dataclass(frozen=True)
class CreatedUser:
    """A new account and the password to hand over (shown once, never stored in clear)."""

    user_id: int
    username: str
    password: str


def create_account(
    session: Session,
    viewer: Viewer,
    *,
    username: str,
    role: Role | str,
    display_name: str | None = None,
    language: str = "en",
    site_id: str | None = None,
    password: str | None = None,
) -> CreatedUser:
    """Create a user with a role, language and site; a generated password when none is given."""
    _require(viewer)
    actor = acting_user(session, viewer)
    name = username.strip().lower()
    if not users.USERNAME_RE.match(name):
        raise IotCareError(
            f"Username '{name}' is not valid.", key="errors.admin.username_invalid", username=name
        )
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise ConflictError(
            f"A user named '{name}' exists already.",
            key="errors.admin.username_taken",
            username=name,
        )
    chosen_role = _check_role(role)
    _check_language(language)
    site = _check_site(session, site_id)
    display = _check_display_name(display_name, name)
    secret = password if password else generate_password()
    _check_password(secret)
    user = users.create_user(
        session,
        username=name,
        password=secret,
        role=chosen_role,
        display_name=display,
        language=language,
        site_id=site,
        actor=actor,
    )
    session.flush()
    return CreatedUser(user.id, user.username, secret)


def update_user(
    session: Session,
    viewer: Viewer,
    user_id: int,
    *,
    display_name: str,
    role: Role | str,
    language: str,
    site_id: str | None,
) -> list[str]:
    """Change a user's name, role, language and site; returns the fields that changed.

    A caregiver who becomes an operator or admin loses their assignments (only caregivers have
    residents), and a family user given another role stops following their relatives; the
    removal is audited with the role change.
    """
    _require(viewer)
    actor = acting_user(session, viewer)
    user = _user(session, user_id)
    new_role = _check_role(role)
    _check_language(language)
    site = _check_site(session, site_id)
    display = _check_display_name(display_name, user.username)
    changed: dict[str, str | None] = {}
    old_role = Role(user.role)
    if new_role is not old_role:
        if old_role is Role.ADMIN:
            _keep_an_admin(session, user)
        removed = []
        if old_role is Role.CAREGIVER:
            for assignment in session.scalars(
                select(CaregiverAssignment).where(CaregiverAssignment.user_id == user.id)
            ):
                removed.append(assignment.resident_id)
                session.delete(assignment)
        if old_role is Role.FAMILY:
            # Only a family user follows residents as family.
            for link in session.scalars(select(FamilyLink).where(FamilyLink.user_id == user.id)):
                removed.append(link.resident_id)
                session.delete(link)
        user.role = new_role
        audit.record(
            session,
            actor,
            "user.role",
            "user",
            user.id,
            old=old_role.value,
            new=new_role.value,
            removed_assignments=removed or None,
        )
        changed["role"] = new_role.value
    if language != user.language:
        users.update_preferences(session, user, language=language, actor=actor)
        changed["language"] = language
    rest: dict[str, str | None] = {}
    if display != user.display_name:
        user.display_name = display
        rest["display_name"] = display
    if site != user.site_id:
        user.site_id = site
        rest["site_id"] = site
    if rest:
        audit.record(session, actor, "user.update", "user", user.id, **rest)
        changed.update(rest)
    session.flush()
    return list(changed)


def set_active(session: Session, viewer: Viewer, user_id: int, active: bool) -> None:
    """Deactivate (cannot sign in, gets no notifications) or reactivate a user."""
    _require(viewer)
    actor = acting_user(session, viewer)
    user = _user(session, user_id)
    if user.active == active:
        return
    if not active:
        _keep_an_admin(session, user)
    user.active = active
    audit.record(
        session, actor, "user.reactivate" if active else "user.deactivate", "user", user.id
    )
    session.flush()


def reset_password(session: Session, viewer: Viewer, user_id: int) -> str:
    """Give a user a new generated password (audited) and return it, to be shown once."""
    _require(viewer)
    actor = acting_user(session, viewer)
    user = _user(session, user_id)
    secret = generate_password()
    users.set_password(session, user, secret, actor=actor)
    session.flush()
    return secret


def set_quiet_hours(
    session: Session, viewer: Viewer, user_id: int, quiet_hours: tuple[time, time] | None
) -> None:
    """Set (or clear, with None) the hours a user's non-critical notifications wait."""
    _require(viewer)
    actor = acting_user(session, viewer)
    user = _user(session, user_id)
    _check_quiet_hours(quiet_hours)
    if (user.quiet_start, user.quiet_end) == (quiet_hours or (None, None)):
        return
    users.update_preferences(session, user, quiet_hours=quiet_hours, actor=actor)
    session.flush()


def assign_caregiver(
    session: Session, viewer: Viewer, user_id: int, resident_id: int, tier: int = 1
) -> None:
    """Make a caregiver responsible for a resident at a tier (1 on duty, 2 supervisor).

    Assigning again with another tier changes the tier.
    """
    _require(viewer)
    actor = acting_user(session, viewer)
    user = _user(session, user_id)
    if Role(user.role) is not Role.CAREGIVER:
        raise IotCareError(
            f"'{user.username}' is not a caregiver.",
            key="errors.admin.not_caregiver",
            username=user.username,
        )
    if not user.active:
        raise IotCareError(
            f"'{user.username}' is inactive.",
            key="errors.admin.user_inactive",
            username=user.username,
        )
    if tier not in TIERS:
        raise IotCareError(f"Unknown tier {tier}.", key="errors.admin.tier_unknown")
    resident = session.get(Resident, resident_id)
    if resident is None or not resident.active:
        raise NotFoundError(
            f"No active resident {resident_id}.", key="errors.admin.resident_missing"
        )
    existing = session.scalar(
        select(CaregiverAssignment).where(
            CaregiverAssignment.user_id == user.id,
            CaregiverAssignment.resident_id == resident.id,
        )
    )
    if existing is not None:
        if existing.tier == tier:
            return
        old = existing.tier
        existing.tier = tier
        audit.record(
            session,
            actor,
            "assignment.tier",
            "user",
            user.id,
            resident_id=resident.id,
            old=old,
            new=tier,
        )
    else:
        users.assign(session, user, resident, tier=tier)
        audit.record(
            session, actor, "assignment.add", "user", user.id, resident_id=resident.id, tier=tier
        )
    session.flush()


def list_family_links(session: Session, viewer: Viewer) -> pd.DataFrame:
    """Which family user follows which resident, by resident and username."""
    _require(viewer)
    rows = session.execute(
        select(FamilyLink, User, Resident)
        .join(User, User.id == FamilyLink.user_id)
        .join(Resident, Resident.id == FamilyLink.resident_id)
        .order_by(Resident.name, User.username)
    ).all()
    return pd.DataFrame(
        [
            {
                "link_id": link.id,
                "user_id": u.id,
                "username": u.username,
                "display_name": u.display_name,
                "resident_id": r.id,
                "resident": r.name,
                "room": r.room,
                "relation": link.relation,
            }
            for link, u, r in rows
        ],
        columns=FAMILY_COLUMNS,
    )


def link_family_member(
    session: Session, viewer: Viewer, user_id: int, resident_id: int, relation: str | None = None
) -> None:
    """Let a family user follow a resident (their state and daily report); audited."""
    _require(viewer)
    actor = acting_user(session, viewer)
    user = _user(session, user_id)
    resident = session.get(Resident, resident_id)
    if resident is None or not resident.active:
        raise NotFoundError(
            f"No active resident {resident_id}.", key="errors.admin.resident_missing"
        )
    relation = (relation or "").strip()[:64] or None
    users.link_family(session, user, resident, relation)
    audit.record(
        session, actor, "family.link", "user", user.id, resident_id=resident.id, relation=relation
    )
    session.flush()


def unlink_family_member(session: Session, viewer: Viewer, link_id: int) -> None:
    """Stop a family user following a resident; audited."""
    _require(viewer)
    actor = acting_user(session, viewer)
    link = session.get(FamilyLink, link_id)
    if link is None:
        raise NotFoundError(f"No family link {link_id}.", key="errors.admin.assignment_missing")
    audit.record(
        session, actor, "family.unlink", "user", link.user_id, resident_id=link.resident_id
    )
    session.delete(link)
    session.flush()


def unassign(session: Session, viewer: Viewer, assignment_id: int) -> None:
    """Remove a caregiver assignment."""
    _require(viewer)
    actor = acting_user(session, viewer)
    assignment = session.get(CaregiverAssignment, assignment_id)
    if assignment is None:
        raise NotFoundError(
            f"No assignment {assignment_id}.", key="errors.admin.assignment_missing"
        )
    audit.record(
        session,
        actor,
        "assignment.remove",
        "user",
        assignment.user_id,
        resident_id=assignment.resident_id,
        tier=assignment.tier,
    )
    session.delete(assignment)
    session.flush()


def add_channel(
    session: Session, viewer: Viewer, user_id: int, channel: Channel | str, address: str
) -> int:
    """Add an enabled contact channel to a user after checking its address; returns its id."""
    _require(viewer)
    actor = acting_user(session, viewer)
    user = _user(session, user_id)
    clean = validate_address(channel, address)
    kind = Channel(channel)
    taken = session.scalar(
        select(ContactChannel.id).where(
            ContactChannel.user_id == user.id,
            ContactChannel.channel == kind,
            ContactChannel.address == clean,
        )
    )
    if taken is not None:
        raise ConflictError(
            f"'{user.username}' has this {kind.value} address already.",
            key="errors.admin.channel_taken",
        )
    row = ContactChannel(user_id=user.id, channel=kind, address=clean, enabled=True)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "channel.add",
        "user",
        user.id,
        channel=kind.value,
        address=clean,
        channel_id=row.id,
    )
    return row.id


def _channel(session: Session, channel_id: int) -> ContactChannel:
    row = session.get(ContactChannel, channel_id)
    if row is None:
        raise NotFoundError(f"No contact channel {channel_id}.", key="errors.admin.channel_missing")
    return row


def set_channel_enabled(session: Session, viewer: Viewer, channel_id: int, enabled: bool) -> None:
    """Turn a contact channel on or off (the in-app inbox is always on)."""
    _require(viewer)
    actor = acting_user(session, viewer)
    row = _channel(session, channel_id)
    if Channel(row.channel) is Channel.INBOX:
        raise IotCareError("The in-app inbox is always on.", key="errors.admin.inbox_fixed")
    if row.enabled == enabled:
        return
    row.enabled = enabled
    audit.record(
        session,
        actor,
        "channel.enable" if enabled else "channel.disable",
        "user",
        row.user_id,
        channel=Channel(row.channel).value,
        address=row.address,
        channel_id=row.id,
    )
    session.flush()


def remove_channel(session: Session, viewer: Viewer, channel_id: int) -> None:
    """Delete a contact channel (not the in-app inbox)."""
    _require(viewer)
    actor = acting_user(session, viewer)
    row = _channel(session, channel_id)
    if Channel(row.channel) is Channel.INBOX:
        raise IotCareError("The in-app inbox is always on.", key="errors.admin.inbox_fixed")
    audit.record(
        session,
        actor,
        "channel.remove",
        "user",
        row.user_id,
        channel=Channel(row.channel).value,
        address=row.address,
        channel_id=row.id,
    )
    session.delete(row)
    session.flush()
