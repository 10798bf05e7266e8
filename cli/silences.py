"""`iotcare silences`: hold windowed alerts while a resident is away or a site or device is
maintained (critical events always alert)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer

from cli.context import ctx
from core.errors import IotCareError
from core.timeutil import ensure_utc, utcnow
from models import SilenceReason, SilenceScope

app = typer.Typer(
    help="Silences: residents away or in hospital, site and device maintenance windows.",
    no_args_is_help=True,
)

_DURATION = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_until(value: str, now: datetime) -> datetime:
    """An ISO time (UTC unless it has an offset) or a duration from now: 3d, 12h, 90m."""
    text = value.strip().lower()
    if match := _DURATION.match(text):
        return now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise IotCareError(
            ctx().t("cli.silences.bad_until", value=value), key="cli.silences.bad_until"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # as the help says: UTC unless an offset is given
    return ensure_utc(parsed)


@app.command("add")
def add(
    until: str = typer.Option(..., "--until", help="ISO time, or a duration: 3d, 12h, 90m."),
    reason: SilenceReason = typer.Option(..., "--reason", help="Why alerts are held."),
    resident: int | None = typer.Option(None, "--resident", help="Resident id."),
    site: str | None = typer.Option(None, "--site", help="Site id (everything there)."),
    device: str | None = typer.Option(None, "--device", help="Device id."),
    note: str | None = typer.Option(None, "--note", help="Free text, e.g. the hospital."),
) -> None:
    """Hold windowed alerts of one resident, site or device from now until --until."""
    from core import silences
    from core.db import session_scope

    c = ctx()
    named = [
        (scope, target)
        for scope, target in (
            (SilenceScope.RESIDENT, resident),
            (SilenceScope.SITE, site),
            (SilenceScope.DEVICE, device),
        )
        if target is not None
    ]
    if len(named) != 1:
        raise IotCareError(c.t("cli.silences.one_target"), key="cli.silences.one_target")
    scope, target = named[0]
    now = utcnow()
    with session_scope(c.sessions) as session:
        silence = silences.create_silence(
            session,
            None,
            scope=scope,
            target=target,
            ends_at=parse_until(until, now),
            reason=reason,
            note=note,
            now=now,
        )
        typer.echo(
            c.t(
                "cli.silences.added",
                id=silence.id,
                scope=scope.value,
                target=target,
                until=silence.ends_at.isoformat(timespec="minutes"),
                reason=reason.value,
            )
        )


@app.command("list")
def list_silences() -> None:
    """List the silences in force now and those still to come."""
    from core import silences
    from core.db import session_scope

    c = ctx()
    now = utcnow()
    with session_scope(c.sessions) as session:
        rows = silences.current_and_upcoming(session, now)
        if not rows:
            typer.echo(c.t("cli.silences.empty"))
            return
        for s in rows:
            typer.echo(
                c.t(
                    "cli.silences.row",
                    id=s.id,
                    scope=SilenceScope(s.scope).value,
                    target=silences.target_id(s),
                    reason=SilenceReason(s.reason).value,
                    start=s.starts_at.isoformat(timespec="minutes"),
                    until=s.effective_end.isoformat(timespec="minutes"),
                    status=c.t("cli.silences.upcoming") if s.starts_at > now else "",
                )
            )


@app.command("end")
def end(silence_id: int = typer.Argument(..., help="The silence's id (see list).")) -> None:
    """End a silence now (or withdraw one that has not begun)."""
    from core import silences
    from core.db import session_scope

    c = ctx()
    with session_scope(c.sessions) as session:
        silences.cancel_silence(session, None, silence_id)
        typer.echo(c.t("cli.silences.ended", id=silence_id))
