"""The transactional outbox: notification rows written in the same transaction as the alert change.

One row per alert, opening round, purpose (with the occurrence for repeats and escalations),
tier, recipient, channel and address; its idempotency key is unique, so queueing the same thing
twice adds nothing and a sweeper can never find two copies of one message. Rows are rendered here
(template only: no network in the alert's transaction) and delivered later by
core.notify.delivery.

Who: NEW goes to the route's first tier; REPEAT (a critical alert that happened again) to the
first tier and everyone already told in this opening, and restarts the escalation; ESCALATION to
the tier's people not already told at a lower tier; RESOLVED to everyone reached, except the
person who resolved it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.access import site_timezone
from core.alerts.occurrence import Occurrence
from core.i18n import normalize_language
from core.notify import links  # the module: links → lifecycle → outbox is an import cycle
from core.notify.quiet_hours import quiet_until
from core.notify.render import AlertFacts, alert_facts, render_message
from core.notify.routes import (
    RouteStep,
    escalation_recipients,
    recipients,
    route_for,
    step_for_tier,
)
from core.settings import Settings
from core.timeutil import ensure_utc, is_timezone, utcnow
from models import (
    Alert,
    AlertStatus,
    ContactChannel,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    Severity,
    User,
)
from models import Channel as ChannelKind

log = logging.getLogger(__name__)

_SUBJECT_MAX = 300
_ALERT_PURPOSES = (
    NotificationPurpose.NEW,
    NotificationPurpose.REPEAT,
    NotificationPurpose.ESCALATION,
)
_COUNTED = (NotificationPurpose.REPEAT, NotificationPurpose.ESCALATION)
# Not yet handed to anyone: these can still be called off when the alert resolves.
UNSENT = (NotificationStatus.PENDING, NotificationStatus.HELD)


@dataclass(frozen=True)
class Target:
    """One message to queue: a person, a channel and the address on it (and the tier they are
    told at, when it is not the one being queued)."""

    user: User
    channel: ChannelKind
    address: str
    tier: int | None = None


def alert_changed(
    session: Session,
    alert: Alert,
    purpose: NotificationPurpose,
    occurrence: Occurrence | None = None,
    *,
    settings: Settings,
) -> None:
    """Queue what an alert change calls for; a failure is logged, never raised (the lifecycle
    calls this for every new, repeated, escalated or resolved alert)."""
    try:
        # A savepoint: a failure here must not take the alert itself down with it. An alert
        # stored without notifications is still on every caregiver's screen; a lost one is not.
        with session.begin_nested():
            queue_for_alert(session, alert, purpose, settings=settings, occurrence=occurrence)
    except Exception:
        log.critical("alert %s: could not queue %s notifications", alert.id, purpose, exc_info=True)


def idempotency_key(
    alert: Alert,
    opening: int,
    purpose: NotificationPurpose,
    tier: int | None,
    user_id: int,
    channel: ChannelKind,
    address: str,
    occurrence: int | None = None,
) -> str:
    """Unique per alert, opening round, purpose (and occurrence), tier, recipient, channel and
    address.

    Repeats and escalations carry the alert's occurrence count: each new critical event is a
    message of its own, and an escalation restarted by one is news again, while queueing the
    same occurrence twice still adds nothing.
    """
    # Addresses can be long URLs (webhooks): a digest keeps the key short and free of secrets.
    digest = hashlib.sha256(address.encode()).hexdigest()[:16]
    tier_part = "-" if tier is None else str(tier)
    what = NotificationPurpose(purpose).value
    if occurrence is not None:
        what = f"{what}.o{occurrence}"
    channel_part = ChannelKind(channel).value
    return f"{alert.id}:r{opening}:{what}:t{tier_part}:u{user_id}:{channel_part}:{digest}"


def _event_time(alert: Alert, purpose: NotificationPurpose) -> datetime:
    # The lifecycle's own clock, so a late-processed event escalates on its real timeline.
    if purpose is NotificationPurpose.RESOLVED and alert.resolved_at is not None:
        return alert.resolved_at
    if purpose in (NotificationPurpose.NEW, NotificationPurpose.REPEAT):
        return alert.last_seen_at
    return utcnow()


def contacts(
    session: Session, user: User, wanted: frozenset[ChannelKind] | None
) -> list[tuple[ChannelKind, str]]:
    """The user's enabled channels among `wanted` (None: all), and the in-app inbox always."""
    rows = session.scalars(
        select(ContactChannel)
        .where(ContactChannel.user_id == user.id)
        .order_by(ContactChannel.channel, ContactChannel.id)
    ).all()
    chosen = [
        (ChannelKind(row.channel), row.address)
        for row in rows
        if row.enabled
        and row.channel is not ChannelKind.INBOX
        and (wanted is None or row.channel in wanted)
    ]
    inbox = next((row.address for row in rows if row.channel is ChannelKind.INBOX), user.username)
    return [(ChannelKind.INBOX, inbox), *chosen]


