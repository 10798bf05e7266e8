"""Who hears of an alert: the route's steps (tier, delay, channels) and the people at a tier.

A resident's alert goes to the caregivers assigned to them at the tier. A critical alert about a
device or the whole site (a kitchen gas leak, a flame) goes to the people on duty at that site
(`site_on_duty`). Anything else, and any tier with nobody in it, goes to the site's operators.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from core.contract.catalogue import CRITICAL_EVENTS
from models import (
    Alert,
    AlertRule,
    CaregiverAssignment,
    Resident,
    Role,
    RuleKind,
    Severity,
    User,
)
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


def _a_person() -> ColumnElement[bool]:
    """Service accounts (systems using the API) are never told: nobody would read it, and an
    escalation would count them as having been told."""
    return User.is_service.is_(False)


def operators(session: Session, site_id: str | None) -> list[User]:
    """Active operators of the site, or of every site (no site_id of their own)."""
    return _staff(session, Role.OPERATOR, site_id)


def _staff(session: Session, role: Role, site_id: str | None) -> list[User]:
    query = select(User).where(User.role == role, User.active.is_(True), _a_person())
    if site_id is not None:
        query = query.where(or_(User.site_id.is_(None), User.site_id == site_id))
    return list(session.scalars(query.order_by(User.id)))


def _assigned(
    session: Session, tier: int, *, resident_id: int | None, site_id: str | None
) -> list[User]:
    query = (
        select(User)
        .join(CaregiverAssignment, CaregiverAssignment.user_id == User.id)
        .where(CaregiverAssignment.tier == tier, User.active.is_(True), _a_person())
    )
    if resident_id is not None:
        query = query.where(CaregiverAssignment.resident_id == resident_id)
    else:
        query = query.join(Resident, Resident.id == CaregiverAssignment.resident_id).where(
            Resident.site_id == site_id, Resident.active.is_(True)
        )
    return list(session.scalars(query.distinct().order_by(User.id)))


def site_on_duty(session: Session, site_id: str, tier: int) -> list[User]:
    """Who answers a critical site alert at `tier`: the one definition of "on duty at a site".

    Tier 1: caregivers assigned at tier 1 to any active resident of the site, caregivers who
    work at the site (their own site_id) and the site's operators (someone must check the
    valve). Higher tiers: those assigned at that tier to the site's residents (supervisors).
    """
    people = {user.id: user for user in _assigned(session, tier, resident_id=None, site_id=site_id)}
    if tier <= 1:
        here = session.scalars(
            select(User).where(
                User.role == Role.CAREGIVER,
                User.active.is_(True),
                User.site_id == site_id,
                _a_person(),
            )
        )
        people.update((user.id, user) for user in here)
        people.update((user.id, user) for user in operators(session, site_id))
    return sorted(people.values(), key=lambda user: user.id)


# About the equipment, not about anyone's safety: the operators' job even when critical.
_TECHNICAL_KINDS = frozenset({RuleKind.DEVICE_OFFLINE, RuleKind.BATTERY_LOW, RuleKind.DATA_QUALITY})


def is_site_wide(alert: Alert) -> bool:
    """A critical safety alert about no one resident (a device or the site, e.g. kitchen gas):
    the people on duty at the site answer it."""
    if alert.resident_id is not None or alert.site_id is None:
        return False
    if RuleKind(alert.kind) in _TECHNICAL_KINDS:
        return False
    event_type = (alert.details or {}).get("event_type")
    return Severity(alert.severity) is Severity.CRITICAL or event_type in CRITICAL_EVENTS


def recipients(session: Session, alert: Alert, tier: int) -> list[User]:
    """The people at `tier` for this alert; the site's operators when there is nobody there."""
    people: list[User] = []
    if alert.resident_id is not None:
        people = _assigned(session, tier, resident_id=alert.resident_id, site_id=None)
    elif is_site_wide(alert):
        assert alert.site_id is not None
        people = site_on_duty(session, alert.site_id, tier)
    # Non-critical device alerts, and tiers beyond those assigned: someone must still hear of it.
    return people or operators(session, alert.site_id)


def escalation_recipients(
    session: Session, alert: Alert, tier: int, notified: Collection[int]
) -> list[User]:
    """The people at `tier` not already told at a lower tier (`notified`): escalating to the
    one who did not answer is no escalation. When nobody is left: operators, then admins, not
    yet told; failing those, the tier's people again rather than nobody."""
    for candidates in (
        recipients(session, alert, tier),
        operators(session, alert.site_id),
        _staff(session, Role.ADMIN, alert.site_id),
    ):
        fresh = [user for user in candidates if user.id not in notified]
        if fresh:
            return fresh
    log.error("alert %s: nobody new to escalate to at tier %s; telling tier again", alert.id, tier)
    return recipients(session, alert, tier)
