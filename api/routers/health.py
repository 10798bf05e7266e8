"""GET /api/healthz: the process answers and reaches its database (for Compose and probes)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.auth import Session_

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz(session: Session_) -> dict[str, str]:
    """ok when a trivial query succeeds; a database error becomes a 500 problem."""
    session.execute(text("SELECT 1"))
    return {"status": "ok"}
