"""Simulator scenarios, the gas valve, malformed messages, simulated time and broker URLs."""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from core.contract.catalogue import DeviceType
from core.contract.errors import CONTRACT_REASONS
from core.contract.payloads import command_payload, parse_command_ack, parse_status
from core.contract.topics import TopicKind, device_topic, parse_topic
from simulator.clock import SimClock, default_start, parse_start
from simulator.errors import SimulatorError
from simulator.malformed import classify, malformed_cases
from simulator.publisher import parse_broker_url
from simulator.residents import Activity
from simulator.scenarios import KINDS, first_time, parse_scenario, resolve_scenario
from simulator.simulation import ListSink, Message, Simulation
from simulator.valve import GasValve
from tests.unit.test_simulator_life import ROOT, SEOUL, START, demo_site, run, telemetry

NOW = datetime(2025, 1, 15, 3, 0, tzinfo=UTC)


def scenario(text: str, residents: int = 3):
    return resolve_scenario(parse_scenario(text), demo_site(residents))


def events(messages: list[Message], kind: str | None = None) -> list[tuple[str, datetime, dict]]:
    out = []
    for message in messages:
        topic = parse_topic(message.topic, ROOT)
        if topic.kind is TopicKind.EVENT:
            data = orjson.loads(message.payload)
            if kind is None or data["type"] == kind:
                out.append((topic.device, datetime.fromisoformat(data["ts"]), data["data"]))
    return out


def statuses(messages: list[Message], device: str) -> list[str]:
    return [
        orjson.loads(m.payload)["state"] for m in messages if m.topic.endswith(f"/{device}/status")
    ]


# --- malformed messages


@pytest.mark.parametrize(
    "case", malformed_cases(ROOT, "sunrise", "sunrise-r01-wear", NOW), ids=lambda c: c.name
)
def test_each_malformed_message_fails_for_its_reason(case) -> None:
    assert classify(case.topic, case.payload, ROOT, NOW) == case.reason


def test_malformed_cases_cover_every_reason() -> None:
    reasons = {c.reason for c in malformed_cases(ROOT, "sunrise", "sunrise-r01-wear", NOW)}
    assert reasons == CONTRACT_REASONS


def test_malformed_scenario_publishes_every_case_and_nothing_else_breaks() -> None:
    sim, messages = run(1, scenarios=[scenario("malformed:2@10m")])
    expected = Counter(
        c.reason for c in malformed_cases(ROOT, "sunrise", "sunrise-r02-wear", sim.now)
    )
    now = sim.now + timedelta(minutes=1)
    failed = Counter(
        reason for m in messages if (reason := classify(m.topic, m.payload, ROOT, now)) is not None
    )
    assert failed == expected
    assert sim.malformed == sum(expected.values())


# --- residents in trouble


def test_fall() -> None:
    sim, messages = run(1, scenarios=[scenario("fall:2@10m")])
    (falls,) = [e for e in events(messages, "fall_detected")]
    assert falls[0] == "sunrise-r02-fall"
    assert falls[1] == START + timedelta(minutes=10)
    assert 0.8 < falls[2]["confidence"] <= 1
    motion = [
        r["motion"]
        for ts, r in telemetry(messages, "sunrise-r02-motion")
        if START + timedelta(minutes=12) <= ts <= START + timedelta(minutes=25)
    ]
    assert motion and not any(motion)  # lying still on the floor
    assert sim.life(2).activity is not Activity.FALLEN  # helped up after 15 minutes


def test_night_exit_opens_the_door_at_night() -> None:
    _sim, messages = run(4, scenarios=[scenario("night_exit:3")])
    opened = [e for e in events(messages, "door_opened") if e[0] == "sunrise-r03-door"]
    assert len(opened) == 2  # out at night, back in twenty minutes later
    first = opened[0][1].astimezone(SEOUL)
    assert (first.hour, first.minute) == (23, 30)
    door = telemetry(messages, "sunrise-r03-door")
    assert (first, {"door_open": True}) in [(ts, r) for ts, r in door]
    assert opened[1][1] - opened[0][1] == timedelta(minutes=20)


def test_long_inactivity_happens_in_the_daytime() -> None:
    sc = scenario("long_inactivity:1")
    begin = first_time(sc, START, "Asia/Seoul").astimezone(SEOUL)
    assert (begin.hour, begin.minute) == (9, 30)
    _, messages = run(20, scenarios=[sc])
    window = [
        r
        for ts, r in telemetry(messages, "sunrise-r01-motion")
        if begin + timedelta(minutes=2) <= ts < begin + timedelta(hours=5)
    ]
    assert len(window) > 250 and not any(r["motion"] for r in window)
    bed = [
        r["bed_occupied"]
        for ts, r in telemetry(messages, "sunrise-r01-bed")
        if begin + timedelta(minutes=2) <= ts < begin + timedelta(hours=5)
    ]
    assert not any(bed)


