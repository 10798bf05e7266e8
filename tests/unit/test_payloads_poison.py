"""Inputs that once stalled ingest: each is refused (or cleaned) by the contract, never raised."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from core.contract.errors import ContractError, Reason, storable_text
from core.contract.payloads import (
    MAX_EVENT_DATA_BYTES,
    MAX_EVENT_DATA_DEPTH,
    parse_command_ack,
    parse_event,
    parse_status,
    parse_timestamp,
)
from core.contract.topics import parse_topic
from ingest import parse as parse_module
from ingest.batch import Batch
from ingest.parse import Limits, apply_message

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
TS = "2026-12-05T11:59:00Z"
LIMITS = Limits()


def nested(depth: int) -> dict:
    """{"a": {"a": ... {}}} with `depth` objects in all."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def reason_of(call) -> Reason:
    with pytest.raises(ContractError) as caught:
        call()
    return caught.value.reason


@pytest.mark.parametrize(
    "ts",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-12-05T11:59:00\x00Z", "\x00"],
)
def test_timestamps_without_a_utc_time_or_with_nul_are_bad_timestamps(ts: str) -> None:
    assert reason_of(lambda: parse_timestamp(ts, NOW, timedelta(minutes=5))) is (
        Reason.BAD_TIMESTAMP
    )


@pytest.mark.parametrize(
    "data",
    [
        {"a\x00b": 1},
        {"note": "fell\x00"},
        {"list": [{"deep": ["x\x00"]}]},
        nested(1000),
        nested(MAX_EVENT_DATA_DEPTH + 1),
    ],
    ids=["nul-key", "nul-text", "nul-deep-text", "nested-1000", "nested-over-limit"],
)
def test_event_data_with_nul_or_nested_too_deep_is_a_schema_error(data: dict) -> None:
    body = {"ts": TS, "type": "fall_detected", "data": data}
    assert reason_of(lambda: parse_event(body, NOW)) is Reason.SCHEMA


def test_event_data_within_the_bounds_is_kept() -> None:
    data = nested(MAX_EVENT_DATA_DEPTH) | {"confidence": 0.93, "zone": "욕실"}
    assert parse_event({"ts": TS, "type": "fall_detected", "data": data}, NOW).data == data


def test_event_data_larger_than_the_bound_is_oversized() -> None:
    data = {"note": "x" * MAX_EVENT_DATA_BYTES}
    body = {"ts": TS, "type": "fall_detected", "data": data}
    assert reason_of(lambda: parse_event(body, NOW)) is Reason.OVERSIZED


def test_nul_is_removed_from_free_text() -> None:
    status = parse_status({"state": "online", "fw": "2.1\x00.0"})
    assert status.firmware == "2.1.0"
    assert parse_status({"state": "online", "fw": "\x00"}).firmware is None
    ack = parse_command_ack({"id": str(uuid.uuid4()), "status": "error", "detail": "jam\x00med"})
    assert ack.detail == "jammed"


def test_an_ack_detail_that_is_not_text_is_a_schema_error() -> None:
    body = {"id": str(uuid.uuid4()), "status": "ok", "detail": nested(1000)}
    assert reason_of(lambda: parse_command_ack(body)) is Reason.SCHEMA


def test_an_ack_id_that_is_not_text_is_a_schema_error() -> None:
    assert reason_of(lambda: parse_command_ack({"id": nested(1000), "status": "ok"})) is (
        Reason.SCHEMA
    )
    assert reason_of(lambda: parse_command_ack({"id": 12, "status": "ok"})) is Reason.SCHEMA


def test_an_id_ending_in_a_newline_is_not_a_registry_id() -> None:
    assert reason_of(lambda: parse_topic("care/v1/home/w1\n/telemetry")) is Reason.UNKNOWN_TOPIC


def test_storable_text_escapes_nul_and_lone_surrogates() -> None:
    assert storable_text("a\x00b\ud800c 한") == "a\\u0000b\\ud800c 한"
    assert storable_text("plain") == "plain"


def route(topic: str, body: object, **options) -> Batch:
    batch = Batch()
    payload = body if isinstance(body, bytes) else orjson.dumps(body)
    apply_message(batch, topic, payload, NOW, LIMITS, **options)
    assert batch.messages == 1
    return batch


@pytest.mark.parametrize(
    ("topic", "body", "reason"),
    [
        ("care/v1/home/w1/telemetry", {"ts": TS, "readings": {"pulse\x00": 1}}, "unknown_metric"),
        ("care/v1/home/w1/event", {"ts": TS, "type": "fall\x00"}, "unknown_event"),
        (
            "care/v1/home/w\x00/telemetry",
            {"ts": TS, "readings": {"heart_rate": 70}},
            "unknown_topic",
        ),
        ("care\x00/v1/home/w1/telemetry", b"\x00", "unknown_topic"),
        (
            "care/v1/home/w1/telemetry",
            {"ts": "\x00", "readings": {"heart_rate": 70}},
            "bad_timestamp",
        ),
    ],
)
def test_dead_letters_quoting_nul_are_stored_cleaned(topic: str, body: object, reason: str) -> None:
    [dead] = route(topic, body).dead_letters
    assert dead.reason == reason
    assert "\x00" not in dead.topic and "\x00" not in dead.detail


def test_a_known_device_under_another_site_is_a_wrong_site_dead_letter() -> None:
    sites = {"w1": "home"}
    batch = route(
        "care/v1/elsewhere/w1/telemetry",
        {"ts": TS, "readings": {"heart_rate": 70}},
        site_of=sites.get,
    )
    assert [d.reason for d in batch.dead_letters] == ["wrong_site"]
    assert not batch.readings and not batch.seen
    # Its own site, and devices the registry does not know (quarantine), are routed as before.
    assert route("care/v1/home/w1/status", {"state": "online"}, site_of=sites.get).statuses
    assert route(
        "care/v1/new/w9/telemetry", {"ts": TS, "readings": {"heart_rate": 70}}, site_of=sites.get
    ).readings


def test_an_unexpected_error_while_routing_becomes_an_internal_error_dead_letter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(data, now, max_future):
        raise KeyError("a bug")

    monkeypatch.setattr("ingest.parse.parse_event", broken)
    batch = Batch()
    apply_message(
        batch,
        "care/v1/home/w1/telemetry",
        orjson.dumps({"ts": TS, "readings": {"heart_rate": 70}}),
        NOW,
        LIMITS,
    )
    apply_message(
        batch,
        "care/v1/home/w1/event",
        orjson.dumps({"ts": TS, "type": "fall_detected"}),
        NOW,
        LIMITS,
    )
    assert batch.messages == 2
    assert [r.metric for r in batch.readings] == ["heart_rate"]
    assert not batch.events
    [dead] = batch.dead_letters
    assert dead.reason == "internal_error" and "KeyError" in dead.detail


def test_rows_of_a_message_that_fails_half_way_are_taken_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bug after some of a message's rows were added must not leave half the message in the
    # batch beside its internal_error dead letter.
    real = parse_module.ReadingRow
    made = []

    def second_breaks(*args):
        made.append(args)
        if len(made) == 2:
            raise RuntimeError("a bug")
        return real(*args)

    monkeypatch.setattr(parse_module, "ReadingRow", second_breaks)
    batch = route(
        "care/v1/home/w1/telemetry", {"ts": TS, "readings": {"heart_rate": 70, "spo2": 97}}
    )
    assert not batch.readings and not batch.seen
    assert [d.reason for d in batch.dead_letters] == ["internal_error"]
