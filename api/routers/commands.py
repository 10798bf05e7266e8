"""Actuator commands (close or open a gas valve): send one, follow it to its acknowledgement.

Thin: core.use_cases.commands checks the role (sending commands), records the command (pending,
audited) and hands it over to the broker at once when one is configured, as the app's Commands
page does; otherwise the notifications flow publishes it within a minute. Either way the device
must acknowledge before `expires_at`, so poll the command until its status is final.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.auth import Commander, Session_, settings_of
from api.frames import plain
from api.ids import DeviceId
from api.params import NO_NUL_PATTERN, beyond_schema
from core.use_cases import commands as q
from models import CommandStatus

router = APIRouter(tags=["commands"])


class CommandRequest(BaseModel):
    """A command for a device: what (e.g. close_valve for a gas valve) and why."""

    command: str = Field(min_length=1, max_length=64, pattern=NO_NUL_PATTERN)
    reason: str | None = Field(
        None, max_length=500, pattern=NO_NUL_PATTERN, description="Kept in the audit log."
    )


class CommandOut(BaseModel):
    """A command and how far it got (expired: not acknowledged in time)."""

    command_id: uuid.UUID
    device_id: str
    device: str | None = Field(description="The device's name.")
    room: str | None
    command: str
    status: CommandStatus
    requested_by: str | None = Field(description="Username; null when the platform asked.")
    reason: str | None
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    acked_at: datetime | None
    expires_at: datetime
    ack_detail: str | None = Field(description="The device's answer, if any.")


class CommandList(BaseModel):
    """A device's latest commands, newest first."""

    items: list[CommandOut]


def _out(row: dict[str, Any]) -> CommandOut:
    return CommandOut(**{name: plain(row[name]) for name in CommandOut.model_fields})


@router.post(
    "/devices/{device_id}/commands",
    openapi_extra=beyond_schema(
        "The device must take the command (gas valves: close_valve, open_valve)."
    ),
    summary="Send a command to a device",
    status_code=202,
)
def send(
    device_id: DeviceId, body: CommandRequest, session: Session_, token: Commander, request: Request
) -> CommandOut:
    """Record the command (audited) and publish it now when a broker is configured (202: the
    device has not answered yet; follow GET /commands/{command_id})."""
    command = q.send_command(session, token.viewer, device_id, body.command, reason=body.reason)
    command_id = command.id
    session.commit()
    q.hand_over(request.app.state.sessions, token.viewer, settings_of(request), [command_id])
    return _out(q.command_record(session, token.viewer, command_id))


@router.get("/devices/{device_id}/commands", summary="A device's latest commands")
def device_commands(
    device_id: DeviceId,
    session: Session_,
    token: Commander,
    limit: Annotated[int, Query(ge=1, le=200, description="How many, newest first.")] = 50,
) -> CommandList:
    """The device's latest commands with their status as people read it."""
    rows = q.recent_commands(session, token.viewer, device_id=device_id, limit=limit)
    return CommandList(items=[_out(row) for row in rows.to_dict("records")])


@router.get("/commands/{command_id}", summary="Get a command's status")
def get_command(command_id: uuid.UUID, session: Session_, token: Commander) -> CommandOut:
    """One command: pending, sent, acknowledged, failed or expired (404 when missing)."""
    return _out(q.command_record(session, token.viewer, command_id))
