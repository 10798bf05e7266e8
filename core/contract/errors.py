"""Why a message broke the contract: a short code for counting, a detail for people."""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Dead-letter reasons, stored in dead_letters.reason and used as a metric label."""

    INVALID_JSON = "invalid_json"
    OVERSIZED = "oversized"
    UNKNOWN_TOPIC = "unknown_topic"
    SCHEMA = "schema"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    UNKNOWN_METRIC = "unknown_metric"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_EVENT = "unknown_event"
    # Not a contract break: an operator rejected the device and blocked its id.
    DEVICE_BLOCKED = "device_blocked"


# What a message itself can break; DEVICE_BLOCKED is the platform's decision about its sender.
CONTRACT_REASONS: frozenset[Reason] = frozenset(Reason) - {Reason.DEVICE_BLOCKED}


class ContractError(ValueError):
    """A message (or part of one) that breaks contract v1."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
