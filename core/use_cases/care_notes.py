"""Care notes: dated notes caregivers, operators and admins write on a resident.

A caregiver writes on (and reads) only the residents assigned to them; notes are never edited,
so the record stays what was written when. Every note is audited.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.access import Viewer, acting_user, check_resident
from core.timeutil import utcnow
from core.use_cases import care_fields as check
from models import CareNote

MAX_NOTE = 4000
NOTE_COLUMNS = ["note_id", "at", "author", "text"]


def add_note(
    session: Session, viewer: Viewer, resident_id: int, text: str, *, at: datetime | None = None
) -> int:
    """Write a note on a resident the viewer may see; returns its id."""
    resident = check_resident(session, viewer, resident_id)
    author = acting_user(session, viewer)
    body = check.text("text", text, limit=MAX_NOTE, required=True) or ""
    note = CareNote(
        resident_id=resident.id,
        author_id=author.id,
        author_name=author.username,
        at=at or utcnow(),
        text=body,
    )
    session.add(note)
    session.flush()
    audit.record(session, author, "care_note.add", "resident", resident.id, note_id=note.id)
    return note.id


def list_notes(
    session: Session, viewer: Viewer, resident_id: int, *, limit: int = 50
) -> pd.DataFrame:
    """A resident's latest notes, newest first, with the author's name."""
    check_resident(session, viewer, resident_id)
    rows = session.scalars(
        select(CareNote)
        .where(CareNote.resident_id == resident_id)
        .order_by(CareNote.at.desc(), CareNote.id.desc())
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [{"note_id": n.id, "at": n.at, "author": n.author_name, "text": n.text} for n in rows],
        columns=NOTE_COLUMNS,
    )
