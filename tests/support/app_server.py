"""The Streamlit app served as a user runs it (`iotcare app`), and headless Chromium to drive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devkit.tcp_proxy import free_port
from tests.conftest import TEST_SECRET
from tests.support.services import require_program
from tests.support.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Screenshots of browser tests, kept with the test report.
REPORTS = Path(__file__).resolve().parents[2] / "reports"


def healthy(url: str) -> bool:
    """Streamlit's health endpoint answers 'ok'."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().strip() == b"ok"
    except OSError:
        return False


@contextmanager
def served_app(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """`python -m cli app` on a free port with these IOTCARE_* settings; yields its URL."""
    port = free_port("127.0.0.1")
    url = f"http://127.0.0.1:{port}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "app", "--port", str(port)],
            env={**clean, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: healthy(url) or process.poll() is not None,
                timeout=60,
                message="the app to answer",
            )
            assert process.poll() is None, log_path.read_text()
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def chromium(
    width: int = 1024, height: int = 1366, prefs: dict[str, object] | None = None
) -> Iterator[object]:
    """A headless Chromium (tablet-sized window) under Selenium; quits afterwards.

    `prefs` are Chromium preferences (e.g. blocking cookies)."""
    require_program(CHROMIUM, "chromium")
    require_program(CHROMEDRIVER, "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        # This machine's network is closed: without these Chromium keeps dialling out.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    if prefs:
        options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def app_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """The IOTCARE_* settings the served app runs with in a browser test."""
    return {
        "IOTCARE_ENVIRONMENT": "test",
        "IOTCARE_DATABASE_URL": database_url,
        "IOTCARE_SECRET_KEY": TEST_SECRET,
        "IOTCARE_DATA_DIR": str(data_dir),
    }


def visible(driver: Any, xpath: str) -> Any | None:
    """The first element at this XPath if it is displayed, else None (to poll with wait_until)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        found = driver.find_elements(By.XPATH, xpath)
        return found[0] if found and found[0].is_displayed() else None
    except StaleElementReferenceException:
        # A fragment that refreshes itself (alerts list, sidebar counts) replaced it meanwhile.
        return None


def click(driver: Any, xpath: str, message: str, timeout: float = 30) -> None:
    """Click the element at this XPath once it is displayed, again if a rerun replaced it."""
    from selenium.common.exceptions import StaleElementReferenceException

    def clicked() -> bool:
        element = visible(driver, xpath)
        if element is None:
            return False
        try:
            element.click()
        except StaleElementReferenceException:
            return False
        return True

    wait_until(clicked, timeout=timeout, message=message)


def wait_for(driver: Any, xpath: str, message: str, timeout: float = 30) -> Any:
    """Wait until an element at this XPath is displayed, and return it."""
    try:
        wait_until(lambda: visible(driver, xpath), timeout=timeout, message=message)
    except AssertionError:
        # What the page showed instead, to see why.
        REPORTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(REPORTS / "browser-timed-out.png"))
        raise
    return visible(driver, xpath)


def sign_in(driver: Any, base: str, username: str, password: str, signed_in_text: str) -> None:
    """Open the app, fill in the sign-in form and wait for `signed_in_text` (e.g. Sign out)."""
    from selenium.webdriver.common.keys import Keys

    driver.get(base)
    wait_for(driver, "//input[@aria-label='Username']", "the sign-in form").send_keys(username)
    field = wait_for(driver, "//input[@aria-label='Password']", "the password field")
    field.send_keys(password)
    field.send_keys(Keys.ENTER)
    wait_for(driver, f"//*[contains(text(), '{signed_in_text}')]", "signed in")


def open_page(driver: Any, page: str) -> None:
    """Go to a page through the navigation (not by URL: the session lives in the connection)."""
    link = f"//a[contains(@href, '/{page}')]"
    # Past ten pages Streamlit folds the navigation behind a "View N more" button.
    more = "//*[@data-testid='stSidebarNav']//button[contains(., 'more')]"

    def shown() -> Any | None:
        if visible(driver, link) is None and (button := visible(driver, more)) is not None:
            button.click()
        return visible(driver, link)

    wait_until(shown, timeout=30, message=f"the {page} page in the navigation")
    click(driver, link, f"the {page} page's link")
