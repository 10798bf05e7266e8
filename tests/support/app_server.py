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

from tests.support.services import require_program
from tests.support.tcp_proxy import free_port
from tests.support.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


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
def chromium(width: int = 1024, height: int = 1366) -> Iterator[object]:
    """A headless Chromium (tablet-sized window) under Selenium; quits afterwards."""
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
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
