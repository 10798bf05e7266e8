"""Path parameters naming a resident, rule, silence or device, bounded as the database stores
them (api.params), so an out-of-range id is a 422 from validation, not a database error."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from api.params import MAX_ID, SITE_ID_PATTERN

ResidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="Resident id.")]
RuleId = Annotated[int, Path(ge=1, le=MAX_ID, description="Rule id.")]
SilenceId = Annotated[int, Path(ge=1, le=MAX_ID, description="Silence id.")]
DeviceId = Annotated[str, Path(pattern=SITE_ID_PATTERN, description="Device id.")]
SiteId = Annotated[str, Path(pattern=SITE_ID_PATTERN, description="Site id.")]
