"""The simulator's daily-life model: repeatable, realistic, and always inside the contract."""

from __future__ import annotations

import statistics
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from core.contract.catalogue import METRICS, DeviceType
from core.contract.payloads import decode, parse_status, parse_telemetry
from core.contract.topics import TopicKind, parse_topic
from core.seed import RESIDENT_DEVICES, SITE_DEVICES, device_id
from simulator.malformed import classify
from simulator.residents import Activity, ResidentLife
from simulator.simulation import ListSink, Message, Simulation
from simulator.site_registry import DeviceSpec, ResidentSpec, SiteSpec

SEOUL = ZoneInfo("Asia/Seoul")
ROOT = "care"
# 21:00 in Seoul on a winter evening: the run starts just before bedtime.
START = datetime(2025, 1, 14, 21, 0, tzinfo=SEOUL).astimezone(UTC)


def demo_site(residents: int = 3) -> SiteSpec:
    """The demo site's shape (as core.seed builds it), without a database."""
    site = SiteSpec("sunrise", "Asia/Seoul")
    for index in range(1, residents + 1):
        resident = ResidentSpec(
            index, index, f"Resident {index}", str(100 + index), time(7, 0), time(21, 30)
        )
        for kind in RESIDENT_DEVICES:
            device = DeviceSpec(device_id("sunrise", index, kind), kind, index, resident.room)
            resident.devices[kind] = device
            site.devices.append(device)
        site.residents.append(resident)
    for kind, room in SITE_DEVICES:
        site.devices.append(DeviceSpec(device_id("sunrise", None, kind), kind, None, room))
    return site


def run(
    hours: float, *, seed: int = 7, residents: int = 3, interval: float = 60.0, scenarios=()
) -> tuple[Simulation, list[Message]]:
    sink = ListSink()
    sim = Simulation(
        demo_site(residents),
        ROOT,
        sink,
        start=START,
        seed=seed,
        interval=interval,
        scenarios=scenarios,
        wall=lambda: START + timedelta(hours=hours),
    )
    sim.start()
    sim.advance_to(START + timedelta(hours=hours))
    sim.stop()
    return sim, sink.messages


def telemetry(messages: list[Message], device: str) -> list[tuple[datetime, dict]]:
    out = []
    for message in messages:
        topic = parse_topic(message.topic, ROOT)
        if topic.device == device and topic.kind is TopicKind.TELEMETRY:
            data = orjson.loads(message.payload)
            samples = data.get("batch", [data])
            for sample in samples:
                ts = datetime.fromisoformat(sample["ts"]).astimezone(SEOUL)
                out.append((ts, sample["readings"]))
    return out


@pytest.fixture(scope="module")
def day() -> tuple[Simulation, list[Message]]:
    """Two simulated days of three residents, wearables every 60 s."""
    return run(48)


def test_same_seed_same_messages() -> None:
    _, first = run(3, seed=11)
    _, again = run(3, seed=11)
    _, other = run(3, seed=12)
    assert [m.payload for m in first] == [m.payload for m in again]
    assert [m.payload for m in first] != [m.payload for m in other]


def test_a_resident_sleeps_at_night_in_bed() -> None:
    life = ResidentLife(demo_site(1).residents[0], "Asia/Seoul", seed=3)
    night, day_in_bed = [], []
    moment = datetime(2025, 1, 14, 0, 0, tzinfo=SEOUL)
    for _ in range(3 * 24 * 60):
        life.step(moment.timestamp())
        if 1 <= moment.hour < 5:
            night.append(life.activity is Activity.SLEEPING and life.in_bed and life.in_room)
        if 9 <= moment.hour < 12 or 15 <= moment.hour < 19:
            day_in_bed.append(life.in_bed)
        moment += timedelta(minutes=1)
    assert sum(night) / len(night) > 0.85  # the rest: bathroom trips
    assert not any(day_in_bed)


def test_the_day_has_meals_out_of_the_room() -> None:
    life = ResidentLife(demo_site(1).residents[0], "Asia/Seoul", seed=3)
    plan = life.plan(date(2025, 1, 15))
    meals = [begin.hour for begin, _, activity in plan.blocks if activity is Activity.MEAL]
    assert len(meals) == 3 and meals[0] in (7, 8) and meals[1] in (11, 12) and meals[2] == 17
    assert 6 <= plan.wake.hour <= 7 and 20 <= plan.sleep.hour <= 21


def test_heart_rate_is_lower_at_night(day) -> None:
    _, messages = day
    samples = telemetry(messages, "sunrise-r01-wear")
    night = [r["heart_rate"] for ts, r in samples if 1 <= ts.hour < 5 and "heart_rate" in r]
    daytime = [r["heart_rate"] for ts, r in samples if 9 <= ts.hour < 20 and "heart_rate" in r]
    assert statistics.mean(night) < statistics.mean(daytime) - 8
    assert statistics.mean(night) >= 55 and statistics.mean(daytime) <= 90


