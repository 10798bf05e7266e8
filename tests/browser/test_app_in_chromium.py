"""A real browser: headless Chromium loads the served app, signs in and acknowledges an alert."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from core import schema
from core.alerts.lifecycle import Subject, raise_alert
from core.db import make_engine
from core.seed import seed_demo
from dashboards.components.auth import SESSION_COOKIE
from models import Alert, AlertStatus, Resident, RuleKind, Severity
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
from tests.support.waiting import wait_until

pytestmark = pytest.mark.system

TITLE = "Fall detected (browser test)"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    """A seeded SQLite database with one open critical alert for caregiver1's first resident."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = make_engine(make_test_settings(tmp_path, database_url=url))
    schema.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        seeded = seed_demo(session)
        resident = session.query(Resident).order_by(Resident.id).first()
        assert resident is not None
        raised = raise_alert(
            session,
            kind=RuleKind.EVENT,
            severity=Severity.CRITICAL,
            subject=Subject("resident", str(resident.id), seeded.site_id, resident.id),
            title=TITLE,
        )
        session.commit()
        alert_id = str(raised.alert.id)
    engine.dispose()
    yield url, {login.username: login.password for login in seeded.logins}, alert_id


def test_sign_in_and_acknowledge_in_chromium(site, tmp_path: Path) -> None:
    url, passwords, alert_id = site
    with served_app(app_env(url, tmp_path), tmp_path / "app.log") as base, chromium() as driver:

        def find(xpath: str):
            return visible(driver, xpath)

        # caregiver1 reads Korean: the navigation switches to it after sign-in.
        sign_in(driver, base, "caregiver1", passwords["caregiver1"], "로그아웃")
        open_page(driver, "alerts")
        wait_for(driver, f"//*[contains(text(), '{TITLE}')]", "the alert in the inbox")
        note = "//textarea[@aria-label='메모 (선택)']"
        wait_until(lambda: find(note), timeout=30, message="the acknowledge form")
        find(note).send_keys("On my way to room 1")
        REPORTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(REPORTS / "browser-alert-open.png"))
        click(driver, "//button[normalize-space()='확인']", "the acknowledge button")
        wait_until(
            lambda: alert_status(url, tmp_path, alert_id) == AlertStatus.ACKNOWLEDGED,
            timeout=30,
            message="the alert acknowledged in the database",
        )
        wait_until(
            lambda: find("//*[contains(text(), '알림을 확인했습니다')]"),
            timeout=30,
            message="the page confirming it",
        )
        driver.save_screenshot(str(REPORTS / "browser-alert-acknowledged.png"))
    with Session(make_engine(make_test_settings(tmp_path, database_url=url))) as session:
        alert = session.get(Alert, uuid.UUID(alert_id))
        assert alert is not None and alert.ack_note == "On my way to room 1"


def alert_status(url: str, tmp_path: Path, alert_id: str) -> AlertStatus:
    engine = make_engine(make_test_settings(tmp_path, database_url=url))
    try:
        with Session(engine) as session:
            alert = session.get(Alert, uuid.UUID(alert_id))
            assert alert is not None
            return alert.status
    finally:
        engine.dispose()


def test_a_reload_keeps_the_session_in_a_cookie_until_sign_out(site, tmp_path: Path) -> None:
    """The signed token lives in a SameSite=Strict cookie (not the address) for the timeout."""
    url, passwords, _ = site
    settings = make_test_settings(tmp_path, database_url=url)
    with served_app(app_env(url, tmp_path), tmp_path / "app.log") as base, chromium() as driver:
        sign_in(driver, base, "operator", passwords["operator"], "Sign out")
        wait_until(
            lambda: driver.get_cookie(SESSION_COOKIE),
            timeout=30,
            message="the session cookie written by the page",
        )
        cookie = driver.get_cookie(SESSION_COOKIE)
        assert cookie["value"].startswith("s1.")
        assert cookie["sameSite"] == "Strict" and cookie["path"] == "/"
        assert not cookie["secure"]  # served over http here; https adds Secure
        lifetime = cookie["expiry"] - time.time()
        timeout = settings.session_timeout.total_seconds()
        assert timeout - 120 < lifetime <= timeout + 5
        assert "session=" not in driver.current_url

        # A reload (and a page opened by its address) signs nobody out.
        open_page(driver, "alerts")
        wait_until(lambda: "/alerts" in driver.current_url, timeout=30, message="the alerts page")
        driver.refresh()
        wait_for(driver, "//*[contains(text(), 'Sign out')]", "still signed in after a reload")
        assert visible(driver, "//input[@aria-label='Password']") is None
        assert "session=" not in driver.current_url and "/alerts" in driver.current_url
        REPORTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(REPORTS / "browser-reloaded-signed-in.png"))

        click(driver, "//button[contains(., 'Sign out')]", "the sign-out button")
        wait_for(driver, "//input[@aria-label='Password']", "the sign-in form")
        wait_until(
            lambda: driver.get_cookie(SESSION_COOKIE) is None,
            timeout=30,
            message="the cookie cleared by signing out",
        )
        # The token the cookie held is refused on the server too: a copy signs nobody in.
        driver.add_cookie({"name": SESSION_COOKIE, "value": cookie["value"], "path": "/"})
        driver.refresh()
        wait_for(driver, "//*[contains(text(), 'session has expired')]", "the copy refused")
        wait_for(driver, "//input[@aria-label='Password']", "the sign-in form again")
        assert visible(driver, "//*[contains(text(), 'Sign out')]") is None


def test_with_cookies_blocked_the_address_carries_the_session(site, tmp_path: Path) -> None:
    """The fallback: the page's script puts the token in the address when no cookie sticks."""
    url, passwords, _ = site
    blocked = {"profile.default_content_setting_values.cookies": 2}
    with (
        served_app(app_env(url, tmp_path), tmp_path / "app.log") as base,
        chromium(prefs=blocked) as driver,
    ):
        sign_in(driver, base, "operator", passwords["operator"], "Sign out")
        wait_until(
            lambda: "session=s1." in driver.current_url,
            timeout=30,
            message="the token in the address",
        )
        assert driver.get_cookie(SESSION_COOKIE) is None
        driver.refresh()
        wait_for(driver, "//*[contains(text(), 'Sign out')]", "still signed in after a reload")
        assert visible(driver, "//input[@aria-label='Password']") is None
