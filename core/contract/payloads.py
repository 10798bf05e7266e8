"""Payloads of contract v1: fast validation of what devices send, and building what we send.

Hand-written checks over orjson's output cost a few microseconds per message, which matters at
tens of thousands of messages a second; every rejection names its reason for the dead-letter table.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from core.contract.catalogue import METRICS, EventType
from core.contract.errors import ContractError, Reason

# Timestamps before this are clock errors (a device that booted without time), not history.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_EARLIEST_MS = EARLIEST.timestamp() * 1000
MAX_BATCH = 10_000
# Event data is stored as JSON for people and rules to read: a few levels and a few KB suffice,
# and deeper nesting overflows JSON encoders' recursion (a poison write, not just a big one).
MAX_EVENT_DATA_DEPTH = 32
MAX_EVENT_DATA_BYTES = 16_384
_EVENT_TYPES = {e.value: e for e in EventType}


@dataclass(slots=True)
class Sample:
    """One telemetry object: a timestamp and its valid readings."""

    ts: datetime
    seq: int | None
    readings: dict[str, float]


@dataclass(slots=True)
class Telemetry:
    """A parsed telemetry message; `rejected` lists readings that broke the contract."""

    samples: list[Sample]
    rejected: list[ContractError] = field(default_factory=list)


@dataclass(slots=True)
class EventMessage:
    """A parsed event."""

    ts: datetime
    type: EventType
    data: dict[str, Any]


@dataclass(slots=True)
class StatusMessage:
    """A parsed status (also the device's last will)."""

    online: bool
    firmware: str | None
    battery: int | None
    rssi: int | None


@dataclass(slots=True)
class CommandAck:
    """A device's answer to a command."""

    id: uuid.UUID
    ok: bool
    detail: str | None


def decode(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """Size check, JSON decode, and the top level must be an object."""
    if len(payload) > max_bytes:
        raise ContractError(Reason.OVERSIZED, f"{len(payload)} bytes, limit {max_bytes}")
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise ContractError(Reason.INVALID_JSON, str(error)[:200]) from None
    if not isinstance(data, dict):
        raise ContractError(Reason.SCHEMA, f"payload must be a JSON object, not {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def parse_timestamp(value: Any, now: datetime, max_future: timedelta) -> datetime:
    """RFC 3339 with an offset, or epoch milliseconds; not before 2000 nor too far ahead."""
    if isinstance(value, bool) or value is None:
        raise ContractError(Reason.BAD_TIMESTAMP, "ts is missing or not a time")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < _EARLIEST_MS or value > 1e14:
            raise ContractError(Reason.BAD_TIMESTAMP, f"epoch milliseconds {value} out of range")
        ts = datetime.fromtimestamp(value / 1000, UTC)
    elif isinstance(value, str):
        if "\x00" in value:
            raise ContractError(Reason.BAD_TIMESTAMP, "ts contains U+0000")
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            raise ContractError(Reason.BAD_TIMESTAMP, f"'{value[:40]}' is not RFC 3339") from None
        if ts.tzinfo is None:
            raise ContractError(Reason.BAD_TIMESTAMP, f"'{value[:40]}' has no UTC offset")
        try:
            ts = ts.astimezone(UTC)
        except OverflowError:
            # 9999-12-31T23:59:59-14:00 and 0001-01-01T00:00:00+14:00 have no UTC datetime.
            raise ContractError(
                Reason.BAD_TIMESTAMP, f"'{value[:40]}' is outside the representable years"
            ) from None
        if ts < EARLIEST:
            raise ContractError(Reason.BAD_TIMESTAMP, f"{value[:40]} is before 2000")
    else:
        raise ContractError(Reason.BAD_TIMESTAMP, "ts must be RFC 3339 text or epoch ms")
    if ts - now > max_future:
        raise ContractError(
            Reason.FUTURE_TIMESTAMP,
            f"{ts.isoformat()} is {(ts - now).total_seconds():.0f} s ahead of the platform clock",
        )
    return ts


def _reading(metric: str, value: Any) -> float:
    spec = METRICS.get(metric)
    if spec is None:
        raise ContractError(Reason.UNKNOWN_METRIC, f"unknown metric '{metric[:64]}'")
    if spec.boolean:
        if isinstance(value, bool) or value in (0, 1):
            return 1.0 if value else 0.0
        raise ContractError(Reason.OUT_OF_RANGE, f"{metric} must be true or false")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ContractError(Reason.SCHEMA, f"{metric} must be a number")
    assert spec.minimum is not None and spec.maximum is not None
    if not spec.minimum <= value <= spec.maximum:
        raise ContractError(
            Reason.OUT_OF_RANGE,
            f"{metric}={value} outside {spec.minimum:g}..{spec.maximum:g} {spec.unit}",
        )
    return float(value)


def _sample(
    obj: Any, now: datetime, max_future: timedelta, rejected: list[ContractError]
) -> Sample:
    if not isinstance(obj, dict):
        raise ContractError(Reason.SCHEMA, "each telemetry object must be a JSON object")
    readings = obj.get("readings")
    if not isinstance(readings, dict) or not readings:
        raise ContractError(Reason.SCHEMA, "'readings' must be a non-empty object")
    ts = parse_timestamp(obj.get("ts"), now, max_future)
    seq = obj.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        raise ContractError(Reason.SCHEMA, "'seq' must be an integer")
    valid: dict[str, float] = {}
    for metric, value in readings.items():
        try:
            valid[metric] = _reading(metric, value)
        except ContractError as error:
            rejected.append(error)
    return Sample(ts, seq, valid)


def parse_telemetry(
    data: dict[str, Any], now: datetime, max_future: timedelta = timedelta(minutes=5)
) -> Telemetry:
    """A single telemetry object or {"batch": [...]}; bad readings are listed, good ones kept.

    Raises ContractError when nothing in the message is usable.
    """
    rejected: list[ContractError] = []
    if "batch" in data:
        batch = data["batch"]
        if not isinstance(batch, list) or not batch:
            raise ContractError(Reason.SCHEMA, "'batch' must be a non-empty array")
        if len(batch) > MAX_BATCH:
            raise ContractError(Reason.OVERSIZED, f"batch of {len(batch)}, limit {MAX_BATCH}")
        samples = []
        for obj in batch:
            try:
                samples.append(_sample(obj, now, max_future, rejected))
            except ContractError as error:
                rejected.append(error)
    else:
        samples = [_sample(data, now, max_future, rejected)]
    samples = [s for s in samples if s.readings]
    if not samples:
        raise rejected[0]
    return Telemetry(samples, rejected)


def parse_event(
    data: dict[str, Any], now: datetime, max_future: timedelta = timedelta(minutes=5)
) -> EventMessage:
    """{"ts", "type", "data"} with a known event type."""
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ContractError(Reason.SCHEMA, "'type' must be a string")
    event_type = _EVENT_TYPES.get(kind)
    if event_type is None:
        raise ContractError(Reason.UNKNOWN_EVENT, f"unknown event type '{kind[:64]}'")
    extra = data.get("data", {})
    if extra is None:
        extra = {}
    if not isinstance(extra, dict):
        raise ContractError(Reason.SCHEMA, "'data' must be an object")
    if extra:
        _check_event_data(extra)
    return EventMessage(parse_timestamp(data.get("ts"), now, max_future), event_type, extra)


def _check_event_data(data: dict[str, Any]) -> None:
    """Bounded depth and size, and no U+0000 in any key or text (PostgreSQL's jsonb refuses it)."""
    # Iterative, so a deeply nested value cannot exhaust the stack here either.
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_EVENT_DATA_DEPTH:
            raise ContractError(
                Reason.SCHEMA, f"'data' is nested deeper than {MAX_EVENT_DATA_DEPTH} levels"
            )
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    raise ContractError(Reason.SCHEMA, "'data' has a key containing U+0000")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and "\x00" in value:
            raise ContractError(Reason.SCHEMA, "'data' has text containing U+0000")
    size = len(orjson.dumps(data))
    if size > MAX_EVENT_DATA_BYTES:
        raise ContractError(
            Reason.OVERSIZED, f"'data' is {size} bytes as JSON, limit {MAX_EVENT_DATA_BYTES}"
        )


def _free_text(value: str, limit: int) -> str | None:
    """Free text a device reports (firmware, ack detail): U+0000 removed, bounded, empty → None."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value[:limit] or None


def parse_status(data: dict[str, Any]) -> StatusMessage:
    """{"state": "online"|"offline", "fw", "battery" 0-100, "rssi" dBm}."""
    state = data.get("state")
    if state not in ("online", "offline"):
        raise ContractError(Reason.SCHEMA, "'state' must be 'online' or 'offline'")
    firmware = data.get("fw")
    if firmware is not None and not isinstance(firmware, str):
        raise ContractError(Reason.SCHEMA, "'fw' must be a string")
    battery = data.get("battery")
    if battery is not None:
        if isinstance(battery, bool) or not isinstance(battery, int | float):
            raise ContractError(Reason.SCHEMA, "'battery' must be a number")
        if not 0 <= battery <= 100:
            raise ContractError(Reason.OUT_OF_RANGE, f"battery={battery} outside 0..100")
    rssi = data.get("rssi")
    if rssi is not None and (
        isinstance(rssi, bool) or not isinstance(rssi, int | float) or not -200 <= rssi <= 0
    ):
        raise ContractError(Reason.OUT_OF_RANGE, "'rssi' must be dBm between -200 and 0")
    return StatusMessage(
        online=state == "online",
        firmware=_free_text(firmware, 64) if firmware else None,
        battery=None if battery is None else round(battery),
        rssi=None if rssi is None else round(rssi),
    )


def parse_command_ack(data: dict[str, Any]) -> CommandAck:
    """{"id": uuid, "status": "ok"|"error", "detail": "..."}."""
    raw_id = data.get("id")
    try:
        # Text only: str() of a deeply nested value could exhaust the stack.
        if not isinstance(raw_id, str):
            raise ValueError(raw_id)
        command_id = uuid.UUID(raw_id)
    except ValueError:
        raise ContractError(Reason.SCHEMA, "'id' must be the command's UUID") from None
    status = data.get("status")
    if status not in ("ok", "error"):
        raise ContractError(Reason.SCHEMA, "'status' must be 'ok' or 'error'")
    detail = data.get("detail")
    if isinstance(detail, dict | list):
        # Text per the contract; a nested value's str() could even exhaust the stack.
        raise ContractError(Reason.SCHEMA, "'detail' must be text")
    return CommandAck(command_id, status == "ok", _free_text(str(detail), 500) if detail else None)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def telemetry_payload(
    ts: datetime, readings: dict[str, float | bool], seq: int | None = None
) -> bytes:
    """A telemetry message as a device sends it."""
    body: dict[str, Any] = {"ts": _iso(ts), "readings": readings}
    if seq is not None:
        body["seq"] = seq
    return orjson.dumps(body)


def batch_payload(samples: list[tuple[datetime, dict[str, float | bool], int | None]]) -> bytes:
    """A device flushing its offline buffer."""
    return orjson.dumps(
        {
            "batch": [
                {"ts": _iso(ts), "readings": readings, **({"seq": seq} if seq is not None else {})}
                for ts, readings, seq in samples
            ]
        }
    )


def event_payload(ts: datetime, event_type: EventType, data: dict[str, Any] | None = None) -> bytes:
    """An event message."""
    return orjson.dumps({"ts": _iso(ts), "type": event_type.value, "data": data or {}})


def status_payload(
    online: bool, firmware: str | None = None, battery: int | None = None, rssi: int | None = None
) -> bytes:
    """A status message (retained; also used as the last will with online=False)."""
    body: dict[str, Any] = {"state": "online" if online else "offline"}
    for key, value in (("fw", firmware), ("battery", battery), ("rssi", rssi)):
        if value is not None:
            body[key] = value
    return orjson.dumps(body)


def command_payload(
    command_id: uuid.UUID, command: str, params: dict[str, Any], expires_at: datetime
) -> bytes:
    """A command to a device."""
    return orjson.dumps(
        {
            "id": str(command_id),
            "command": command,
            "params": params,
            "expires_at": _iso(expires_at),
        }
    )


def command_ack_payload(command_id: uuid.UUID, ok: bool, detail: str | None = None) -> bytes:
    """A device's acknowledgement of a command."""
    return orjson.dumps(
        {"id": str(command_id), "status": "ok" if ok else "error", "detail": detail or ""}
    )
