"""Actuator commands: requested (by a person or an instant rule), sent over MQTT, tracked to ack.

A command is a row first (so it is audited and survives restarts), then published. Until the
device acknowledges it on cmd/ack, it is re-sent every `resend_after` up to its expiry; a command
not acknowledged by then is marked expired for an operator to see.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import audit
from core.contract.catalogue import DeviceType
from core.contract.payloads import command_payload
from core.contract.topics import TopicKind, device_topic
from core.errors import IotCareError, NotFoundError
from core.timeutil import utcnow
from models import Command, CommandStatus, Device, User, in_service

log = logging.getLogger(__name__)

# What each actuator type understands.
COMMANDS: dict[str, frozenset[str]] = {
    DeviceType.GAS_VALVE.value: frozenset({"close_valve", "open_valve"}),
}
DEFAULT_TTL = timedelta(minutes=2)
RESEND_AFTER = timedelta(seconds=10)


class CommandSender(Protocol):
    """Publishes a command payload to a device's cmd topic (an MQTT client in production)."""

    def send(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1; raise on failure."""
        ...


def request_command(
    session: Session,
    device_id: str,
    command: str,
    *,
    params: dict[str, Any] | None = None,
    requested_by: User | None = None,
    reason: str | None = None,
    alert_id: uuid.UUID | None = None,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> Command:
    """Record a command for a device after checking the device can carry it out."""
    device = session.get(Device, device_id)
    if device is None:
        raise NotFoundError(f"No device '{device_id}'.")
    allowed = COMMANDS.get(device.type or "", frozenset())
    if command not in allowed:
        kinds = ", ".join(sorted(allowed)) or "none"
        raise IotCareError(
            f"Device '{device_id}' ({device.type}) does not accept '{command}' (accepts: {kinds})."
        )
    if device.quarantined:
        raise IotCareError(f"Device '{device_id}' is quarantined; accept it before commanding it.")
    if device.decommissioned_at is not None:
        raise IotCareError(
            f"Device '{device_id}' is decommissioned.",
            key="errors.care.device_retired",
            device=device_id,
        )
    now = now or utcnow()
    row = Command(
        id=uuid.uuid4(),
        device_id=device_id,
        command=command,
        params=params or {},
        requested_by=requested_by.id if requested_by else None,
        reason=reason,
        alert_id=alert_id,
        status=CommandStatus.PENDING,
        attempts=0,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        requested_by,
        "command.request",
        "device",
        device_id,
        command=command,
        command_id=str(row.id),
        reason=reason,
    )
    return row


def site_valves(session: Session, site_id: str) -> Sequence[Device]:
    """The accepted gas valves of a site (the targets of an automatic close_valve)."""
    return session.scalars(
        select(Device)
        .where(
            Device.site_id == site_id,
            Device.type == DeviceType.GAS_VALVE.value,
            Device.quarantined.is_(False),
            in_service(),
        )
        .order_by(Device.id)
    ).all()


@dataclass(frozen=True)
class DispatchStats:
    """What one dispatch pass did."""

    sent: int = 0
    expired: int = 0
    failed: int = 0


def dispatch(
    sessions: sessionmaker[Session],
    sender: CommandSender,
    topic_root: str,
    *,
    command_ids: Sequence[uuid.UUID] | None = None,
    now: datetime | None = None,
    resend_after: timedelta = RESEND_AFTER,
) -> DispatchStats:
    """Publish due commands (new ones, and unacknowledged ones every `resend_after`); expire old."""
    now = now or utcnow()
    sent = expired = failed = 0
    with sessions() as session, session.begin():
        query = (
            select(Command, Device.site_id)
            .join(Device, Device.id == Command.device_id)
            .where(Command.status.in_([CommandStatus.PENDING, CommandStatus.SENT]))
            .with_for_update(of=Command, skip_locked=True)
        )
        if command_ids is not None:
            query = query.where(Command.id.in_(list(command_ids)))
        for command, site_id in session.execute(query).all():
            if command.expires_at <= now:
                command.status = CommandStatus.EXPIRED
                audit.record(
                    session,
                    None,
                    "command.expired",
                    "device",
                    command.device_id,
                    command_id=str(command.id),
                    attempts=command.attempts,
                )
                expired += 1
                continue
            if command.sent_at is not None and now - command.sent_at < resend_after:
                continue
            topic = device_topic(topic_root, site_id, command.device_id, TopicKind.CMD)
            try:
                sender.send(
                    topic,
                    command_payload(
                        command.id, command.command, command.params, command.expires_at
                    ),
                )
            except Exception as error:
                log.warning(
                    "command %s to %s not published: %s", command.id, command.device_id, error
                )
                failed += 1
                continue
            command.status = CommandStatus.SENT
            command.sent_at = now
            command.attempts += 1
            sent += 1
    return DispatchStats(sent, expired, failed)
