"""docs/asyncapi.yaml, the MQTT contract as an AsyncAPI 3.0 document built from the catalogue.

    python -m core.contract.asyncapi > docs/asyncapi.yaml

The document is written from the device's side: what a device sends and receives. A test checks
it is valid AsyncAPI, equal to what this module builds, and that the payloads the code produces
and accepts validate against it (and those it rejects for range or vocabulary do not).
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from core.commands import COMMANDS
from core.contract.catalogue import (
    CRITICAL_EVENTS,
    DEVICE_METRICS,
    METRICS,
    REGISTRY_ID_RE,
    EventType,
)
from core.contract.payloads import EARLIEST, MAX_BATCH, MAX_EVENT_DATA_BYTES, MAX_EVENT_DATA_DEPTH
from core.contract.topics import VERSION, TopicKind

MQTT_BINDING_VERSION = "0.2.0"


def _ref(path: str) -> dict[str, str]:
    return {"$ref": f"#/{path}"}


def _timestamp() -> dict[str, Any]:
    return {
        "description": "When it happened: RFC 3339 with a UTC offset, or epoch milliseconds. "
        "Not before 2000-01-01, at most 5 minutes in the future (the server's clock).",
        "oneOf": [
            {"type": "string", "format": "date-time"},
            {"type": "number", "minimum": int(EARLIEST.timestamp() * 1000), "maximum": 1e14},
        ],
    }


def _readings() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, metric in METRICS.items():
        if metric.boolean:
            properties[name] = {
                "description": "true/false (1/0 accepted)",
                "oneOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}],
            }
        else:
            properties[name] = {
                "type": "number",
                "minimum": metric.minimum,
                "maximum": metric.maximum,
                "description": f"unit: {metric.unit}",
            }
    return {
        "type": "object",
        "description": "Metric name to value. A reading outside its range or of an unknown "
        "metric goes to the dead-letter table; the message's other readings are kept.",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": properties,
    }


def _schemas() -> dict[str, Any]:
    sample = {
        "type": "object",
        "required": ["ts", "readings"],
        "properties": {
            "ts": _ref("components/schemas/timestamp"),
            "seq": {"type": "integer", "description": "Optional sequence number."},
            "readings": _ref("components/schemas/readings"),
        },
    }
    commands = sorted({name for names in COMMANDS.values() for name in names})
    return {
        "timestamp": _timestamp(),
        "readings": _readings(),
        "telemetry": sample,
        "telemetryBatch": {
            "type": "object",
            "required": ["batch"],
            "properties": {
                "batch": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_BATCH,
                    "items": _ref("components/schemas/telemetry"),
                }
            },
        },
        "event": {
            "type": "object",
            "required": ["ts", "type"],
            "properties": {
                "ts": _ref("components/schemas/timestamp"),
                "type": {
                    "type": "string",
                    "enum": [e.value for e in EventType],
                    "description": "Critical (an alert at once): "
                    + ", ".join(sorted(e.value for e in CRITICAL_EVENTS))
                    + ".",
                },
                "data": {
                    "type": ["object", "null"],
                    "description": (
                        f"Free-form, at most {MAX_EVENT_DATA_DEPTH} levels deep and"
                        f" {MAX_EVENT_DATA_BYTES} bytes as JSON; no U+0000 in keys or text."
                    ),
                },
            },
        },
        "status": {
            "type": "object",
            "required": ["state"],
            "properties": {
                "state": {"type": "string", "enum": ["online", "offline"]},
                "fw": {
                    "type": "string",
                    "description": "Firmware version (64 chars kept, U+0000 removed).",
                },
                "battery": {"type": "number", "minimum": 0, "maximum": 100},
                "rssi": {"type": "number", "minimum": -200, "maximum": 0, "description": "dBm"},
            },
        },
        "command": {
            "type": "object",
            "required": ["id", "command", "params", "expires_at"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "command": {"type": "string", "enum": commands},
                "params": {"type": "object"},
                "expires_at": {"type": "string", "format": "date-time"},
            },
        },
        "commandAck": {
            "type": "object",
            "required": ["id", "status"],
            "properties": {
                "id": {"type": "string", "format": "uuid", "description": "The command's id."},
                "status": {"type": "string", "enum": ["ok", "error"]},
                "detail": {"type": "string"},
            },
        },
    }


_CHANNELS: tuple[tuple[str, TopicKind, tuple[str, ...], str], ...] = (
    ("telemetry", TopicKind.TELEMETRY, ("telemetry", "telemetryBatch"), "send"),
    ("event", TopicKind.EVENT, ("event",), "send"),
    ("status", TopicKind.STATUS, ("status",), "send"),
    ("cmd", TopicKind.CMD, ("command",), "receive"),
    ("cmdAck", TopicKind.CMD_ACK, ("commandAck",), "send"),
)
_SUMMARIES = {
    "telemetry": "A device reports readings (one object, or a batch flushed after being offline).",
    "event": "A device reports a discrete event; critical ones open an alert within a second.",
    "status": "Online/offline, firmware, battery, signal; retained, and the device's last will.",
    "cmd": "The platform asks an actuator to act (e.g. close the gas valve).",
    "cmdAck": "The actuator answers a command: done or refused.",
}


def document(root: str = "care") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of contract v1 under a topic root."""
    registry_id = f"Registry id, {REGISTRY_ID_RE.pattern}"
    parameters = {
        "site": {"description": f"Site id. {registry_id}"},
        "device": {"description": f"Device id. {registry_id}"},
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name, kind, messages, action in _CHANNELS:
        channels[name] = {
            "address": f"{root}/{VERSION}/{{site}}/{{device}}/{kind.value}",
            "description": _SUMMARIES[name],
            "parameters": {p: _ref(f"components/parameters/{p}") for p in parameters},
            "messages": {m: _ref(f"components/messages/{m}") for m in messages},
        }
        operations[f"{action}{name[0].upper()}{name[1:]}"] = {
            "action": action,
            "summary": _SUMMARIES[name],
            "channel": _ref(f"channels/{name}"),
            "messages": [_ref(f"channels/{name}/messages/{m}") for m in messages],
            "bindings": {
                "mqtt": {
                    "qos": 1,
                    "retain": kind is TopicKind.STATUS,
                    "bindingVersion": MQTT_BINDING_VERSION,
                }
            },
        }
    device_types = "; ".join(
        f"{kind.value}: {', '.join(metrics)}" for kind, metrics in DEVICE_METRICS.items()
    )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "IoT Care device contract",
            "version": VERSION,
            "description": "What devices publish and receive over MQTT. Payloads are UTF-8 "
            "JSON objects. A message that breaks the contract is stored in the dead-letter table "
            "with a reason, never dropped silently. Metrics per device type: " + device_types + ".",
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "parameters": parameters,
            "schemas": _schemas(),
            "messages": {
                name: {"name": name, "payload": _ref(f"components/schemas/{name}")}
                for name in (
                    "telemetry",
                    "telemetryBatch",
                    "event",
                    "status",
                    "command",
                    "commandAck",
                )
            },
        },
    }


def render(root: str = "care") -> str:
    """The document as YAML (docs/asyncapi.yaml)."""
    header = "# Generated by `python -m core.contract.asyncapi`; edit core/contract/, not this.\n"
    return header + yaml.safe_dump(document(root), sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
