"""A real browser onboards a new care home from a roster file; its Korean caregiver sees a fall.

The admin signs in, opens Care home, Roster import, uploads the roster through the page's real
file input: first with two mistakes (Check lists them, nothing is written), then corrected
(Import). The new fall detector reports a fall through ingest's code path, and the new caregiver
(reading Korean) signs in and finds it on the Alerts page. Screenshots go to reports/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core import schema
from core.access import Viewer
from core.db import make_engine
from core.seed import seed_demo
from core.timeutil import utcnow
from core.use_cases import admin
from models import CaregiverAssignment, Role, Site, User
from tests.conftest import make_test_settings
from tests.support.app_server import (
    REPORTS,
    app_env,
    chromium,
    click,
    open_page,
    served_app,
    sign_in,
    visible,
    wait_for,
)
from tests.support.onboarding import RESIDENT, publish_fall, roster_csv
from tests.support.waiting import wait_until

pytestmark = pytest.mark.system

SITE = "maple"
CAREGIVER = "nurse.kim"
PASSWORD = "walk-the-floor-2026"


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[str, Engine, dict[str, str]]]:
    """The demo database, plus the new site's caregiver account (Korean), not yet assigned."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = make_engine(make_test_settings(tmp_path, database_url=url))
    schema.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        seeded = seed_demo(session)
        boss = session.scalar(select(User).where(User.username == "admin"))
        assert boss is not None
        # What the Users and access page calls (the AppTest walk fills in that form).
        admin.create_account(
            session,
            Viewer.of(boss),
            username=CAREGIVER,
            role=Role.CAREGIVER,
            display_name="Kim Nurse",
            language="ko",
            site_id=None,
            password=PASSWORD,
        )
        session.commit()
    try:
        yield url, engine, {login.username: login.password for login in seeded.logins}
    finally:
        engine.dispose()


def upload(driver, path: Path) -> None:
    """Give the roster file to the page's file input, as choosing it in the file dialog does."""
    wait_until(
        lambda: driver.find_elements("xpath", "//input[@type='file']"),
        timeout=30,
        message="the roster file input",
    )
    driver.find_elements("xpath", "//input[@type='file']")[0].send_keys(str(path))
    # Short names: the uploader shortens long ones with an ellipsis.
    wait_for(driver, f"//*[contains(text(), '{path.name}')]", "the file shown as uploaded")


def site_exists(engine: Engine) -> bool:
    with Session(engine) as session:
        return session.get(Site, SITE) is not None


def test_onboard_a_site_from_a_roster_file_to_its_first_alert(home, tmp_path: Path) -> None:
    url, engine, passwords = home
    bad, good = tmp_path / "typos.csv", tmp_path / "fixed.csv"
    bad.write_bytes(roster_csv(SITE, CAREGIVER, mistakes=True))
    good.write_bytes(roster_csv(SITE, CAREGIVER))
    REPORTS.mkdir(exist_ok=True)
    with served_app(app_env(url, tmp_path), tmp_path / "app.log") as base:
        with chromium() as driver:
            sign_in(driver, base, "admin", passwords["admin"], "Sign out")
            open_page(driver, "care_home")
            click(driver, "//*[@role='tab'][contains(., 'Roster import')]", "the tab")

            upload(driver, bad)
            check = "//button[contains(., 'Check (dry run)')]"
            wait_until(
                lambda: (b := visible(driver, check)) and b.is_enabled(),
                timeout=30,
                message="Check enabled",
            )
            click(driver, check, "the check button")
            wait_for(driver, "//*[contains(text(), 'Nothing was imported')]", "the problems")
            # The table is drawn on a canvas; its cells are in the page for screen readers.
            for cell in ("is not a time of day", "Unknown device type 'toaster'"):
                wait_until(
                    lambda cell=cell: driver.find_elements("xpath", f'//*[contains(., "{cell}")]'),
                    timeout=30,
                    message=f"the problem {cell!r} listed",
                )
            driver.save_screenshot(str(REPORTS / "browser-onboarding-roster-problems.png"))
            assert not site_exists(engine)

            upload(driver, good)
            click(driver, "//button[normalize-space()='Import']", "the import button")
            wait_until(lambda: site_exists(engine), timeout=30, message="the roster imported")
            wait_for(driver, "//*[contains(text(), 'Imported')]", "the page confirming it")
            driver.save_screenshot(str(REPORTS / "browser-onboarding-roster-imported.png"))
        with Session(engine) as session:
            nurse = session.scalar(select(User).where(User.username == CAREGIVER))
            assert nurse is not None
            assert session.scalars(
                select(CaregiverAssignment).where(CaregiverAssignment.user_id == nurse.id)
            ).all()

        publish_fall(engine, SITE, utcnow())

        # A new browser: the caregiver's own session, in Korean.
        with chromium() as driver:
            sign_in(driver, base, CAREGIVER, PASSWORD, "로그아웃")
            open_page(driver, "alerts")
            wait_for(driver, f"//*[contains(text(), '{RESIDENT}')]", "the new resident's alert")
            wait_for(driver, "//*[contains(text(), '낙상')]", "the fall, in Korean")
            driver.save_screenshot(str(REPORTS / "browser-onboarding-first-alert-ko.png"))
