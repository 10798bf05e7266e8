"""`iotcare tokens`: API tokens for integrations (create, list, revoke) and service accounts."""

from __future__ import annotations

from datetime import datetime

import typer

from cli.actor import AS_OPTION, viewer_for
from cli.context import ctx
from cli.silences import parse_until
from core.errors import IotCareError
from core.timeutil import utcnow
from models import Role

app = typer.Typer(
    help="API tokens for integrations: create (shown once), list, revoke; service accounts.",
    no_args_is_help=True,
)


def _expiry(value: str | None) -> datetime | None:
    """--expires: a duration from now (90d, 12h, 30m) or an ISO time; none: never expires."""
    if not value:
        return None
    try:
        return parse_until(value, utcnow())
    except IotCareError:
        raise IotCareError(
            f"'{value}' is not an expiry.", key="cli.tokens.bad_expiry", value=value
        ) from None


@app.command("create")
def create(
    username: str = typer.Argument(..., help="User the token acts as (their own access)."),
    name: str = typer.Option(..., "--name", help="What the token is for, e.g. 'nurse call'."),
    scope: list[str] = typer.Option(
        ["read"],
        "--scope",
        "-s",
        help="read, acknowledge, write, commands or admin (repeatable; default read).",
    ),
    expires: str | None = typer.Option(
        None, "--expires", help="Duration (90d, 12h) or ISO time; default: never."
    ),
    as_user: str | None = AS_OPTION,
) -> None:
    """Create a token for a user; it is printed once and only its digest is kept."""
    from core import api_tokens
    from core.db import session_scope
    from core.users import get_user

    c = ctx()
    with session_scope(c.sessions) as session:
        viewer = viewer_for(session, as_user)
        owner = get_user(session, username)
        issued = api_tokens.issue_token(
            session,
            c.settings,
            viewer,
            user_id=owner.id,
            name=name,
            scopes=scope,
            expires_at=_expiry(expires),
        )
        row = issued.row
        typer.echo(
            c.t(
                "cli.tokens.created",
                prefix=row.prefix,
                name=row.name,
                username=owner.username,
                scopes=", ".join(row.scopes),
                expires=row.expires_at.isoformat() if row.expires_at else c.t("cli.tokens.never"),
            )
        )
    typer.echo(c.t("cli.tokens.show_once"), err=True)
    typer.echo(issued.secret)


@app.command("list")
def list_tokens(
    username: str | None = typer.Argument(None, help="Only this user's tokens."),
    as_user: str | None = AS_OPTION,
) -> None:
    """List tokens: id, prefix, user, name, scopes, state, expiry and last use."""
    from sqlalchemy import select

    from core import api_tokens
    from core.db import session_scope
    from core.users import get_user
    from models import User

    c = ctx()
    with session_scope(c.sessions) as session:
        viewer = viewer_for(session, as_user)
        owner_id = get_user(session, username).id if username else None
        rows = api_tokens.list_tokens(session, viewer, owner_id)
        if not rows:
            typer.echo(c.t("cli.tokens.none"))
        names = dict(session.execute(select(User.id, User.username)).tuples().all())
        for row in rows:
            state = c.t(f"tokens.state.{api_tokens.token_state(row)}")
            expires = row.expires_at.isoformat() if row.expires_at else c.t("cli.tokens.never")
            used = row.last_used_at.isoformat() if row.last_used_at else "-"
            typer.echo(
                f"{row.id:<5} {row.prefix:<13} {names.get(row.user_id, '?'):<16} "
                f"{','.join(row.scopes):<20} {state:<8} {expires:<26} {used:<26} {row.name}"
            )


@app.command("revoke")
def revoke(
    token_id: int = typer.Argument(..., help="Token id (see `iotcare tokens list`)."),
    as_user: str | None = AS_OPTION,
) -> None:
    """Revoke a token: it stops working at once (revoking twice changes nothing)."""
    from core import api_tokens
    from core.db import session_scope

    c = ctx()
    with session_scope(c.sessions) as session:
        api_tokens.revoke_token(session, viewer_for(session, as_user), token_id)
    typer.echo(c.t("cli.tokens.revoked", token=token_id))


@app.command("service-account")
def service_account(
    username: str = typer.Argument(..., help="Name of the service account (lowercase)."),
    role: Role = typer.Option(Role.OPERATOR, "--role", "-r", help="caregiver, operator or admin."),
    display_name: str | None = typer.Option(None, "--name", help="Name shown in lists."),
    site: str | None = typer.Option(None, "--site", help="Site it works at (caregivers)."),
    as_user: str | None = AS_OPTION,
) -> None:
    """Create a service account: a user with a role that never signs in, only uses tokens."""
    from core import api_tokens
    from core.db import session_scope

    c = ctx()
    with session_scope(c.sessions) as session:
        user = api_tokens.create_service_account(
            session,
            viewer_for(session, as_user),
            username=username,
            role=role,
            display_name=display_name,
            site_id=site,
        )
        typer.echo(c.t("cli.tokens.service_created", username=user.username, role=user.role.value))
