"""Who hears of an alert: the route's steps (tier, delay, channels) and the people at a tier."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import Alert, AlertRule, CaregiverAssignment, Role, User
from models import Channel as ChannelKind

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteStep:
    """One step of an escalation route: who (tier), when (after opening) and through what."""

    tier: int
    after: timedelta
    # None: every channel the recipient has enabled.
    channels: frozenset[ChannelKind] | None = None


# For alerts without a rule (the ingest safety net) or with an empty route: caregiver on duty,
# supervisor after 5 minutes, operators after 10 (nobody is assigned at tier 3).
DEFAULT_ROUTE: tuple[RouteStep, ...] = (
    RouteStep(1, timedelta(0)),
    RouteStep(2, timedelta(minutes=5)),
    RouteStep(3, timedelta(minutes=10)),
)


def parse_route(route: list[dict[str, Any]] | None) -> tuple[RouteStep, ...]:
    """Steps of a rule's route JSON, in order of delay; malformed steps are skipped (logged)."""
    steps: list[RouteStep] = []
    for raw in route or []:
        try:
            tier = int(raw["tier"])
            after = timedelta(minutes=float(raw.get("after_minutes", 0)))
            names = raw.get("channels")
            channels = None
            if names is not None:
                known = {kind.value for kind in ChannelKind}
                channels = frozenset(ChannelKind(name) for name in names if name in known)
        except (KeyError, TypeError, ValueError):
            log.warning("route step %r is malformed; skipped", raw)
            continue
        steps.append(RouteStep(tier, max(after, timedelta(0)), channels))
    return tuple(sorted(steps, key=lambda step: step.after))


def route_for(session: Session, alert: Alert) -> tuple[RouteStep, ...]:
    """The alert's rule's route, or DEFAULT_ROUTE when it has no rule or an empty route."""
    rule = session.get(AlertRule, alert.rule_id) if alert.rule_id is not None else None
    steps = parse_route(rule.route) if rule is not None else ()
    return steps or DEFAULT_ROUTE


def step_for_tier(steps: tuple[RouteStep, ...], tier: int) -> RouteStep:
    """The route's step for `tier`, or an all-channels step when the route does not name it."""
    for step in steps:
        if step.tier == tier:
            return step
    return RouteStep(tier, timedelta(0), None)


def operators(session: Session, site_id: str | None) -> list[User]:
    """Active operators of the site, or of every site (no site_id of their own)."""
    query = select(User).where(User.role == Role.OPERATOR, User.active.is_(True))
    if site_id is not None:
        query = query.where(or_(User.site_id.is_(None), User.site_id == site_id))
    return list(session.scalars(query.order_by(User.id)))


def recipients(session: Session, alert: Alert, tier: int) -> list[User]:
    """Caregivers assigned to the alert's resident at `tier`; operators when there are none."""
    if alert.resident_id is not None:
        caregivers = list(
            session.scalars(
                select(User)
                .join(CaregiverAssignment, CaregiverAssignment.user_id == User.id)
                .where(
                    CaregiverAssignment.resident_id == alert.resident_id,
                    CaregiverAssignment.tier == tier,
                    User.active.is_(True),
                )
                .order_by(User.id)
            )
        )
        if caregivers:
            return caregivers
    # Device and site alerts, and tiers beyond those assigned: someone must still hear of it.
    return operators(session, alert.site_id)
