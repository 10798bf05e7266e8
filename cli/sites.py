"""`iotcare sites`: create, edit and list sites (care homes, private homes)."""

from __future__ import annotations

import typer

from cli.actor import AS_OPTION, viewer_for
from cli.context import ctx

app = typer.Typer(help="Sites: care homes and private homes.", no_args_is_help=True)


@app.command("add")
def add(
    site_id: str = typer.Argument(..., help="Site id (part of MQTT topics)."),
    name: str = typer.Option(..., "--name", help="Name shown in the app."),
    timezone: str = typer.Option(..., "--timezone", help="IANA timezone, e.g. Asia/Seoul."),
    address: str | None = typer.Option(None, "--address", help="Postal address."),
    contacts: str | None = typer.Option(None, "--contacts", help="Who to call at the site."),
    actor: str | None = AS_OPTION,
) -> None:
    """Create a site."""
    from core.db import session_scope
    from core.use_cases import sites_admin

    c = ctx()
    with session_scope(c.sessions) as session:
        created = sites_admin.create_site(
            session,
            viewer_for(session, actor),
            site_id=site_id,
            name=name,
            timezone=timezone,
            address=address,
            contacts=contacts,
        )
    typer.echo(c.t("cli.sites.added", site=created))


@app.command("edit")
def edit(
    site_id: str = typer.Argument(..., help="Site id."),
    name: str | None = typer.Option(None, "--name"),
    timezone: str | None = typer.Option(None, "--timezone"),
    address: str | None = typer.Option(None, "--address", help="'' clears it."),
    contacts: str | None = typer.Option(None, "--contacts", help="'' clears it."),
    actor: str | None = AS_OPTION,
) -> None:
    """Change a site's name, timezone, address or contacts (options not given stay)."""
    from core.db import session_scope
    from core.use_cases import sites_admin

    c = ctx()
    with session_scope(c.sessions) as session:
        viewer = viewer_for(session, actor)
        site = sites_admin.get_site(session, site_id)
        changed = sites_admin.update_site(
            session,
            viewer,
            site.id,
            name=site.name if name is None else name,
            timezone=site.timezone if timezone is None else timezone,
            address=site.address if address is None else address,
            contacts=site.contacts if contacts is None else contacts,
        )
    if changed:
        typer.echo(c.t("cli.sites.saved", site=site_id, fields=", ".join(changed)))
    else:
        typer.echo(c.t("cli.sites.unchanged", site=site_id))


@app.command("list")
def list_sites(actor: str | None = AS_OPTION) -> None:
    """List sites with their timezone and active residents."""
    from core.db import session_scope
    from core.use_cases import sites_admin

    c = ctx()
    with session_scope(c.sessions) as session:
        rows = sites_admin.list_sites(session, viewer_for(session, actor))
    if rows.empty:
        typer.echo(c.t("cli.sites.none"))
    for r in rows.itertuples():
        typer.echo(f"{r.site_id:<20} {r.timezone:<20} {r.residents:>4} {r.name}")