def test_panic_button() -> None:
    _, messages = run(1, scenarios=[scenario("panic:3@5m")])
    assert [e[0] for e in events(messages, "button_pressed")] == ["sunrise-r03-panic"]


def test_threshold_flapping_swings_around_120() -> None:
    _, messages = run(1, interval=10, scenarios=[scenario("threshold_flapping:1@10m+10m")])
    window = [
        r["heart_rate"]
        for ts, r in telemetry(messages, "sunrise-r01-wear")
        if START + timedelta(minutes=10) <= ts < START + timedelta(minutes=20)
    ]
    assert any(v > 120 for v in window) and any(v < 120 for v in window)
    crossings = sum((a > 120) != (b > 120) for a, b in itertools.pairwise(window))
    assert crossings >= 10
    after = [
        r["heart_rate"]
        for ts, r in telemetry(messages, "sunrise-r01-wear")
        if ts > START + timedelta(minutes=22)
    ]
    assert max(after) < 110


# --- fire and gas, and the valve


def test_flame_detected_once_a_minute() -> None:
    _, messages = run(1, scenarios=[scenario("flame@5m")])
    flames = events(messages, "flame_detected")
    assert [e[0] for e in flames] == ["sunrise-kitchen-flame"] * 5
    assert flames[1][1] - flames[0][1] == timedelta(minutes=1)


def gas(messages: list[Message]) -> list[tuple[datetime, float]]:
    return [(ts, r["gas_ppm"]) for ts, r in telemetry(messages, "sunrise-kitchen-gasvalve")]


def test_gas_leak_rises_raises_an_event_and_clears() -> None:
    _, messages = run(2, scenarios=[scenario("gas_leak@5m+10m")])
    readings = gas(messages)
    peak = max(ppm for _, ppm in readings)
    assert peak > 1000
    assert all(ppm < 5 for ts, ppm in readings if ts < START + timedelta(minutes=5))
    leaks = events(messages, "gas_leak")
    assert leaks and leaks[0][0] == "sunrise-kitchen-gasvalve" and leaks[0][2]["gas_ppm"] >= 100
    assert readings[-1][1] < 20  # ventilated once the leak stopped


def command(action: str, *, expires_in: float = 60, command_id: uuid.UUID | None = None) -> bytes:
    return command_payload(
        command_id or uuid.uuid4(), action, {}, datetime.now(UTC) + timedelta(seconds=expires_in)
    )


def test_closing_the_valve_stops_the_leak() -> None:
    sink = ListSink()
    site = demo_site(1)
    sim = Simulation(
        site,
        ROOT,
        sink,
        start=START,
        seed=1,
        scenarios=[resolve_scenario(parse_scenario("gas_leak@1m+1h"), site)],
    )
    sim.start()
    sim.advance_to(START + timedelta(minutes=4))
    cmd_topic = device_topic(ROOT, "sunrise", "sunrise-kitchen-gasvalve", TopicKind.CMD)
    assert sim.command_topics() == [cmd_topic]
    command_id = uuid.uuid4()
    result = sim.handle_command(cmd_topic, command("close_valve", command_id=command_id))
    assert result is not None and result.ok and result.changed
    at_close = sim.valve("sunrise-kitchen-gasvalve").ppm
    acks = [m for m in sink.messages if m.topic == f"{cmd_topic}/ack"]
    assert len(acks) == 1
    ack = parse_command_ack(orjson.loads(acks[0].payload))
    assert ack.id == command_id and ack.ok
    status = [m for m in sink.messages if m.topic.endswith("/sunrise-kitchen-gasvalve/status")][-1]
    assert status.retain and orjson.loads(status.payload)["valve"] == "closed"
    assert parse_status(orjson.loads(status.payload)).online
    mark = len(sink.messages)
    sim.advance_to(START + timedelta(minutes=30))
    after = gas(sink.messages[mark:])
    assert after[0][1] <= at_close + 5 and after[-1][1] < at_close / 5


def valve() -> GasValve:
    return GasValve("v1", random.Random(1), START.timestamp())


def test_valve_answers_commands() -> None:
    v = valve()
    now = datetime.now(UTC)
    closed = v.handle_command(command("close_valve"), now)
    assert closed is not None and closed.ok and closed.changed and v.state == "closed"
    again = v.handle_command(command("close_valve"), now)
    assert again is not None and again.ok and not again.changed
    opened = v.handle_command(command("open_valve"), now)
    assert opened is not None and opened.ok and v.open
    unknown = v.handle_command(command("self_destruct"), now)
    assert unknown is not None and not unknown.ok
    ack = parse_command_ack(orjson.loads(unknown.ack))
    assert not ack.ok and "self_destruct" in (ack.detail or "")


