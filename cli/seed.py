"""`iotcare seed`: demo data."""

from __future__ import annotations

import typer

from cli.context import ctx
from core import schema
from core.db import session_scope
from core.seed import SeedResult, seed_demo

app = typer.Typer(help="Create demo data.", no_args_is_help=True)


def print_logins(result: SeedResult) -> None:
    """Show what seeding did and the generated logins (shown only now, stored only hashed)."""
    t = ctx().t
    key = "cli.seed.created" if result.created else "cli.seed.exists"
    typer.echo(
        t(
            key,
            site=result.site_id,
            residents=result.residents,
            devices=result.devices,
            rules=result.rules,
        )
    )
    typer.echo(t("cli.seed.logins_header"))
    for login in result.logins:
        typer.echo(f"  {login.role.value:<10} {login.username:<12} {login.password}")
    typer.echo(t("cli.seed.logins_note"))


@app.command()
def demo() -> None:
    """Create the demo site (20 residents, their devices, staff, default rules)."""
    c = ctx()
    schema.upgrade(c.engine)
    with session_scope(c.sessions) as session:
        result = seed_demo(session, timezone=c.settings.default_timezone)
    print_logins(result)
