"""Who may see and do what: roles, permissions and the residents a viewer may see.

Every query function the app and the notebooks use takes a `Viewer` and filters through here, so
a caregiver sees only the residents assigned to them whatever page or notebook asks. Sites: a
caregiver also sees the site-level side of every site they work at (a site where at least one
active resident is assigned to them, or their own User.site_id), so a gas leak in the kitchen
reaches everyone on duty there; operators and admins see every site. A family user sees nothing
of all that: only the state, alert status and daily reports of the residents they are linked to
(FamilyLink), through `family_clause`; every other query refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, Select, or_, select, true
from sqlalchemy.orm import Session

from core.errors import IotCareError
from core.i18n import normalize_language
from core.timeutil import is_timezone
from models import CaregiverAssignment, FamilyLink, Resident, Role, Site, User


class Permission(StrEnum):
    """Things a role may do in the app."""

    OWN_ACCOUNT = "own_account"  # every role: their own password, language and quiet hours
    VIEW_RESIDENTS = "view_residents"
    HANDLE_ALERTS = "handle_alerts"
    MANAGE_DEVICES = "manage_devices"
    SEND_COMMANDS = "send_commands"
    MANAGE_RULES = "manage_rules"
    VIEW_QUALITY = "view_quality"
    VIEW_INGEST = "view_ingest"
    MANAGE_NOTIFICATIONS = "manage_notifications"
    VIEW_AUDIT = "view_audit"
    MANAGE_RESIDENTS = "manage_residents"
    MANAGE_USERS = "manage_users"
    VIEW_FAMILY = "view_family"  # a relative's state, alert status and daily reports only


_CARE = frozenset({Permission.VIEW_RESIDENTS, Permission.HANDLE_ALERTS})
_OPERATIONS = _CARE | {
    Permission.MANAGE_DEVICES,
    Permission.SEND_COMMANDS,
    Permission.MANAGE_RULES,
    Permission.VIEW_QUALITY,
    Permission.VIEW_INGEST,
    Permission.MANAGE_NOTIFICATIONS,
    Permission.VIEW_AUDIT,
    Permission.MANAGE_RESIDENTS,
}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CAREGIVER: frozenset(_CARE | {Permission.OWN_ACCOUNT}),
    Role.OPERATOR: frozenset(_OPERATIONS | {Permission.OWN_ACCOUNT}),
    Role.ADMIN: frozenset(_OPERATIONS | {Permission.MANAGE_USERS, Permission.OWN_ACCOUNT}),
    Role.FAMILY: frozenset({Permission.VIEW_FAMILY, Permission.OWN_ACCOUNT}),
}


class AccessDenied(IotCareError):
    """The viewer may not see or do this."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, as the query layer needs them (no ORM object kept across requests)."""

    user_id: int
    username: str
    display_name: str
    role: Role
    language: str = "en"
    site_id: str | None = None

    @classmethod
    def of(cls, user: User) -> Viewer:
        """The viewer for a user row."""
        return cls(
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            role=Role(user.role),
            language=normalize_language(user.language),
            site_id=user.site_id,
        )

    def can(self, permission: Permission) -> bool:
        """Whether this viewer's role grants the permission."""
        return permission in ROLE_PERMISSIONS[self.role]

    @property
    def sees_all_residents(self) -> bool:
        """Operators and admins see every resident; caregivers only their own; family none."""
        return self.role in (Role.OPERATOR, Role.ADMIN)


def require(viewer: Viewer, permission: Permission) -> None:
    """Raise AccessDenied unless the viewer's role grants the permission."""
    if not viewer.can(permission):
        raise AccessDenied(
            f"'{viewer.username}' ({viewer.role.value}) may not {permission.value}.",
            key="errors.access_denied",
        )


def assigned_resident_ids(viewer: Viewer) -> Select[tuple[int]]:
    """Subquery of the resident ids assigned to a caregiver."""
    return select(CaregiverAssignment.resident_id).where(
        CaregiverAssignment.user_id == viewer.user_id
    )


