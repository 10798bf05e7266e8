"""A decommissioned device stays in the registry with its history, and nothing live uses it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import commands, registry
from core import device_credentials as dc
from core.access import Viewer
from core.errors import IotCareError
from core.rules.engine import evaluate_rules
from core.rules.params import validate_params
from core.timeutil import utcnow
from core.use_cases import devices as fleet_q
from core.use_cases import devices_admin
from models import (
    Alert,
    AlertRule,
    BlockedDevice,
    Command,
    Device,
    DeviceStatus,
    DeviceStatusChange,
    Role,
    RuleKind,
    ScopeType,
    Severity,
    Site,
)
from tests.conftest import make_test_settings
from tests.factories import Factory


@pytest.fixture
def now() -> datetime:
    """A recent minute: factory devices are registered at the real current time."""
    return utcnow().replace(second=0, microsecond=0)


@pytest.fixture
def operator(factory: Factory) -> Viewer:
    """An operator, who manages devices."""
    return Viewer.of(factory.user(Role.OPERATOR))


def _valves(factory: Factory, site: Site, now: datetime) -> tuple[Device, Device]:
    """Two gas valves of the site, both silent for an hour (reported online, then nothing)."""
    return tuple(  # type: ignore[return-value]
        factory.device(
            "gas_valve",
            site=site,
            device_id=device_id,
            status=DeviceStatus.ONLINE,
            last_seen=now - timedelta(hours=1),
            battery=5,
        )
        for device_id in ("valve-old", "valve-live")
    )


def _count(session: Session, model: type, device_id: str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(model).where(model.device_id == device_id)  # type: ignore[attr-defined]
        )
    )


def test_decommission_keeps_the_row_history_and_commands_but_no_valve_or_broker_access(
    db_session: Session, factory: Factory, operator: Viewer, now: datetime, tmp_path: Path
) -> None:
    site = factory.site()
    old, live = _valves(factory, site, now)
    db_session.add(DeviceStatusChange(device_id=old.id, status=DeviceStatus.ONLINE, at=now))
    commands.request_command(db_session, old.id, "close_valve", now=now)
    for device in (old, live):
        dc.provision(db_session, device.id)
    db_session.flush()

    devices_admin.decommission(db_session, operator, old.id, reason="broken")
    db_session.expire_all()

    kept = db_session.get(Device, old.id)
    assert kept is not None and kept.decommissioned_at is not None
    assert db_session.get(BlockedDevice, old.id) is not None  # ingest dead-letters it
    assert _count(db_session, DeviceStatusChange, old.id) == 1
    assert _count(db_session, Command, old.id) == 1
    # A gas alarm closes only the valves in service; a decommissioned one takes no command.
    assert [v.id for v in commands.site_valves(db_session, site.id)] == [live.id]
    with pytest.raises(IotCareError):
        commands.request_command(db_session, old.id, "close_valve", now=now)
    # The broker files give it no account.
    settings = make_test_settings(
        tmp_path,
        mqtt_url="mqtt://iotcare-platform:platform-password-0123456789@127.0.0.1:1883",
        mosquitto_password_file=tmp_path / "passwords",
        mosquitto_acl_file=tmp_path / "acl",
    )
    files = dc.build_broker_files(db_session, settings)
    assert files.devices == 1
    assert f"user {live.id}" in files.acl and old.id not in files.acl
    assert old.id not in files.passwords and f"{live.id}:" in files.passwords
    with pytest.raises(IotCareError):
        dc.provision(db_session, old.id, rotate=True)
    # `iotcare devices add` (the registry) refuses its id with a message of its own.
    with pytest.raises(IotCareError) as error:
        registry.add_device(db_session, device_id=old.id, site_id=site.id, device_type="gas_valve")
    assert error.value.key == "errors.care.device_decommissioned"
    assert "decommissioned" in str(error.value)


def test_rules_and_the_fleet_leave_a_decommissioned_device_out(
    db_session: Session, factory: Factory, operator: Viewer, now: datetime
) -> None:
    site = factory.site()
    old, live = _valves(factory, site, now)
    rules = [
        AlertRule(
            name=f"{kind.value} rule",
            kind=kind,
            params=validate_params(kind, params),
            severity=Severity.WARNING,
            scope_type=ScopeType.SITE,
            site_id=site.id,
            auto_resolve=True,
            route=[],
        )
        for kind, params in (
            (RuleKind.DEVICE_OFFLINE, {"minutes": 30}),
            (RuleKind.BATTERY_LOW, {"below_pct": 15}),
        )
    ]
    db_session.add_all(rules)
    db_session.flush()
    devices_admin.decommission(db_session, operator, old.id)

    evaluate_rules(db_session, now)
    db_session.flush()
    raised = db_session.execute(select(Alert.rule_id, Alert.subject_id)).tuples().all()
    assert sorted(raised) == sorted((rule.id, live.id) for rule in rules)

    assert list(fleet_q.fleet(db_session, operator, now=now)["device_id"]) == [live.id]
    every = fleet_q.fleet(db_session, operator, fleet_q.FleetFilter(decommissioned=True), now=now)
    retired = every.set_index("device_id")["decommissioned_at"]
    assert sorted(retired.index) == sorted([old.id, live.id])
    assert retired.notna().to_dict() == {old.id: True, live.id: False}
    summary = fleet_q.fleet_summary(db_session, operator, now=now)
    assert (summary.total, summary.silent, summary.low_battery) == (1, 1, 1)
