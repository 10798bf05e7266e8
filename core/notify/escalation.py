"""Escalation: an open alert nobody acknowledged in time is sent to the route's next tier.

Each due alert is claimed with one conditional UPDATE (level + 1, next_escalation_at cleared)
that only matches it while it is open and due; PostgreSQL skips rows another sweeper has locked,
SQLite's single writer makes it a compare-and-set. So two sweepers never escalate one step twice,
and an alert acknowledged meanwhile (status no longer open) is never escalated.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.notify.outbox import queue_for_alert
from core.notify.routes import route_for
from core.settings import Settings
from core.timeutil import ensure_utc
from models import Alert, AlertHistory, AlertStatus, NotificationPurpose

log = logging.getLogger(__name__)


def _claim_due(session: Session, now: datetime, limit: int) -> list[tuple[uuid.UUID, int]]:
    due = (
        select(Alert.id)
        .where(Alert.status == AlertStatus.OPEN, Alert.next_escalation_at <= now)
        .order_by(Alert.next_escalation_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claim = (
        update(Alert)
        # Repeated outside the subquery: PostgreSQL re-checks these on the newest row version.
        .where(
            Alert.id.in_(due.scalar_subquery()),
            Alert.status == AlertStatus.OPEN,
            Alert.next_escalation_at <= now,
        )
        .values(escalation_level=Alert.escalation_level + 1, next_escalation_at=None)
        .returning(Alert.id, Alert.escalation_level)
        .execution_options(synchronize_session=False)
    )
    return [(row[0], int(row[1])) for row in session.execute(claim)]


def escalate_due(session: Session, now: datetime, *, settings: Settings, limit: int = 500) -> int:
    """Escalate every open, unacknowledged alert whose escalation time has passed; returns count.

    Runs in the caller's transaction (start a fresh one: on SQLite the claim must be its first
    write); commit it to release the claimed alerts.
    """
    now = ensure_utc(now)
    claimed = _claim_due(session, now, limit)
    for alert_id, level in claimed:
        alert = session.get(Alert, alert_id, populate_existing=True)
        assert alert is not None  # claimed in this transaction
        steps = route_for(session, alert)
        index = level - 1
        # A route shortened since the alert opened: its last step, i.e. the people beyond it.
        step = steps[min(index, len(steps) - 1)]
        tier = step.tier if index < len(steps) else step.tier + 1
        created = queue_for_alert(
            session, alert, NotificationPurpose.ESCALATION, tier, settings=settings, now=now
        )
        following = steps[index + 1] if index + 1 < len(steps) else None
        alert.next_escalation_at = now + (following.after - step.after) if following else None
        session.add(
            AlertHistory(
                alert_id=alert.id,
                at=now,
                action="escalated",
                data={"level": level, "tier": tier, "notifications": len(created)},
            )
        )
        log.warning(
            "alert %s escalated to level %d (tier %d, %d notifications)",
            alert.id,
            level,
            tier,
            len(created),
        )
    session.flush()
    return len(claimed)