def _targets(session: Session, people: Iterable[User], step: RouteStep) -> list[Target]:
    return [
        Target(user, channel, address)
        for user in people
        for channel, address in contacts(session, user, step.channels)
    ]


def _queued(session: Session, alert: Alert, key_prefix: str) -> list[Notification]:
    """This opening's new, repeat and escalation messages that were not called off."""
    return list(
        session.scalars(
            select(Notification)
            .where(
                Notification.alert_id == alert.id,
                Notification.idempotency_key.startswith(key_prefix, autoescape=True),
                Notification.purpose.in_(_ALERT_PURPOSES),
                Notification.status != NotificationStatus.CANCELLED,
                Notification.recipient_id.is_not(None),
            )
            .order_by(Notification.id)
        )
    )


def _tier_of(row: Notification) -> int | None:
    tier = (row.payload or {}).get("tier")
    return tier if isinstance(tier, int) else None


def _told_below(session: Session, alert: Alert, key_prefix: str, tier: int) -> set[int]:
    """Who was told of this opening at a lower tier than `tier` (they did not answer)."""
    return {
        int(row.recipient_id)
        for row in _queued(session, alert, key_prefix)
        if row.recipient_id is not None and (_tier_of(row) or 0) < tier
    }


def _repeat_targets(
    session: Session, alert: Alert, key_prefix: str, step: RouteStep
) -> list[Target]:
    """The first tier, and everyone already told in this opening, each at their own tier."""
    targets = _targets(session, recipients(session, alert, step.tier), step)
    seen = {(t.user.id, t.channel, t.address) for t in targets}
    for row in _queued(session, alert, key_prefix):
        address = row.address or ""
        key = (int(row.recipient_id or 0), ChannelKind(row.channel), address)
        if key in seen:
            continue
        user = session.get(User, row.recipient_id)
        if user is not None and user.active:
            seen.add(key)
            targets.append(Target(user, key[1], address, _tier_of(row)))
    return targets


def _previously_notified(session: Session, alert: Alert, key_prefix: str) -> list[Target]:
    rows = session.execute(
        select(Notification.recipient_id, Notification.channel, Notification.address)
        .where(
            Notification.alert_id == alert.id,
            Notification.idempotency_key.startswith(key_prefix, autoescape=True),
            Notification.purpose.in_(_ALERT_PURPOSES),
            Notification.status.in_((NotificationStatus.SENT, NotificationStatus.SENDING)),
            Notification.recipient_id.is_not(None),
        )
        .distinct()
    ).all()
    targets = []
    for user_id, channel, address in sorted(rows, key=lambda r: (r[0], str(r[1]), r[2] or "")):
        user = session.get(User, user_id)
        if user is not None and user.active:
            targets.append(Target(user, ChannelKind(channel), address or user.username))
    return targets


def cancel_unsent(session: Session, alert: Alert, key_prefix: str) -> int:
    """Call off this round's new/escalation messages not yet handed over (e.g. held ones)."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.alert_id == alert.id,
            Notification.idempotency_key.startswith(key_prefix, autoescape=True),
            Notification.purpose.in_(_ALERT_PURPOSES),
            Notification.status.in_(UNSENT),
        )
        .values(status=NotificationStatus.CANCELLED, last_error="alert resolved before delivery")
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _user_timezone(session: Session, user: User, facts: AlertFacts) -> str:
    # A person's own timezone first: a message is read wherever they are, not only on site.
    if is_timezone(user.timezone):
        return str(user.timezone)
    return site_timezone(session, user.site_id, facts.timezone)


def _row_values(
    session: Session,
    settings: Settings,
    alert: Alert,
    facts: AlertFacts,
    purpose: NotificationPurpose,
    tier: int | None,
    opening: int,
    target: Target,
    now: datetime,
    occurrence: int | None = None,
) -> dict[str, Any]:
    user = target.user
    tier = target.tier if target.tier is not None else tier
    language = normalize_language(user.language)
    held_until = None
    # Critical alerts always go; the inbox makes no sound, so it is never held either.
    critical = Severity(alert.severity) is Severity.CRITICAL
    if not critical and target.channel is not ChannelKind.INBOX:
        held_until = quiet_until(
            now, user.quiet_start, user.quiet_end, _user_timezone(session, user, facts)
        )
    link = None
    if purpose is not NotificationPurpose.RESOLVED:
        expires = (held_until or now) + settings.ack_link_ttl
        link = links.make_ack_link(settings, alert.id, user.id, expires, opening=opening)
    message = render_message(facts, purpose, language, user.display_name, link)
    return {
        "idempotency_key": idempotency_key(
            alert, opening, purpose, tier, user.id, target.channel, target.address, occurrence
        ),
        "alert_id": alert.id,
        "recipient_id": user.id,
        "channel": target.channel,
        "address": target.address,
        "purpose": purpose,
        "status": NotificationStatus.HELD if held_until else NotificationStatus.PENDING,
        "subject": message.subject[:_SUBJECT_MAX],
        "body": message.body,
        "payload": {
            "purpose": purpose.value,
            "tier": tier,
            "language": language,
            "recipient": {"id": user.id, "name": user.display_name},
            "ack_url": link,
            "facts": facts.to_payload(),
        },
        "attempts": 0,
        "next_attempt_at": held_until or now,
        "created_at": utcnow(),
    }


def _insert_new(session: Session, rows: Iterable[dict[str, Any]]) -> list[int]:
    """Insert rows whose key is new; concurrent writers of the same key never fail the caller."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    ids = []
    for values in rows:
        stmt = (
            insert(Notification)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(Notification.id)
        )
        created = session.execute(stmt).scalar()
        if created is not None:
            ids.append(created)
    return ids


