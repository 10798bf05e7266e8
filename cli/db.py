"""`iotcare db`: migrate, stamp and inspect the database schema."""

from __future__ import annotations

import typer

from cli.context import ctx

app = typer.Typer(help="Database schema: upgrade, downgrade, stamp, current.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate to the newest schema; a database that predates migrations is stamped, not rebuilt."""
    from core import schema

    c = ctx()
    outcome = schema.upgrade(c.engine, revision)
    current = schema.current_revision(c.engine)
    typer.echo(c.t(f"cli.db.outcome.{outcome}", revision=current))


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Target revision, or 'base'.")) -> None:
    """Migrate down to an older revision ('base' drops every table)."""
    from core import schema

    c = ctx()
    schema.downgrade(c.engine, revision)
    typer.echo(c.t("cli.db.downgraded", revision=schema.current_revision(c.engine) or "base"))


@app.command()
def stamp(revision: str = typer.Argument("head", help="Revision to record.")) -> None:
    """Record a revision as current without running migrations."""
    from core import schema

    c = ctx()
    schema.stamp(c.engine, revision)
    typer.echo(c.t("cli.db.stamped", revision=schema.current_revision(c.engine)))


@app.command()
def current() -> None:
    """Show the database's revision and the newest available one."""
    from core import schema

    c = ctx()
    typer.echo(
        c.t(
            "cli.db.current",
            revision=schema.current_revision(c.engine) or "-",
            head=schema.head_revision(),
        )
    )
