"""Contract v1: topics and payload validation, each rejection with its reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from core.contract.catalogue import METRICS, EventType
from core.contract.errors import ContractError, Reason
from core.contract.payloads import (
    batch_payload,
    command_ack_payload,
    decode,
    event_payload,
    parse_command_ack,
    parse_event,
    parse_status,
    parse_telemetry,
    parse_timestamp,
    status_payload,
    telemetry_payload,
)
from core.contract.topics import TopicKind, device_topic, parse_topic, subscription

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


def telemetry(body: object) -> object:
    return parse_telemetry(decode(orjson.dumps(body), 10_000), NOW, SKEW)


def test_topics_round_trip() -> None:
    for kind in TopicKind:
        topic = device_topic("care", "sunrise", "sunrise-r01-wear", kind)
        parsed = parse_topic(topic)
        assert (parsed.site, parsed.device, parsed.kind) == ("sunrise", "sunrise-r01-wear", kind)
    assert subscription("care", TopicKind.TELEMETRY, "ingest") == (
        "$share/ingest/care/v1/+/+/telemetry"
    )
    assert subscription("care", TopicKind.CMD_ACK) == "care/v1/+/+/cmd/ack"


@pytest.mark.parametrize(
    "topic",
    [
        "care/v1/site/dev",
        "care/v2/site/dev/telemetry",
        "other/v1/site/dev/telemetry",
        "care/v1/site/dev/telemetry/extra",
        "care/v1/si te/dev/telemetry",
        "care/v1/site/" + "d" * 65 + "/telemetry",
        "care/v1/site/dev/unknown",
    ],
)
def test_bad_topics(topic: str) -> None:
    with pytest.raises(ContractError) as raised:
        parse_topic(topic)
    assert raised.value.reason is Reason.UNKNOWN_TOPIC


def test_single_and_batch_telemetry() -> None:
    single = telemetry(
        {
            "ts": "2026-11-22T11:59:00+09:00",
            "seq": 4,
            "readings": {"heart_rate": 70, "motion": True},
        }
    )
    assert single.samples[0].ts == datetime(2026, 11, 22, 2, 59, tzinfo=UTC)
    assert single.samples[0].readings == {"heart_rate": 70.0, "motion": 1.0}
    assert single.samples[0].seq == 4
    batch = parse_telemetry(
        decode(
            batch_payload(
                [
                    (NOW - timedelta(minutes=2), {"spo2": 97}, 1),
                    (NOW - timedelta(minutes=1), {"spo2": 96}, 2),
                ]
            ),
            10_000,
        ),
        NOW,
        SKEW,
    )
    assert [s.readings["spo2"] for s in batch.samples] == [97.0, 96.0]
    epoch = telemetry({"ts": int(NOW.timestamp() * 1000), "readings": {"spo2": 99}})
    assert epoch.samples[0].ts == NOW


def test_partly_valid_message_keeps_good_readings() -> None:
    result = telemetry(
        {"ts": "2026-11-22T12:00:00Z", "readings": {"heart_rate": 300, "spo2": 97, "mood": 3}}
    )
    assert result.samples[0].readings == {"spo2": 97.0}
    assert {e.reason for e in result.rejected} == {Reason.OUT_OF_RANGE, Reason.UNKNOWN_METRIC}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", Reason.INVALID_JSON),
        (b"[1, 2]", Reason.SCHEMA),
        (b'{"ts": "2026-11-22T12:00:00Z"}', Reason.SCHEMA),
        (b'{"ts": "2026-11-22T12:00:00Z", "readings": {}}', Reason.SCHEMA),
        (b'{"ts": "2026-11-22T12:00:00", "readings": {"spo2": 97}}', Reason.BAD_TIMESTAMP),
        (b'{"ts": "yesterday", "readings": {"spo2": 97}}', Reason.BAD_TIMESTAMP),
        (b'{"ts": 12, "readings": {"spo2": 97}}', Reason.BAD_TIMESTAMP),
        (b'{"ts": true, "readings": {"spo2": 97}}', Reason.BAD_TIMESTAMP),
        (b'{"ts": "2027-01-01T00:00:00Z", "readings": {"spo2": 97}}', Reason.FUTURE_TIMESTAMP),
        (b'{"ts": "2026-11-22T12:00:00Z", "readings": {"spo2": "97"}}', Reason.SCHEMA),
        (b'{"ts": "2026-11-22T12:00:00Z", "readings": {"motion": 5}}', Reason.OUT_OF_RANGE),
        (b'{"ts": "2026-11-22T12:00:00Z", "readings": {"spo2": 101}}', Reason.OUT_OF_RANGE),
        (b'{"ts": "2026-11-22T12:00:00Z", "readings": {"steps": 1}}', Reason.UNKNOWN_METRIC),
        (b'{"ts": "2026-11-22T12:00:00Z", "seq": "x", "readings": {"spo2": 97}}', Reason.SCHEMA),
        (b'{"batch": []}', Reason.SCHEMA),
        (b'{"batch": [1]}', Reason.SCHEMA),
    ],
)
def test_each_telemetry_break_has_its_reason(payload: bytes, reason: Reason) -> None:
    with pytest.raises(ContractError) as raised:
        parse_telemetry(decode(payload, 10_000), NOW, SKEW)
    assert raised.value.reason is reason


def test_oversized_payload() -> None:
    with pytest.raises(ContractError) as raised:
        decode(b"{" + b" " * 2000 + b"}", 1024)
    assert raised.value.reason is Reason.OVERSIZED


def test_every_metric_range_boundary() -> None:
    for metric in METRICS.values():
        if metric.boolean:
            assert metric.accepts(True) and metric.accepts(0) and not metric.accepts(2)
            continue
        assert metric.minimum is not None and metric.maximum is not None
        assert metric.accepts(metric.minimum) and metric.accepts(metric.maximum)
        assert not metric.accepts(metric.minimum - 0.001)
        assert not metric.accepts(metric.maximum + 0.001)


def test_events_status_and_acks() -> None:
    event = parse_event(decode(event_payload(NOW, EventType.FALL_DETECTED, {"g": 3.1}), 1000), NOW)
    assert event.type is EventType.FALL_DETECTED and event.data == {"g": 3.1}
    with pytest.raises(ContractError) as raised:
        parse_event({"ts": "2026-11-22T12:00:00Z", "type": "sneezed"}, NOW)
    assert raised.value.reason is Reason.UNKNOWN_EVENT
    status = parse_status(decode(status_payload(True, "1.0.3", 55, -70), 1000))
    assert (status.online, status.firmware, status.battery, status.rssi) == (True, "1.0.3", 55, -70)
    assert parse_status({"state": "offline"}).online is False
    for bad in (
        {"state": "asleep"},
        {"state": "online", "battery": 120},
        {"state": "online", "rssi": 5},
        {"state": "online", "fw": 3},
    ):
        with pytest.raises(ContractError):
            parse_status(bad)
    command_id = uuid.uuid4()
    ack = parse_command_ack(decode(command_ack_payload(command_id, False, "jammed"), 1000))
    assert (ack.id, ack.ok, ack.detail) == (command_id, False, "jammed")
    with pytest.raises(ContractError):
        parse_command_ack({"id": "nope", "status": "ok"})


def test_timestamps_before_2000_are_clock_errors() -> None:
    with pytest.raises(ContractError) as raised:
        parse_timestamp("1970-01-01T00:00:00Z", NOW, SKEW)
    assert raised.value.reason is Reason.BAD_TIMESTAMP


def test_builders_produce_valid_messages() -> None:
    body = decode(telemetry_payload(NOW, {"heart_rate": 61, "bed_occupied": False}, 9), 1000)
    parsed = parse_telemetry(body, NOW)
    assert parsed.samples[0].readings == {"heart_rate": 61.0, "bed_occupied": 0.0}
