"""Event rules for ingest's instant path: which enabled rules match a stored event."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from core.alerts.lifecycle import Subject
from core.rules.params import EventParams, RuleParamsError, parse_params
from core.rules.scope import Scoped, covers
from models import AlertRule, RuleKind

log = logging.getLogger(__name__)


class EventLike(Protocol):
    """What matching needs of an event (ingest's StoredEvent fits)."""

    type: str
    device_id: str
    site_id: str
    resident_id: int | None
    device_type: str | None


def event_rule_matches(
    params: EventParams, scope: Scoped, event: EventLike, *, quarantined: bool = False
) -> bool:
    """Pure: an event rule with these parameters and this scope matches this event."""
    if quarantined:  # a device nobody registered must not page anyone
        return False
    if event.type not in params.event_types:
        return False
    return covers(
        scope, site_id=event.site_id, resident_id=event.resident_id, device_type=event.device_type
    )


def match_event_rules(
    rules: Iterable[AlertRule], event: EventLike, *, quarantined: bool = False
) -> list[AlertRule]:
    """The enabled event rules that apply to this event (type and scope), in the given order."""
    matched = []
    for rule in rules:
        if not rule.enabled or RuleKind(rule.kind) is not RuleKind.EVENT:
            continue
        try:
            params = parse_params(RuleKind.EVENT, rule.params)
        except RuleParamsError as error:
            # A broken rule must not stop the others; it is logged for the operator.
            log.warning("event rule %s has invalid parameters: %s", rule.id, error)
            continue
        assert isinstance(params, EventParams)
        if event_rule_matches(params, rule, event, quarantined=quarantined):
            matched.append(rule)
    return matched


def event_subject(event: EventLike) -> Subject:
    """The alert subject of an event: its resident when the device is theirs, else the device."""
    if event.resident_id is not None:
        return Subject(
            "resident", str(event.resident_id), event.site_id, event.resident_id, event.device_id
        )
    return Subject("device", event.device_id, event.site_id, None, event.device_id)
