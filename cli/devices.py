"""`iotcare devices`: register and list devices, and give them broker credentials."""

from __future__ import annotations

import typer

from cli.context import CliContext, ctx
from core.contract.catalogue import DeviceType
from core.errors import IotCareError
from core.i18n import plural

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
    from core import registry
    from core.db import session_scope

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
    from core import registry
    from core.db import session_scope

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


@app.command("blocked")
def blocked() -> None:
    """List device ids an operator rejected and blocked (their messages become dead letters)."""
    from core import registry
    from core.db import session_scope

    c = ctx()
    with session_scope(c.sessions) as session:
        rows = registry.blocked_devices(session)
        if not rows:
            typer.echo(c.t("cli.devices.none_blocked"))
            return
        typer.echo(c.t("cli.devices.blocked_header"))
        for b in rows:
            typer.echo(
                f"{b.device_id:<28} {b.site_id:<10} "
                f"{b.blocked_at.isoformat(timespec='seconds'):<26} {b.reason or '-'}"
            )


@app.command("unblock")
def unblock(device_id: str = typer.Argument(..., help="Blocked device id.")) -> None:
    """Lift a block: the device's next message puts it in quarantine again."""
    from core import registry
    from core.db import session_scope

    c = ctx()
    with session_scope(c.sessions) as session:
        lifted = registry.unblock_device(session, device_id)
    if not lifted:
        typer.secho(c.t("cli.devices.not_blocked", device=device_id), err=True, fg="red")
        raise typer.Exit(1)
    typer.echo(c.t("cli.devices.unblocked", device=device_id))


def _write_files(c: CliContext) -> None:
    """Rewrite the broker files and say so; exit 1 when they could not be written."""
    from core import device_credentials
    from core.db import session_scope

    try:
        with session_scope(c.sessions) as session:
            result = device_credentials.write_broker_files(session, c.settings)
    except (IotCareError, OSError) as error:
        typer.secho(c.t("cli.devices.files_failed", detail=str(error)), err=True, fg="red")
        raise typer.Exit(1) from None
    typer.echo(
        c.t(
            "cli.devices.files_written",
            password_file=result.password_file,
            acl_file=result.acl_file,
            devices=plural(c.t, "cli.devices.count", result.devices),
        )
    )
    if result.reloaded:
        typer.echo(c.t("cli.devices.reloaded", pid_file=c.settings.mosquitto_pid_file))
    elif result.reload_error:
        typer.secho(c.t("cli.devices.reload_failed", detail=result.reload_error), err=True)
    else:
        typer.echo(c.t("cli.devices.reload_yourself"))


def _files_configured(c: CliContext) -> bool:
    """Whether broker files are to be written; checks the platform account before any change."""
    from core import device_credentials

    if device_credentials.broker_file_paths(c.settings) is None:
        return False
    device_credentials.service_account(c.settings)  # fail before the registry changes
    return True


@app.command("provision")
def provision(
    device_id: str = typer.Argument(..., help="Id of a registered device."),
    rotate: bool = typer.Option(
        False, "--rotate", help="Replace the password of a device that has one."
    ),
) -> None:
    """Give a device its MQTT username and password (shown once) and rewrite the broker files."""
    from core import device_credentials
    from core.db import session_scope

    c = ctx()
    write = _files_configured(c)
    with session_scope(c.sessions) as session:
        issued = device_credentials.provision(session, device_id, rotate=rotate)
    key = "cli.devices.rotated" if issued.rotated else "cli.devices.provisioned"
    typer.echo(c.t(key, device=issued.device_id, site=issued.site_id))
    typer.echo(c.t("cli.devices.username", username=issued.username))
    typer.echo(c.t("cli.devices.password", password=issued.password))
    typer.echo(c.t("cli.devices.password_note"))
    if write:
        _write_files(c)
    else:
        typer.echo(c.t("cli.devices.files_not_configured"))


@app.command("revoke")
def revoke(device_id: str = typer.Argument(..., help="Device id.")) -> None:
    """Remove a device's MQTT credentials and rewrite the broker files."""
    from core import device_credentials
    from core.db import session_scope

    c = ctx()
    write = _files_configured(c)
    with session_scope(c.sessions) as session:
        removed = device_credentials.revoke(session, device_id)
    key = "cli.devices.revoked" if removed else "cli.devices.not_provisioned"
    typer.echo(c.t(key, device=device_id))
    if write:
        _write_files(c)
    else:
        typer.echo(c.t("cli.devices.files_not_configured"))


@app.command("write-broker-files")
def write_broker_files() -> None:
    """Rewrite Mosquitto's password and ACL files from the registry (and reload it)."""
    c = ctx()
    if not _files_configured(c):
        typer.secho(c.t("cli.devices.files_not_configured"), err=True, fg="red")
        raise typer.Exit(1)
    _write_files(c)
