"""Writing the audit log: every acknowledgement, rule change, command and user change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from models import AuditEntry, User

SYSTEM_ACTOR = "system"


def record(
    session: Session,
    actor: User | None,
    action: str,
    target_type: str | None = None,
    target_id: str | int | None = None,
    **details: Any,
) -> AuditEntry:
    """Add an audit entry in the caller's transaction (so it commits with the change)."""
    entry = AuditEntry(
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else SYSTEM_ACTOR,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=details,
    )
    session.add(entry)
    return entry
