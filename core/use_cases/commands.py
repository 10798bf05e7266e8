"""Actuator commands for operators: what can be commanded, sending one, following it to its ack.

The app only records the command (pending, audited by core.commands.request_command). Delivery
is the dispatcher's job: the notifications flow publishes due commands every minute and resends
them until acknowledged or expired; `hand_over` lets the app publish at once when a broker is
configured, through the same core.commands.dispatch (so a command is never published twice
concurrently: dispatch locks the row).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, sessionmaker

from core.access import Permission, Viewer, acting_user, require
from core.commands import COMMANDS, CommandSender, DispatchStats, dispatch, request_command
from core.errors import ConflictError, IotCareError, NotFoundError
from core.settings import Settings
from core.timeutil import utcnow
from models import Command, CommandStatus, Device, Site, User, in_service

log = logging.getLogger(__name__)

OPEN_STATUSES = (CommandStatus.PENDING, CommandStatus.SENT)
COMMAND_COLUMNS = [
    "command_id",
    "device_id",
    "device",
    "room",
    "site_timezone",
    "command",
    "status",
    "requested_by",
    "reason",
    "attempts",
    "created_at",
    "sent_at",
    "acked_at",
    "expires_at",
    "ack_detail",
]


@dataclass(frozen=True)
class Target:
    """An accepted actuator and the commands it understands."""

    device_id: str
    name: str | None
    room: str | None
    site_id: str
    site_timezone: str
    status: str
    commands: tuple[str, ...]


def effective_status(status: CommandStatus | str, expires_at: datetime, now: datetime) -> str:
    """The status as an operator should read it: unanswered past its expiry means expired."""
    status = CommandStatus(status)
    if status in OPEN_STATUSES and expires_at <= now:
        return CommandStatus.EXPIRED.value
    return status.value


def targets(session: Session, viewer: Viewer, site_id: str | None = None) -> list[Target]:
    """Accepted devices that take commands (gas valves), by site and id."""
    require(viewer, Permission.SEND_COMMANDS)
    query = (
        select(Device, Site.timezone)
        .join(Site, Site.id == Device.site_id)
        .where(Device.type.in_(list(COMMANDS)), Device.quarantined.is_(False), in_service())
        .order_by(Device.site_id, Device.id)
    )
    if site_id:
        query = query.where(Device.site_id == site_id)
    return [
        Target(
            device_id=device.id,
            name=device.name,
            room=device.room,
            site_id=device.site_id,
            site_timezone=timezone,
            status=str(device.status),
            commands=tuple(sorted(COMMANDS[device.type or ""])),
        )
        for device, timezone in session.execute(query).tuples()
    ]


def send_command(
    session: Session,
    viewer: Viewer,
    device_id: str,
    command: str,
    *,
    reason: str | None = None,
    params: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Command:
    """Record a command from the viewer (pending, audited); the dispatcher publishes it."""
    require(viewer, Permission.SEND_COMMANDS)
    actor = acting_user(session, viewer)
    device = session.get(Device, device_id)
    if device is None:
        raise NotFoundError(
            f"No device '{device_id}'.", key="errors.commands.no_device", device=device_id
        )
    if device.quarantined:
        raise ConflictError(
            f"Device '{device_id}' is quarantined.",
            key="errors.commands.quarantined",
            device=device_id,
        )
    if command not in COMMANDS.get(device.type or "", frozenset()):
        raise IotCareError(
            f"Device '{device_id}' does not accept '{command}'.",
            key="errors.commands.not_accepted",
            device=device_id,
        )
    return request_command(
        session,
        device_id,
        command,
        params=params,
        requested_by=actor,
        reason=(reason or "").strip() or None,
        now=now,
    )


def hand_over(
    sessions: sessionmaker[Session],
    viewer: Viewer,
    settings: Settings,
    command_ids: list[uuid.UUID],
    *,
    sender: CommandSender | None = None,
) -> DispatchStats | None:
    """Publish just-recorded commands now when a broker is configured; None when there is none.

    A failure to publish is not an error for the operator: the command stays pending and the
    notifications flow retries it until it expires.
    """
    require(viewer, Permission.SEND_COMMANDS)
    if sender is None:
        if not settings.mqtt_url:
            return None
        from core.mqtt_sender import MqttSender

        sender = MqttSender.from_settings(settings, "iotcare-app", timeout=5.0)
    try:
        return dispatch(sessions, sender, settings.mqtt_topic_root, command_ids=command_ids)
    except Exception as error:  # the dispatcher flow will pick it up; never fail the page
        log.warning("commands %s not handed over now: %s", command_ids, error)
        return DispatchStats(failed=len(command_ids))


def recent_commands(
    session: Session,
    viewer: Viewer,
    *,
    device_id: str | None = None,
    command_id: uuid.UUID | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The latest commands (of a device, or the one `command_id`), newest first, with who asked
    and the status as people read it."""
    require(viewer, Permission.SEND_COMMANDS)
    now = now or utcnow()
    requester = aliased(User)
    query = (
        select(
            Command,
            Device.name,
            Device.room,
            Site.timezone,
            requester.username,
        )
        .join(Device, Device.id == Command.device_id)
        .join(Site, Site.id == Device.site_id)
        .outerjoin(requester, requester.id == Command.requested_by)
        .order_by(Command.created_at.desc())
        .limit(limit)
    )
    if device_id:
        query = query.where(Command.device_id == device_id)
    if command_id is not None:
        query = query.where(Command.id == command_id)
    rows = [
        (
            str(c.id),
            c.device_id,
            name,
            room,
            timezone,
            c.command,
            effective_status(c.status, c.expires_at, now),
            username,
            c.reason,
            c.attempts,
            c.created_at,
            c.sent_at,
            c.acked_at,
            c.expires_at,
            c.ack_detail,
        )
        for c, name, room, timezone, username in session.execute(query).tuples()
    ]
    return pd.DataFrame(rows, columns=COMMAND_COLUMNS)


def command_status(
    session: Session, viewer: Viewer, command_id: uuid.UUID, now: datetime | None = None
) -> str:
    """One command's status as people read it (see `effective_status`)."""
    require(viewer, Permission.SEND_COMMANDS)
    command = session.get(Command, command_id)
    if command is None:
        raise NotFoundError(f"No command {command_id}.", key="errors.commands.missing")
    return effective_status(command.status, command.expires_at, now or utcnow())


def command_record(
    session: Session, viewer: Viewer, command_id: uuid.UUID, now: datetime | None = None
) -> dict[str, Any]:
    """One command as `recent_commands` shows it (COMMAND_COLUMNS); NotFoundError if missing."""
    rows = recent_commands(session, viewer, command_id=command_id, limit=1, now=now)
    if rows.empty:
        raise NotFoundError(f"No command {command_id}.", key="errors.commands.missing")
    return rows.iloc[0].to_dict()
