"""The demo site: residents, devices of every type, staff with generated logins, default rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, registry, users
from core.contract.catalogue import DeviceType
from core.security import generate_password
from models import AlertRule, Device, Resident, Role, RuleKind, ScopeType, Severity, Site, User

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
        "name": "No movement during the day",
        "kind": RuleKind.INACTIVITY,
        "severity": Severity.WARNING,
        "auto_resolve": True,
        "params": {"max_minutes": 240, "use_routine": False},
    },
    {
        "name": "Device offline",
        "kind": RuleKind.DEVICE_OFFLINE,
        "severity": Severity.WARNING,
        "auto_resolve": True,
        "params": {"minutes": 30},
    },
    {
        "name": "Door opened at night",
        "kind": RuleKind.NIGHT_EXIT,
        "severity": Severity.WARNING,
        "params": {"start": "22:00", "end": "06:00"},
    },
    {
        "name": "Battery low",
        "kind": RuleKind.BATTERY_LOW,
        "severity": Severity.INFO,
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
        return _refresh_logins(session)
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

    for spec in DEFAULT_RULES:
        session.add(
            AlertRule(
                name=spec["name"],
                kind=spec["kind"],
                severity=spec["severity"],
                params=spec["params"],
                scope_type=ScopeType.SITE,
                site_id=site.id,
                route=DEFAULT_ROUTE,
                auto_resolve=spec.get("auto_resolve", False),
            )
        )
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
