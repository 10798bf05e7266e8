"""Care home administration in core: sites, residents, discharge, care notes, roster import."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.access import AccessDenied, Viewer
from core.errors import IotCareError
from core.roster import import_roster
from core.rules.engine import evaluate_rules
from core.rules.instant import CriticalEventAlerts, StoredEvent
from core.rules.params import validate_params
from core.timeutil import utcnow
from core.use_cases import care_notes, devices_admin, residents_admin, sites_admin
from core.use_cases import devices as device_queries
from core.use_cases.residents_admin import ContactInput
from models import (
    Alert,
    AlertRule,
    AuditEntry,
    BlockedDevice,
    CaregiverAssignment,
    CareNote,
    Device,
    EmergencyContact,
    Event,
    Reading,
    Resident,
    Role,
    RuleKind,
    ScopeType,
    Severity,
    Site,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "roster.csv"


@pytest.fixture
def staff(db_session, factory):
    """An admin, an operator and a caregiver looking after one resident of a site."""
    admin = factory.user(Role.ADMIN)
    operator = factory.user(Role.OPERATOR)
    site = factory.site()
    resident = factory.resident(site)
    caregiver = factory.user(Role.CAREGIVER, residents=(resident,))
    db_session.flush()
    return Viewer.of(admin), Viewer.of(operator), Viewer.of(caregiver), site, resident


def _actions(session, target_type: str, target_id: object) -> list[str]:
    return list(
        session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.target_type == target_type, AuditEntry.target_id == str(target_id))
            .order_by(AuditEntry.id)
        )
    )


def test_sites_are_created_and_edited_by_operators_with_checked_fields(db_session, staff) -> None:
    _, operator, caregiver, _, _ = staff
    with pytest.raises(AccessDenied):
        sites_admin.create_site(db_session, caregiver, site_id="x1", name="X", timezone="UTC")
    sites_admin.create_site(
        db_session,
        operator,
        site_id="oak-house",
        name=" Oak House ",
        timezone="Asia/Seoul",
        contacts="Office 02 555 0100",
    )
    site = db_session.get(Site, "oak-house")
    assert site.name == "Oak House" and site.contacts == "Office 02 555 0100"
    cases = [
        ({"site_id": "oak-house"}, "errors.care.site_taken"),
        ({"site_id": "bad id"}, "errors.care.id_invalid"),
        ({"timezone": "Mars/Base"}, "errors.care.timezone_unknown"),
        ({"name": "  "}, "errors.care.required"),
    ]
    for overrides, key in cases:
        kwargs = {"site_id": "elm", "name": "Elm", "timezone": "UTC", **overrides}
        with pytest.raises(IotCareError) as error:
            sites_admin.create_site(db_session, operator, **kwargs)
        assert error.value.key == key
        assert "{" not in error.value.localized("ko")
    changed = sites_admin.update_site(
        db_session, operator, "oak-house", name="Oak House", timezone="Europe/London"
    )
    assert changed == ["timezone", "contacts"]
    assert _actions(db_session, "site", "oak-house") == ["site.create", "site.update"]
    listed = sites_admin.list_sites(db_session, operator)
    assert "oak-house" in set(listed["site_id"])


def test_a_resident_is_admitted_edited_moved_and_discharged(db_session, staff) -> None:
    _, operator, caregiver, site, _ = staff
    with pytest.raises(AccessDenied):
        residents_admin.create_resident(db_session, caregiver, site_id=site.id, name="X")
    rid = residents_admin.create_resident(
        db_session,
        operator,
        site_id=site.id,
        name="Kim Young-ja",
        room="101",
        active_start="06:30",
        active_end="21:00",
        contacts=[
            ContactInput("Kim Min-su", "son", "+82 10 5555 0101", "minsu@example.com"),
            ContactInput("", "", "", ""),
        ],
    )
    record = residents_admin.resident_record(db_session, operator, rid)
    assert record.active_start.hour == 6 and record.active_start.minute == 30
    assert record.contacts == [
        ContactInput("Kim Min-su", "son", "+82 10 5555 0101", "minsu@example.com")
    ]
    for bad, key in [
        ({"active_start": "25:00"}, "errors.care.time_invalid"),
        ({"active_start": "08:00", "active_end": "08:00"}, "errors.care.hours_empty"),
        ({"timezone": "Nowhere/City"}, "errors.care.timezone_unknown"),
        ({"contacts": [ContactInput("Lee", "daughter")]}, "errors.care.contact_unreachable"),
        ({"contacts": [ContactInput("Lee", None, "call me")]}, "errors.care.phone_invalid"),
    ]:
        with pytest.raises(IotCareError) as error:
            residents_admin.create_resident(
                db_session, operator, site_id=site.id, name="Lee", **bad
            )
        assert error.value.key == key, bad
    changed = residents_admin.update_resident(
        db_session,
        operator,
        rid,
        name="Kim Young-ja",
        timezone="Asia/Seoul",
        active_start="06:30",
        active_end="21:00",
        notes="Walks with a frame",
        contacts=[ContactInput("Kim Min-su", "son", "+82 10 5555 0199")],
    )
    assert changed == ["timezone", "care_notes", "contacts"]
    assert residents_admin.move_room(db_session, operator, rid, "105")
    assert not residents_admin.move_room(db_session, operator, rid, "105")
    history = residents_admin.room_history(db_session, operator, rid)
    assert list(history["room"]) == ["101", "105"]
    assert residents_admin.discharge(db_session, operator, rid, reason="moved to hospital")
    resident = db_session.get(Resident, rid)
    assert not resident.active and resident.discharged_at is not None
    # Data is kept; the resident is out of the active lists and cannot be moved.
    assert (
        db_session.scalar(
            select(func.count())
            .select_from(EmergencyContact)
            .where(EmergencyContact.resident_id == rid)
        )
        == 1
    )
    active = residents_admin.list_residents(db_session, operator, include_discharged=False)
    assert rid not in set(active["resident_id"])
    with pytest.raises(IotCareError) as error:
        residents_admin.move_room(db_session, operator, rid, "106")
    assert error.value.key == "errors.care.discharged"
    assert residents_admin.readmit(db_session, operator, rid)
    assert _actions(db_session, "resident", rid) == [
        "resident.create",
        "resident.update",
        "resident.move",
        "resident.discharge",
        "resident.readmit",
    ]


def test_caregivers_write_care_notes_on_their_own_residents_only(
    db_session, factory, staff
) -> None:
    _, operator, caregiver, site, resident = staff
    other = factory.resident(site)
    db_session.flush()
    note_id = care_notes.add_note(db_session, caregiver, resident.id, "  Ate well today.  ")
    care_notes.add_note(db_session, operator, resident.id, "Family visit at 3 pm.")
    with pytest.raises(AccessDenied):
        care_notes.add_note(db_session, caregiver, other.id, "Not mine")
    with pytest.raises(AccessDenied):
        care_notes.list_notes(db_session, caregiver, other.id)
    with pytest.raises(IotCareError) as error:
        care_notes.add_note(db_session, caregiver, resident.id, "   ")
    assert error.value.key == "errors.care.required"
    notes = care_notes.list_notes(db_session, caregiver, resident.id)
    assert list(notes["text"]) == ["Family visit at 3 pm.", "Ate well today."]
    assert set(notes["author"]) == {caregiver.username, operator.username}
    assert db_session.get(CareNote, note_id).author_id == caregiver.user_id
    assert "care_note.add" in _actions(db_session, "resident", resident.id)


def _roster_counts(session) -> tuple[int, int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(Site).where(Site.id == "hanbit")),
        session.scalar(
            select(func.count()).select_from(Resident).where(Resident.site_id == "hanbit")
        ),
        session.scalar(select(func.count()).select_from(Device).where(Device.site_id == "hanbit")),
        session.scalar(select(func.count()).select_from(CaregiverAssignment)),
    )


def test_the_example_roster_imports_after_a_dry_run(db_session, factory, staff) -> None:
    admin, operator, _, _, _ = staff
    factory.user(Role.CAREGIVER, username="nurse.lee")
    db_session.flush()
    before = _roster_counts(db_session)
    data = EXAMPLE.read_bytes()
    seen: list[tuple[int, int]] = []
    checked = import_roster(
        db_session, admin, data, dry_run=True, progress=lambda d, n: seen.append((d, n))
    )
    assert checked.problems == [] and not checked.applied
    assert dict(checked.counts) == {"site": 1, "resident": 2, "device": 4, "caregiver": 1}
    assert seen[-1] == (8, 8)
    assert _roster_counts(db_session) == before
    done = import_roster(db_session, admin, data)
    assert done.applied
    sites, residents, devices, assignments = _roster_counts(db_session)
    assert (sites, residents, devices, assignments - before[3]) == (1, 2, 4, 1)
    wear = db_session.get(Device, "hanbit-wear-101")
    kim = db_session.get(Resident, wear.resident_id)
    # A device without a room takes its resident's room.
    assert kim.name == "Kim Young-ja" and wear.room == "101"
    # Operators may import all but caregiver assignments (those are for admins).
    again = import_roster(db_session, operator, data, dry_run=True)
    assert [p.key for p in again.problems if p.row == 9] == ["roster.assign_admin_only"]


def test_a_bad_roster_reports_every_row_and_writes_nothing(db_session, staff) -> None:
    admin, _, _, site, _ = staff
    before = (
        db_session.scalar(select(func.count()).select_from(Site)),
        db_session.scalar(select(func.count()).select_from(Resident)),
    )
    data = (
        "kind,site,id,name,timezone,active_start,contact_name,contact_phone,type,resident\n"
        "site,,elm,Elm House,UTC,,,,,\n"  # good
        f"resident,{site.id},,Choi,,25:00,,,,\n"
        f"resident,{site.id},,Han,,,Han Jr,abc,,\n"
        f"device,{site.id},w-9,X,,,,,toaster,\n"
        "robot,,,,,,,,,\n"
        "resident,elm,,Good Person,,,,,,\n"  # good: a site of this file
    )
    report = import_roster(db_session, admin, data)
    assert not report.applied
    assert [(p.row, p.column, p.key) for p in report.problems] == [
        (3, "active_start", "errors.care.time_invalid"),
        (4, "contact_phone", "errors.care.phone_invalid"),
        (5, "type", "roster.type_unknown"),
        (6, "kind", "roster.kind_unknown"),
    ]
    assert report.problems[0].line("ko").startswith("3행, active_start:")
    assert "'25:00'" in report.problems[0].line("en")
    after = (
        db_session.scalar(select(func.count()).select_from(Site)),
        db_session.scalar(select(func.count()).select_from(Resident)),
    )
    assert after == before
    header = import_roster(db_session, admin, "kind,sitee\nsite,x\n")
    assert [(p.row, p.key) for p in header.problems] == [(1, "roster.column_unknown")]


def test_devices_are_added_reassigned_replaced_and_decommissioned(db_session, factory, staff):
    _, operator, caregiver, site, resident = staff
    other_site = factory.site()
    stranger = factory.resident(other_site)
    db_session.flush()
    with pytest.raises(AccessDenied):
        devices_admin.add_device(
            db_session, caregiver, device_id="w-1", site_id=site.id, device_type="wearable"
        )
    for bad, key in [
        ({"device_type": "toaster"}, "errors.care.type_unknown"),
        ({"device_id": "bad id"}, "errors.care.id_invalid"),
        ({"resident_id": stranger.id}, "errors.care.resident_other_site"),
    ]:
        kwargs = {"device_id": "w-1", "site_id": site.id, "device_type": "wearable", **bad}
        with pytest.raises(IotCareError) as error:
            devices_admin.add_device(db_session, operator, **kwargs)
        assert error.value.key == key, bad
    devices_admin.add_device(
        db_session,
        operator,
        device_id="w-1",
        site_id=site.id,
        device_type="wearable",
        resident_id=resident.id,
    )
    assert db_session.get(Device, "w-1").room == resident.room
    assert devices_admin.update_device(
        db_session, operator, "w-1", name="Wristband", resident_id=resident.id, room="kitchen"
    ) == ["name", "room"]
    db_session.add(Reading(device_id="w-1", metric="heart_rate", ts=utcnow(), value=70.0))
    db_session.flush()
    assert devices_admin.replace_device(db_session, operator, "w-1", "w-2") == "w-2"
    new = db_session.get(Device, "w-2")
    assert (new.resident_id, new.room, new.type, new.name) == (
        resident.id,
        "kitchen",
        "wearable",
        "Wristband",
    )
    # The old device stays in the registry, marked, its id blocked.
    assert db_session.get(Device, "w-1").decommissioned_at is not None
    assert db_session.get(BlockedDevice, "w-1") is not None
    kept = db_session.scalar(
        select(func.count()).select_from(Reading).where(Reading.device_id == "w-1")
    )
    assert kept == 1
    devices_admin.decommission(db_session, operator, "w-2", reason="lost")
    assert db_session.get(Device, "w-2").decommissioned_at is not None
    assert db_session.get(BlockedDevice, "w-2").reason == "lost"
    # Its id keeps its history: it is not added again, nor edited, replaced or retired twice.
    with pytest.raises(IotCareError) as error:
        devices_admin.add_device(
            db_session, operator, device_id="w-2", site_id=site.id, device_type="wearable"
        )
    assert error.value.key == "errors.care.device_decommissioned"
    for change in (
        lambda: devices_admin.decommission(db_session, operator, "w-2"),
        lambda: devices_admin.replace_device(db_session, operator, "w-2", "w-3"),
        lambda: devices_admin.update_device(
            db_session, operator, "w-2", name="x", resident_id=None, room=None
        ),
    ):
        with pytest.raises(IotCareError) as error:
            change()
        assert error.value.key == "errors.care.device_retired"
    # Its block stays: it is what keeps the old device's messages out of data and alerts.
    with pytest.raises(IotCareError) as error:
        device_queries.unblock_device(db_session, operator, "w-2")
    assert error.value.key == "errors.care.decommissioned_blocked"
    assert db_session.get(BlockedDevice, "w-2") is not None
    assert _actions(db_session, "device", "w-1") == [
        "device.add",
        "device.reassign",
        "device.replace",
    ]
    assert _actions(db_session, "device", "w-2")[-1] == "device.decommission"


def test_a_discharged_resident_gets_no_inactivity_alert_but_a_fall_still_alerts(
    db_session, factory, staff
) -> None:
    _, operator, _, _, _ = staff
    site = factory.site(timezone="UTC")
    resident = factory.resident(site, active_hours=(time(7, 0), time(22, 0)))
    sensor = factory.device("motion_sensor", resident=resident)
    fall = factory.device("fall_detector", resident=resident)
    now = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    rule = AlertRule(
        name="Inactivity",
        kind=RuleKind.INACTIVITY,
        params=validate_params(RuleKind.INACTIVITY, {"max_minutes": 150}),
        severity=Severity.WARNING,
        scope_type=ScopeType.SITE,
        site_id=site.id,
        route=[],
    )
    db_session.add(rule)
    db_session.add_all(
        Reading(
            device_id=sensor.id,
            metric="motion",
            ts=now - timedelta(hours=5, seconds=-i * 30),
            value=1 if i == 0 else 0,
        )
        for i in range(31)
    )
    db_session.flush()
    residents_admin.discharge(db_session, operator, resident.id)
    evaluate_rules(db_session, now)
    db_session.flush()
    assert db_session.scalars(select(Alert).where(Alert.rule_id == rule.id)).all() == []
    # The same resident still active would have been alerted: the discharge is what silences it.
    residents_admin.readmit(db_session, operator, resident.id)
    evaluate_rules(db_session, now + timedelta(minutes=1))
    db_session.flush()
    assert len(db_session.scalars(select(Alert).where(Alert.rule_id == rule.id)).all()) == 1
    residents_admin.discharge(db_session, operator, resident.id)
    # An emergency the device reports by itself is never silenced by the paperwork.
    event = Event(device_id=fall.id, site_id=site.id, type="fall_detected", ts=now, data={})
    db_session.add(event)
    db_session.flush()
    instant = CriticalEventAlerts(deliver=lambda ids: None, dispatch=lambda ids: None)
    instant.on_events(
        db_session,
        [
            StoredEvent(
                id=event.id,
                device_id=fall.id,
                site_id=site.id,
                resident_id=resident.id,
                device_type="fall_detector",
                type="fall_detected",
                ts=now,
                data={},
                received_at=now,
            )
        ],
    )
    db_session.flush()
    raised = db_session.scalars(select(Alert).where(Alert.device_id == fall.id)).all()
    assert len(raised) == 1 and raised[0].severity is Severity.CRITICAL


def test_a_roster_device_row_with_a_decommissioned_id_says_so(db_session, factory, staff) -> None:
    """Not 'exists already': the id is a retired device's, so the file must give another id."""
    _, operator, _, site, _ = staff
    factory.device("wearable", site=site, device_id="w-old")
    factory.device("wearable", site=site, device_id="w-live")
    devices_admin.decommission(db_session, operator, "w-old", reason="broken")
    data = f"kind,site,id,type\ndevice,{site.id},w-old,wearable\ndevice,{site.id},w-live,wearable\n"
    report = import_roster(db_session, operator, data, dry_run=True)
    assert [(p.row, p.column, p.key) for p in report.problems] == [
        (2, "id", "errors.care.device_decommissioned"),
        (3, "id", "roster.device_taken"),
    ]
    assert "was decommissioned" in report.problems[0].message("en")
    assert "폐기" in report.problems[0].message("ko")


