"""MQTT topics of contract v1: {root}/v1/{site}/{device}/{kind}, parsing and building."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.contract.catalogue import REGISTRY_ID_RE
from core.contract.errors import ContractError, Reason

VERSION = "v1"


class TopicKind(StrEnum):
    """The last level(s) of a device topic."""

    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"
    CMD = "cmd"
    CMD_ACK = "cmd/ack"


# Directions: what the platform subscribes to (device -> platform).
INBOUND = (TopicKind.TELEMETRY, TopicKind.EVENT, TopicKind.STATUS, TopicKind.CMD_ACK)
_KINDS = {kind.value: kind for kind in TopicKind}


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A parsed device topic."""

    site: str
    device: str
    kind: TopicKind


def parse_topic(topic: str, root: str = "care") -> DeviceTopic:
    """Split a device topic into site, device and kind; ContractError for any other shape."""
    parts = topic.split("/")
    if len(parts) < 5 or parts[0] != root or parts[1] != VERSION:
        raise ContractError(Reason.UNKNOWN_TOPIC, f"not a {root}/{VERSION}/... device topic")
    site, device = parts[2], parts[3]
    kind = _KINDS.get("/".join(parts[4:]))
    if kind is None:
        raise ContractError(Reason.UNKNOWN_TOPIC, f"unknown topic kind '{'/'.join(parts[4:])}'")
    # fullmatch: the pattern's `$` alone would also accept an id ending in a newline.
    if not REGISTRY_ID_RE.fullmatch(site) or not REGISTRY_ID_RE.fullmatch(device):
        raise ContractError(
            Reason.UNKNOWN_TOPIC, "site and device ids must be 1-64 of [A-Za-z0-9_-]"
        )
    return DeviceTopic(site, device, kind)


def device_topic(root: str, site: str, device: str, kind: TopicKind) -> str:
    """The topic a device publishes (or receives commands) on."""
    return f"{root}/{VERSION}/{site}/{device}/{kind.value}"


def subscription(root: str, kind: TopicKind, shared_group: str | None = None) -> str:
    """Wildcard filter for one kind across all sites and devices, shared when a group is given."""
    pattern = f"{root}/{VERSION}/+/+/{kind.value}"
    return f"$share/{shared_group}/{pattern}" if shared_group else pattern