def queue_for_alert(
    session: Session,
    alert: Alert,
    purpose: NotificationPurpose,
    tier: int | None = None,
    *,
    settings: Settings,
    now: datetime | None = None,
    occurrence: Occurrence | None = None,
) -> list[Notification]:
    """Queue the notifications `purpose` calls for, in the caller's transaction; returns new rows.

    NEW goes to the people at `tier` (default: the route's first tier) through the route step's
    channels and their inbox; ESCALATION likewise, but not to anyone told at a lower tier;
    REPEAT (with the new `occurrence`) to the first tier and everyone told so far, and restarts
    the escalation; RESOLVED goes to everyone this opening's messages reached except the person
    who resolved it, and calls off the ones still waiting.
    """
    purpose = NotificationPurpose(purpose)
    if purpose is NotificationPurpose.REPORT:
        raise ValueError("care reports are queued by the report flow, not from an alert")
    now = ensure_utc(now or _event_time(alert, purpose))
    steps = route_for(session, alert)
    opening = links.opening_round(session, alert)
    key_prefix = f"{alert.id}:r{opening}:"
    facts = alert_facts(session, alert, settings.default_timezone, occurrence)
    # Repeats and escalations are keyed by the occurrence that made them news.
    number = alert.occurrences if purpose in _COUNTED else None
    if purpose is NotificationPurpose.RESOLVED:
        cancel_unsent(session, alert, key_prefix)
        tier = None
        # Whoever resolved it knows: the message is for the others.
        targets = [
            target
            for target in _previously_notified(session, alert, key_prefix)
            if target.user.id != alert.resolved_by
        ]
    else:
        tier = steps[0].tier if tier is None else tier
        step = step_for_tier(steps, tier)
        if purpose is NotificationPurpose.REPEAT:
            targets = _repeat_targets(session, alert, key_prefix, step)
        elif purpose is NotificationPurpose.ESCALATION:
            told = _told_below(session, alert, key_prefix, tier)
            targets = _targets(session, escalation_recipients(session, alert, tier, told), step)
        else:
            targets = _targets(session, recipients(session, alert, tier), step)
        if not targets:
            log.error("alert %s (tier %s) has nobody to notify", alert.id, tier)
    ids = _insert_new(
        session,
        (
            _row_values(
                session, settings, alert, facts, purpose, tier, opening, target, now, number
            )
            for target in targets
        ),
    )
    if purpose is NotificationPurpose.NEW:
        _schedule_first_escalation(alert, steps, now)
    elif purpose is NotificationPurpose.REPEAT:
        _restart_escalation(alert, steps, now)
    if not ids:
        return []
    return list(
        session.scalars(
            select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id)
        )
    )


def _schedule_first_escalation(alert: Alert, steps: Sequence[RouteStep], now: datetime) -> None:
    # Only once per opening: queueing NEW again must not push the escalation back.
    if alert.status is AlertStatus.OPEN and alert.next_escalation_at is None and len(steps) > 1:
        alert.next_escalation_at = now + (steps[1].after - steps[0].after)


def _restart_escalation(alert: Alert, steps: Sequence[RouteStep], now: datetime) -> None:
    # A new critical event: the first tier has the route's first delay again to answer it.
    if alert.status is AlertStatus.OPEN:
        alert.escalation_level = 1
        alert.next_escalation_at = (
            now + (steps[1].after - steps[0].after) if len(steps) > 1 else None
        )


def dead_notifications(session: Session, limit: int = 100) -> list[Notification]:
    """Notifications that could not be delivered, newest first (for the operator pages)."""
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.status == NotificationStatus.DEAD)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )


def requeue(session: Session, notification_ids: Sequence[int], now: datetime | None = None) -> int:
    """Give dead notifications a fresh set of attempts (after an operator fixed the cause)."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.id.in_(list(notification_ids)),
            Notification.status == NotificationStatus.DEAD,
        )
        .values(
            status=NotificationStatus.PENDING,
            attempts=0,
            next_attempt_at=ensure_utc(now or utcnow()),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
