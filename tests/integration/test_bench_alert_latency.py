"""The alert latency benchmark still runs: every critical event gives an alert and a webhook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.mosquitto import MOSQUITTO_ENV, find_mosquitto
from tests.support.services import TEST_DATABASE_URL, require

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]


def test_every_critical_event_reaches_an_alert_and_the_webhook(tmp_path: Path) -> None:
    require(TEST_DATABASE_URL is not None, "PostgreSQL", "IOTCARE_TEST_DATABASE_URL")
    require(find_mosquitto() is not None, "The mosquitto binary", MOSQUITTO_ENV)
    assert TEST_DATABASE_URL is not None
    environment = {k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")}
    runs = tmp_path / "runs.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.alert_latency",
            "--quick",
            "--database-url",
            TEST_DATABASE_URL,
            "--json",
            str(runs),
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "events without an alert or webhook: 0" in result.stdout, output
    assert "publish -> webhook received: p50" in result.stdout, output
    assert "reproduce: cd " in result.stdout, output
    assert "-m bench.alert_latency --events=10" in result.stdout, output
    (line,) = runs.read_text().splitlines()
    record = json.loads(line)
    assert record["events"] == 10
    assert record["alerts"] == 10, output
    assert record["webhooks"] == 10, output
    assert record["missing_alert"] == [] and record["missing_webhook"] == [], output
    assert record["bad_keys"] == [], output
    assert record["commit"]["count"] == 10 and record["webhook"]["count"] == 10
    # Delivered right after the commit, not left for the sweeper.
    for event in record["per_event"]:
        assert event["commit_ms"] is not None and event["webhook_ms"] is not None
        assert event["status"] == "sent", event
