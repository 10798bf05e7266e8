"""`iotcare demo`: the whole system on one machine, with the embedded database and broker."""

from __future__ import annotations

import typer

from cli.context import ctx
from cli.seed import print_logins
from core import schema
from core.db import session_scope
from core.seed import seed_demo


def demo() -> None:
    """Migrate, seed the demo site, print the logins, then run every part of the system."""
    c = ctx()
    typer.echo(c.t("cli.demo.database", url=c.engine.url.render_as_string(hide_password=True)))
    outcome = schema.upgrade(c.engine)
    typer.echo(c.t(f"cli.db.outcome.{outcome}", revision=schema.current_revision(c.engine)))
    with session_scope(c.sessions) as session:
        result = seed_demo(session, timezone=c.settings.default_timezone)
    print_logins(result)
