"""The Devices page: fleet table, filters, quarantine accept/reject (audited), device detail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.timeutil import utcnow
from models import (
    AuditEntry,
    BlockedDevice,
    DeadLetter,
    Device,
    DeviceStatus,
    DeviceStatusChange,
    Event,
    Reading,
    Resident,
    in_service,
)
from tests.dashboards.conftest import no_exception, texts

STRAY = "stray-sensor-01"


def _clear_quarantine(app_db) -> None:
    """No device waiting, whichever test ran before."""
    with app_db.engine.begin() as conn:
        conn.execute(Device.__table__.delete().where(Device.quarantined.is_(True)))


def _add_stray(app_db, device_id: str = STRAY) -> None:
    """A device ingest quarantined, with a reading, an event and a dead letter of its own."""
    now = utcnow()
    _clear_quarantine(app_db)
    with app_db.session() as session:
        session.add(
            Device(
                id=device_id,
                site_id=app_db.site_id,
                quarantined=True,
                status=DeviceStatus.ONLINE,
                last_seen=now,
                created_at=now,
            )
        )
        session.add(Reading(device_id=device_id, metric="temperature_c", ts=now, value=21.5))
        session.add(
            Event(
                device_id=device_id,
                site_id=app_db.site_id,
                type="motion",
                ts=now - timedelta(minutes=1),
                data={},
            )
        )
        session.add(
            DeadLetter(
                topic=f"care/v1/{app_db.site_id}/{device_id}/telemetry",
                payload=b"{",
                payload_size=1,
                reason="invalid_json",
                detail="Expecting value",
                received_at=now - timedelta(minutes=2),
            )
        )
        session.commit()


def _button(at, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, [b.label for b in at.button]
    return matches[0]


def test_caregiver_has_no_devices_page(open_app) -> None:
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        open_app("caregiver1", page="devices")


def test_operator_sees_the_fleet_and_admin_too(open_app, app_db) -> None:
    _clear_quarantine(app_db)
    for username in ("operator", "admin"):
        at = open_app(username, page="devices")
        no_exception(at)
        assert at.title[0].value == "Devices"
        frame = at.dataframe[0].value
        with app_db.session() as session:
            in_use = session.scalars(select(Device.id).where(in_service())).all()
            assert len(frame) == len(in_use) >= 142
        assert "sunrise-kitchen-gasvalve" in set(frame["device_id"])
        assert "No device is waiting in quarantine." in texts(at)
        assert "Asia/Seoul" in texts(at)


def test_filters_narrow_the_table(open_app) -> None:
    at = open_app("operator", page="devices")
    type_box = next(s for s in at.selectbox if s.label == "Device type")
    type_box.set_value("gas_valve").run()
    no_exception(at)
    assert list(at.dataframe[0].value["device_id"]) == ["sunrise-kitchen-gasvalve"]
    next(s for s in at.text_input if s.label == "Search").input("nothing-like-this").run()
    assert "No device matches these filters" in texts(at)


def test_accept_a_quarantined_device_assigns_it_and_audits(open_app, app_db) -> None:
    _add_stray(app_db, "stray-accept")
    with app_db.session() as session:
        resident = session.scalars(select(Resident).order_by(Resident.name)).first()
    at = open_app("operator", page="devices")
    no_exception(at)
    assert "Quarantine: 1 device waiting" in texts(at)
    _button(at, "Accept device").click().run()
    assert "Choose the device's type." in texts(at)
    with app_db.session() as session:
        assert session.get(Device, "stray-accept").quarantined

    next(s for s in at.selectbox if s.label == "Device type").set_value("env_sensor")
    next(s for s in at.selectbox if s.label == "Resident").set_value(resident.id)
    next(s for s in at.text_input if s.label == "Room").input("Hall")
    _button(at, "Accept device").click().run()
    no_exception(at)
    assert "Device stray-accept is accepted into the fleet." in texts(at)
    with app_db.session() as session:
        device = session.get(Device, "stray-accept")
        assert not device.quarantined
        assert device.type == "env_sensor"
        assert device.room == "Hall"
        assert device.resident_id == resident.id
        entry = session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "device.accept", AuditEntry.target_id == "stray-accept"
            )
        )
        assert entry is not None and entry.actor_name == "operator"
        assert entry.details["type"] == "env_sensor"


def test_reject_needs_confirmation_removes_the_device_and_keeps_its_data(open_app, app_db) -> None:
    _add_stray(app_db, "stray-reject")
    at = open_app("operator", page="devices")
    _button(at, "Reject device").click().run()
    assert "Tick the box to confirm" in texts(at)
    with app_db.session() as session:
        assert session.get(Device, "stray-reject") is not None

    next(s for s in at.text_input if s.label.startswith("Reason")).input("not ours")
    next(c for c in at.checkbox if "stray-reject" in c.label).check()
    _button(at, "Reject device").click().run()
    no_exception(at)
    assert (
        "Device stray-reject is removed from the registry and blocked; 1 reading and 1 event"
        in texts(at)
    )
    with app_db.session() as session:
        assert session.get(Device, "stray-reject") is None
        assert session.scalars(select(Reading).where(Reading.device_id == "stray-reject")).all()
        entry = session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "device.reject", AuditEntry.target_id == "stray-reject"
            )
        )
        assert entry is not None and entry.details["reason"] == "not ours"
        assert entry.details["readings_kept"] == 1
        assert session.get(BlockedDevice, "stray-reject").reason == "not ours"

    # The blocked id is listed, and an operator can lift the block.
    at = open_app("operator", page="devices")
    blocked = next(e for e in at.expander if e.label == "1 blocked device")
    assert "stray-reject" in list(blocked.dataframe[0].value["device_id"])
    next(s for s in blocked.selectbox if s.label == "Device to unblock").select("stray-reject")
    _button(at, "Unblock device").click().run()
    no_exception(at)
    assert "Device stray-reject is unblocked" in texts(at)
    with app_db.session() as session:
        assert session.get(BlockedDevice, "stray-reject") is None
        assert session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "device.unblock", AuditEntry.target_id == "stray-reject"
            )
        )


def test_reject_without_blocking(open_app, app_db) -> None:
    _add_stray(app_db, "stray-noblock")
    at = open_app("operator", page="devices")
    next(c for c in at.checkbox if c.label.startswith("Block this device id")).uncheck()
    next(c for c in at.checkbox if "stray-noblock" in c.label).check()
    _button(at, "Reject device").click().run()
    no_exception(at)
    assert "Device stray-noblock is removed from the registry; 1 reading and 1 event" in texts(at)
    with app_db.session() as session:
        assert session.get(Device, "stray-noblock") is None
        assert session.get(BlockedDevice, "stray-noblock") is None


def test_device_detail_shows_its_recent_messages(open_app, app_db) -> None:
    _add_stray(app_db, "stray-detail")
    at = open_app("operator", page="devices", query={"device": "stray-detail"})
    no_exception(at)
    page = texts(at)
    assert "This device is in quarantine" in page
    messages = at.dataframe[-1].value
    assert list(messages["kind"]) == ["Reading", "Event", "Dead letter"]
    assert "temperature_c" in set(messages["what"])
    assert "The payload is not valid JSON." in set(messages["what"])


def test_korean_operator_reads_korean(open_app) -> None:
    at = open_app("operator", page="devices")
    at.session_state["iotcare.language"] = "ko"
    at.run()
    no_exception(at)
    assert at.title[0].value == "기기"
    assert "격리되어 기다리는 기기가 없습니다." in texts(at) or "격리: 결정을" in texts(at)
    assert "가스 밸브" in set(at.dataframe[0].value["type"])


def test_a_quiet_online_device_is_shown_silent_with_its_status_history(open_app, app_db) -> None:
    now = utcnow()
    _clear_quarantine(app_db)
    with app_db.session() as session:
        # Online by its last status, but a motion sensor (one message a minute) quiet for 20.
        session.add(
            Device(
                id="quiet-motion",
                site_id=app_db.site_id,
                type="motion_sensor",
                status=DeviceStatus.ONLINE,
                status_since=now - timedelta(hours=2),
                last_seen=now - timedelta(minutes=20),
                created_at=now - timedelta(days=1),
            )
        )
        session.flush()
        session.add_all(
            DeviceStatusChange(device_id="quiet-motion", status=status, at=now - ago)
            for status, ago in (
                (DeviceStatus.OFFLINE, timedelta(hours=3)),
                (DeviceStatus.ONLINE, timedelta(hours=2)),
            )
        )
        session.commit()
    try:
        at = open_app("operator", page="devices", query={"device": "quiet-motion"})
        no_exception(at)
        assert int(next(m for m in at.metric if m.label == "Silent").value) >= 1
        fleet = at.dataframe[0].value.set_index("device_id")
        assert fleet.loc["quiet-motion", "status"] == "Silent"
        assert "This device says it is online but has been quiet" in texts(at)
        messages = at.dataframe[-1].value
        status_rows = messages[messages["kind"] == "Status"]
        assert list(status_rows["what"]) == ["Online", "Offline"]
        at.session_state["iotcare.language"] = "ko"
        at.run()
        assert at.dataframe[0].value.set_index("device_id").loc["quiet-motion", "status"] == (
            "응답 없음"
        )
    finally:
        with app_db.engine.begin() as conn:
            conn.execute(Device.__table__.delete().where(Device.id == "quiet-motion"))


def test_an_operator_adds_reassigns_replaces_and_decommissions_a_device(open_app, app_db) -> None:
    with app_db.session() as session:
        resident = session.scalar(
            select(Resident).where(Resident.site_id == app_db.site_id, Resident.active.is_(True))
        )
    at = open_app("operator", page="devices")
    at.text_input(key="devices.add.id").input("hall-door-9")
    at.selectbox(key="devices.add.type").select("Door sensor")
    resident_select = at.selectbox(key="devices.add.resident")
    resident_select.select_index(
        next(i for i, label in enumerate(resident_select.options) if resident.name in label)
    )
    at.button(key="devices.add.go").click().run()
    no_exception(at)
    assert "Device hall-door-9 added." in texts(at)
    with app_db.session() as session:
        added = session.get(Device, "hall-door-9")
        assert added.resident_id == resident.id and added.room == resident.room
    # Move it to the kitchen, as a site-level device.
    at.selectbox(key="devices.detail.pick").select("hall-door-9").run()
    at.selectbox(key="devices.edit.resident.hall-door-9").select_index(0)
    at.text_input(key="devices.edit.room.hall-door-9").input("kitchen")
    at.button(key="devices.edit.go").click().run()
    no_exception(at)
    with app_db.session() as session:
        moved = session.get(Device, "hall-door-9")
        assert moved.resident_id is None and moved.room == "kitchen"
    at.text_input(key="devices.replace.id").input("hall-door-9")
    at.button(key="devices.replace.go").click().run()
    no_exception(at)
    assert "another id than the old one" in "\n".join(e.value for e in at.error)
    at.text_input(key="devices.replace.id").input("hall-door-10")
    at.button(key="devices.replace.go").click().run()
    no_exception(at)
    assert "Device hall-door-10 replaces hall-door-9." in texts(at)
    at.selectbox(key="devices.detail.pick").select("hall-door-10").run()
    with app_db.session() as session:
        new = session.get(Device, "hall-door-10")
        assert new.room == "kitchen" and new.type == "door_sensor"
        # The old one stays in the registry, decommissioned, its id blocked.
        assert session.get(Device, "hall-door-9").decommissioned_at is not None
        assert session.get(BlockedDevice, "hall-door-9") is not None
    at.text_input(key="devices.retire.reason").input("broken")
    at.button(key="devices.retire.go").click().run()
    no_exception(at)
    assert "Device hall-door-10 decommissioned." in texts(at)

    # The fleet hides decommissioned devices unless asked to show them.
    def fleet_table():
        return next(d.value for d in at.dataframe if "status" in d.value.columns)

    assert not {"hall-door-9", "hall-door-10"} & set(fleet_table()["device_id"])
    next(c for c in at.checkbox if c.label == "Decommissioned").check().run()
    no_exception(at)
    shown = fleet_table().set_index("device_id")
    assert {"hall-door-9", "hall-door-10"} <= set(shown.index)
    assert shown.loc["hall-door-10", "decommissioned_at"] != "—"
    at.selectbox(key="devices.detail.pick").select("hall-door-10").run()
    no_exception(at)
    assert "This device was decommissioned" in "\n".join(w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "devices.retire.go"]
    with app_db.session() as session:
        assert session.get(Device, "hall-door-10").decommissioned_at is not None
        actions = set(
            session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.target_id.in_(["hall-door-9", "hall-door-10"])
                )
            )
        )
        assert actions >= {"device.add", "device.reassign", "device.replace", "device.decommission"}
        for device_id in ("hall-door-9", "hall-door-10"):
            session.delete(session.get(BlockedDevice, device_id))
            session.delete(session.get(Device, device_id))
        session.commit()
