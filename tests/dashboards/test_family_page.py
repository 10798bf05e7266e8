"""My family member page: a family user sees only their relative; the care team sees the family."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import delete, select

from core import users
from core.care_report import make_report
from core.security import verify_password
from models import (
    CaregiverAssignment,
    CareReport,
    Channel,
    ContactChannel,
    FamilyLink,
    Resident,
    Role,
    User,
)
from tests.dashboards.conftest import no_exception, texts

FAMILY = "kim.family"


@pytest.fixture
def family(app_db):
    """A Korean family user linked to caregiver1's first resident, with an e-mail; removed after."""
    with app_db.session() as session:
        caregiver = session.scalar(select(User).where(User.username == "caregiver1"))
        resident = session.scalar(
            select(Resident)
            .join(CaregiverAssignment, CaregiverAssignment.resident_id == Resident.id)
            .where(CaregiverAssignment.user_id == caregiver.id)
            .order_by(Resident.id)
        )
        user = users.create_user(
            session,
            username=FAMILY,
            password="family-password-1",
            role=Role.FAMILY,
            display_name="Kim Family",
            language="ko",
        )
        users.link_family(session, user, resident, "딸")
        session.add(ContactChannel(user_id=user.id, channel=Channel.EMAIL, address="kim@ex.org"))
        make_report(session, resident.id, date(2026, 1, 5))
        session.commit()
        others = list(session.scalars(select(Resident.name).where(Resident.name != resident.name)))
    yield resident, others
    with app_db.session() as session:
        session.execute(delete(CareReport).where(CareReport.resident_id == resident.id))
        session.execute(delete(FamilyLink))
        session.execute(delete(User).where(User.username == FAMILY))
        session.commit()


def test_family_sees_only_their_relative_on_their_only_page(open_app, family) -> None:
    resident, others = family
    at = open_app(FAMILY)
    no_exception(at)
    page = texts(at)
    assert "내 가족" in page and resident.name in page
    assert [name for name in others if name in page] == [], page
    assert "일일 보고서" in page  # the report, written out in Korean
    from dashboards.navigation import pages_for

    names = {
        s.name for specs in pages_for(at.session_state["iotcare.viewer"]).values() for s in specs
    }
    assert names == {"family", "account"}
    for page_name in ("resident", "devices", "alerts", "overview"):
        try:
            other = open_app(FAMILY, page=page_name)
        except ValueError:
            continue  # not even registered for this role
        assert resident.name not in texts(other) or not other.dataframe


def test_family_user_changes_their_own_account(open_app, app_db, family) -> None:
    resident, others = family
    at = open_app(FAMILY, page="account")
    no_exception(at)
    page = texts(at)
    assert "내 계정" in page and FAMILY in page
    assert [name for name in [resident.name, *others] if name in page] == [], page
    assert not at.dataframe
    at.selectbox[0].select("en")
    at.checkbox[0].check()
    at.button[0].click().run()
    no_exception(at)
    assert "Your preferences are saved." in texts(at)
    at.text_input[0].input("family-password-1")
    at.text_input[1].input("family-password-2")
    at.text_input[2].input("family-password-2")
    at.button[1].click().run()
    no_exception(at)
    with app_db.session() as session:
        user = session.scalar(select(User).where(User.username == FAMILY))
        assert user.language == "en" and user.quiet_start is not None
        assert verify_password(user.password_hash, "family-password-2")


def test_caregiver_sees_the_family_user_on_the_resident_page(open_app, family) -> None:
    resident, _ = family
    at = open_app(
        "caregiver1", page="resident", query={"resident": str(resident.id)}, language="en"
    )
    no_exception(at)
    assert "Family members with an account" in texts(at)
    shown = [df.value for df in at.dataframe if "Reached by" in df.value.columns]
    assert len(shown) == 1
    row = shown[0].iloc[0]
    assert (row["Name"], row["Relation"], row["Reached by"]) == (
        "Kim Family",
        "딸",
        "email: kim@ex.org",
    )
