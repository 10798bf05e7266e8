"""The demo site: residents, devices of every type, staff with generated logins, default rules.

The default rules are meant to be quiet on an ordinary day (docs/operations.md, "Default alert
rules"): each device type's silence limit comes from its reporting interval, inactivity follows
the learned routine within 90-150 minutes, the night is each resident's time outside their
active hours. Re-running the seed brings the default rules of an earlier seed up to date, unless
an operator changed them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, registry, users
from core.contract.catalogue import DeviceType
from core.i18n import translate
from core.rules.params import default_offline_minutes
from core.security import generate_password
from models import AlertRule, Device, Resident, Role, RuleKind, ScopeType, Severity, Site, User

log = logging.getLogger(__name__)

DEMO_SITE_ID = "sunrise"
DEMO_SITE_NAME = "Sunrise Care Home (햇살 요양원)"
DEMO_RESIDENTS = 20
DEMO_CAREGIVERS = 5

# Family and given names make 20 distinct, plausible Korean names.
_FAMILY = ("김", "이", "박", "최", "정", "강", "조", "윤", "장", "임")
_GIVEN = ("영자", "순자", "정숙", "옥순", "말순", "철수", "영수", "상철", "병철", "성호")

# Devices every resident has in their room; the kitchen has the flame detector and gas valve.
RESIDENT_DEVICES = (
    DeviceType.MOTION_SENSOR,
    DeviceType.DOOR_SENSOR,
    DeviceType.ENV_SENSOR,
    DeviceType.WEARABLE,
    DeviceType.FALL_DETECTOR,
    DeviceType.BED_SENSOR,
    DeviceType.PANIC_BUTTON,
)
SITE_DEVICES = ((DeviceType.FLAME_DETECTOR, "kitchen"), (DeviceType.GAS_VALVE, "kitchen"))

_DEVICE_SHORT = {
    DeviceType.MOTION_SENSOR: "motion",
    DeviceType.DOOR_SENSOR: "door",
    DeviceType.ENV_SENSOR: "env",
    DeviceType.WEARABLE: "wear",
    DeviceType.FALL_DETECTOR: "fall",
    DeviceType.BED_SENSOR: "bed",
    DeviceType.PANIC_BUTTON: "panic",
    DeviceType.FLAME_DETECTOR: "flame",
    DeviceType.GAS_VALVE: "gasvalve",
}

# Caregiver on duty first; after 5 minutes without acknowledgement, the supervisor tier too.
DEFAULT_ROUTE = [
    {"tier": 1, "after_minutes": 0, "channels": ["inbox", "email", "telegram", "webhook"]},
    {"tier": 2, "after_minutes": 5, "channels": ["inbox", "email", "telegram", "webhook"]},
]

DEFAULT_RULES: tuple[dict, ...] = (
    {
        "name": "Fall or panic button",
        "kind": RuleKind.EVENT,
        "severity": Severity.CRITICAL,
        "params": {"event_types": ["fall_detected", "button_pressed"]},
    },
    {
        "name": "Fire or gas",
        "kind": RuleKind.EVENT,
        "severity": Severity.CRITICAL,
        "params": {
            "event_types": ["flame_detected", "smoke_detected", "gas_leak"],
            "action": "close_valve",
        },
    },
    {
        "name": "High heart rate",
        "kind": RuleKind.THRESHOLD,
        "severity": Severity.WARNING,
        "auto_resolve": True,
        "params": {
            "metric": "heart_rate",
            "op": ">",
            "value": 120,
            "for_minutes": 5,
            "hysteresis": 5,
        },
    },
    {
        "name": "Low heart rate",
        "kind": RuleKind.THRESHOLD,
        "severity": Severity.CRITICAL,
        "auto_resolve": True,
        "params": {
            "metric": "heart_rate",
            "op": "<",
            "value": 40,
            "for_minutes": 2,
            "hysteresis": 3,
        },
    },
    {
        "name": "Low blood oxygen",
        "kind": RuleKind.THRESHOLD,
        "severity": Severity.CRITICAL,
        "auto_resolve": True,
        "params": {"metric": "spo2", "op": "<", "value": 90, "for_minutes": 5, "hysteresis": 1},
    },
    {
        "name": "Fever",
        "kind": RuleKind.THRESHOLD,
        "severity": Severity.WARNING,
        "auto_resolve": True,
        "params": {
            "metric": "body_temp_c",
            "op": ">",
            "value": 38.0,
            "for_minutes": 10,
            "hysteresis": 0.3,
        },
    },
    {
        # 150 minutes catches a 3-hour still spell; the learned routine (where there is one)
        # tightens it to 1.5 × the hour's usual gap, never below 90 minutes (meals and the
        # lounge keep residents out of their room for an hour or more).
        "name": "No movement during the day",
        "kind": RuleKind.INACTIVITY,
        "severity": Severity.WARNING,
        "auto_resolve": True,
        "params": {"max_minutes": 150, "use_routine": True, "factor": 1.5, "min_minutes": 90},
    },
    {
        # No times: each resident's night is the time outside their active hours.
        "name": "Door opened at night",
        "kind": RuleKind.NIGHT_EXIT,
        "severity": Severity.WARNING,
        "params": {},
    },
    {
        # A warning: a flat battery silences a fall detector or a panic button.
        "name": "Battery low",
        "kind": RuleKind.BATTERY_LOW,
        "severity": Severity.WARNING,
        "auto_resolve": True,
        "params": {"below_pct": 15},
    },
    {
        "name": "Data quality check failed",
        "kind": RuleKind.DATA_QUALITY,
        "severity": Severity.WARNING,
        "params": {"suites": []},
    },
)


OFFLINE_RULE_NAME = "Device offline"


def offline_rules() -> tuple[dict[str, Any], ...]:
    """One device-offline rule per device type, its limit from the type's reporting interval.

    One limit for all would either alarm on devices that report rarely (a panic button checks
    in hourly) or miss a wearable gone silent for hours.
    """
    kinds = [*RESIDENT_DEVICES, *(kind for kind, _room in SITE_DEVICES)]
    return tuple(
        {
            "name": f"{OFFLINE_RULE_NAME}: "
            + translate(f"app.rules.device_types.{kind.value}", "en").lower(),
            "kind": RuleKind.DEVICE_OFFLINE,
            "severity": Severity.WARNING,
            "auto_resolve": True,
            "params": {"minutes": default_offline_minutes(kind.value)},
            "scope_type": ScopeType.DEVICE_TYPE,
            "device_type": kind.value,
        }
        for kind in kinds
    )


# Default rules of earlier seeds, as they were seeded: an existing rule still exactly like one
# of these was never changed by an operator, and re-running the seed updates it.
PREVIOUS_DEFAULTS: dict[str, tuple[RuleKind, Severity, dict[str, Any]]] = {
    "No movement during the day": (
        RuleKind.INACTIVITY,
        Severity.WARNING,
        {"max_minutes": 240, "use_routine": False},
    ),
    OFFLINE_RULE_NAME: (RuleKind.DEVICE_OFFLINE, Severity.WARNING, {"minutes": 30}),
    "Door opened at night": (
        RuleKind.NIGHT_EXIT,
        Severity.WARNING,
        {"start": "22:00", "end": "06:00"},
    ),
    "Battery low": (RuleKind.BATTERY_LOW, Severity.INFO, {"below_pct": 15}),
}


@dataclass
class Login:
    """A generated demo login, shown once to whoever ran the seed."""

    username: str
    password: str
    role: Role
    language: str


@dataclass
class SeedResult:
    """What seeding did, for the CLI to report."""

    created: bool
    site_id: str
    residents: int = 0
    devices: int = 0
    rules: int = 0
    logins: list[Login] = field(default_factory=list)
    # Names of default rules an earlier seed made that this run brought up to date.
    rules_updated: list[str] = field(default_factory=list)


def device_id(site_id: str, resident_index: int | None, kind: DeviceType) -> str:
    """Demo device id such as 'sunrise-r07-wear' or 'sunrise-kitchen-flame'."""
    where = f"r{resident_index:02d}" if resident_index is not None else "kitchen"
    return f"{site_id}-{where}-{_DEVICE_SHORT[kind]}"


def _staff() -> list[tuple[str, str, Role, str]]:
    people = [
        (f"caregiver{n}", f"요양보호사 {n}", Role.CAREGIVER, "ko")
        for n in range(1, DEMO_CAREGIVERS + 1)
    ]
    people.append(("operator", "Operator", Role.OPERATOR, "en"))
    people.append(("admin", "Administrator", Role.ADMIN, "en"))
    return people


def seed_demo(session: Session, timezone: str = "Asia/Seoul") -> SeedResult:
    """Create the demo site; if it exists, only issue fresh passwords for its staff."""
    if session.get(Site, DEMO_SITE_ID) is not None:
        result = _refresh_logins(session)
        result.rules_updated = update_default_rules(session, DEMO_SITE_ID)
        return result
    site = registry.create_site(session, DEMO_SITE_ID, DEMO_SITE_NAME, timezone)
    result = SeedResult(created=True, site_id=site.id)

    staff: dict[str, User] = {}
    for username, display, role, language in _staff():
        password = generate_password()
        staff[username] = users.create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=display,
            language=language,
            site_id=site.id,
        )
        result.logins.append(Login(username, password, role, language))

    supervisor = staff[f"caregiver{DEMO_CAREGIVERS}"]
    on_duty = [staff[f"caregiver{n}"] for n in range(1, DEMO_CAREGIVERS)]
    for index in range(1, DEMO_RESIDENTS + 1):
        name = _FAMILY[(index - 1) % len(_FAMILY)] + _GIVEN[(index * 3) % len(_GIVEN)]
        resident = registry.create_resident(
            session,
            site,
            name,
            room=str(100 + index),
            active_hours=(time(7, 0), time(21, 30)),
            birth_year=1930 + (index * 7) % 20,
        )
        users.assign(session, on_duty[(index - 1) % len(on_duty)], resident, tier=1)
        users.assign(session, supervisor, resident, tier=2)
        for kind in RESIDENT_DEVICES:
            session.add(
                Device(
                    id=device_id(site.id, index, kind),
                    site_id=site.id,
                    resident_id=resident.id,
                    type=kind.value,
                    room=resident.room,
                    name=f"{resident.room} {kind.value}",
                )
            )
            result.devices += 1
        result.residents += 1
    for kind, room in SITE_DEVICES:
        session.add(
            Device(
                id=device_id(site.id, None, kind),
                site_id=site.id,
                type=kind.value,
                room=room,
                name=f"{room} {kind.value}",
            )
        )
        result.devices += 1

    for rule in default_rules(site.id):
        session.add(rule)
        result.rules += 1
    audit.record(
        session,
        None,
        "seed.demo",
        "site",
        site.id,
        residents=result.residents,
        devices=result.devices,
    )
    return result


def default_rules(site_id: str) -> list[AlertRule]:
    """The alert rules a new site starts with: DEFAULT_RULES and one offline rule per type."""
    return [_rule(spec, site_id) for spec in (*DEFAULT_RULES, *offline_rules())]


def _rule(spec: dict[str, Any], site_id: str) -> AlertRule:
    return AlertRule(
        name=spec["name"],
        kind=spec["kind"],
        severity=spec["severity"],
        params=spec["params"],
        scope_type=spec.get("scope_type", ScopeType.SITE),
        device_type=spec.get("device_type"),
        site_id=site_id,
        route=DEFAULT_ROUTE,
        auto_resolve=spec.get("auto_resolve", False),
    )


def _unchanged_default(rule: AlertRule) -> bool:
    """Whether a rule is still exactly as an earlier seed made it (no operator changed it)."""
    previous = PREVIOUS_DEFAULTS.get(rule.name)
    if previous is None:
        return False
    kind, severity, params = previous
    return (
        RuleKind(rule.kind) is kind
        and Severity(rule.severity) is severity
        and (rule.params or {}) == params
        and ScopeType(rule.scope_type or ScopeType.SITE) is ScopeType.SITE
        and rule.resident_id is None
        and rule.device_type is None
    )


def update_default_rules(session: Session, site_id: str) -> list[str]:
    """Bring a site's default rules from an earlier seed up to date; the names updated.

    Only rules still exactly as that seed made them change; any rule an operator edited is left
    alone. The single "Device offline" rule becomes one rule per device type. Idempotent.
    """
    current = {spec["name"]: spec for spec in DEFAULT_RULES}
    updated: list[str] = []
    rules = session.scalars(
        select(AlertRule).where(AlertRule.site_id == site_id).order_by(AlertRule.id)
    ).all()
    names = {rule.name for rule in rules}
    for rule in rules:
        if not _unchanged_default(rule):
            continue
        if rule.name == OFFLINE_RULE_NAME:
            per_type = [spec for spec in offline_rules() if spec["name"] not in names]
            if not per_type:
                continue
            first, *others = per_type
            # The old rule becomes the first type's, so its alerts keep their rule.
            rule.name, rule.params = first["name"], first["params"]
            rule.scope_type, rule.device_type = first["scope_type"], first["device_type"]
            session.add_all(_rule(spec, site_id) for spec in others)
            updated.append(OFFLINE_RULE_NAME)
            continue
        spec = current[rule.name]
        rule.params = spec["params"]
        rule.severity = spec["severity"]
        rule.auto_resolve = spec.get("auto_resolve", False)
        updated.append(rule.name)
    if updated:
        session.flush()
        audit.record(session, None, "seed.rules_updated", "site", site_id, rules=updated)
        log.info("default rules brought up to date: %s", ", ".join(updated))
    return updated


def _refresh_logins(session: Session) -> SeedResult:
    result = SeedResult(
        created=False,
        site_id=DEMO_SITE_ID,
        residents=len(
            session.scalars(select(Resident.id).where(Resident.site_id == DEMO_SITE_ID)).all()
        ),
        devices=len(session.scalars(select(Device.id).where(Device.site_id == DEMO_SITE_ID)).all()),
        rules=len(
            session.scalars(select(AlertRule.id).where(AlertRule.site_id == DEMO_SITE_ID)).all()
        ),
    )
    for username, _display, _role, _language in _staff():
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            continue
        password = generate_password()
        users.set_password(session, user, password)
        result.logins.append(Login(user.username, password, user.role, user.language))
    return result