def test_valve_ignores_expired_and_unreadable_commands() -> None:
    v = valve()
    now = datetime.now(UTC)
    assert v.handle_command(command("close_valve", expires_in=-5), now) is None
    assert v.open
    assert v.handle_command(b"not json", now) is None
    assert v.handle_command(b'{"command": "close_valve"}', now) is None  # no id to answer to
    bad = orjson.dumps({"id": str(uuid.uuid4()), "command": "close_valve", "expires_at": "soon"})
    result = v.handle_command(bad, now)
    assert result is not None and not result.ok and v.open


# --- misbehaving devices


def test_device_offline() -> None:
    _, messages = run(1, scenarios=[scenario("device_offline:sunrise-r02-env@10m")])
    assert statuses(messages, "sunrise-r02-env")[:2] == ["online", "offline"]
    late = [
        ts for ts, _ in telemetry(messages, "sunrise-r02-env") if ts > START + timedelta(minutes=10)
    ]
    assert late == []


def test_device_offline_for_a_while() -> None:
    _, messages = run(2, scenarios=[scenario("device_offline:sunrise-r02-env@10m+30m")])
    assert statuses(messages, "sunrise-r02-env")[:3] == ["online", "offline", "online"]
    times = [ts for ts, _ in telemetry(messages, "sunrise-r02-env")]
    assert not [
        ts for ts in times if START + timedelta(minutes=10) < ts < START + timedelta(minutes=40)
    ]
    assert [ts for ts in times if ts > START + timedelta(minutes=40)]


def test_flapping() -> None:
    _, messages = run(1, scenarios=[scenario("flapping:sunrise-r01-motion@5m+10m")])
    states = statuses(messages, "sunrise-r01-motion")
    assert states[0] == "online" and states[-1] == "offline"  # the last is the clean stop
    toggles = sum(a != b for a, b in itertools.pairwise(states[:-1]))
    assert toggles >= 12  # every 15-45 s for 10 minutes (besides the half-hourly heartbeat)
    assert states[-2] == "online"


def test_duplicates() -> None:
    _, messages = run(1, interval=10, scenarios=[scenario("duplicates:1@10m+5m")])
    wear = [m.payload for m in messages if m.topic.endswith("/sunrise-r01-wear/telemetry")]
    repeated = [a for a, b in itertools.pairwise(wear) if a == b]
    assert 25 <= len(repeated) <= 35  # 5 minutes of 10-second readings, each sent twice
    seqs = [orjson.loads(p)["seq"] for p in wear]
    assert len(set(seqs)) == len(seqs) - len(repeated)


def test_out_of_order() -> None:
    _, messages = run(1, interval=10, scenarios=[scenario("out_of_order:2@10m+5m")])
    wear = [
        orjson.loads(m.payload) for m in messages if m.topic.endswith("/sunrise-r02-wear/telemetry")
    ]
    seqs = [p["seq"] for p in wear]
    assert sorted(seqs) == list(range(1, len(seqs) + 1))  # nothing lost
    assert sum(b < a for a, b in itertools.pairwise(seqs)) >= 20
    stamps = [datetime.fromisoformat(p["ts"]) for p in wear]
    assert any(b < a for a, b in itertools.pairwise(stamps))


def test_offline_buffer_flushes_a_batch() -> None:
    sim, messages = run(1, interval=10, scenarios=[scenario("offline_buffer:3@10m+10m")])
    assert statuses(messages, "sunrise-r03-wear")[:3] == ["online", "offline", "online"]
    bodies = [
        orjson.loads(m.payload) for m in messages if m.topic.endswith("/sunrise-r03-wear/telemetry")
    ]
    batches = [b for b in bodies if "batch" in b]
    assert len(batches) == 1 and 55 <= len(batches[0]["batch"]) <= 65
    seqs = [s["seq"] for b in bodies for s in (b.get("batch", [b]))]
    assert sorted(seqs) == list(range(1, len(seqs) + 1))
    now = sim.now + timedelta(minutes=1)
    for m in messages:
        assert classify(m.topic, m.payload, ROOT, now) is None


# --- parsing and resolving scenarios


