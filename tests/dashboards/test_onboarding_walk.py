"""Onboarding a new care home in the app, in English and Korean: account, roster, first alert.

An admin creates the caregiver's account (Users and access), checks a roster with two mistakes
(every row's problem listed, nothing written); an operator's check of the corrected file refuses
only its caregiver row (an admin's); the admin imports it (Care home, Roster import, through the
page's real file uploader), the new fall detector reports a fall through
ingest's code path, and the new caregiver sees it on Alerts and Overview with a notification
waiting in the outbox for them. No code or SQL arranges the site.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.timeutil import utcnow
from models import Alert, CaregiverAssignment, Device, Notification, Role, Site
from tests.dashboards.conftest import no_exception, texts
from tests.support.onboarding import RESIDENT, fall_detector, publish_fall, roster_csv

NOTHING_IMPORTED = {"en": "Nothing was imported", "ko": "아무것도 가져오지 않았습니다"}
IMPORTED = {"en": "Imported", "ko": "가져왔습니다"}
FALL = {"en": "fall detected", "ko": "낙상"}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_a_new_site_from_roster_to_its_first_alert(open_app, app_db, lang: str) -> None:
    site, caregiver = f"walk-{lang}", f"nurse.{lang}"

    # Users and access: the admin creates the new site's caregiver, speaking `lang`.
    at = open_app("admin", page="admin", language=lang)
    at.text_input(key="admin.create.username").input(caregiver)
    at.text_input(key="admin.create.name").input(f"Nurse {lang.upper()}")
    at.selectbox(key="admin.create.role").set_value(Role.CAREGIVER)
    at.selectbox(key="admin.create.language").set_value(lang)
    at.selectbox(key="admin.create.site").set_value(None)
    at.text_input(key="admin.create.password").input("walk-the-floor-2026")
    at.button(key="admin.create.go").click().run()
    no_exception(at)
    assert app_db.user(caregiver).language == lang

    # Care home, Roster import: a dry run of a file with two mistakes lists every problem.
    at = open_app("admin", page="care_home", language=lang)
    uploader = at.file_uploader(key="care.roster.file")
    uploader.set_value(("roster.csv", roster_csv(site, caregiver, mistakes=True), "text/csv"))
    at.run()
    at.button(key="care.roster.check").click().run()
    no_exception(at)
    assert NOTHING_IMPORTED[lang] in "\n".join(e.value for e in at.error)
    problems = at.dataframe[-1].value
    found = set(zip(problems.iloc[:, 0], problems.iloc[:, 1], strict=True))
    assert {(3, "active_start"), (4, "type")} <= found, problems.to_string()
    with app_db.session() as session:
        assert session.get(Site, site) is None

    # An operator may check the corrected file, but assigning caregivers is an admin's.
    op = open_app("operator", page="care_home", language=lang)
    uploader = op.file_uploader(key="care.roster.file")
    uploader.set_value(("roster.csv", roster_csv(site, caregiver), "text/csv"))
    op.run()
    op.button(key="care.roster.check").click().run()
    no_exception(op)
    refused = op.dataframe[-1].value
    assert list(refused.iloc[:, 0]) == [5], refused.to_string()

    # The corrected file, imported by the admin.
    uploader = at.file_uploader(key="care.roster.file")
    uploader.set_value(("roster.csv", roster_csv(site, caregiver), "text/csv"))
    at.run()
    at.button(key="care.roster.import").click().run()
    no_exception(at)
    assert IMPORTED[lang] in texts(at)
    nurse = app_db.user(caregiver)
    with app_db.session() as session:
        assert session.get(Device, fall_detector(site)).site_id == site
        assigned = session.scalars(
            select(CaregiverAssignment).where(CaregiverAssignment.user_id == nurse.id)
        ).all()
        assert [a.tier for a in assigned] == [1]

    # The new fall detector's first message: a fall.
    publish_fall(app_db.engine, site, utcnow())
    with app_db.session() as session:
        alert = session.scalars(select(Alert).where(Alert.site_id == site)).one()
        outbox = session.scalars(
            select(Notification).where(Notification.alert_id == alert.id)
        ).all()
    assert nurse.id in {n.recipient_id for n in outbox}

    # The caregiver signs in and sees it, in their language.
    at = open_app(caregiver, page="alerts")
    no_exception(at)
    shown = texts(at) + "\n".join(str(d.value) for d in at.dataframe)
    assert RESIDENT in shown and FALL[lang] in shown.lower(), shown
    at = open_app(caregiver, page="overview")
    no_exception(at)
    shown = texts(at) + "\n".join(str(d.value) for d in at.dataframe)
    assert RESIDENT in shown and FALL[lang] in shown.lower(), shown