def test_bed_and_motion_sensors_follow_the_resident(day) -> None:
    _, messages = day
    bed = telemetry(messages, "sunrise-r02-bed")
    at_night = [r["bed_occupied"] for ts, r in bed if 1 <= ts.hour < 5]
    afternoon = [r["bed_occupied"] for ts, r in bed if 15 <= ts.hour < 19]
    assert sum(at_night) / len(at_night) > 0.85 and not any(afternoon)
    assert all("heart_rate" in r for ts, r in bed if r["bed_occupied"])
    motion = telemetry(messages, "sunrise-r02-motion")
    night_motion = [r["motion"] for ts, r in motion if 1 <= ts.hour < 5]
    day_motion = [r["motion"] for ts, r in motion if 8 <= ts.hour < 21]
    assert sum(night_motion) / len(night_motion) < 0.25
    assert sum(day_motion) / len(day_motion) > 0.2


def test_doors_open_when_residents_go_out_and_not_at_night(day) -> None:
    _, messages = day
    doors = telemetry(messages, "sunrise-r03-door")
    openings = [ts for ts, r in doors if r.get("door_open") is True]
    assert len(openings) >= 6  # meals, lounge: out and back in, each day
    assert all(7 <= ts.hour < 22 for ts in openings)


def test_battery_drains(day) -> None:
    _, messages = day
    night = [
        r["battery_pct"]
        for ts, r in telemetry(messages, "sunrise-r01-wear")
        if "battery_pct" in r and ts < datetime(2025, 1, 15, 7, 0, tzinfo=SEOUL)
    ]
    assert len(night) > 20
    assert night == sorted(night, reverse=True) and night[-1] < night[0]
    statuses = [
        parse_status(orjson.loads(m.payload)).battery
        for m in messages
        if m.topic.endswith("/sunrise-r01-wear/status")
    ]
    assert statuses[-1] < statuses[0]


def test_every_message_parses_and_values_are_realistic(day) -> None:
    sim, messages = day
    now = sim.now + timedelta(minutes=1)
    realistic = {
        "heart_rate": (45, 130),
        "spo2": (94, 99),
        "body_temp_c": (36.2, 37.2),
        "temperature_c": (18, 27),
        "humidity_pct": (25, 75),
        "co2_ppm": (400, 3000),
        "gas_ppm": (0, 10),
        "battery_pct": (0, 100),
    }
    kinds = set()
    for message in messages:
        assert classify(message.topic, message.payload, ROOT, now) is None, message
        topic = parse_topic(message.topic, ROOT)
        kinds.add(topic.kind)
        assert message.retain == (topic.kind is TopicKind.STATUS)
        if topic.kind is TopicKind.TELEMETRY:
            for sample in parse_telemetry(decode(message.payload, 262_144), now).samples:
                for metric, value in sample.readings.items():
                    assert METRICS[metric].accepts(value)
                    if metric in realistic:
                        low, high = realistic[metric]
                        assert low <= value <= high, (metric, value)
    assert kinds == {TopicKind.TELEMETRY, TopicKind.EVENT, TopicKind.STATUS}


def test_every_device_reports_and_status_brackets_the_run(day) -> None:
    sim, messages = day
    site = sim.site
    for device in site.devices:
        statuses = [m for m in messages if m.topic.endswith(f"/{device.id}/status")]
        assert orjson.loads(statuses[0].payload)["state"] == "online"
        assert orjson.loads(statuses[-1].payload)["state"] == "offline"
        assert telemetry(messages, device.id), device.id
    valve = [m for m in messages if m.topic.endswith("/sunrise-kitchen-gasvalve/status")]
    assert orjson.loads(valve[0].payload)["valve"] == "open"


def test_wearable_interval_is_configurable() -> None:
    _, every_10s = run(1, interval=10, residents=1)
    _, every_60s = run(1, interval=60, residents=1)
    assert 350 <= len(telemetry(every_10s, "sunrise-r01-wear")) <= 370
    assert 58 <= len(telemetry(every_60s, "sunrise-r01-wear")) <= 62


def test_env_sensor_reports_the_room_climate(day) -> None:
    _, messages = day
    readings = [r for _, r in telemetry(messages, "sunrise-r01-env")]
    assert len(readings) > 500
    for r in readings:
        assert {"temperature_c", "humidity_pct", "co2_ppm"} <= set(r)
    assert DeviceType.ENV_SENSOR in RESIDENT_DEVICES
