"""Who a CLI change is made as: `--as USERNAME` (or IOTCARE_ACTOR), audited like in the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from core.errors import IotCareError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.access import Viewer

AS_OPTION = typer.Option(
    None,
    "--as",
    envvar="IOTCARE_ACTOR",
    help="Operator or admin username the change is made (and audited) as.",
)


def viewer_for(session: Session, username: str | None) -> Viewer:
    """The viewer of an active operator or admin, or an error saying to give --as."""
    from sqlalchemy import select

    from core.access import Viewer
    from models import Role, User

    name = (username or "").strip().lower()
    user = session.scalar(select(User).where(User.username == name)) if name else None
    if user is None or not user.active or Role(user.role) not in (Role.OPERATOR, Role.ADMIN):
        raise IotCareError(
            f"No active operator or administrator '{name}': give --as USERNAME.",
            key="cli.residents.actor_missing",
            username=name or "-",
        )
    return Viewer.of(user)
