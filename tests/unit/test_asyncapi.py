"""docs/asyncapi.yaml: valid AsyncAPI 3.0, generated from the code, and agreeing with the parser."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from core.contract import payloads
from core.contract.asyncapi import document, render
from core.contract.catalogue import METRICS, EventType
from core.contract.errors import ContractError
from core.contract.topics import TopicKind, device_topic

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "asyncapi.yaml"
# AsyncAPI 3.0.0 JSON schema, from the @asyncapi/specs npm package 6.11.1 (Apache-2.0).
SPEC = ROOT / "tests" / "support" / "asyncapi-3.0.0.schema.json"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def spec_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SPEC.read_text()))


def payload_validator(name: str) -> jsonschema.Draft7Validator:
    """A validator for one message payload, with the document's components to resolve $refs."""
    doc = document()
    schema = {**doc["components"]["schemas"][name], "components": doc["components"]}
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def valid(name: str, payload: bytes | dict[str, Any]) -> bool:
    data = orjson.loads(payload) if isinstance(payload, bytes) else payload
    return payload_validator(name).is_valid(data)


def test_the_document_is_generated_from_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/asyncapi.yaml is stale: run `.venv/bin/python -m core.contract.asyncapi > "
        "docs/asyncapi.yaml`"
    )


def test_the_document_is_valid_asyncapi_3() -> None:
    errors = list(spec_validator().iter_errors(yaml.safe_load(DOC.read_text())))
    assert not errors, [e.message for e in errors[:5]]


def test_the_spec_schema_catches_a_broken_document() -> None:
    broken = copy.deepcopy(document())
    broken["operations"]["sendTelemetry"]["action"] = "publish"  # AsyncAPI 2 wording
    assert not spec_validator().is_valid(broken)


def test_channel_addresses_are_the_code_topics() -> None:
    channels = document()["channels"]
    for name, kind in (
        ("telemetry", TopicKind.TELEMETRY),
        ("event", TopicKind.EVENT),
        ("status", TopicKind.STATUS),
        ("cmd", TopicKind.CMD),
        ("cmdAck", TopicKind.CMD_ACK),
    ):
        assert channels[name]["address"] == device_topic("care", "{site}", "{device}", kind)


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_each_metric_at_its_limits(metric: str) -> None:
    spec = METRICS[metric]
    values: list[Any] = [True, False, 0, 1] if spec.boolean else [spec.minimum, spec.maximum]
    for value in values:
        body = payloads.telemetry_payload(NOW, {metric: value}, seq=1)
        payloads.parse_telemetry(orjson.loads(body), NOW)  # the code accepts it
        assert valid("telemetry", body), (metric, value)
    bad: Any = 2 if spec.boolean else spec.maximum + 1  # type: ignore[operator]
    body = payloads.telemetry_payload(NOW, {metric: bad})
    with pytest.raises(ContractError):
        payloads.parse_telemetry(orjson.loads(body), NOW)
    assert not valid("telemetry", body)


def test_unknown_metric_and_timestamps() -> None:
    unknown = {"ts": "2026-11-22T12:00:00Z", "readings": {"pulse": 70}}
    with pytest.raises(ContractError):
        payloads.parse_telemetry(unknown, NOW)
    assert not valid("telemetry", unknown)
    epoch = {"ts": int(NOW.timestamp() * 1000), "readings": {"heart_rate": 70}}
    payloads.parse_telemetry(epoch, NOW)
    assert valid("telemetry", epoch)
    before_2000 = {"ts": 1000, "readings": {"heart_rate": 70}}
    with pytest.raises(ContractError):
        payloads.parse_telemetry(before_2000, NOW)
    assert not valid("telemetry", before_2000)


def test_batch_event_status_command_and_ack() -> None:
    batch = payloads.batch_payload(
        [(NOW - timedelta(seconds=i), {"spo2": 97}, i) for i in range(3)]
    )
    payloads.parse_telemetry(orjson.loads(batch), NOW)
    assert valid("telemetryBatch", batch)
    for event_type in EventType:
        body = payloads.event_payload(NOW, event_type, {"room": "101"})
        payloads.parse_event(orjson.loads(body), NOW)
        assert valid("event", body)
    unknown_event = {"ts": "2026-11-22T12:00:00Z", "type": "earthquake"}
    with pytest.raises(ContractError):
        payloads.parse_event(unknown_event, NOW)
    assert not valid("event", unknown_event)
    status = payloads.status_payload(True, firmware="1.2.0", battery=80, rssi=-60)
    payloads.parse_status(orjson.loads(status))
    assert valid("status", status)
    assert not valid("status", {"state": "online", "battery": 101})
    command = payloads.command_payload(uuid.uuid4(), "close_valve", {}, NOW)
    assert valid("command", command)
    assert not valid("command", {**orjson.loads(command), "command": "self_destruct"})
    ack = payloads.command_ack_payload(uuid.uuid4(), ok=False, detail="valve stuck")
    payloads.parse_command_ack(orjson.loads(ack))
    assert valid("commandAck", ack)
