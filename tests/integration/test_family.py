"""Family users: only their relative's state, alert status and daily reports; the report reaches
them; the care team sees who they are."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import care_report, users
from core.access import AccessDenied, Viewer, check_resident
from core.alerts.lifecycle import Subject, raise_alert
from core.errors import IotCareError
from core.timeutil import utcnow
from core.use_cases import admin
from core.use_cases.alerts import alert_counts, list_alerts
from core.use_cases.devices import fleet
from core.use_cases.family import family_contacts, family_members
from core.use_cases.overview import CareState, resident_overview
from models import (
    Channel,
    ContactChannel,
    DeviceStatus,
    FamilyLink,
    Notification,
    NotificationPurpose,
    Role,
    RuleKind,
    Severity,
)
from tests.factories import Factory

NOW = utcnow()


def family_of(factory: Factory, resident, language: str = "en", relation: str = "daughter"):
    user = factory.user(Role.FAMILY, language=language, display_name="Kim Family")
    users.link_family(factory.session, user, resident, relation)
    return user


def event_alert(session: Session, resident, severity: Severity, device_id: str):
    return raise_alert(
        session,
        kind=RuleKind.EVENT,
        severity=severity,
        subject=Subject(
            "resident", f"{resident.id}-fall", resident.site_id, resident.id, device_id
        ),
        title=f"Fall on {device_id}",
        details={"event_type": "fall_detected", "device_id": device_id},
        at=NOW - timedelta(minutes=5),
    ).alert


def test_family_sees_only_their_relative_with_alert_status_without_details(
    db_session: Session, factory: Factory
) -> None:
    site = factory.site()
    mother = factory.resident(site, name="Mother", room="101")
    other = factory.resident(site, name="Stranger", room="102")
    wearable = factory.device(
        "wearable", resident=mother, status=DeviceStatus.ONLINE, last_seen=NOW, battery=80
    )
    event_alert(db_session, mother, Severity.CRITICAL, wearable.id)
    event_alert(db_session, other, Severity.WARNING, "dev-other")
    family = Viewer.of(family_of(factory, mother, language="ko"))

    members = family_members(db_session, family, now=NOW)

    assert [m.name for m in members] == ["Mother"]
    member = members[0]
    assert (member.room, member.relation) == ("101", "daughter")
    assert member.state is CareState.CRITICAL
    assert member.open_alerts == 1 and member.worst_severity is Severity.CRITICAL
    text = member.alerts[0].text
    assert text == "낙상 감지"  # the event in their language, not the stored title
    assert wearable.id not in text and "Fall on" not in text


def test_device_alerts_read_as_a_plain_sentence_and_a_quiet_day_is_all_well(
    db_session: Session, factory: Factory
) -> None:
    father = factory.resident(name="Father")
    family = Viewer.of(family_of(factory, father))
    assert family_members(db_session, family, now=NOW)[0].state is CareState.OK
    device = factory.device(
        "wearable", resident=father, status=DeviceStatus.ONLINE, last_seen=NOW, battery=5
    )
    raise_alert(
        db_session,
        kind=RuleKind.BATTERY_LOW,
        severity=Severity.WARNING,
        subject=Subject("device", device.id, father.site_id, father.id, device.id),
        title=f"Battery low: {device.id}",
        details={"battery_pct": 5},
        at=NOW,
    )
    member = family_members(db_session, family, now=NOW)[0]
    assert member.state is CareState.ATTENTION
    assert [a.text for a in member.alerts] == [
        "A sensor in the room needs looking at; the care team has been told."
    ]


def test_family_is_refused_everywhere_else(db_session: Session, factory: Factory) -> None:
    mother = factory.resident(name="Mother")
    other = factory.resident(name="Stranger")
    factory.device("wearable", resident=mother)
    family = Viewer.of(family_of(factory, mother))
    for attempt in (
        lambda: resident_overview(db_session, family, now=NOW),
        lambda: check_resident(db_session, family, mother.id),
        lambda: check_resident(db_session, family, other.id),
        lambda: list_alerts(db_session, family),
        lambda: alert_counts(db_session, family),
        lambda: fleet(db_session, family, now=NOW),
        lambda: family_contacts(db_session, family, mother.id),
    ):
        with pytest.raises(AccessDenied):
            attempt()
    # And a caregiver or operator has no family page.
    operator = Viewer.of(factory.user(Role.OPERATOR))
    with pytest.raises(AccessDenied):
        family_members(db_session, operator)


def test_only_family_users_are_linked_as_family(db_session: Session, factory: Factory) -> None:
    resident = factory.resident()
    caregiver = factory.user(Role.CAREGIVER)
    with pytest.raises(IotCareError):
        users.link_family(db_session, caregiver, resident)
    with pytest.raises(IotCareError):
        users.assign(db_session, factory.user(Role.FAMILY), resident)


def test_daily_report_is_queued_to_family_on_report_channels(
    db_session: Session, factory: Factory
) -> None:
    resident = factory.resident(name="Mother")
    caregiver = factory.user(residents=(resident,))
    family = family_of(factory, resident, language="ko")
    db_session.add_all(
        [
            ContactChannel(user_id=family.id, channel=Channel.EMAIL, address="kim@example.org"),
            ContactChannel(user_id=family.id, channel=Channel.SMS, address="+821012345678"),
        ]
    )
    db_session.flush()
    report = care_report.make_report(db_session, resident.id, date(2026, 1, 5))
    queued = care_report.queue_report(db_session, report, now=NOW)
    # E-mail and the inbox; never SMS (a report is not cut into paid text messages).
    assert {n.channel for n in queued if n.recipient_id == family.id} == {
        Channel.INBOX,
        Channel.EMAIL,
    }
    assert any(n.recipient_id == caregiver.id for n in queued)
    family_mail = next(n for n in queued if n.recipient_id == family.id)
    assert family_mail.purpose is NotificationPurpose.REPORT
    assert family_mail.subject.startswith("일일 보고서")
    # The family page shows the same report, in their language.
    shown = family_members(db_session, Viewer.of(family), now=NOW)[0].reports
    assert [r.day for r in shown] == [date(2026, 1, 5)]
    assert shown[0].subject.startswith("일일 보고서")
    rows = db_session.scalars(select(Notification).where(Notification.recipient_id == family.id))
    assert {n.channel for n in rows} == {Channel.INBOX, Channel.EMAIL}


def test_caregiver_sees_who_the_family_contacts_are(db_session: Session, factory: Factory) -> None:
    mother = factory.resident(name="Mother")
    other = factory.resident(name="Stranger")
    family = family_of(factory, mother)
    db_session.add_all(
        [
            ContactChannel(user_id=family.id, channel=Channel.EMAIL, address="kim@example.org"),
            ContactChannel(
                user_id=family.id, channel=Channel.SMS, address="+8210555", enabled=False
            ),
        ]
    )
    db_session.flush()
    caregiver = Viewer.of(factory.user(residents=(mother,)))
    found = family_contacts(db_session, caregiver, mother.id)
    assert [(c.name, c.relation, c.channels) for c in found] == [
        ("Kim Family", "daughter", (("email", "kim@example.org"),))
    ]
    assert family_contacts(db_session, Viewer.of(factory.user(Role.OPERATOR)), other.id) == []
    with pytest.raises(AccessDenied):
        family_contacts(db_session, caregiver, other.id)


def test_a_family_user_made_caregiver_no_longer_follows_anyone(
    db_session: Session, factory: Factory
) -> None:
    mother = factory.resident(name="Mother")
    family = family_of(factory, mother)
    admin_viewer = Viewer.of(factory.user(Role.ADMIN))
    assert admin.list_family_links(db_session, admin_viewer)["user_id"].tolist() == [family.id]
    admin.update_user(
        db_session,
        admin_viewer,
        family.id,
        display_name=family.display_name,
        role=Role.CAREGIVER,
        language=family.language,
        site_id=None,
    )
    assert db_session.scalars(select(FamilyLink).where(FamilyLink.user_id == family.id)).all() == []