def test_parse_scenario() -> None:
    spec = parse_scenario("device_offline:sunrise-r05-env@1h+30m")
    assert (spec.name, spec.target, spec.offset, spec.duration) == (
        "device_offline",
        "sunrise-r05-env",
        timedelta(hours=1),
        timedelta(minutes=30),
    )
    clock = parse_scenario("night_exit:2@23:30")
    assert clock.clock is not None and (clock.clock.hour, clock.clock.minute) == (23, 30)
    assert parse_scenario("flame").target is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("bogus", "unknown_scenario"),
        ("bogus:3@1h", "unknown_scenario"),
        ("fall@soon", "bad_scenario"),
        ("fall:3@25:99", "bad_scenario"),
        ("fall:3+forever", "bad_scenario"),
        ("fall::3", "bad_scenario"),
    ],
)
def test_bad_scenarios_are_explained(text: str, key: str) -> None:
    with pytest.raises(SimulatorError) as caught:
        parse_scenario(text)
    assert caught.value.key == key


@pytest.mark.parametrize(
    ("text", "device"),
    [
        ("fall", "sunrise-r01-fall"),
        ("fall:3", "sunrise-r03-fall"),
        ("fall:sunrise-r02-wear", "sunrise-r02-fall"),
        ("flame", "sunrise-kitchen-flame"),
        ("gas_leak", "sunrise-kitchen-gasvalve"),
        ("device_offline", "sunrise-r01-wear"),
        ("device_offline:2", "sunrise-r02-wear"),
        ("flapping:sunrise-kitchen-flame", "sunrise-kitchen-flame"),
    ],
)
def test_scenario_targets(text: str, device: str) -> None:
    assert scenario(text).device.id == device


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("fall:9", "unknown_target"),
        ("fall:no-such-device", "unknown_target"),
        ("fall:sunrise-kitchen-flame", "needs_resident"),
        ("gas_leak:sunrise-r01-wear", "target_lacks_device"),
        ("malformed:nothing", "unknown_target"),
    ],
)
def test_scenario_targets_that_do_not_fit(text: str, key: str) -> None:
    with pytest.raises(SimulatorError) as caught:
        scenario(text)
    assert caught.value.key == key


def test_a_resident_without_the_device_cannot_fall() -> None:
    site = demo_site(1)
    del site.residents[0].devices[DeviceType.FALL_DETECTOR]
    with pytest.raises(SimulatorError) as caught:
        resolve_scenario(parse_scenario("fall"), site)
    assert caught.value.key == "target_lacks_device"


def test_every_scenario_runs() -> None:
    texts = [f"{name}:{'sunrise-kitchen-gasvalve' if name == 'gas_leak' else ''}" for name in KINDS]
    specs = [scenario(t.rstrip(":")) for t in texts if not t.startswith("flame:")]
    specs.append(scenario("flame"))
    sim, _ = run(26, scenarios=specs)
    assert sorted(s.name for s in sim.started_scenarios) == sorted(KINDS)


# --- simulated time


def test_clock_runs_fast_but_never_ahead_of_the_wall_clock() -> None:
    real = [0.0]
    wall = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    clock = SimClock(wall - timedelta(hours=1), 60, monotonic=lambda: real[0], wall=lambda: wall)
    real[0] = 30
    assert clock.now() == wall - timedelta(minutes=30)
    real[0] = 600
    assert clock.now() == wall
    with pytest.raises(SimulatorError):
        SimClock(wall, 0)


def test_default_start() -> None:
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    assert default_start(1, None, now) == now
    assert default_start(60, 120, now) == now - timedelta(hours=2)
    assert default_start(60, None, now) == now - timedelta(days=1)


def test_parse_start() -> None:
    now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)  # 21:00 in Seoul
    assert parse_start("20:00", "Asia/Seoul", now) == now - timedelta(hours=1)
    assert parse_start("22:00", "Asia/Seoul", now) == now - timedelta(hours=23)
    assert parse_start("2025-01-15T08:00", "Asia/Seoul", now) == datetime(
        2025, 1, 14, 23, 0, tzinfo=UTC
    )
    for text, key in (("tomorrow", "bad_start"), ("2025-02-01T00:00Z", "start_in_future")):
        with pytest.raises(SimulatorError) as caught:
            parse_start(text, "Asia/Seoul", now)
        assert caught.value.key == key


def test_broker_urls() -> None:
    plain = parse_broker_url("mqtt://sim:p%40ss@broker.local")
    assert (plain.host, plain.port, plain.tls, plain.username, plain.password) == (
        "broker.local",
        1883,
        False,
        "sim",
        "p@ss",
    )
    assert parse_broker_url("mqtts://broker.local").port == 8883
    assert parse_broker_url("mqtt://127.0.0.1:11883").label == "127.0.0.1:11883"
    for bad in ("http://x", "mqtt://", "mqtt://host:99999"):
        with pytest.raises(SimulatorError) as caught:
            parse_broker_url(bad)
        assert caught.value.key == "bad_mqtt_url"
