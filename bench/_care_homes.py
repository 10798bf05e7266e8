"""The care homes the dashboard and rule engine benchmarks generate: sites in three timezones
and residents with six devices each, ids by position (site00, resident 1, r00001-wearable)."""

from __future__ import annotations

from typing import Any

TIMEZONES = ("Asia/Seoul", "UTC", "America/New_York")
DEVICE_TYPES = (
    "wearable",
    "bed_sensor",
    "motion_sensor",
    "door_sensor",
    "env_sensor",
    "panic_button",
)


def site_rows(count: int) -> list[dict[str, Any]]:
    """`count` sites (site00, site01, ...), in TIMEZONES in turn."""
    return [
        {"id": f"site{s:02d}", "name": f"Site {s}", "timezone": TIMEZONES[s % len(TIMEZONES)]}
        for s in range(count)
    ]


def device_id(resident: int, kind: str) -> str:
    """The id of resident number `resident`'s (0-based) device of type `kind`: r00001-wearable."""
    return f"r{resident + 1:05d}-{kind}"
