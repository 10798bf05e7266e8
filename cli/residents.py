"""`iotcare residents`: admit, edit, move, discharge and list residents."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cli.actor import AS_OPTION, viewer_for
from cli.context import ctx

if TYPE_CHECKING:
    from core.use_cases.residents_admin import ContactInput

app = typer.Typer(help="Residents: admission, room moves, discharge.", no_args_is_help=True)
CONTACT_HELP = "Emergency contact 'name;relation;phone;email' (repeatable)."


def _contacts(values: list[str] | None) -> list[ContactInput] | None:
    from core.use_cases.residents_admin import ContactInput

    if values is None:
        return None
    out = []
    for value in values:
        parts = [*value.split(";"), "", "", "", ""][:4]
        out.append(ContactInput(*parts))
    return out


@app.command("add")
def add(
    site: str = typer.Option(..., "--site", "-s", help="Site id."),
    name: str = typer.Option(..., "--name", help="Resident's name."),
    room: str | None = typer.Option(None, "--room"),
    timezone: str | None = typer.Option(None, "--timezone", help="Default: the site's."),
    active_start: str | None = typer.Option(None, "--active-start", help="HH:MM (07:00)."),
    active_end: str | None = typer.Option(None, "--active-end", help="HH:MM (22:00)."),
    notes: str | None = typer.Option(None, "--notes"),
    contact: list[str] | None = typer.Option(None, "--contact", help=CONTACT_HELP),
    actor: str | None = AS_OPTION,
) -> None:
    """Admit a resident to a site."""
    from core.db import session_scope
    from core.use_cases import residents_admin

    c = ctx()
    with session_scope(c.sessions) as session:
        resident_id = residents_admin.create_resident(
            session,
            viewer_for(session, actor),
            site_id=site,
            name=name,
            room=room,
            timezone=timezone,
            active_start=active_start,
            active_end=active_end,
            notes=notes,
            contacts=_contacts(contact) or [],
        )
    typer.echo(c.t("cli.residents.added", name=name.strip(), id=resident_id))


@app.command("edit")
def edit(
    resident_id: int = typer.Argument(...),
    name: str | None = typer.Option(None, "--name"),
    timezone: str | None = typer.Option(None, "--timezone", help="'' means the site's."),
    active_start: str | None = typer.Option(None, "--active-start"),
    active_end: str | None = typer.Option(None, "--active-end"),
    notes: str | None = typer.Option(None, "--notes"),
    contact: list[str] | None = typer.Option(None, "--contact", help=CONTACT_HELP),
    actor: str | None = AS_OPTION,
) -> None:
    """Change a resident's fields (options not given stay; --contact replaces the contacts)."""
    from core.db import session_scope
    from core.use_cases import residents_admin

    c = ctx()
    with session_scope(c.sessions) as session:
        viewer = viewer_for(session, actor)
        r = residents_admin.resident_record(session, viewer, resident_id)
        changed = residents_admin.update_resident(
            session,
            viewer,
            resident_id,
            name=r.name if name is None else name,
            timezone=r.timezone if timezone is None else timezone,
            active_start=r.active_start if active_start is None else active_start,
            active_end=r.active_end if active_end is None else active_end,
            notes=r.notes if notes is None else notes,
            contacts=_contacts(contact),
        )
    if changed:
        typer.echo(c.t("cli.residents.saved", id=resident_id, fields=", ".join(changed)))
    else:
        typer.echo(c.t("cli.residents.unchanged", id=resident_id))


@app.command("move")
def move(
    resident_id: int = typer.Argument(...),
    room: str = typer.Argument(..., help="The new room."),
    actor: str | None = AS_OPTION,
) -> None:
    """Move a resident to another room (kept in the room history)."""
    from core.db import session_scope
    from core.use_cases import residents_admin

    c = ctx()
    with session_scope(c.sessions) as session:
        residents_admin.move_room(session, viewer_for(session, actor), resident_id, room)
    typer.echo(c.t("cli.residents.moved", id=resident_id, room=room.strip()))


@app.command("discharge")
def discharge(
    resident_id: int = typer.Argument(...),
    reason: str | None = typer.Option(None, "--reason"),
    actor: str | None = AS_OPTION,
) -> None:
    """Discharge a resident: data kept, windowed rules stop; device emergencies still alert."""
    from core.db import session_scope
    from core.use_cases import residents_admin

    c = ctx()
    with session_scope(c.sessions) as session:
        residents_admin.discharge(session, viewer_for(session, actor), resident_id, reason=reason)
    typer.echo(c.t("cli.residents.discharged", id=resident_id))


@app.command("readmit")
def readmit(resident_id: int = typer.Argument(...), actor: str | None = AS_OPTION) -> None:
    """Undo a discharge."""
    from core.db import session_scope
    from core.use_cases import residents_admin

    c = ctx()
    with session_scope(c.sessions) as session:
        residents_admin.readmit(session, viewer_for(session, actor), resident_id)
    typer.echo(c.t("cli.residents.readmitted", id=resident_id))


@app.command("list")
def list_residents(
    site: str | None = typer.Option(None, "--site", "-s"),
    include_discharged: bool = typer.Option(False, "--all", help="Also discharged residents."),
    actor: str | None = AS_OPTION,
) -> None:
    """List residents: id, site, room, name."""
    from core.db import session_scope
    from core.use_cases import residents_admin

    c = ctx()
    with session_scope(c.sessions) as session:
        rows = residents_admin.list_residents(
            session,
            viewer_for(session, actor),
            site_id=site,
            include_discharged=include_discharged,
        )
    if rows.empty:
        typer.echo(c.t("cli.residents.none"))
    for r in rows.itertuples():
        mark = "" if r.active else f" ({c.t('cli.residents.discharged_mark')})"
        typer.echo(f"{r.resident_id:>6} {r.site_id:<16} {r.room or '-':<8} {r.name}{mark}")
