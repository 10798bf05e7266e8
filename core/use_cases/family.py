"""A family user's view of their relative: state, alert status and daily reports, nothing more.

A family user (Role.FAMILY) is linked to one or more residents (FamilyLink). They see each one's
name and room, how they are doing (the overview's state: all well / needs attention / urgent),
how many alerts are unresolved and how serious, each said in words in their language, and the
daily care reports. No device ids, alert details, care notes or staff data: those stay with the
care team, and every other query refuses a family viewer (they lack VIEW_RESIDENTS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.access import Viewer, check_resident, family_clause
from core.care_report import list_reports, render_report
from core.i18n import translate
from core.timeutil import ensure_utc, utcnow
from core.use_cases.alerts import UNRESOLVED, finding_text, site_level_clause
from core.use_cases.overview import (
    SEVERITY_RANK,
    AlertBrief,
    CareState,
    _alerts,
    _device_problems,
    state_of,
)
from models import (
    Alert,
    AlertStatus,
    Channel,
    ContactChannel,
    FamilyLink,
    Resident,
    RuleKind,
    Severity,
    Site,
    User,
)

# Alerts about the sensors themselves: a family reads "a sensor needs looking at", not which one.
DEVICE_KINDS = frozenset({RuleKind.DEVICE_OFFLINE, RuleKind.BATTERY_LOW, RuleKind.DATA_QUALITY})
REPORT_DAYS = 7


@dataclass(frozen=True)
class FamilyAlert:
    """One unresolved alert as a family user sees it: how serious, what (in words), since when."""

    severity: Severity
    acknowledged: bool  # the care team has taken it on
    text: str
    opened_at: datetime


@dataclass(frozen=True)
class FamilyReport:
    """A daily care report, written out in the family user's language."""

    day: date
    subject: str
    body: str


@dataclass(frozen=True)
class FamilyMember:
    """A resident a family user follows."""

    resident_id: int
    name: str
    room: str | None
    timezone: str
    relation: str | None
    state: CareState
    alerts: tuple[FamilyAlert, ...] = ()  # worst first
    reports: tuple[FamilyReport, ...] = ()  # newest day first

    @property
    def open_alerts(self) -> int:
        """How many alerts about them are unresolved."""
        return len(self.alerts)

    @property
    def worst_severity(self) -> Severity | None:
        """The most serious unresolved alert's severity, None when there is none."""
        if not self.alerts:
            return None
        return min((a.severity for a in self.alerts), key=SEVERITY_RANK.__getitem__)


def _alert_text(alert: AlertBrief, language: str) -> str:
    if alert.kind in {k.value for k in DEVICE_KINDS}:
        return translate("app.family.alert_device", language)
    text = finding_text(alert.kind, alert.details, alert.title, language)
    # The stored title may name a rule or device: a family user gets a plain sentence instead.
    return translate("app.family.alert_other", language) if text == alert.title else text


def family_members(
    session: Session, viewer: Viewer, now: datetime | None = None, report_days: int = REPORT_DAYS
) -> list[FamilyMember]:
    """The residents the family viewer follows, by name; AccessDenied for any other role."""
    now = ensure_utc(now or utcnow())
    linked = family_clause(viewer)
    rows = session.execute(
        select(
            Resident.id,
            Resident.name,
            Resident.room,
            func.coalesce(Resident.timezone, Site.timezone),
            Resident.site_id,
            FamilyLink.relation,
        )
        .join(Site, Site.id == Resident.site_id)
        .join(
            FamilyLink,
            (FamilyLink.resident_id == Resident.id) & (FamilyLink.user_id == viewer.user_id),
        )
        .where(Resident.active.is_(True), linked)
        .order_by(Resident.name, Resident.id)
    ).all()
    if not rows:
        return []
    visible = select(Resident.id).where(Resident.active.is_(True), family_clause(viewer))
    alerts = _alerts(session, visible)
    problems = _device_problems(session, visible, now)
    # A critical alert about their home (a gas leak in the kitchen) means not "all well" either.
    sites_in_danger = set(
        session.scalars(
            select(Alert.site_id).where(
                site_level_clause(),
                Alert.status.in_(UNRESOLVED),
                Alert.severity == Severity.CRITICAL,
                Alert.site_id.in_({r[4] for r in rows}),
            )
        )
    )
    members = []
    for resident_id, name, room, timezone, site_id, relation in rows:
        own = alerts.get(resident_id, [])
        reports = tuple(
            FamilyReport(report.day, *render_report(report.data or {}, name, viewer.language))
            for report in list_reports(session, resident_id, limit=report_days)
        )
        members.append(
            FamilyMember(
                resident_id=resident_id,
                name=name,
                room=room,
                timezone=timezone,
                relation=relation,
                state=state_of(own, problems.get(resident_id, []), site_id in sites_in_danger),
                alerts=tuple(
                    FamilyAlert(
                        severity=a.severity,
                        acknowledged=a.status is not AlertStatus.OPEN,
                        text=_alert_text(a, viewer.language),
                        opened_at=a.opened_at,
                    )
                    for a in own
                ),
                reports=reports,
            )
        )
    return members


@dataclass(frozen=True)
class FamilyContact:
    """A family user linked to a resident, as the care team sees them: who and how to reach."""

    user_id: int
    name: str
    relation: str | None
    channels: tuple[tuple[str, str], ...]  # (channel, address), enabled ones, not the inbox


def family_contacts(session: Session, viewer: Viewer, resident_id: int) -> list[FamilyContact]:
    """The active family users following a resident the viewer may see, by name."""
    check_resident(session, viewer, resident_id)
    people = session.execute(
        select(User.id, User.display_name, FamilyLink.relation)
        .join(FamilyLink, FamilyLink.user_id == User.id)
        .where(FamilyLink.resident_id == resident_id, User.active.is_(True))
        .order_by(User.display_name, User.id)
    ).all()
    channels: dict[int, list[tuple[str, str]]] = {}
    for user_id, channel, address in session.execute(
        select(ContactChannel.user_id, ContactChannel.channel, ContactChannel.address)
        .where(
            ContactChannel.user_id.in_([p[0] for p in people]),
            ContactChannel.enabled.is_(True),
            # The in-app inbox is no way for the care team to reach them.
            ContactChannel.channel != Channel.INBOX,
        )
        .order_by(ContactChannel.id)
    ):
        channels.setdefault(int(user_id), []).append((str(channel), address))
    return [
        FamilyContact(int(uid), name, relation, tuple(channels.get(int(uid), [])))
        for uid, name, relation in people
    ]
