"""Constraints on request values that the OpenAPI document states, so clients (and schemathesis)
know every value the schema allows is one the API accepts."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator

from core.contract.catalogue import REGISTRY_ID_RE

# Site and device ids, as the registry and the MQTT topics allow them.
SITE_ID_PATTERN = REGISTRY_ID_RE.pattern
# Integer ids are PostgreSQL integers.
MAX_ID = 2**31 - 1
# PostgreSQL text cannot hold NUL characters.
NO_NUL_PATTERN = r"^[^\x00]*$"
# A note that says something: not blank, no NUL.
NOTE_PATTERN = r"^[^\x00]*[^\x00\s][^\x00]*$"

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _rfc3339_text(value: Any) -> Any:
    """Only an RFC 3339 date-time, as the schema says (pydantic alone also takes '0.5')."""
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("use an RFC 3339 date-time with an offset, e.g. 2026-12-06T09:00:00Z")
    return value


# A query-string time: RFC 3339 with an offset, nothing looser.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]

# OpenAPI extension on an operation that checks more than its schema can state (a timezone
# name, a rule's parameters for its kind, dates in the future, a resident of the same site):
# schema-valid requests it refuses answer 422 with every problem named. Its value says what.
CHECKS_BEYOND_SCHEMA = "x-iotcare-checks-beyond-schema"


def beyond_schema(what: str) -> dict[str, str]:
    """`openapi_extra` for an operation that checks `what` beyond its schema."""
    return {CHECKS_BEYOND_SCHEMA: what}
