"""`iotcare users`: add and list people who sign in."""

from __future__ import annotations

import typer
from sqlalchemy import select

from cli.context import ctx
from core import users as user_service
from core.db import session_scope
from core.security import generate_password
from models import Role, User

app = typer.Typer(help="People who sign in: caregivers, operators, admins.", no_args_is_help=True)


@app.command("add")
def add(
    username: str = typer.Argument(..., help="Sign-in name (lowercase)."),
    role: Role = typer.Option(..., "--role", "-r", help="caregiver, operator or admin."),
    display_name: str | None = typer.Option(None, "--name", help="Name shown in the app."),
    language: str = typer.Option("en", "--language", "-l", help="en or ko."),
    site: str | None = typer.Option(None, "--site", help="Site the user works at."),
    generate: bool = typer.Option(
        False, "--generate-password", help="Generate a password and print it once."
    ),
) -> None:
    """Add a user; the password is asked for (or generated with --generate-password)."""
    c = ctx()
    if generate:
        password = generate_password()
    else:
        password = typer.prompt(
            c.t("cli.users.password_prompt"), hide_input=True, confirmation_prompt=True
        )
    with session_scope(c.sessions) as session:
        user = user_service.create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            language=language,
            site_id=site,
        )
        typer.echo(c.t("cli.users.added", username=user.username, role=user.role.value))
    if generate:
        typer.echo(c.t("cli.users.generated_password", password=password))


@app.command("list")
def list_users() -> None:
    """List users with their role and language."""
    c = ctx()
    with session_scope(c.sessions) as session:
        rows = session.scalars(select(User).order_by(User.role, User.username)).all()
        if not rows:
            typer.echo(c.t("cli.users.none"))
        for user in rows:
            state = "" if user.active else c.t("cli.users.inactive")
            typer.echo(
                f"{user.username:<16} {user.role.value:<10} {user.language:<3} "
                f"{user.display_name} {state}".rstrip()
            )
