"""Care home page: create a site, admit and discharge a resident, roster check then import."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from core.access import Viewer
from dashboards.navigation import pages_for
from models import AuditEntry, Device, EmergencyContact, Resident, Site
from tests.dashboards.conftest import no_exception, texts

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "roster.csv"


def _errors(at) -> str:
    return "\n".join(e.value for e in at.error)


def test_operators_and_admins_have_the_page_and_caregivers_do_not(open_app, app_db) -> None:
    names = {
        user: {
            spec.name
            for specs in pages_for(Viewer.of(app_db.user(user))).values()
            for spec in specs
        }
        for user in ("caregiver1", "operator", "admin")
    }
    assert "care_home" not in names["caregiver1"]
    assert "care_home" in names["operator"] and "care_home" in names["admin"]
    at = open_app("operator", page="care_home")
    no_exception(at)
    assert at.title[0].value == "Care home"


def test_an_operator_creates_a_site_and_a_bad_timezone_is_explained(open_app, app_db) -> None:
    at = open_app("operator", page="care_home")
    at.text_input(key="care.site.id").input("maple")
    at.text_input(key="care.site.name").input("Maple House")
    at.text_input(key="care.site.timezone").input("Mars/Base")
    at.button(key="care.site.go").click().run()
    no_exception(at)
    assert "Timezone: Unknown timezone 'Mars/Base'" in _errors(at)
    at.text_input(key="care.site.timezone").input("Europe/London")
    at.button(key="care.site.go").click().run()
    no_exception(at)
    assert "Site maple created." in texts(at)
    with app_db.session() as session:
        site = session.get(Site, "maple")
        assert site.name == "Maple House" and site.timezone == "Europe/London"
        assert session.scalar(select(AuditEntry).where(AuditEntry.action == "site.create"))


def test_an_operator_admits_then_discharges_a_resident(open_app, app_db) -> None:
    at = open_app("operator", page="care_home")
    at.selectbox(key="care.resident.site").select(app_db.site_id)
    at.text_input(key="care.resident.name").input("Choi Mi-ran")
    at.text_input(key="care.resident.room").input("301")
    at.text_input(key="care.resident.new.cn0").input("Choi Dong-hyun")
    at.text_input(key="care.resident.new.cp0").input("not a phone")
    at.button(key="care.resident.go").click().run()
    no_exception(at)
    assert "'not a phone' is not a phone number" in _errors(at)
    at.text_input(key="care.resident.new.cp0").input("+82 10 5555 0301")
    at.button(key="care.resident.go").click().run()
    no_exception(at)
    assert "Choi Mi-ran admitted." in texts(at)
    with app_db.session() as session:
        resident = session.scalar(select(Resident).where(Resident.name == "Choi Mi-ran"))
        assert resident.room == "301" and resident.active
        contact = session.scalar(
            select(EmergencyContact).where(EmergencyContact.resident_id == resident.id)
        )
        assert contact.phone == "+82 10 5555 0301"
    at.selectbox(key="care.resident.pick").select(resident.id).run()
    at.text_input(key="care.discharge.reason").input("moved to family")
    at.button(key="care.discharge.go").click().run()
    no_exception(at)
    assert "Choi Mi-ran discharged." in texts(at)
    with app_db.session() as session:
        resident = session.get(Resident, resident.id)
        assert not resident.active and resident.discharged_at is not None


def test_a_roster_is_checked_with_every_problem_then_imported(open_app, app_db) -> None:
    at = open_app("admin", page="care_home", language="ko")
    bad = (
        "kind,site,id,name,timezone,type\n"
        "site,,birch,Birch House,Mars/Base,\n"
        f"device,{app_db.site_id},x-1,X,,toaster\n"
    )
    at.file_uploader(key="care.roster.file").set_value(("bad.csv", bad.encode(), "text/csv"))
    at.run()
    at.button(key="care.roster.check").click().run()
    no_exception(at)
    assert "아무것도 가져오지 않았습니다" in _errors(at)
    table = at.dataframe[-1].value
    assert list(table.iloc[:, 0]) == [2, 3]
    assert list(table.iloc[:, 1]) == ["timezone", "type"]
    good = EXAMPLE.read_text().replace("nurse.lee", "caregiver1")
    at.file_uploader(key="care.roster.file").set_value(("good.csv", good.encode(), "text/csv"))
    at.run()
    at.button(key="care.roster.check").click().run()
    no_exception(at)
    assert "시험 실행" in texts(at), at.dataframe[-1].value.to_string()
    with app_db.session() as session:
        assert session.get(Site, "hanbit") is None
    at.button(key="care.roster.import").click().run()
    no_exception(at)
    assert "가져왔습니다" in texts(at)
    with app_db.session() as session:
        assert session.get(Site, "hanbit") is not None
        assert session.get(Device, "hanbit-gas-kitchen").room == "kitchen"
