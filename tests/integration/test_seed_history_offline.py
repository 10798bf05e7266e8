"""Seeded history and device offline: judged from the stored status history, and safe to seed
behind a live system (last_seen and the live status never move back)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from core import schema
from core.db import make_engine
from core.rules.engine import evaluate_rules
from core.rules.params import default_offline_minutes
from core.seed import seed_demo
from core.timeutil import ensure_utc, utcnow
from models import Alert, Device, DeviceStatus, DeviceStatusChange, Reading, RuleKind
from simulator import history
from simulator.scenarios import Scenario, ScenarioSpec, resolve_scenario
from simulator.site_registry import SiteSpec
from tests.conftest import make_test_settings

FLAPPING = "sunrise-r11-motion"
UNPLUGGED = "sunrise-r13-env"


@pytest.fixture
def demo_engine(migrated_database_url: str, tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(make_test_settings(tmp_path, database_url=migrated_database_url))
    schema.upgrade(engine)
    with Session(engine) as session, session.begin():
        seed_demo(session, timezone="Asia/Seoul")
    yield engine
    engine.dispose()


def two_incidents(site: SiteSpec, start: datetime, end: datetime, seed: int) -> list[Scenario]:
    """A motion sensor flapping for 10 minutes, an env sensor unplugged for an hour."""
    specs = [
        ("flapping", FLAPPING, timedelta(hours=3), timedelta(minutes=10)),
        ("device_offline", UNPLUGGED, timedelta(hours=6), timedelta(hours=1)),
    ]
    return [
        resolve_scenario(ScenarioSpec(f"{n}:{t}", n, t, offset, None, duration), site)
        for n, t, offset, duration in specs
    ]


def spells(engine: Engine, device_id: str) -> list[tuple[datetime, datetime | None]]:
    """The device's offline spells from the stored status history: (went offline, came back)."""
    with Session(engine) as session:
        rows = session.execute(
            select(DeviceStatusChange.status, DeviceStatusChange.at)
            .where(DeviceStatusChange.device_id == device_id)
            .order_by(DeviceStatusChange.at)
        ).all()
    found: list[tuple[datetime, datetime | None]] = []
    for status, at in rows:
        if status is DeviceStatus.OFFLINE:
            found.append((ensure_utc(at), None))
        elif found and found[-1][1] is None:
            found[-1] = (found[-1][0], ensure_utc(at))
    return found


def test_seeded_offline_alerts_follow_the_stored_status_history(
    demo_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "plan_scenarios", two_incidents)
    result = history.seed_history(demo_engine, site_id="sunrise", days=1, seed=3, now=utcnow())
    flaps = spells(demo_engine, FLAPPING)
    # Every toggle of the flapping sensor is in the history, each spell short.
    assert len(flaps) >= 5
    assert all(back is not None and back - off < timedelta(minutes=2) for off, back in flaps)
    ((off, back),) = spells(demo_engine, UNPLUGGED)
    assert off - result.start == pytest.approx(timedelta(hours=6), abs=timedelta(seconds=1))
    assert back is not None and back - off == pytest.approx(
        timedelta(hours=1), abs=timedelta(seconds=1)
    )
    with Session(demo_engine) as session:
        offline = session.scalars(select(Alert).where(Alert.kind == RuleKind.DEVICE_OFFLINE)).all()
    # The seeded "Device offline" rules hold an offline status for at least 15 minutes (their
    # device type's limit): the flapping never held that long.
    assert [a.device_id for a in offline] == [UNPLUGGED]
    (alert,) = offline
    assert alert.details["offline_since"] == off.isoformat()
    opened = ensure_utc(alert.opened_at)
    limit = timedelta(minutes=default_offline_minutes("env_sensor"))
    assert off + limit <= opened <= off + limit + timedelta(minutes=5)


def test_seeding_history_behind_a_live_system_leaves_its_devices_alone(
    demo_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "plan_scenarios", two_incidents)
    now = utcnow().replace(microsecond=0)
    live_since = now - timedelta(hours=2)
    with Session(demo_engine) as session, session.begin():
        devices = list(session.scalars(select(Device.id).where(Device.site_id == "sunrise")))
        # Live for two hours: every device reported a minute ago and has been online since.
        session.execute(
            update(Device).values(
                status=DeviceStatus.ONLINE,
                status_since=live_since,
                last_seen=now - timedelta(minutes=1),
            )
        )
        session.add_all(
            Reading(device_id=d, metric="battery_pct", ts=live_since, value=90) for d in devices
        )
    result = history.seed_history(demo_engine, site_id="sunrise", days=1, seed=3, now=now)
    assert result.end <= live_since and result.readings > 0
    with Session(demo_engine) as session:
        after = session.execute(
            select(Device.status, Device.status_since, Device.last_seen).where(
                Device.site_id == "sunrise"
            )
        ).all()
        assert {(s, ensure_utc(a), ensure_utc(b)) for s, a, b in after} == {
            (DeviceStatus.ONLINE, live_since, now - timedelta(minutes=1))
        }
        # The live engine's next tick finds nothing offline (142 when last_seen moved back).
        tick = evaluate_rules(session, now, kinds=[RuleKind.DEVICE_OFFLINE])
        assert tick.opened == []
