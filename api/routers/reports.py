"""Daily care reports of a resident: the figures of each local day and the text families read.

Thin: core.use_cases.resident checks that the token's user may see the resident (404 otherwise)
and renders the report in the user's language, as the resident page and the e-mails do.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import Reader, Session_
from api.ids import ResidentId
from api.visibility import hidden_as_missing
from core.access import Permission, Viewer
from core.use_cases import resident as q

router = APIRouter(prefix="/residents/{resident_id}/reports", tags=["reports"])


class Report(BaseModel):
    """One local day of a resident: sleep, activity, vitals, night doors, alerts."""

    day: date = Field(description="The resident's local calendar day.")
    generated_at: datetime
    sent_at: datetime | None = Field(description="When it was queued to the family, if it was.")
    data: dict[str, Any] = Field(description="The figures (sections: sleep, activity, vitals, …).")
    subject: str = Field(description="The report's subject, in the token user's language.")
    body: str = Field(description="The report as text, in the token user's language.")


def _hidden(resident_id: int, viewer: Viewer) -> AbstractContextManager[None]:
    return hidden_as_missing(
        viewer,
        Permission.VIEW_RESIDENTS,
        f"No resident {resident_id}.",
        "errors.care.resident_missing",
    )


def _out(view: q.ReportView) -> Report:
    return Report(**{name: getattr(view, name) for name in Report.model_fields})


@router.get("", summary="A resident's daily care reports")
def list_reports(
    resident_id: ResidentId,
    session: Session_,
    token: Reader,
    limit: Annotated[int, Query(ge=1, le=366, description="How many days, newest first.")] = 30,
) -> list[Report]:
    """The resident's latest daily reports, newest day first."""
    with _hidden(resident_id, token.viewer):
        return [_out(v) for v in q.care_reports(session, token.viewer, resident_id, limit)]


@router.get("/{day}", summary="A resident's care report of one day")
def get_report(resident_id: ResidentId, day: date, session: Session_, token: Reader) -> Report:
    """The report of one local day (404 when none was made, or the resident is not theirs)."""
    with _hidden(resident_id, token.viewer):
        return _out(q.care_report(session, token.viewer, resident_id, day))
