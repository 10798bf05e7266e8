"""Which real services the tests may use, and what to do when one is missing."""

from __future__ import annotations

import os

import pytest

CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
TEST_DATABASE_URL = os.environ.get("IOTCARE_TEST_DATABASE_URL") or None
TEST_MQTT_URL = os.environ.get("IOTCARE_TEST_MQTT_URL") or None


def require(available: bool, what: str, variable: str) -> None:
    """Skip when a real service is not configured, but fail in CI, where it must be."""
    if available:
        return
    message = f"{what} is not configured ({variable} is unset)"
    if CI:
        pytest.fail(f"{message}; CI must run this test against the real service", pytrace=False)
    pytest.skip(message)


def require_program(path: str, package: str) -> None:
    """Skip when a program the test drives is not installed, but fail in CI, where it must be."""
    if os.access(path, os.X_OK):
        return
    message = f"{path} is missing (Debian package {package})"
    if CI:
        pytest.fail(f"{message}; .ci/run installs it", pytrace=False)
    pytest.skip(message)
