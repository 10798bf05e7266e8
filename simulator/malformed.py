"""Messages that break contract v1 on purpose, each with the reason the platform must give.

`classify` runs a message through the contract's own parsers, so tests (and the simulator's
`malformed` scenario) can check that every bad message fails for the expected reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from core.contract.errors import ContractError, Reason
from core.contract.payloads import (
    decode,
    parse_command_ack,
    parse_event,
    parse_status,
    parse_telemetry,
    telemetry_payload,
)
from core.contract.topics import VERSION, TopicKind, device_topic, parse_topic


@dataclass(frozen=True, slots=True)
class MalformedCase:
    """One deliberately bad message."""

    name: str
    topic: str
    payload: bytes
    reason: Reason


def malformed_cases(
    root: str,
    site: str,
    device: str,
    now: datetime,
    max_payload_bytes: int = 262_144,
    wall: datetime | None = None,
) -> list[MalformedCase]:
    """Every way a device can break the contract, sent from `device` at `now`.

    `wall` is the platform's clock (defaults to `now`); the future timestamp is a day ahead of it.
    """
    future = max(now, wall or now) + timedelta(days=1)
    telemetry = device_topic(root, site, device, TopicKind.TELEMETRY)
    event = device_topic(root, site, device, TopicKind.EVENT)
    status = device_topic(root, site, device, TopicKind.STATUS)
    ts = now.isoformat(timespec="milliseconds")

    def body(readings: dict[str, object], when: object = ts) -> bytes:
        return orjson.dumps({"ts": when, "readings": readings})

    padding = "x" * (max_payload_bytes + 1024)
    return [
        MalformedCase(
            "invalid_json", telemetry, b'{"ts": "2025-01-01T00:00:00Z", "readi', Reason.INVALID_JSON
        ),
        MalformedCase("not_an_object", telemetry, b"[72, 97, 36.6]", Reason.SCHEMA),
        MalformedCase("unknown_metric", telemetry, body({"pulse_rate": 72}), Reason.UNKNOWN_METRIC),
        MalformedCase("out_of_range", telemetry, body({"heart_rate": 400}), Reason.OUT_OF_RANGE),
        MalformedCase("wrong_type", telemetry, body({"heart_rate": "seventy"}), Reason.SCHEMA),
        MalformedCase("missing_readings", telemetry, orjson.dumps({"ts": ts}), Reason.SCHEMA),
        MalformedCase(
            "future_timestamp",
            telemetry,
            body({"heart_rate": 72}, future.isoformat()),
            Reason.FUTURE_TIMESTAMP,
        ),
        MalformedCase(
            "bad_timestamp", telemetry, body({"heart_rate": 72}, "yesterday"), Reason.BAD_TIMESTAMP
        ),
        MalformedCase(
            "naive_timestamp",
            telemetry,
            body({"heart_rate": 72}, now.replace(tzinfo=None).isoformat()),
            Reason.BAD_TIMESTAMP,
        ),
        MalformedCase(
            "oversized",
            telemetry,
            orjson.dumps({"ts": ts, "readings": {"heart_rate": 72}, "note": padding}),
            Reason.OVERSIZED,
        ),
        MalformedCase(
            "unknown_event",
            event,
            orjson.dumps({"ts": ts, "type": "alien_abduction", "data": {}}),
            Reason.UNKNOWN_EVENT,
        ),
        MalformedCase("bad_status", status, b'{"state": "sleepy"}', Reason.SCHEMA),
        MalformedCase(
            "unknown_topic_kind",
            f"{root}/{VERSION}/{site}/{device}/firmware",
            telemetry_payload(now, {"heart_rate": 72}),
            Reason.UNKNOWN_TOPIC,
        ),
        MalformedCase(
            "short_topic",
            f"{root}/{VERSION}/{site}/telemetry",
            telemetry_payload(now, {"heart_rate": 72}),
            Reason.UNKNOWN_TOPIC,
        ),
        MalformedCase(
            "bad_device_id",
            f"{root}/{VERSION}/{site}/{device}.bad!/telemetry",
            telemetry_payload(now, {"heart_rate": 72}),
            Reason.UNKNOWN_TOPIC,
        ),
    ]


def classify(
    topic: str,
    payload: bytes,
    root: str,
    now: datetime,
    max_payload_bytes: int = 262_144,
    max_future: timedelta = timedelta(minutes=5),
) -> Reason | None:
    """Why a message breaks the contract, or None when the platform accepts it whole."""
    try:
        kind = parse_topic(topic, root).kind
        if kind is TopicKind.CMD:
            return None
        data = decode(payload, max_payload_bytes)
        if kind is TopicKind.TELEMETRY:
            telemetry = parse_telemetry(data, now, max_future)
            if telemetry.rejected:
                return telemetry.rejected[0].reason
        elif kind is TopicKind.EVENT:
            parse_event(data, now, max_future)
        elif kind is TopicKind.STATUS:
            parse_status(data)
        elif kind is TopicKind.CMD_ACK:
            parse_command_ack(data)
    except ContractError as error:
        return error.reason
    return None
