"""docs/configuration.md, generated from the Settings class (a test keeps the two in sync).

python -m core.settings_reference > docs/configuration.md
"""

from __future__ import annotations

import inspect
import re
import sys
from datetime import timedelta
from enum import Enum
from typing import Annotated, Any, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from core.settings import ENV_PREFIX, Settings

_SECTION_RE = re.compile(r"^\s*# --- (.+)$")
_FIELD_RE = re.compile(r"^\s{4}(\w+):")

HEADER = """# Configuration reference

Every IoT Care process (ingest, flows, app, CLI) reads the same settings, from environment
variables named below or from a `.env` file in the working directory (copy `.env.example`).
A wrong value stops the process at start-up with a message that names the setting.

Durations accept `200ms`, `30s`, `5m`, `2h`, `1d` or a number of seconds. Secrets have no default:
outside `IOTCARE_ENVIRONMENT=development` a missing or placeholder secret stops start-up.

This page is generated from `core/settings.py`
(`python -m core.settings_reference > docs/configuration.md`); edit the descriptions there.
"""


def sections() -> dict[str, str]:
    """Field name → the `# --- section` comment it sits under in the class source."""
    found: dict[str, str] = {}
    current = "general"
    for line in inspect.getsource(Settings).splitlines():
        heading = _SECTION_RE.match(line)
        if heading:
            current = heading.group(1).strip()
            continue
        field = _FIELD_RE.match(line)
        if field and field.group(1) in Settings.model_fields:
            found[field.group(1)] = current
    return found


def _type_name(annotation: Any) -> str:
    """'duration', 'int', 'secret, optional', 'Path' ... as a reader wants it."""
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    args = get_args(annotation)
    if type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return ", ".join([" or ".join(_type_name(a) for a in inner), "optional"])
    names = {timedelta: "duration", SecretStr: "secret"}
    if annotation in names:
        return names[annotation]
    return getattr(annotation, "__name__", str(annotation))


def _duration(value: timedelta) -> str:
    """The shortest exact spelling: 8h, 5m, 200ms."""
    millis = round(value.total_seconds() * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis and millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


def _default(field: FieldInfo) -> str:
    value = field.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "—"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, timedelta):
        return f"`{_duration(value)}`"
    return f"`{value}`"


def _choices(annotation: Any) -> str:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return ", ".join(f"`{member.value}`" for member in candidate)
    return ""


def render() -> str:
    """The whole configuration page."""
    grouped: dict[str, list[str]] = {}
    where = sections()
    for name, field in Settings.model_fields.items():
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        choices = _choices(field.annotation)
        if choices:
            description = f"{description} One of {choices}."
        row = (
            f"| `{ENV_PREFIX}{name.upper()}` | {_type_name(field.annotation)} | "
            f"{_default(field)} | {description} |"
        )
        grouped.setdefault(where.get(name, "general"), []).append(row)
    parts = [HEADER]
    for section, rows in grouped.items():
        parts.append(f"\n## {section[:1].upper()}{section[1:]}\n")
        parts.append("| variable | type | default | what it does |")
        parts.append("| --- | --- | --- | --- |")
        parts.extend(rows)
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
