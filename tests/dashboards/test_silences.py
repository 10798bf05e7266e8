"""Silences on the pages: away/in hospital on the Resident page, maintenance on Devices, the
overview's badges, and what the forms say when something is wrong (English and Korean)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.silences import create_silence
from core.timeutil import to_local, utcnow
from models import AuditEntry, Resident, Silence, SilenceReason, SilenceScope, Site
from tests.dashboards.conftest import empty_tables, no_exception, texts
from tests.dashboards.test_resident import caregiver_rooms, resident_in_room


@pytest.fixture
def clean(app_db):
    """No silences before and after the test."""
    empty_tables(app_db, Silence)
    yield app_db
    empty_tables(app_db, Silence)


def submit(at, label: str) -> None:
    (button,) = [b for b in at.button if b.label == label]
    button.click().run()


def silences(db) -> list[Silence]:
    with db.session() as session:
        return list(session.scalars(select(Silence).order_by(Silence.id)))


def test_a_caregiver_says_their_resident_is_in_hospital(open_app, clean) -> None:
    resident = resident_in_room(clean, caregiver_rooms(clean, "caregiver1")[0])
    at = open_app(
        "caregiver1", page="resident", query={"resident": str(resident.id)}, language="en"
    )
    no_exception(at)
    key = f"silences.resident.{resident.id}"
    with clean.session() as session:
        zone = session.get(Site, resident.site_id).timezone
    day = to_local(utcnow() + timedelta(days=3), zone).date()
    at.selectbox(key=f"{key}.reason").set_value("In hospital")
    at.date_input(key=f"{key}.day").set_value(day)
    at.text_input(key=f"{key}.note").input("Asan Medical Center")
    submit(at, "Save")
    no_exception(at)
    (silence,) = silences(clean)
    assert (silence.scope, silence.resident_id, silence.reason) == (
        SilenceScope.RESIDENT,
        resident.id,
        SilenceReason.HOSPITAL,
    )
    assert to_local(silence.ends_at, zone).strftime("%Y-%m-%d %H:%M") == f"{day} 18:00"
    assert f"In hospital until {day} 18:00" in texts(at)
    with clean.session() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(
                AuditEntry.target_type == "silence", AuditEntry.target_id == str(silence.id)
            )
        ).all()
    assert actions == ["silence.create"]

    # Ending it: the button ends it now, and the page says so.
    (end,) = [b for b in at.button if b.label == "End now"]
    end.click().run()
    no_exception(at)
    assert silences(clean)[0].cancelled_at is not None
    assert "The silence ended." in texts(at)


def test_the_form_says_what_is_wrong(open_app, clean) -> None:
    resident = resident_in_room(clean, caregiver_rooms(clean, "caregiver1")[0])
    at = open_app(
        "caregiver1", page="resident", query={"resident": str(resident.id)}, language="en"
    )
    key = f"silences.resident.{resident.id}"
    at.date_input(key=f"{key}.day").set_value((utcnow() - timedelta(days=2)).date())
    submit(at, "Save")
    no_exception(at)
    assert "A silence cannot start or end in the past." in texts(at)
    # In Korean, on the operators' maintenance form.
    at = open_app("operator", page="devices", language="ko")
    key = "silences.maintenance"
    at.date_input(key=f"{key}.day").set_value((utcnow() + timedelta(days=120)).date())
    submit(at, "저장")
    no_exception(at)
    assert "알림 보류는 최대 90일까지입니다. 더 이른 종료 시각을 고르세요." in texts(at)
    assert silences(clean) == []


def test_an_operator_puts_a_site_under_maintenance(open_app, clean) -> None:
    at = open_app("operator", page="devices", language="en")
    no_exception(at)
    key = "silences.maintenance"
    with clean.session() as session:
        site = session.get(Site, clean.site_id)
    target = at.selectbox(key=f"{key}.target")
    (option,) = [o for o in target.options if o == f"Whole site: {site.name}"]
    target.set_value(option)
    submit(at, "Save")
    no_exception(at)
    (silence,) = silences(clean)
    assert (silence.scope, silence.site_id, silence.reason) == (
        SilenceScope.SITE,
        site.id,
        SilenceReason.MAINTENANCE,
    )
    assert "Whole site" in texts(at)


def test_the_overview_shows_who_is_away_until_when(open_app, clean) -> None:
    rooms = caregiver_rooms(clean, "caregiver1")
    away = resident_in_room(clean, rooms[0])
    now = utcnow()
    with clean.session() as session:
        create_silence(
            session,
            None,
            scope="resident",
            target=away.id,
            reason="away",
            ends_at=now + timedelta(days=2),
            now=now,
        )
        session.commit()
        zone = session.get(Site, away.site_id).timezone
        total = len(session.scalars(select(Resident.id).where(Resident.active)).all())
    until = to_local(now + timedelta(days=2), zone).strftime("%Y-%m-%d %H:%M")
    at = open_app("operator", page="overview", language="en")
    no_exception(at)
    shown = texts(at)
    assert f"1 of {total} residents has their alerts held." in shown
    assert f"{away.name}: Away until {until} ({zone})" in shown
    korean = open_app("caregiver1", page="overview")
    no_exception(korean)
    assert f"입소자 {len(rooms)}명 중 1명의 알림이 보류 중입니다." in texts(korean)
    assert f"{until}까지 외출" in texts(korean)
