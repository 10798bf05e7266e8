"""The device simulator through a real broker: a seeded site, scenarios, the valve, load, CLI."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import paho.mqtt.client as mqtt
import pytest
import typer
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli import context
from cli.simulate import simulate
from core import schema
from core.contract.catalogue import DeviceType
from core.contract.payloads import command_payload, parse_command_ack
from core.contract.topics import TopicKind, device_topic, parse_topic
from core.db import make_engine, make_session_factory, session_scope
from core.errors import IotCareError
from core.mqtt_url import parse_broker_url
from core.seed import seed_demo
from core.settings import MqttProtocol
from simulator import (
    LoadTarget,
    MqttPublisher,
    SimClock,
    Simulation,
    load_site,
    load_targets,
    parse_scenario,
    resolve_scenario,
    run_load,
    run_simulation,
)
from simulator.malformed import classify, malformed_cases

pytestmark = pytest.mark.mqtt

SEOUL = ZoneInfo("Asia/Seoul")
VALVE = "sunrise-kitchen-gasvalve"


class Subscriber:
    """Everything published under a topic root, as the platform would see it."""

    def __init__(self, url: str, root: str) -> None:
        self.root = root
        self.messages: list[tuple[str, bytes]] = []
        self._changed = threading.Condition()
        address = parse_broker_url(url)
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"simtest-sub-{uuid.uuid4().hex[:8]}"
        )
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        self.client.subscribe(f"{root}/#", qos=1)
        assert subscribed.wait(10)

    def _on_message(self, _client, _userdata, message) -> None:
        with self._changed:
            self.messages.append((message.topic, bytes(message.payload)))
            self._changed.notify_all()

    # A ceiling, not a measurement: under a loaded CI machine a command's round trip has taken
    # more than 10 s.
    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def from_devices(self) -> list[tuple[str, bytes]]:
        """What the simulator sent (not the commands this test sent)."""
        with self._changed:
            return [(t, p) for t, p in self.messages if not t.endswith("/cmd")]

    def events(self, kind: str) -> list[tuple[str, dict]]:
        out = []
        for topic, payload in self.from_devices():
            if topic.endswith("/event") and payload.startswith(b"{"):
                data = orjson.loads(payload)
                if data.get("type") == kind:
                    out.append((parse_topic(topic, self.root).device, data))
        return out

    def last_status(self, device: str) -> dict | None:
        found = [p for t, p in self.from_devices() if t.endswith(f"/{device}/status")]
        return orjson.loads(found[-1]) if found else None

    def close(self) -> None:
        """Clear the retained statuses we caused, then disconnect."""
        status_topics = {t for t, _ in self.from_devices() if t.endswith("/status")}
        for topic in status_topics:
            self.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def root() -> str:
    return f"simtest{uuid.uuid4().hex[:10]}"


@pytest.fixture
def subscriber(mqtt_url: str, root: str) -> Iterator[Subscriber]:
    sub = Subscriber(mqtt_url, root)
    yield sub
    sub.close()


def last_night_start() -> datetime:
    """23:00 yesterday in Seoul: at least an hour ago, and night."""
    today = datetime.now(SEOUL).date()
    return datetime.combine(today - timedelta(days=1), datetime.min.time(), tzinfo=SEOUL).replace(
        hour=23
    )


SCENARIOS = [
    "fall:3@2m",
    "night_exit:2@5m",
    "flame@3m",
    "gas_leak@1m+2h",
    "malformed:4@1m",
    "duplicates:5@1m+5m",
    "out_of_order:6@1m+5m",
    "offline_buffer:7@2m+5m",
    "device_offline:sunrise-r08-env@1m",
    "flapping:sunrise-r09-motion@1m+5m",
]


def test_simulated_site_through_the_broker(
    db_session: Session, mqtt_url: str, root: str, subscriber: Subscriber
) -> None:
    seed_demo(db_session)
    site = load_site(db_session, "sunrise")
    assert len(site.residents) == 20 and len(site.devices) == 142
    start = last_night_start()
    publisher = MqttPublisher(
        mqtt_url, client_id=f"simtest-{uuid.uuid4().hex[:8]}", protocol=MqttProtocol.V311
    )
    sim = Simulation(
        site,
        root,
        publisher,
        start=start,
        seed=42,
        scenarios=[resolve_scenario(parse_scenario(s), site) for s in SCENARIOS],
    )
    publisher.connect()
    stop = threading.Event()
    results = []
    runner = threading.Thread(
        target=lambda: results.append(
            run_simulation(sim, publisher, SimClock(start, 1200), stop=stop, duration=120)
        )
    )
    runner.start()
    try:
        assert subscriber.wait_for(lambda: subscriber.events("gas_leak"))
        cmd = device_topic(root, "sunrise", VALVE, TopicKind.CMD)
        ack_topic = f"{cmd}/ack"

        def acks() -> dict:
            return {
                str(parse_command_ack(orjson.loads(p)).id): parse_command_ack(orjson.loads(p))
                for t, p in subscriber.from_devices()
                if t == ack_topic
            }

        expires = datetime.now(UTC) + timedelta(minutes=1)
        close_id, bogus_id, expired_id, open_id = (uuid.uuid4() for _ in range(4))
        subscriber.publish(cmd, command_payload(close_id, "close_valve", {}, expires))
        assert subscriber.wait_for(lambda: str(close_id) in acks())
        assert acks()[str(close_id)].ok
        assert subscriber.wait_for(
            lambda: (subscriber.last_status(VALVE) or {}).get("valve") == "closed"
        )
        subscriber.publish(cmd, command_payload(bogus_id, "self_destruct", {}, expires))
        subscriber.publish(
            cmd, command_payload(expired_id, "close_valve", {}, expires - timedelta(hours=1))
        )
        subscriber.publish(cmd, command_payload(open_id, "open_valve", {}, expires))
        assert subscriber.wait_for(lambda: str(open_id) in acks())
        answered = acks()
        assert not answered[str(bogus_id)].ok and answered[str(open_id)].ok
        assert str(expired_id) not in answered
        # Let simulated time pass every scenario's start (the last is at 5 minutes).
        assert subscriber.wait_for(lambda: subscriber.events("door_opened"))
    finally:
        stop.set()
        runner.join(15)
        publisher.close()
    (stats,) = results
    assert stats.unacknowledged == 0 and stats.commands == 3
    assert subscriber.wait_for(lambda: len(subscriber.from_devices()) >= stats.messages)
    received = subscriber.from_devices()
    assert len(received) == stats.messages

    # Every message keeps the contract, except exactly the deliberately malformed ones.
    now = datetime.now(UTC)
    expected = Counter(c.reason for c in malformed_cases(root, "sunrise", "sunrise-r04-wear", now))
    failures = Counter(
        reason for topic, payload in received if (reason := classify(topic, payload, root, now))
    )
    assert failures == expected

    # The scenarios happened.
    assert [d for d, _ in subscriber.events("fall_detected")] == ["sunrise-r03-fall"]
    assert ("sunrise-kitchen-flame", "flame_detected") in {
        (d, e["type"]) for d, e in subscriber.events("flame_detected")
    }
    assert subscriber.events("gas_leak")[0][0] == VALVE
    exits = [e for d, e in subscriber.events("door_opened") if d == "sunrise-r02-door"]
    assert exits and datetime.fromisoformat(exits[0]["ts"]).astimezone(SEOUL).hour == 23
    assert any(
        t.endswith("/sunrise-r07-wear/telemetry") and p.startswith(b'{"batch"') for t, p in received
    )
    # A clean stop leaves every device offline.
    for device in site.devices:
        assert (subscriber.last_status(device.id) or {}).get("state") == "offline", device.id


@pytest.mark.parametrize("protocol", list(MqttProtocol))
def test_load_generator(
    mqtt_url: str, root: str, subscriber: Subscriber, protocol: MqttProtocol
) -> None:
    targets = [
        LoadTarget("sunrise", f"sunrise-r{i:02d}-wear", DeviceType.WEARABLE) for i in range(1, 21)
    ]
    stats = run_load(
        mqtt_url, root, targets, rate=2000, count=1000, progress=False, protocol=protocol
    )
    assert stats.published == stats.acknowledged == 1000 and stats.readings == 3000
    assert 0 < stats.rate <= 2400  # held to the target rate
    assert subscriber.wait_for(lambda: len(subscriber.messages) >= 1000)
    now = datetime.now(UTC)
    seqs: dict[str, list[int]] = {}
    for topic, payload in subscriber.messages:
        assert classify(topic, payload, root, now) is None
        body = orjson.loads(payload)
        assert len(body["readings"]) == 3
        seqs.setdefault(parse_topic(topic, root).device, []).append(body["seq"])
    assert len(seqs) == 20 and all(s == list(range(1, 51)) for s in seqs.values())


def test_load_targets_are_the_devices_with_three_metrics(db_session: Session) -> None:
    seed_demo(db_session)
    targets = load_targets(db_session, "sunrise")
    assert len(targets) == 60
    assert {t.device_type for t in targets} == {
        DeviceType.WEARABLE,
        DeviceType.ENV_SENSOR,
        DeviceType.BED_SENSOR,
    }


# --- the command


@pytest.fixture
def cli_site(
    migrated_database_url: str, override_settings, mqtt_url: str, root: str
) -> Iterator[None]:
    """A seeded database and settings pointing at the test broker and topic root."""
    settings = override_settings(
        database_url=migrated_database_url, mqtt_url=mqtt_url, mqtt_topic_root=root
    )
    engine = make_engine(settings)
    schema.upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        seed_demo(session)
    engine.dispose()
    context.reset()
    yield
    context.reset()
    for handler in list(logging.getLogger().handlers):
        if getattr(handler, "_iotcare", False):  # bound to CliRunner's closed streams
            logging.getLogger().removeHandler(handler)


def invoke(*args: str):
    app = typer.Typer()
    app.command()(simulate)
    context.reset()
    return CliRunner().invoke(app, list(args))


def test_simulate_command(cli_site: None, subscriber: Subscriber) -> None:
    result = invoke("--speed", "600", "--duration", "1.5s", "--seed", "3", "-S", "panic:4@1m")
    assert result.exit_code == 0, result.output
    assert "Simulating site 'sunrise': 20 residents, 142 devices" in result.output
    assert "Stopped after" in result.output
    assert [d for d, _ in subscriber.events("button_pressed")] == ["sunrise-r04-panic"]
    assert (subscriber.last_status("sunrise-r01-wear") or {}).get("state") == "offline"


def test_simulate_command_load_mode(cli_site: None, subscriber: Subscriber) -> None:
    result = invoke("--rate", "1000", "--count", "200", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "Published 200 messages (600 readings)" in result.output
    assert subscriber.wait_for(lambda: len(subscriber.messages) >= 200)


BAD_ARGUMENTS = [
    (("-S", "bogus"), "Unknown scenario 'bogus'"),
    (("-S", "fall:42"), "no resident number or device '42'"),
    (("--site", "nowhere"), "No site with id 'nowhere'"),
    (("--speed", "0"), "--speed must be a number above 0"),
    (("--duration", "soon"), "--duration 'soon' is not a duration"),
    (("--start", "tomorrow"), "--start 'tomorrow' is neither HH:MM nor an RFC 3339 time"),
    (("--mqtt-url", "mqtt://127.0.0.1:1"), "Cannot reach the MQTT broker at 127.0.0.1:1"),
    (("--mqtt-url", "http://broker"), "Bad broker URL 'http://broker'"),
]


def test_simulate_command_explains_bad_arguments(cli_site: None) -> None:
    for args, message in BAD_ARGUMENTS:
        result = invoke(*args)
        assert result.exit_code != 0, args
        assert isinstance(result.exception, IotCareError), args
        assert message in str(result.exception)
        assert "\n" not in str(result.exception)


def test_simulate_command_speaks_korean(cli_site: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTCARE_LANGUAGE", "ko")
    result = invoke("-S", "bogus")
    assert isinstance(result.exception, IotCareError)
    assert "알 수 없는 시나리오 'bogus'" in str(result.exception)


def test_list_scenarios(override_settings) -> None:
    override_settings()
    result = invoke("--list-scenarios")
    assert result.exit_code == 0
    for name in ("fall", "night_exit", "gas_leak", "malformed", "offline_buffer"):
        assert f"  {name} " in result.output
