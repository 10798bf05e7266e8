"""`iotcare demo` as a newcomer runs it: everything starts, data flows, Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from cli.demo import AlertFeed
from core import registry, schema
from core.alerts.lifecycle import Subject, raise_alert
from core.i18n import translator
from core.timeutil import utcnow
from devkit.tcp_proxy import free_port
from models import RuleKind, Severity
from tests.support.waiting import wait_until

pytestmark = pytest.mark.system


def readings(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select count(*) from readings").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def alerts(db: Path) -> int:
    """How many of the demo's scenario alerts (a fall, a gas leak) are open."""
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(
                "select count(distinct title) from alerts "
                "where title in ('Fall detected', 'Gas leak')"
            ).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def app_healthy(port: int) -> bool:
    """Streamlit's health endpoint answers 'ok'."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.read().strip() == b"ok"
    except OSError:
        return False


def api_healthy(port: int) -> bool:
    """The API's health endpoint answers: it runs and reaches the demo database."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/healthz", timeout=2) as r:
            return b'"ok"' in r.read()
    except OSError:
        return False


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_alert_feed_prints_only_alerts_opened_since_the_demo_started(
    empty_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(empty_database)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    started = utcnow()
    with sessions() as session:
        site = registry.create_site(session, "feedsite", "Feed site", "UTC")
        resident = registry.create_resident(session, site, "Kim")
        subject = Subject("resident", str(resident.id), site.id, resident.id)
        for title, at in (("Old fall", started - timedelta(days=1)), ("New fall", started)):
            raise_alert(
                session,
                kind=RuleKind.EVENT,
                severity=Severity.CRITICAL,
                subject=Subject(subject.type, f"{subject.id}-{title}", site.id, resident.id),
                title=title,
                at=at,
            )
        session.commit()
    feed = AlertFeed(sessions, translator("en"), "en", "UTC", since=started)
    feed.poll()
    feed.poll()
    engine.dispose()
    printed = capsys.readouterr().out
    assert printed.count("ALERT CRITICAL") == 1, printed
    assert "New fall" in printed and "Old fall" not in printed


def test_demo_runs_everything_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")}
    env.update({"IOTCARE_METRICS_PORT": "0", "LANG": "en_US.UTF-8"})
    app_port = free_port("127.0.0.1")
    api_port = free_port("127.0.0.1")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "demo",
            "--broker-port",
            "0",
            "--speed",
            "60",
            "--prefect-port",
            str(free_port("127.0.0.1")),
            "--app-port",
            str(app_port),
            "--api-port",
            str(api_port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # At 60x the scenarios (a minute and three minutes in) come within seconds.
        try:
            wait_until(
                lambda: (
                    readings(tmp_path / "var" / "iotcare.db") > 100
                    and alerts(tmp_path / "var" / "iotcare.db") >= 2
                ),
                timeout=120,
                message="readings and the scenario alerts through the broker and ingest",
            )
        except AssertionError as error:
            logs = "\n".join(
                f"--- {path.name}\n{path.read_text()[-3000:]}"
                for path in sorted((tmp_path / "var" / "demo-logs").glob("*.log"))
            )
            raise AssertionError(f"{error}\n{logs}") from None
        wait_until(
            lambda: app_healthy(app_port), timeout=60, message="the app answering on its port"
        )
        wait_until(
            lambda: api_healthy(api_port), timeout=60, message="the API answering on its port"
        )
        children = children_of(process.pid)
        assert len(children) == 5  # ingest, simulator, flows, the app and the API
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            # Failed midway: Ctrl-C first, so the demo stops its children (a kill would leave
            # its Prefect server, app and API running and slow every later test).
            process.send_signal(signal.SIGINT)
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
    assert process.returncode == 0, output
    assert "Logins (role, username, password):" in output
    assert "caregiver1" in output and "operator" in output and "admin" in output
    assert "Stopped." in output
    assert f"The app: http://localhost:{app_port}" in output
    assert f"The HTTP API: http://localhost:{api_port}/api/v1" in output
    assert f"documentation: http://localhost:{api_port}/api/docs" in output
    # The default scenarios: a fall, and a gas leak that closes the kitchen valve by itself.
    assert "ALERT CRITICAL: Fall detected" in output
    assert "ALERT CRITICAL: Gas leak" in output
    assert "Traceback" not in output
    time.sleep(0.5)
    assert all(
        not Path(f"/proc/{pid}").exists()
        or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        for pid in children
    )
