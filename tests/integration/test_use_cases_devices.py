"""core.use_cases.devices: fleet table, detail, recent messages, accept and reject, access rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import registry
from core.access import AccessDenied, Viewer
from core.contract.catalogue import DeviceType
from core.errors import ConflictError, IotCareError, NotFoundError
from core.timeutil import utcnow
from core.use_cases import devices as q
from models import (
    AuditEntry,
    BlockedDevice,
    DeadLetter,
    Device,
    DeviceStatus,
    Event,
    Reading,
    Role,
    User,
)


@pytest.fixture
def fleet_world(factory):
    """A site with a resident, two accepted devices and one quarantined device with data."""
    site = factory.site(timezone="Asia/Seoul")
    resident = factory.resident(site, name="Kim Mi-ja", room="101")
    now = utcnow()
    wear = factory.device(
        DeviceType.WEARABLE,
        resident=resident,
        status=DeviceStatus.ONLINE,
        battery=12,
        firmware="1.2.0",
        last_seen=now,
    )
    valve = factory.device(DeviceType.GAS_VALVE, site=site, status=DeviceStatus.OFFLINE)
    stray = Device(
        id=f"stray-{site.id}",
        site_id=site.id,
        quarantined=True,
        status=DeviceStatus.UNKNOWN,
        created_at=now,
    )
    factory.session.add(stray)
    factory.session.add_all(
        [
            Reading(device_id=stray.id, metric="temperature_c", ts=now, value=20.0),
            Reading(device_id=wear.id, metric="heart_rate", ts=now, value=71.0),
            Event(
                device_id=stray.id,
                site_id=site.id,
                type="motion",
                ts=now - timedelta(minutes=1),
                data={"zone": "hall"},
            ),
            DeadLetter(
                topic=f"care/v1/{site.id}/{stray.id}/telemetry",
                payload=b"{",
                payload_size=1,
                reason="invalid_json",
                detail="Expecting value",
                received_at=now - timedelta(minutes=2),
            ),
        ]
    )
    factory.session.flush()
    operator = Viewer.of(factory.user(Role.OPERATOR))
    caregiver = Viewer.of(factory.user(Role.CAREGIVER, residents=(resident,)))
    return {
        "site": site,
        "resident": resident,
        "wear": wear,
        "valve": valve,
        "stray": stray,
        "operator": operator,
        "caregiver": caregiver,
    }


def test_caregiver_is_denied_every_device_function(db_session, fleet_world) -> None:
    caregiver, stray = fleet_world["caregiver"], fleet_world["stray"]
    calls = [
        lambda: q.fleet(db_session, caregiver),
        lambda: q.fleet_summary(db_session, caregiver),
        lambda: q.sites(db_session, caregiver),
        lambda: q.site_residents(db_session, caregiver, stray.site_id),
        lambda: q.device_detail(db_session, caregiver, stray.id),
        lambda: q.recent_messages(db_session, caregiver, stray.id),
        lambda: q.accept_device(db_session, caregiver, stray.id, device_type="env_sensor"),
        lambda: q.reject_device(db_session, caregiver, stray.id),
        lambda: q.blocked_devices(db_session, caregiver),
        lambda: q.unblock_device(db_session, caregiver, stray.id),
    ]
    for call in calls:
        with pytest.raises(AccessDenied):
            call()
    assert db_session.get(Device, stray.id).quarantined


def test_fleet_table_and_filters(db_session, fleet_world) -> None:
    operator, site = fleet_world["operator"], fleet_world["site"]
    table = q.fleet(db_session, operator, q.FleetFilter(site_id=site.id))
    assert table["device_id"].iloc[0] == fleet_world["stray"].id  # quarantined first
    assert set(table["device_id"]) == {
        fleet_world["stray"].id,
        fleet_world["wear"].id,
        fleet_world["valve"].id,
    }
    wear = table.set_index("device_id").loc[fleet_world["wear"].id]
    assert wear["resident"] == "Kim Mi-ja"
    assert wear["battery"] == 12 and wear["firmware"] == "1.2.0"
    assert wear["status"] == "online"

    by_status = q.fleet(
        db_session, operator, q.FleetFilter(site_id=site.id, status=DeviceStatus.OFFLINE)
    )
    assert list(by_status["device_id"]) == [fleet_world["valve"].id]
    by_type = q.fleet(db_session, operator, q.FleetFilter(site_id=site.id, device_type="wearable"))
    assert list(by_type["device_id"]) == [fleet_world["wear"].id]
    by_name = q.fleet(db_session, operator, q.FleetFilter(site_id=site.id, search="mi-JA"))
    assert list(by_name["device_id"]) == [fleet_world["wear"].id]
    waiting = q.fleet(db_session, operator, q.FleetFilter(site_id=site.id, quarantined=True))
    assert list(waiting["device_id"]) == [fleet_world["stray"].id]

    summary = q.fleet_summary(db_session, operator, site.id)
    assert summary == q.FleetSummary(total=3, online=1, offline=1, quarantined=1, low_battery=1)


def test_detail_and_recent_messages(db_session, fleet_world) -> None:
    operator, stray = fleet_world["operator"], fleet_world["stray"]
    detail = q.device_detail(db_session, operator, stray.id)
    assert detail.quarantined and detail.site_timezone == "Asia/Seoul" and detail.type is None
    messages = q.recent_messages(db_session, operator, stray.id)
    assert list(messages["kind"]) == ["reading", "event", "dead_letter"]
    assert list(messages["what"]) == ["temperature_c", "motion", "invalid_json"]
    assert messages.iloc[1]["detail"] == "zone=hall"
    # The wearable's readings are not the stray's.
    assert "heart_rate" not in set(messages["what"])
    with pytest.raises(NotFoundError) as missing:
        q.device_detail(db_session, operator, "no-such-device")
    assert missing.value.key == "errors.devices.missing"


def test_accept_assigns_and_audits(db_session, fleet_world) -> None:
    operator, stray, resident = (
        fleet_world["operator"],
        fleet_world["stray"],
        fleet_world["resident"],
    )
    with pytest.raises(IotCareError) as bad_type:
        q.accept_device(db_session, operator, stray.id, device_type="toaster")
    assert bad_type.value.key == "errors.devices.type_unknown"
    other_site = fleet_world["site"].id + "x"
    from core.registry import create_resident, create_site

    elsewhere = create_resident(db_session, create_site(db_session, other_site, "X", "UTC"), "Lee")
    with pytest.raises(NotFoundError) as wrong_site:
        q.accept_device(
            db_session, operator, stray.id, device_type="env_sensor", resident_id=elsewhere.id
        )
    assert wrong_site.value.key == "errors.devices.resident_elsewhere"

    device = q.accept_device(
        db_session,
        operator,
        stray.id,
        device_type="env_sensor",
        resident_id=resident.id,
        room=" 101 ",
        name="Hall sensor",
    )
    assert not device.quarantined and device.type == "env_sensor"
    assert device.resident_id == resident.id and device.room == "101"
    entry = db_session.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "device.accept", AuditEntry.target_id == stray.id
        )
    )
    assert entry.actor_id == operator.user_id
    assert entry.details["resident_id"] == resident.id
    with pytest.raises(ConflictError):
        q.accept_device(db_session, operator, stray.id, device_type="env_sensor")


def test_reject_removes_the_device_but_keeps_what_it_sent(db_session, fleet_world) -> None:
    operator, stray, wear = fleet_world["operator"], fleet_world["stray"], fleet_world["wear"]
    with pytest.raises(ConflictError) as accepted:
        q.reject_device(db_session, operator, wear.id)
    assert accepted.value.key == "errors.devices.not_quarantined"

    result = q.reject_device(db_session, operator, stray.id, reason="neighbour's sensor")
    assert result == q.RejectResult(stray.id, readings_kept=1, events_kept=1, blocked=True)
    db_session.expire_all()
    assert db_session.get(Device, stray.id) is None
    assert db_session.scalars(select(Reading).where(Reading.device_id == stray.id)).all()
    assert db_session.scalars(select(Event).where(Event.device_id == stray.id)).all()
    entry = db_session.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "device.reject", AuditEntry.target_id == stray.id
        )
    )
    assert entry.actor_id == operator.user_id
    assert entry.details["reason"] == "neighbour's sensor"
    assert entry.details["site_id"] == stray.site_id
    with pytest.raises(NotFoundError):
        q.reject_device(db_session, operator, stray.id)


def test_reject_blocks_the_id_until_an_operator_unblocks_it(db_session, fleet_world) -> None:
    operator, stray = fleet_world["operator"], fleet_world["stray"]
    q.reject_device(db_session, operator, stray.id, reason="  neighbour's sensor  ")
    blocked = q.blocked_devices(db_session, operator)
    assert list(blocked.columns) == q.BLOCKED_COLUMNS
    [row] = blocked[blocked["device_id"] == stray.id].to_dict("records")
    assert row["site_id"] == stray.site_id and row["reason"] == "neighbour's sensor"
    assert row["blocked_by"] == db_session.get(User, operator.user_id).display_name

    q.unblock_device(db_session, operator, stray.id)
    assert db_session.get(BlockedDevice, stray.id) is None
    entry = db_session.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "device.unblock", AuditEntry.target_id == stray.id
        )
    )
    assert entry.actor_id == operator.user_id and entry.details["site_id"] == stray.site_id
    with pytest.raises(NotFoundError) as again:
        q.unblock_device(db_session, operator, stray.id)
    assert again.value.key == "errors.devices.not_blocked"


def test_reject_without_block_lets_the_device_come_back_to_quarantine(
    db_session, fleet_world
) -> None:
    operator, stray = fleet_world["operator"], fleet_world["stray"]
    result = q.reject_device(db_session, operator, stray.id, block=False)
    assert not result.blocked
    assert db_session.get(BlockedDevice, stray.id) is None
    entry = db_session.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "device.reject", AuditEntry.target_id == stray.id
        )
    )
    assert entry.details["blocked"] is False


def test_registering_a_blocked_id_lifts_the_block(db_session, fleet_world) -> None:
    operator, stray, site = fleet_world["operator"], fleet_world["stray"], fleet_world["site"]
    q.reject_device(db_session, operator, stray.id)
    registry.add_device(db_session, device_id=stray.id, site_id=site.id, device_type="env_sensor")
    assert db_session.get(BlockedDevice, stray.id) is None
    assert db_session.get(Device, stray.id).quarantined is False


def test_a_device_quiet_past_its_types_interval_is_shown_silent(db_session, factory) -> None:
    site = factory.site()
    now = utcnow()
    operator = Viewer.of(factory.user(Role.OPERATOR))

    def device(kind: DeviceType, minutes: float, status: DeviceStatus = DeviceStatus.ONLINE):
        return factory.device(
            kind, site=site, status=status, last_seen=now - timedelta(minutes=minutes)
        ).id

    # A motion sensor reports every minute, a fall detector only its half-hourly heartbeat.
    quiet_motion = device(DeviceType.MOTION_SENSOR, 20)
    fall = device(DeviceType.FALL_DETECTOR, 20)
    quiet_fall = device(DeviceType.FALL_DETECTOR, 120)
    offline = device(DeviceType.ENV_SENSOR, 120, DeviceStatus.OFFLINE)
    never = factory.device(DeviceType.DOOR_SENSOR, site=site, status=DeviceStatus.ONLINE).id
    table = q.fleet(db_session, operator, q.FleetFilter(site_id=site.id), now=now)
    shown = dict(zip(table["device_id"], table["status"], strict=True))
    assert shown == {
        quiet_motion: "silent",
        fall: "online",
        quiet_fall: "silent",
        offline: "offline",
        never: "online",
    }
    for status, expected in [
        (q.ShownStatus.SILENT, {quiet_motion, quiet_fall}),
        (DeviceStatus.ONLINE, {fall, never}),
        (DeviceStatus.OFFLINE, {offline}),
    ]:
        flt = q.FleetFilter(site_id=site.id, status=status)
        assert set(q.fleet(db_session, operator, flt, now=now)["device_id"]) == expected
    summary = q.fleet_summary(db_session, operator, site.id, now=now)
    assert (summary.online, summary.silent, summary.offline) == (2, 2, 1)
    assert q.device_detail(db_session, operator, quiet_motion, now=now).shown_status == "silent"
    assert q.device_detail(db_session, operator, fall, now=now).shown_status == "online"


def test_fleet_pages_by_id_with_the_shown_status(db_session, fleet_world) -> None:
    operator, site = fleet_world["operator"], fleet_world["site"]
    flt = q.FleetFilter(site_id=site.id)
    whole = q.fleet(db_session, operator, flt)
    seen, after = [], None
    while True:
        items, after = q.fleet_page(db_session, operator, flt, after=after, limit=2)
        seen += items
        if after is None:
            break
    assert [i["device_id"] for i in seen] == sorted(whole["device_id"])
    by_id = {i["device_id"]: i for i in seen}
    assert by_id[fleet_world["wear"].id]["status"] == "online"
    assert by_id[fleet_world["wear"].id]["resident"] == "Kim Mi-ja"
    assert by_id[fleet_world["stray"].id]["quarantined"] is True
    with pytest.raises(AccessDenied):
        q.fleet_page(db_session, fleet_world["caregiver"])