def test_a_roster_site_row_updates_an_existing_site(db_session, staff) -> None:
    """An existing id updates name/timezone/address/contacts (audited); empty columns keep."""
    _, operator, _, _, _ = staff
    sites_admin.create_site(
        db_session, operator, site_id="pine", name="Pine", timezone="UTC", address="1 Pine Rd"
    )
    data = (
        "kind,id,name,timezone,address,contacts\n"
        "site,pine,Pine House,Asia/Seoul,,Office 555\n"
        "site,cedar,Cedar House,UTC,,\n"
    )
    checked = import_roster(db_session, operator, data, dry_run=True)
    assert checked.problems == [] and not checked.applied
    assert checked.site_updates == {"pine": ["name", "timezone", "contacts"]}
    assert checked.summary("en").endswith(
        "1 site would be updated: pine (name, timezone, contacts)."
    )
    assert "시설 1곳의 정보가 바뀝니다" in checked.summary("ko")
    pine = db_session.get(Site, "pine")
    assert (pine.name, pine.timezone, pine.contacts) == ("Pine", "UTC", None)
    assert db_session.get(Site, "cedar") is None

    done = import_roster(db_session, operator, data)
    assert done.applied and dict(done.counts) == {"site": 1}
    assert done.summary("en").endswith("Updated 1 site: pine (name, timezone, contacts).")
    db_session.refresh(pine)
    assert (pine.name, pine.timezone, pine.address, pine.contacts) == (
        "Pine House",
        "Asia/Seoul",
        "1 Pine Rd",
        "Office 555",
    )
    assert _actions(db_session, "site", "pine") == ["site.create", "site.update"]
    # The same file again changes nothing and reports no update.
    again = import_roster(db_session, operator, data, dry_run=True)
    assert again.problems == [] and again.site_updates == {}
    assert "updated" not in again.summary("en")
    # A bad value on an existing site is that row's problem, with its column.
    bad = import_roster(db_session, operator, "kind,id,timezone\nsite,pine,Mars/Base\n")
    assert [(p.row, p.column, p.key) for p in bad.problems] == [
        (2, "timezone", "errors.care.timezone_unknown")
    ]


def test_an_operator_issues_broker_credentials_audited(db_session, factory, staff) -> None:
    _, operator, caregiver, _site, resident = staff
    device = factory.device("wearable", resident=resident)
    with pytest.raises(AccessDenied):
        devices_admin.provision_credentials(db_session, caregiver, device.id)
    with pytest.raises(IotCareError) as missing:
        devices_admin.provision_credentials(db_session, operator, "no-such-device")
    assert missing.value.key == "errors.care.device_missing"
    issued = devices_admin.provision_credentials(db_session, operator, device.id)
    assert issued.username == device.id and len(issued.password) >= 16 and not issued.rotated
    with pytest.raises(IotCareError):
        devices_admin.provision_credentials(db_session, operator, device.id)
    assert devices_admin.provision_credentials(db_session, operator, device.id, rotate=True).rotated
    actions = db_session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.target_id == device.id, AuditEntry.actor_id == operator.user_id)
        .order_by(AuditEntry.id)
    ).all()
    assert actions[-2:] == ["device.credentials.issue", "device.credentials.rotate"]
