"""`iotcare users`: add and list people who sign in."""

from __future__ import annotations

import typer

from cli.context import ctx
from core.errors import IotCareError, NotFoundError
from models import Role

app = typer.Typer(
    help="People who sign in: caregivers, operators, admins, family.", no_args_is_help=True
)


@app.command("add")
def add(
    username: str = typer.Argument(..., help="Sign-in name (lowercase)."),
    role: Role = typer.Option(..., "--role", "-r", help="caregiver, operator, admin or family."),
    display_name: str | None = typer.Option(None, "--name", help="Name shown in the app."),
    language: str = typer.Option("en", "--language", "-l", help="en or ko."),
    site: str | None = typer.Option(None, "--site", help="Site the user works at."),
    generate: bool = typer.Option(
        False, "--generate-password", help="Generate a password and print it once."
    ),
    residents: list[int] = typer.Option(
        [], "--resident", help="Family users: id of the resident they follow (repeatable)."
    ),
    relation: str | None = typer.Option(
        None, "--relation", help="Family users: how they are related, e.g. daughter."
    ),
) -> None:
    """Add a user; the password is asked for (or generated with --generate-password)."""
    from core import users as user_service
    from core.db import session_scope
    from core.security import generate_password
    from models import Resident

    c = ctx()
    if Role(role) is Role.FAMILY and not residents:
        raise IotCareError(
            "A family user must be linked to a resident: give --resident ID.",
            key="errors.family_needs_resident",
        )
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
        for resident_id in residents:
            resident = session.get(Resident, resident_id)
            if resident is None:
                raise NotFoundError(
                    f"There is no resident {resident_id}.", key="errors.care.resident_missing"
                )
            user_service.link_family(session, user, resident, relation)
        typer.echo(c.t("cli.users.added", username=user.username, role=user.role.value))
        for resident_id in residents:
            typer.echo(c.t("cli.users.linked", username=user.username, resident=resident_id))
    if generate:
        typer.echo(c.t("cli.users.generated_password", password=password))


@app.command("list")
def list_users() -> None:
    """List users with their role and language."""
    from sqlalchemy import select

    from core.db import session_scope
    from models import User

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
