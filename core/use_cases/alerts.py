"""Alerts as the app and notebooks see them: the list, one alert's story, and acting on it.

Who sees which alert (`alert_clause`): operators and admins see every alert. A caregiver sees an
alert when it is about one of their assigned residents: the alert's resident_id is assigned to
them, or the alert has no resident and its device belongs to an assigned resident
(devices.resident_id). A caregiver also sees the site-level alerts (`site_level_clause`: no
resident, and no resident's device: the kitchen's flame or gas sensor, a data quality failure, an
unassigned device) of every site they work at (core.access.site_clause: a site where they look
after at least one resident, or their own site): a gas leak concerns everyone on duty there. They
never see another resident's alerts, nor those of an alert with no site.
A caregiver may act only on alerts they see; acting goes through core.alerts.lifecycle, which
writes alert_history and the audit log and queues notifications in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from core.access import (
    AccessDenied,
    Permission,
    Viewer,
    acting_user,
    assigned_resident_ids,
    require,
    site_clause,
)
from core.alerts import lifecycle
from core.alerts.titles import title_text
from core.errors import IotCareError, NotFoundError
from core.i18n import catalogue, normalize_language, translate
from core.notify import inbox as notify_inbox
from core.rules.describe import describe_finding
from core.timeutil import is_timezone
from models import (
    Alert,
    AlertRule,
    AlertStatus,
    Device,
    Notification,
    Resident,
    RuleKind,
    Severity,
    Site,
    User,
)

# Longest note a person may write on an alert; longer is a paste accident, not a note.
NOTE_MAX_CHARS = 2000
UNRESOLVED = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)
SEVERITY_ORDER = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)

ALERT_COLUMNS = [
    "id",
    "severity",
    "status",
    "kind",
    "title",
    "what",
    "resident_id",
    "resident",
    "room",
    "device_id",
    "site_id",
    "opened_at",
    "last_seen_at",
    "occurrences",
    "escalation_level",
    "acknowledged_at",
    "resolved_at",
]
HISTORY_COLUMNS = ["at", "action", "actor", "note"]
ALERT_NOTIFICATION_COLUMNS = [
    "id",
    "created_at",
    "recipient",
    "channel",
    "purpose",
    "status",
    "attempts",
    "sent_at",
    "last_error",
]
INBOX_COLUMNS = ["id", "created_at", "subject", "purpose", "alert_id", "read_at"]


class AlertNoteError(IotCareError):
    """A note on an alert is missing where one is needed, or too long."""


@dataclass(frozen=True)
class AlertCounts:
    """How many alerts the viewer sees in each state, and how many critical ones are unresolved."""

    open: int
    acknowledged: int
    critical_unresolved: int


@dataclass(frozen=True)
class AlertDetail:
    """One alert with everything a person needs to act on it: who, what, its history, messages."""

    id: uuid.UUID
    title: str
    what: str
    kind: RuleKind
    severity: Severity
    status: AlertStatus
    rule_name: str | None
    resident_id: int | None
    resident_name: str | None
    room: str | None
    device_id: str | None
    site_id: str | None
    timezone: str
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int
    escalation_level: int
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_note: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolve_note: str | None
    can_reopen: bool
    history: pd.DataFrame
    notifications: pd.DataFrame


@dataclass(frozen=True)
class UnreadCounts:
    """What waits for the viewer: open (unacknowledged) alerts, the critical ones, unread inbox."""

    alerts: int
    critical: int
    inbox: int


def site_level_clause() -> ColumnElement[bool]:
    """A WHERE clause on Alert: about a site, not a resident (no resident, no resident's device)."""
    residents_devices = select(Device.id).where(Device.resident_id.is_not(None))
    return and_(
        Alert.resident_id.is_(None),
        or_(Alert.device_id.is_(None), Alert.device_id.not_in(residents_devices)),
    )


def alert_clause(viewer: Viewer) -> ColumnElement[bool]:
    """A WHERE clause on Alert limiting it to the alerts the viewer may see (see module doc)."""
    require(viewer, Permission.HANDLE_ALERTS)
    if viewer.sees_all_residents:
        return true()
    assigned = assigned_resident_ids(viewer)
    assigned_devices = select(Device.id).where(Device.resident_id.in_(assigned))
    return or_(
        Alert.resident_id.in_(assigned),
        and_(Alert.resident_id.is_(None), Alert.device_id.in_(assigned_devices)),
        and_(
            site_level_clause(),
            Alert.site_id.is_not(None),
            site_clause(viewer, Alert.site_id),
        ),
    )


def finding_text(
    kind: RuleKind | str, details: Mapping[str, Any] | None, title: str, lang: str
) -> str:
    """What the alert found in `lang`: the event's name or the rule's finding; else its title."""
    details = details or {}
    event_type = details.get("event_type")
    if event_type:
        key = f"notify.event.{event_type}"
        if key in catalogue(normalize_language(lang)):
            return translate(key, lang)
    try:
        return describe_finding(kind, details, lang)
    except (KeyError, ValueError, TypeError):
        # An event alert, or details from an older engine: the stored title, translated if known.
        return title_text(title, lang)


def _severity_rank() -> ColumnElement[int]:
    return case(
        *((Alert.severity == severity, rank) for rank, severity in enumerate(SEVERITY_ORDER)),
        else_=len(SEVERITY_ORDER),
    )


def _as_uuid(alert_id: uuid.UUID | str) -> uuid.UUID:
    if isinstance(alert_id, uuid.UUID):
        return alert_id
    try:
        return uuid.UUID(str(alert_id))
    except ValueError:
        raise NotFoundError(f"No alert {alert_id}.", key="errors.alert_missing") from None


def _alerts_query(viewer: Viewer) -> Select[Any]:
    """Alerts the viewer sees, with who (resident or the device's resident) and where."""
    device_resident = aliased(Resident)
    resident_name = func.coalesce(Resident.name, device_resident.name)
    return (
        select(
            Alert,
            resident_name.label("resident"),
            func.coalesce(Resident.room, device_resident.room, Device.room).label("room"),
            func.coalesce(Alert.resident_id, Device.resident_id).label("about_resident"),
        )
        .outerjoin(Resident, Resident.id == Alert.resident_id)
        .outerjoin(Device, Device.id == Alert.device_id)
        .outerjoin(device_resident, device_resident.id == Device.resident_id)
        .where(alert_clause(viewer))
    )


def _alert_record(
    alert: Alert, resident: str | None, room: str | None, about: int | None, lang: str
) -> dict[str, Any]:
    return {
        "id": str(alert.id),
        "severity": Severity(alert.severity).value,
        "status": AlertStatus(alert.status).value,
        "kind": RuleKind(alert.kind).value,
        "title": alert.title,
        "what": finding_text(alert.kind, alert.details, alert.title, lang),
        "resident_id": about,
        "resident": resident,
        "room": room,
        "device_id": alert.device_id,
        "site_id": alert.site_id,
        "opened_at": alert.opened_at,
        "last_seen_at": alert.last_seen_at,
        "occurrences": alert.occurrences,
        "escalation_level": alert.escalation_level,
        "acknowledged_at": alert.acknowledged_at,
        "resolved_at": alert.resolved_at,
    }


def list_alerts(
    session: Session,
    viewer: Viewer,
    statuses: Iterable[AlertStatus | str] | None = UNRESOLVED,
    severities: Iterable[Severity | str] | None = None,
    language: str | None = None,
    limit: int = 200,
) -> pd.DataFrame:
    """Alerts the viewer sees, most severe first, oldest first within a severity (None: any)."""
    lang = language or viewer.language
    query = _alerts_query(viewer)
    if statuses is not None:
        query = query.where(Alert.status.in_([AlertStatus(s) for s in statuses]))
    if severities is not None:
        query = query.where(Alert.severity.in_([Severity(s) for s in severities]))
    if statuses is not None and set(map(AlertStatus, statuses)) == {AlertStatus.RESOLVED}:
        order = (Alert.resolved_at.desc(), Alert.id)  # history: most recently closed first
    else:
        order = (_severity_rank(), Alert.opened_at, Alert.id)
    rows = session.execute(query.order_by(*order).limit(limit)).all()
    records = [_alert_record(alert, *rest, lang) for alert, *rest in rows]
    return pd.DataFrame.from_records(records, columns=ALERT_COLUMNS)


@dataclass(frozen=True)
class AlertFilter:
    """What an integration asks for: states, severities, site, resident, an opened-at range."""

    statuses: tuple[AlertStatus, ...] = ()
    severities: tuple[Severity, ...] = ()
    site_id: str | None = None
    resident_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AlertPage:
    """One page of alerts, newest opened first, and where the next page starts (None: last)."""

    items: list[dict[str, Any]]
    next_after: tuple[datetime, uuid.UUID] | None


def alert_page(
    session: Session,
    viewer: Viewer,
    where: AlertFilter,
    *,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
    language: str | None = None,
) -> AlertPage:
    """Alerts the viewer sees matching `where`, newest opened first, from after the key `after`.

    Keyset paging on (opened_at, id): a page stays right while new alerts open meanwhile.
    """
    lang = language or viewer.language
    query = _alerts_query(viewer)
    if where.statuses:
        query = query.where(Alert.status.in_(where.statuses))
    if where.severities:
        query = query.where(Alert.severity.in_(where.severities))
    if where.site_id is not None:
        query = query.where(Alert.site_id == where.site_id)
    if where.resident_id is not None:
        query = query.where(
            func.coalesce(Alert.resident_id, Device.resident_id) == where.resident_id
        )
    if where.since is not None:
        query = query.where(Alert.opened_at >= where.since)
    if where.until is not None:
        query = query.where(Alert.opened_at < where.until)
    if after is not None:
        opened, last_id = after
        query = query.where(
            or_(Alert.opened_at < opened, and_(Alert.opened_at == opened, Alert.id < last_id))
        )
    rows = session.execute(
        query.order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(limit + 1)
    ).all()
    items = [_alert_record(alert, *rest, lang) for alert, *rest in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1][0] if more else None
    return AlertPage(items, (last.opened_at, last.id) if last is not None else None)


def alert_counts(session: Session, viewer: Viewer) -> AlertCounts:
    """Open and acknowledged alerts the viewer sees, and the critical ones among them."""
    rows = session.execute(
        select(Alert.status, Alert.severity, func.count())
        .where(alert_clause(viewer), Alert.status.in_(UNRESOLVED))
        .group_by(Alert.status, Alert.severity)
    ).all()
    by_status: dict[AlertStatus, int] = {}
    critical = 0
    for status, severity, count in rows:
        by_status[AlertStatus(status)] = by_status.get(AlertStatus(status), 0) + int(count)
        if Severity(severity) is Severity.CRITICAL:
            critical += int(count)
    return AlertCounts(
        open=by_status.get(AlertStatus.OPEN, 0),
        acknowledged=by_status.get(AlertStatus.ACKNOWLEDGED, 0),
        critical_unresolved=critical,
    )


def unread_counts(session: Session, viewer: Viewer) -> UnreadCounts:
    """Open alerts the viewer sees (not yet taken on by anyone), the critical ones, unread inbox."""
    rows = session.execute(
        select(Alert.severity, func.count())
        .where(alert_clause(viewer), Alert.status == AlertStatus.OPEN)
        .group_by(Alert.severity)
    ).all()
    by_severity = {Severity(severity): int(count) for severity, count in rows}
    return UnreadCounts(
        alerts=sum(by_severity.values()),
        critical=by_severity.get(Severity.CRITICAL, 0),
        inbox=notify_inbox.unread_count(session, viewer.user_id),
    )


def check_alert(session: Session, viewer: Viewer, alert_id: uuid.UUID | str) -> Alert:
    """The alert if the viewer may see it; AccessDenied otherwise (caregivers also when missing)."""
    key = _as_uuid(alert_id)
    alert = session.scalar(select(Alert).where(Alert.id == key, alert_clause(viewer)))
    if alert is not None:
        return alert
    if viewer.sees_all_residents:
        raise NotFoundError(f"No alert {alert_id}.", key="errors.alert_missing")
    # A caregiver learns nothing about alerts that are not theirs, not even that they exist.
    raise AccessDenied(
        f"'{viewer.username}' may not see alert {alert_id}.", key="errors.access_denied"
    )


def _user_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return {user_id: name for user_id, name in rows}


def _timezone(session: Session, alert: Alert, resident: Resident | None, default: str) -> str:
    site_id = alert.site_id or (resident.site_id if resident else None)
    site = session.get(Site, site_id) if site_id else None
    candidates = (resident.timezone if resident else None, site.timezone if site else None)
    return next((zone for zone in candidates if is_timezone(zone)), default)


def alert_history(session: Session, viewer: Viewer, alert_id: uuid.UUID | str) -> pd.DataFrame:
    """Every change of an alert the viewer sees, oldest first: at, action, actor, note."""
    alert = check_alert(session, viewer, alert_id)
    entries = lifecycle.history(session, alert.id)
    names = _user_names(session, (entry.actor_id for entry in entries))
    records = [
        {
            "at": entry.at,
            "action": entry.action,
            "actor": names.get(entry.actor_id) if entry.actor_id else None,
            "note": entry.note,
        }
        for entry in entries
    ]
    return pd.DataFrame.from_records(records, columns=HISTORY_COLUMNS)


def alert_notifications(
    session: Session, viewer: Viewer, alert_id: uuid.UUID | str
) -> pd.DataFrame:
    """The messages queued for an alert the viewer sees; delivery errors only for operators."""
    alert = check_alert(session, viewer, alert_id)
    rows = session.execute(
        select(Notification, User.display_name)
        .outerjoin(User, User.id == Notification.recipient_id)
        .where(Notification.alert_id == alert.id)
        .order_by(Notification.created_at, Notification.id)
    ).all()
    # Delivery errors name mail servers and webhooks: operations detail, not a caregiver's.
    show_errors = viewer.can(Permission.MANAGE_NOTIFICATIONS)
    records = [
        {
            "id": row.id,
            "created_at": row.created_at,
            "recipient": name,
            "channel": row.channel.value,
            "purpose": row.purpose.value,
            "status": row.status.value,
            "attempts": row.attempts,
            "sent_at": row.sent_at,
            "last_error": row.last_error if show_errors else None,
        }
        for row, name in rows
    ]
    return pd.DataFrame.from_records(records, columns=ALERT_NOTIFICATION_COLUMNS)


def alert_detail(
    session: Session,
    viewer: Viewer,
    alert_id: uuid.UUID | str,
    language: str | None = None,
    default_timezone: str = "UTC",
) -> AlertDetail:
    """One alert the viewer sees, with its history and notifications (AccessDenied otherwise)."""
    alert = check_alert(session, viewer, alert_id)
    lang = language or viewer.language
    resident = session.get(Resident, alert.resident_id) if alert.resident_id else None
    if resident is None and alert.device_id:
        device = session.get(Device, alert.device_id)
        if device is not None and device.resident_id is not None:
            resident = session.get(Resident, device.resident_id)
    rule = session.get(AlertRule, alert.rule_id) if alert.rule_id else None
    names = _user_names(session, (alert.acknowledged_by, alert.resolved_by))
    can_reopen = (
        alert.status is AlertStatus.RESOLVED
        and lifecycle.find_unresolved(session, alert.dedupe_key) is None
    )
    return AlertDetail(
        id=alert.id,
        title=alert.title,
        what=finding_text(alert.kind, alert.details, alert.title, lang),
        kind=RuleKind(alert.kind),
        severity=Severity(alert.severity),
        status=AlertStatus(alert.status),
        rule_name=rule.name if rule else None,
        resident_id=resident.id if resident else None,
        resident_name=resident.name if resident else None,
        room=resident.room if resident else None,
        device_id=alert.device_id,
        site_id=alert.site_id,
        timezone=_timezone(session, alert, resident, default_timezone),
        opened_at=alert.opened_at,
        last_seen_at=alert.last_seen_at,
        occurrences=alert.occurrences,
        escalation_level=alert.escalation_level,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=names.get(alert.acknowledged_by) if alert.acknowledged_by else None,
        ack_note=alert.ack_note,
        resolved_at=alert.resolved_at,
        resolved_by=names.get(alert.resolved_by) if alert.resolved_by else None,
        resolve_note=alert.resolve_note,
        can_reopen=can_reopen,
        history=alert_history(session, viewer, alert.id),
        notifications=alert_notifications(session, viewer, alert.id),
    )


def _clean_note(note: str | None, required: bool) -> str | None:
    text = (note or "").strip()
    if required and not text:
        raise AlertNoteError("Say what happened in a note.", key="errors.alerts.note_required")
    if len(text) > NOTE_MAX_CHARS:
        raise AlertNoteError(
            f"The note is longer than {NOTE_MAX_CHARS} characters.",
            key="errors.alerts.note_too_long",
            limit=NOTE_MAX_CHARS,
        )
    return text or None


def acknowledge_alert(
    session: Session, viewer: Viewer, alert_id: uuid.UUID | str, note: str | None = None
) -> Alert:
    """Take on an alert the viewer sees (optional note): escalation stops; audited."""
    alert = check_alert(session, viewer, alert_id)
    return lifecycle.acknowledge(
        session, alert.id, acting_user(session, viewer), _clean_note(note, required=False)
    )


def resolve_alert(session: Session, viewer: Viewer, alert_id: uuid.UUID | str, note: str) -> Alert:
    """Close an alert the viewer sees, saying what happened (a note is required); audited."""
    alert = check_alert(session, viewer, alert_id)
    text = _clean_note(note, required=True)
    return lifecycle.resolve(session, alert.id, acting_user(session, viewer), text)


def reopen_alert(
    session: Session, viewer: Viewer, alert_id: uuid.UUID | str, note: str | None = None
) -> Alert:
    """Reopen a resolved alert the viewer sees (ConflictError if a newer one is open); audited."""
    alert = check_alert(session, viewer, alert_id)
    return lifecycle.reopen(
        session, alert.id, acting_user(session, viewer), _clean_note(note, required=False)
    )


def comment_alert(session: Session, viewer: Viewer, alert_id: uuid.UUID | str, note: str) -> Alert:
    """Add a note to an alert the viewer sees without changing its state; audited."""
    alert = check_alert(session, viewer, alert_id)
    text = _clean_note(note, required=True)
    assert text is not None
    return lifecycle.comment(session, alert.id, acting_user(session, viewer), text)


def inbox(
    session: Session, viewer: Viewer, unread_only: bool = True, limit: int = 50
) -> pd.DataFrame:
    """The viewer's own in-app inbox messages, newest first."""
    require(viewer, Permission.HANDLE_ALERTS)
    items = notify_inbox.inbox_items(session, viewer.user_id, limit=limit, unread_only=unread_only)
    records = [
        {
            "id": item.id,
            "created_at": item.created_at,
            "subject": item.subject,
            "purpose": item.purpose.value,
            "alert_id": str(item.alert_id) if item.alert_id else None,
            "read_at": item.read_at,
        }
        for item in items
    ]
    return pd.DataFrame.from_records(records, columns=INBOX_COLUMNS)


def inbox_unread(session: Session, viewer: Viewer) -> int:
    """How many of the viewer's inbox messages are unread."""
    require(viewer, Permission.HANDLE_ALERTS)
    return notify_inbox.unread_count(session, viewer.user_id)


def mark_inbox_read(
    session: Session, viewer: Viewer, notification_ids: Sequence[int] | None = None
) -> int:
    """Mark the viewer's own inbox messages read (None: all unread; others' ids are ignored)."""
    require(viewer, Permission.HANDLE_ALERTS)
    if notification_ids is None:
        unread = notify_inbox.inbox_items(session, viewer.user_id, limit=10_000, unread_only=True)
        notification_ids = [item.id for item in unread]
    if not notification_ids:
        return 0
    return notify_inbox.mark_read(session, viewer.user_id, [int(i) for i in notification_ids])