def assigned_site_ids(viewer: Viewer) -> Select[tuple[str]]:
    """Subquery of the sites of a caregiver's assigned active residents."""
    return (
        select(Resident.site_id)
        .join(CaregiverAssignment, CaregiverAssignment.resident_id == Resident.id)
        .where(CaregiverAssignment.user_id == viewer.user_id, Resident.active.is_(True))
    )


def site_clause(viewer: Viewer, column: ColumnElement[str | None]) -> ColumnElement[bool]:
    """A WHERE clause limiting a site id `column` to the sites the viewer sees (see module doc)."""
    require(viewer, Permission.VIEW_RESIDENTS)
    if viewer.sees_all_residents:
        return true()
    works_at = column.in_(assigned_site_ids(viewer))
    return works_at if viewer.site_id is None else or_(works_at, column == viewer.site_id)


def visible_site_ids(session: Session, viewer: Viewer) -> list[str]:
    """Ids of the sites the viewer sees, sorted (operators and admins: every site)."""
    return list(
        session.scalars(select(Site.id).where(site_clause(viewer, Site.id)).order_by(Site.id))
    )


def resident_clause(
    viewer: Viewer, column: ColumnElement[int] | None = None
) -> ColumnElement[bool]:
    """A WHERE clause limiting `column` (default Resident.id) to the residents the viewer sees."""
    require(viewer, Permission.VIEW_RESIDENTS)
    if viewer.sees_all_residents:
        return true()
    target = Resident.id if column is None else column
    return target.in_(assigned_resident_ids(viewer))


def visible_resident_ids(session: Session, viewer: Viewer) -> list[int]:
    """Ids of the active residents the viewer may see, by name."""
    rows = session.scalars(
        select(Resident.id)
        .where(Resident.active.is_(True), resident_clause(viewer))
        .order_by(Resident.name)
    )
    return list(rows)


def check_resident(session: Session, viewer: Viewer, resident_id: int) -> Resident:
    """The resident, if the viewer may see them; AccessDenied otherwise (also when missing)."""
    resident = session.scalar(
        select(Resident).where(Resident.id == resident_id, resident_clause(viewer))
    )
    if resident is None:
        raise AccessDenied(
            f"'{viewer.username}' may not see resident {resident_id}.", key="errors.access_denied"
        )
    return resident


def family_resident_ids(viewer: Viewer) -> Select[tuple[int]]:
    """Subquery of the resident ids a family user is linked to."""
    return select(FamilyLink.resident_id).where(FamilyLink.user_id == viewer.user_id)


def family_clause(viewer: Viewer, column: ColumnElement[int] | None = None) -> ColumnElement[bool]:
    """A WHERE clause limiting `column` (default Resident.id) to a family user's relatives."""
    require(viewer, Permission.VIEW_FAMILY)
    target = Resident.id if column is None else column
    return target.in_(family_resident_ids(viewer))


def acting_user(session: Session, viewer: Viewer) -> User:
    """The viewer's user row for audited changes; AccessDenied if it was deactivated meanwhile."""
    user = session.get(User, viewer.user_id)
    if user is None or not user.active:
        raise AccessDenied(f"'{viewer.username}' is no longer active.", key="errors.inactive_user")
    return user


def viewer_timezone(session: Session, viewer: Viewer, default: str = "UTC") -> str:
    """The timezone to show a viewer times in: their site's, else `default` (no site, or one
    whose zone is unknown)."""
    return site_timezone(session, viewer.site_id, default)


def site_timezone(session: Session, site_id: str | None, default: str = "UTC") -> str:
    """A person's site's timezone, else `default` (no site, or one whose zone is unknown)."""
    site = session.get(Site, site_id) if site_id else None
    return site.timezone if site is not None and is_timezone(site.timezone) else default
