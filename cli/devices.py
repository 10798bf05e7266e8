"""`iotcare devices`: register and list devices."""

from __future__ import annotations

import typer

from cli.context import ctx
from core import registry
from core.contract.catalogue import DeviceType
from core.db import session_scope

app = typer.Typer(help="The device registry.", no_args_is_help=True)


@app.command("add")
def add(
    device_id: str = typer.Argument(..., help="Device id, as used in its MQTT topics."),
    site: str = typer.Option(..., "--site", "-s", help="Site id."),
    device_type: DeviceType = typer.Option(..., "--type", "-t", help="Device type."),
    resident: int | None = typer.Option(None, "--resident", help="Resident id it belongs to."),
    name: str | None = typer.Option(None, "--name", help="Human-readable name."),
    room: str | None = typer.Option(None, "--room", help="Room it is installed in."),
) -> None:
    """Register a device so that its messages are accepted (not quarantined)."""
    c = ctx()
    with session_scope(c.sessions) as session:
        device = registry.add_device(
            session,
            device_id=device_id,
            site_id=site,
            device_type=device_type.value,
            resident_id=resident,
            name=name,
            room=room,
        )
        typer.echo(
            c.t("cli.devices.added", device=device.id, site=device.site_id, type=device.type)
        )


@app.command("list")
def list_devices(
    site: str | None = typer.Option(None, "--site", "-s", help="Only this site."),
    quarantined: bool = typer.Option(False, "--quarantined", help="Only quarantined devices."),
) -> None:
    """List devices with status, last seen, battery and firmware."""
    c = ctx()
    with session_scope(c.sessions) as session:
        rows = registry.list_devices(
            session, site_id=site, quarantined=True if quarantined else None
        )
        if not rows:
            typer.echo(c.t("cli.devices.none"))
            return
        typer.echo(c.t("cli.devices.header"))
        for d in rows:
            last_seen = d.last_seen.isoformat(timespec="seconds") if d.last_seen else "-"
            flag = c.t("cli.devices.quarantined") if d.quarantined else ""
            typer.echo(
                f"{d.id:<28} {d.site_id:<10} {d.type or '-':<15} {d.status.value:<8} "
                f"{last_seen:<26} {d.battery if d.battery is not None else '-':>4} "
                f"{d.firmware or '-':<10} {flag}".rstrip()
            )
