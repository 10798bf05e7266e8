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
    # Not contract breaks: the platform's decisions about a message or its sender.
    # An operator rejected the device and blocked its id.
    DEVICE_BLOCKED = "device_blocked"
    # A registered device published under a site other than its own.
    WRONG_SITE = "wrong_site"
    # The database refused the message's rows (a data error no retry can fix).
    STORE_REJECTED = "store_rejected"
    # Routing the message raised an unexpected error (a bug): kept rather than stalling ingest.
    INTERNAL_ERROR = "internal_error"


# What a message itself can break; the rest depend on the registry, the store or a bug.
CONTRACT_REASONS: frozenset[Reason] = frozenset(Reason) - {
    Reason.DEVICE_BLOCKED,
    Reason.WRONG_SITE,
    Reason.STORE_REJECTED,
    Reason.INTERNAL_ERROR,
}


class ContractError(ValueError):
    """A message (or part of one) that breaks contract v1."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


def storable_text(text: str) -> str:
    """Text every store accepts: U+0000 and lone surrogates become visible escapes.

    PostgreSQL refuses U+0000 in text and jsonb, and no driver can encode a lone surrogate, so a
    dead letter quoting either (a topic, a bad name) would fail the very write meant to keep it.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
