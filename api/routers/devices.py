"""Devices for operators: the fleet with status, one device, register, edit, broker credentials.

Thin: core.use_cases.devices and devices_admin check the role (managing devices), validate and
audit exactly as the app's Devices and Care-home pages do. Credentials are issued as
`iotcare devices provision` issues them; the password is in this one response only, and the
broker's password and ACL files are rewritten when this server is configured to write them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from api.auth import Reader, Session_, Writer, settings_of
from api.frames import plain
from api.ids import DeviceId
from api.params import MAX_ID, NO_NUL_PATTERN, SITE_ID_PATTERN, beyond_schema
from core import device_credentials
from core.contract.catalogue import DeviceType
from core.device_state import ShownStatus
from core.errors import IotCareError
from core.use_cases import devices as fleet
from core.use_cases import devices_admin
from models import DeviceStatus

log = logging.getLogger(__name__)

router = APIRouter(prefix="/devices", tags=["devices"])


class DeviceSummary(BaseModel):
    """A device as the fleet list shows it (status as shown: silent when it went quiet)."""

    device_id: str
    name: str | None
    type: str | None
    site_id: str
    room: str | None
    resident_id: int | None
    resident: str | None
    status: ShownStatus
    last_seen: datetime | None
    battery: int | None
    rssi: int | None
    firmware: str | None
    quarantined: bool
    decommissioned_at: datetime | None


class DeviceList(BaseModel):
    """One page of devices, by id."""

    items: list[DeviceSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class DeviceDetail(BaseModel):
    """One device: where, whose, and its status (reported, and as shown)."""

    device_id: str
    site_id: str
    site_timezone: str
    type: str | None
    name: str | None
    room: str | None
    resident_id: int | None
    resident: str | None
    status: DeviceStatus = Field(description="The status the device last reported.")
    shown_status: ShownStatus = Field(
        description="As the app shows it: silent when quiet past its type's reporting interval."
    )
    status_since: datetime | None
    last_seen: datetime | None
    battery: int | None
    rssi: int | None
    firmware: str | None
    quarantined: bool
    created_at: datetime
    decommissioned_at: datetime | None


class DeviceCreate(BaseModel):
    """A device to register: its id (as it publishes), site, type, and whose it is."""

    id: str = Field(pattern=SITE_ID_PATTERN)
    site_id: str = Field(pattern=SITE_ID_PATTERN)
    type: DeviceType
    resident_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Null for a site-level device."
    )
    room: str | None = Field(
        None, max_length=64, pattern=NO_NUL_PATTERN, description="Default: the resident's room."
    )
    name: str | None = Field(None, max_length=200, pattern=NO_NUL_PATTERN)


class DeviceUpdate(BaseModel):
    """A device's name, resident and room (all three: this replaces them)."""

    name: str | None = Field(None, max_length=200, pattern=NO_NUL_PATTERN)
    resident_id: int | None = Field(None, ge=1, le=MAX_ID)
    room: str | None = Field(None, max_length=64, pattern=NO_NUL_PATTERN)


class CredentialsRequest(BaseModel):
    """Issuing broker credentials; `rotate` replaces a password the device has."""

    rotate: bool = False


class Credentials(BaseModel):
    """A device's MQTT username and password: the password is shown this once."""

    device_id: str
    site_id: str
    username: str
    password: str
    rotated: bool
    broker_files_written: bool = Field(
        description="Whether this server rewrote the broker's password and ACL files; when "
        "false, run `iotcare devices write-broker-files` where the broker runs."
    )


def _detail(session: Session_, token: Reader | Writer, device_id: str) -> DeviceDetail:
    found = fleet.device_detail(session, token.viewer, device_id)
    return DeviceDetail(**{name: getattr(found, name) for name in DeviceDetail.model_fields})


@router.get("", summary="List devices")
def list_devices(
    request: Request,
    session: Session_,
    token: Reader,
    site: Annotated[str | None, Query(pattern=SITE_ID_PATTERN, description="Site id.")] = None,
    status: Annotated[ShownStatus | None, Query(description="As shown.")] = None,
    type: Annotated[DeviceType | None, Query(description="Device type.")] = None,
    quarantined: Annotated[bool | None, Query()] = None,
    decommissioned: Annotated[bool, Query(description="Include decommissioned devices.")] = False,
    limit: Annotated[
        int, Query(ge=1, description="Page size (at most IOTCARE_API_PAGE_SIZE_MAX).")
    ] = 100,
    cursor: Annotated[
        str | None, Query(pattern=SITE_ID_PATTERN, description="From next_cursor.")
    ] = None,
) -> DeviceList:
    """The device registry with each device's status (needs the operator or admin role)."""
    items, last = fleet.fleet_page(
        session,
        token.viewer,
        fleet.FleetFilter(
            site_id=site,
            status=status,
            device_type=type.value if type else None,
            quarantined=quarantined,
            decommissioned=decommissioned,
        ),
        after=cursor,
        limit=min(limit, settings_of(request).api_page_size_max),
    )
    return DeviceList(
        items=[DeviceSummary(**{k: plain(v) for k, v in item.items()}) for item in items],
        next_cursor=last,
    )


@router.get("/{device_id}", summary="Get a device and its status")
def get_device(device_id: DeviceId, session: Session_, token: Reader) -> DeviceDetail:
    """One device with its reported and shown status (404 when not in the registry)."""
    return _detail(session, token, device_id)


@router.post(
    "",
    summary="Register a device",
    status_code=201,
    openapi_extra=beyond_schema(
        "The site exists; the resident is an active resident of that site."
    ),
)
def register_device(body: DeviceCreate, session: Session_, token: Writer) -> DeviceDetail:
    """Add a device to the registry (audited); a block on its id is lifted."""
    device_id = devices_admin.add_device(
        session,
        token.viewer,
        device_id=body.id,
        site_id=body.site_id,
        device_type=body.type.value,
        resident_id=body.resident_id,
        room=body.room,
        name=body.name,
    )
    session.commit()
    return _detail(session, token, device_id)


@router.put(
    "/{device_id}",
    summary="Rename or reassign a device",
    openapi_extra=beyond_schema("The resident is an active resident of the device's site."),
)
def update_device(
    device_id: DeviceId, body: DeviceUpdate, session: Session_, token: Writer
) -> DeviceDetail:
    """Set a device's name, resident and room within its site (audited when anything changed)."""
    devices_admin.update_device(
        session,
        token.viewer,
        device_id,
        name=body.name,
        resident_id=body.resident_id,
        room=body.room,
    )
    session.commit()
    return _detail(session, token, device_id)


@router.post("/{device_id}/credentials", summary="Issue broker credentials", status_code=201)
def provision(
    device_id: DeviceId,
    session: Session_,
    token: Writer,
    request: Request,
    body: CredentialsRequest | None = None,
) -> Credentials:
    """Give the device an MQTT username and a new random password (audited; shown once)."""
    issued = devices_admin.provision_credentials(
        session, token.viewer, device_id, rotate=bool(body and body.rotate)
    )
    session.commit()
    written = False
    settings = settings_of(request)
    if device_credentials.broker_file_paths(settings) is not None:
        try:
            device_credentials.write_broker_files(session, settings)
            written = True
        except (IotCareError, OSError) as error:
            # The credentials are saved; the files can be written again from the CLI.
            log.warning("broker files not rewritten after provisioning %s: %s", device_id, error)
    return Credentials(
        device_id=issued.device_id,
        site_id=issued.site_id,
        username=issued.username,
        password=issued.password,
        rotated=issued.rotated,
        broker_files_written=written,
    )
