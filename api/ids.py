"""Path and body types for database ids: integer ids fit a 32-bit column, so a larger number is
a 422 from validation rather than a database error."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

INT_ID_MAX = 2_147_483_647  # PostgreSQL integer

ResidentId = Annotated[int, Path(ge=1, le=INT_ID_MAX, description="Resident id.")]
RuleId = Annotated[int, Path(ge=1, le=INT_ID_MAX, description="Rule id.")]
SilenceId = Annotated[int, Path(ge=1, le=INT_ID_MAX, description="Silence id.")]
DeviceId = Annotated[str, Path(min_length=1, max_length=64, description="Device id.")]
