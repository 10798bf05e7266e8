"""Turning one MQTT message into batch rows (pure: no I/O, no clock, no globals)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Set
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.contract.errors import ContractError, Reason, storable_text
from core.contract.payloads import (
    decode,
    parse_command_ack,
    parse_event,
    parse_status,
    parse_telemetry,
)
from core.contract.topics import TopicKind, parse_topic
from ingest.batch import AckRow, Batch, DeadLetterRow, EventRow, ReadingRow, StatusRow

log = logging.getLogger(__name__)

# device id -> the site the registry has it under, or None when the registry does not know it.
SiteOf = Callable[[str], "str | None"]


def unregistered(_device: str) -> str | None:
    """A SiteOf for no registry: every device is unknown, so no message is under a wrong site."""
    return None


@dataclass(frozen=True, slots=True)
class Limits:
    """What the contract tolerates, from settings."""

    root: str = "care"
    max_payload_bytes: int = 262_144
    dead_letter_payload_bytes: int = 16_384
    max_future_skew: timedelta = timedelta(minutes=5)


def dead_letter(
    batch: Batch, topic: str, payload: bytes, error: ContractError, now: datetime, limits: Limits
) -> None:
    """Record a message (or the broken part of one) for an operator, with its reason."""
    batch.dead_letters.append(
        DeadLetterRow(
            # Topic and detail may quote what the device sent (U+0000 included): cleaned, so the
            # dead letter cannot fail the write that keeps it. The payload is stored as bytes.
            topic=storable_text(topic[:1024]),
            payload=bytes(payload[: limits.dead_letter_payload_bytes]),
            payload_size=len(payload),
            reason=error.reason.value,
            detail=storable_text(error.detail[:1000]),
            received_at=now,
        )
    )


def apply_message(
    batch: Batch,
    topic: str,
    payload: bytes,
    now: datetime,
    limits: Limits,
    blocked: Set[str] = frozenset(),
    site_of: SiteOf = unregistered,
) -> None:
    """Parse, validate and route one message into the batch; contract breaks become dead letters.

    Messages of `blocked` devices (rejected by an operator) become dead letters too, whatever they
    hold: kept for an operator to see, never stored as data nor registering the device again. So
    do messages of a registered device under another site than its own (`site_of`). Never raises:
    an unexpected error is a bug, and the message becomes an `internal_error` dead letter.
    """
    batch.messages += 1
    # Where this message's rows start, to take them back if routing it fails half-way. Only
    # telemetry appends more than one row, then maybe a dead letter; every other kind appends
    # its one row last.
    readings_mark, dead_mark = len(batch.readings), len(batch.dead_letters)
    try:
        try:
            where = parse_topic(topic, limits.root)
            if where.device in blocked:
                raise ContractError(
                    Reason.DEVICE_BLOCKED,
                    f"device '{where.device}' was rejected by an operator;"
                    " unblock it to accept its data",
                )
            registered = site_of(where.device)
            if registered is not None and registered != where.site:
                raise ContractError(
                    Reason.WRONG_SITE,
                    f"device '{where.device}' is registered at site '{registered}',"
                    f" not '{where.site}'",
                )
            data = decode(payload, limits.max_payload_bytes)
            kind = where.kind
            if kind is TopicKind.TELEMETRY:
                telemetry = parse_telemetry(data, now, limits.max_future_skew)
                for sample in telemetry.samples:
                    for metric, value in sample.readings.items():
                        batch.readings.append(
                            ReadingRow(where.device, metric, sample.ts, value, where.site)
                        )
                    if batch.oldest_ts is None or sample.ts < batch.oldest_ts:
                        batch.oldest_ts = sample.ts
                if telemetry.rejected:
                    # Good readings are kept; the broken ones are shown to an operator.
                    first = telemetry.rejected[0]
                    detail = "; ".join(e.detail for e in telemetry.rejected[:10])
                    dead_letter(
                        batch, topic, payload, ContractError(first.reason, detail), now, limits
                    )
            elif kind is TopicKind.EVENT:
                event = parse_event(data, now, limits.max_future_skew)
                batch.events.append(
                    EventRow(where.device, where.site, event.type.value, event.ts, event.data)
                )
            elif kind is TopicKind.STATUS:
                batch.statuses[where.device] = StatusRow(
                    where.device, where.site, parse_status(data), now
                )
            elif kind is TopicKind.CMD_ACK:
                ack = parse_command_ack(data)
                batch.acks.append(AckRow(ack.id, where.device, ack.ok, ack.detail, now))
            else:
                raise ContractError(
                    Reason.UNKNOWN_TOPIC, f"devices do not publish on '{kind.value}'"
                )
        except ContractError as error:
            dead_letter(batch, topic, payload, error, now, limits)
            return
        batch.seen[where.device] = (where.site, now)
    except Exception as error:
        log.exception("routing a message on %r failed; keeping it as a dead letter", topic[:200])
        del batch.readings[readings_mark:], batch.dead_letters[dead_mark:]
        dead_letter(
            batch,
            topic,
            payload,
            ContractError(Reason.INTERNAL_ERROR, f"{type(error).__name__}: {error}"),
            now,
            limits,
        )
