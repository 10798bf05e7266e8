"""Rule parameters: one schema per rule kind, errors worded for the person building the rule.

`validate_params` is what the dashboard's rule builder and the engine call: it returns the
normalized parameters, or raises `RuleParamsError` with one (field, message) pair per problem,
in English or Korean (core/i18n/*/rules.toml).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import time, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from core.contract.catalogue import METRICS, REPORT_INTERVALS, EventType
from core.errors import IotCareError
from core.i18n import catalogue, normalize_language, translate
from models.enums import RuleKind

OPS = (">", ">=", "<", "<=")
# Spellings a person may type for the comparison, mapped to the stored symbol.
_OP_ALIASES = {"≥": ">=", "=>": ">=", "≤": "<=", "=<": "<=", "above": ">", "below": "<"}
ACTIONS = ("close_valve",)
_TIME_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
MAX_SUITE_NAME = 100
MINUTES_PER_WEEK = 7 * 24 * 60
# Default silence limit of a device type: a few missed reports in a row are normal (radio noise,
# a reboot), and a limit near the reporting interval itself alarms on every late message.
OFFLINE_MISSED_REPORTS = 3
OFFLINE_MIN_LIMIT = timedelta(minutes=15)
# For a device type without a known reporting interval.
OFFLINE_UNKNOWN_LIMIT = timedelta(hours=1)
# The night of doors that belong to no resident, when a night-exit rule follows active hours.
DEFAULT_NIGHT = (time(22, 0), time(6, 0))


def default_offline_minutes(device_type: str | None) -> int:
    """Default device-silence limit of a device type: 3 reporting intervals, at least 15 minutes."""
    interval = REPORT_INTERVALS.get(device_type or "")
    limit = (
        OFFLINE_UNKNOWN_LIMIT
        if interval is None
        else max(interval * OFFLINE_MISSED_REPORTS, OFFLINE_MIN_LIMIT)
    )
    return math.ceil(limit / timedelta(minutes=1))


class RuleParamsError(IotCareError):
    """Rule parameters that cannot be used; `errors` holds (field, message) pairs for the form."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors))


class _Params(BaseModel):
    """Common configuration: unknown settings are errors, instances are hashable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ClassVar[RuleKind]


def _custom(kind: str, **ctx: Any) -> PydanticCustomError:
    # The template here is only a fallback: people read the catalogue's wording (rules.errors.*).
    return PydanticCustomError(kind, kind, ctx)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class ThresholdParams(_Params):
    """A measurement beyond a limit for a number of minutes, cleared with a margin."""

    kind: ClassVar[RuleKind] = RuleKind.THRESHOLD
    metric: str
    op: str
    value: float = Field(allow_inf_nan=False)
    for_minutes: int = Field(0, ge=0, le=24 * 60)
    hysteresis: float = Field(0.0, ge=0, allow_inf_nan=False)

    @field_validator("metric", mode="before")
    @classmethod
    def _metric(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        name = value.strip()
        if name not in METRICS:
            raise _custom("unknown_metric", value=name, choices="metrics")
        if METRICS[name].boolean:
            raise _custom("yes_no_metric", value=name, choices="metrics")
        return name

    @field_validator("op", mode="before")
    @classmethod
    def _op(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        op = value.strip().lower()
        op = _OP_ALIASES.get(op, op)
        if op not in OPS:
            raise _custom("choice", choices="ops")
        return op

    @field_validator("value")
    @classmethod
    def _in_range(cls, value: float, info: ValidationInfo) -> float:
        # A limit the sensor can never report would make a rule that never fires.
        metric = METRICS.get(info.data.get("metric", ""))
        if (
            metric is not None
            and metric.minimum is not None
            and metric.maximum is not None
            and not metric.minimum <= value <= metric.maximum
        ):
            raise _custom(
                "out_of_range",
                metric=metric.name,
                unit=metric.unit,
                min=_number(metric.minimum),
                max=_number(metric.maximum),
            )
        return value

    @field_validator("hysteresis")
    @classmethod
    def _margin(cls, value: float, info: ValidationInfo) -> float:
        # A margin as wide as the sensor's range would mean the alert can never clear.
        metric = METRICS.get(info.data.get("metric", ""))
        if metric is not None and metric.minimum is not None and metric.maximum is not None:
            span = metric.maximum - metric.minimum
            if value >= span:
                raise _custom(
                    "hysteresis_too_large",
                    metric=metric.name,
                    unit=metric.unit,
                    range=_number(span),
                )
        return value


class EventParams(_Params):
    """Alert when a device reports one of these events; optionally act (close the gas valve)."""

    kind: ClassVar[RuleKind] = RuleKind.EVENT
    event_types: tuple[str, ...] = Field(min_length=1)
    action: str | None = None

    @field_validator("event_types", mode="before")
    @classmethod
    def _events(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value
        known = [e.value for e in EventType]
        chosen: list[str] = []
        for item in value:
            if not isinstance(item, str) or item.strip() not in known:
                raise _custom("unknown_event", value=str(item), choices="events")
            if item.strip() not in chosen:  # a duplicate is harmless: keep one
                chosen.append(item.strip())
        return tuple(chosen)

    @field_validator("action", mode="before")
    @classmethod
    def _action(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str) and value.strip() in ACTIONS:
            return value.strip()
        raise _custom("unknown_action", value=str(value), choices="actions")


class InactivityParams(_Params):
    """No movement in active hours for longer than a limit, or than the learned routine.

    With the routine, the limit of an hour is its usual gap × factor, kept between min_minutes
    and max_minutes: max_minutes stays the longest anyone may go unseen, and min_minutes keeps
    a busy hour's short usual gap (a few minutes) from alarming at every quiet spell.
    """

    kind: ClassVar[RuleKind] = RuleKind.INACTIVITY
    max_minutes: int = Field(ge=5, le=24 * 60)
    use_routine: bool = False
    # The learned usual gap times this factor is the limit, so a normal day does not alert.
    factor: float = Field(1.5, ge=1, le=10, allow_inf_nan=False)
    # Residents leave their room for an hour or more (meals, the lounge): a shorter routine
    # limit alarms on ordinary days (measured on simulated weeks: 0.25 per resident-day at 60).
    min_minutes: int = Field(90, ge=5, le=24 * 60)


class DeviceOfflineParams(_Params):
    """No message from a device for a number of minutes, or the device says it is offline."""

    kind: ClassVar[RuleKind] = RuleKind.DEVICE_OFFLINE
    minutes: int = Field(ge=1, le=MINUTES_PER_WEEK)


def _time_of_day(value: Any) -> Any:
    if isinstance(value, time):
        return f"{value.hour:02d}:{value.minute:02d}"
    if not isinstance(value, str):
        raise _custom("time_of_day")
    match = _TIME_RE.match(value)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise _custom("time_of_day")
    return f"{int(match[1]):02d}:{match[2]}"


class NightExitParams(_Params):
    """A door opened at night: between two local times, or outside the resident's active hours.

    With neither time given, each resident's night is the time outside their active hours, so
    an early riser or a night owl is not alarmed at their normal hours. Doors of no resident
    (a site's) then use DEFAULT_NIGHT.
    """

    kind: ClassVar[RuleKind] = RuleKind.NIGHT_EXIT
    start: str | None = None
    # Validated even when left out, so a start without an end is an error, not a silent default.
    end: str | None = Field(None, validate_default=True)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _times(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return _time_of_day(value)

    @field_validator("end")
    @classmethod
    def _not_empty(cls, value: str | None, info: ValidationInfo) -> str | None:
        start = info.data.get("start")
        if value is not None and value == start:
            raise _custom("same_times")
        # One time without the other is no window: both, or neither (active hours).
        if (value is None) != (start is None) and "start" in info.data:
            raise _custom("both_times")
        return value

    @property
    def from_active_hours(self) -> bool:
        """Whether the night is each resident's time outside their active hours."""
        return self.start is None or self.end is None

    @property
    def start_time(self) -> time:
        """The window's start as a time of day (DEFAULT_NIGHT's for active hours)."""
        return time.fromisoformat(self.start) if self.start else DEFAULT_NIGHT[0]

    @property
    def end_time(self) -> time:
        """The window's end (exclusive) as a time of day (DEFAULT_NIGHT's for active hours)."""
        return time.fromisoformat(self.end) if self.end else DEFAULT_NIGHT[1]

    def window(self, active_hours: tuple[time, time] | None) -> tuple[time, time]:
        """The night as [start, end) local times: the rule's, else outside these active hours."""
        if not self.from_active_hours:
            return self.start_time, self.end_time
        if active_hours is None or active_hours[0] == active_hours[1]:
            return DEFAULT_NIGHT
        active_start, active_end = active_hours
        return active_end, active_start


class BatteryLowParams(_Params):
    """Battery below a percentage; cleared once it is back above it plus a margin."""

    kind: ClassVar[RuleKind] = RuleKind.BATTERY_LOW
    below_pct: int = Field(ge=1, le=100)
    # Battery readings jitter by a percent or two: without a margin the alert would flap.
    hysteresis: int = Field(5, ge=0, le=50)


class DataQualityParams(_Params):
    """A data-quality run failed, for the listed suites (all suites when the list is empty)."""

    kind: ClassVar[RuleKind] = RuleKind.DATA_QUALITY
    suites: tuple[str, ...] = ()

    @field_validator("suites", mode="before")
    @classmethod
    def _suites(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value
        chosen: list[str] = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise _custom("empty_name")
            if len(item.strip()) > MAX_SUITE_NAME:
                raise _custom("name_too_long", max=MAX_SUITE_NAME)
            if item.strip() not in chosen:
                chosen.append(item.strip())
        return tuple(chosen)


AnyParams = (
    ThresholdParams
    | EventParams
    | InactivityParams
    | DeviceOfflineParams
    | NightExitParams
    | BatteryLowParams
    | DataQualityParams
)
SCHEMAS: dict[RuleKind, type[_Params]] = {
    schema.kind: schema
    for schema in (
        ThresholdParams,
        EventParams,
        InactivityParams,
        DeviceOfflineParams,
        NightExitParams,
        BatteryLowParams,
        DataQualityParams,
    )
}

# Where a new rule's form starts: each schema's own defaults, plus a suggested value for the
# settings a schema requires, so a person starts from a working rule and still sees what it checks.
# A threshold starts held for 5 minutes, so one noisy reading does not alarm.
_FORM_SUGGESTIONS: dict[RuleKind, dict[str, Any]] = {
    RuleKind.THRESHOLD: {"for_minutes": 5},
    RuleKind.INACTIVITY: {"max_minutes": 240},
    RuleKind.DEVICE_OFFLINE: {"minutes": 30},
    RuleKind.NIGHT_EXIT: {
        "start": DEFAULT_NIGHT[0].strftime("%H:%M"),
        "end": DEFAULT_NIGHT[1].strftime("%H:%M"),
    },
    RuleKind.BATTERY_LOW: {"below_pct": 15},
}


def form_defaults(kind: RuleKind | str) -> dict[str, Any]:
    """The values a new rule of `kind` starts from in the rule builder."""
    rule_kind = RuleKind(kind)
    values = {
        # As stored (JSON): lists, not the schema's tuples.
        name: list(field.default) if isinstance(field.default, tuple) else field.default
        for name, field in SCHEMAS[rule_kind].model_fields.items()
        if not field.is_required() and field.default is not None
    }
    values.update(_FORM_SUGGESTIONS.get(rule_kind, {}))
    return values


# Pydantic's error types, mapped to the catalogue's wording (rules.errors.*) and its parameters.
_PYDANTIC_KEYS = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "int_parsing": "whole_number",
    "int_type": "whole_number",
    "int_from_float": "whole_number",
    "float_parsing": "number",
    "float_type": "number",
    "finite_number": "number",
    "bool_parsing": "yes_no",
    "bool_type": "yes_no",
    "string_type": "text",
    "list_type": "list",
    "tuple_type": "list",
    "too_short": "choose_one",
    "greater_than_equal": "at_least",
    "greater_than": "more_than",
    "less_than_equal": "at_most",
    "less_than": "less_than",
}
_CTX_NAMES = {"ge": "min", "gt": "min", "le": "max", "lt": "max"}
# Error types raised by the validators above (PydanticCustomError), worded in the catalogue.
_OWN_KEYS = frozenset(
    {
        "unknown_metric",
        "yes_no_metric",
        "choice",
        "unknown_event",
        "unknown_action",
        "time_of_day",
        "empty_name",
        "name_too_long",
        "out_of_range",
        "hysteresis_too_large",
        "same_times",
        "both_times",
    }
)


def _field_label(field: str, language: str) -> str:
    try:
        return translate(f"rules.fields.{field}", language)
    except KeyError:
        return field


def _choices(of: str, language: str) -> str:
    """A list of allowed values, each as people call it with the code to type in brackets."""
    codes: tuple[str, ...]
    if of == "metrics":
        codes, prefix = tuple(m.name for m in METRICS.values() if not m.boolean), "rules.metrics."
    elif of == "events":
        codes, prefix = tuple(e.value for e in EventType), "rules.events."
    elif of == "actions":
        codes, prefix = ACTIONS, "rules.actions."
    elif of == "ops":
        codes, prefix = OPS, "rules.ops."
    else:
        return of
    names = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
    separator = translate("rules.describe.list_separator", language)
    return separator.join(
        f"{translate(prefix + names.get(code, code), language)} ({code})" for code in codes
    )


def _message(key: str, field: str, language: str, params: Mapping[str, Any]) -> str:
    values = {name: _number(v) if isinstance(v, float) else v for name, v in params.items()}
    if "metric" in values and f"rules.metrics.{values['metric']}" in catalogue(
        normalize_language(language)
    ):
        values["metric"] = translate(f"rules.metrics.{values['metric']}", language)
    if "choices" in values:
        values["choices"] = _choices(str(values["choices"]), language)
    return translate(f"rules.errors.{key}", language, field=_field_label(field, language), **values)


def _pydantic_errors(error: ValidationError, language: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for item in error.errors():
        loc = item.get("loc") or ("params",)
        field = str(loc[0])
        kind = item["type"]
        ctx = dict(item.get("ctx") or {})
        if kind in _PYDANTIC_KEYS:
            key = _PYDANTIC_KEYS[kind]
            params = {_CTX_NAMES.get(name, name): value for name, value in ctx.items()}
            params = {name: params[name] for name in ("min", "max") if name in params}
            if key == "unknown_field":
                params = {"name": field}
        elif kind in _OWN_KEYS:
            key, params = kind, ctx
        else:
            key, params = "invalid", {}
        try:
            found.append((field, _message(key, field, language, params)))
        except (KeyError, IndexError):
            found.append((field, _message("invalid", field, language, {})))
    return found


def parse_params(
    kind: RuleKind | str, params: Mapping[str, Any] | None, language: str = "en"
) -> AnyParams:
    """The typed parameters of a rule kind, or RuleParamsError with per-field messages."""
    try:
        rule_kind = RuleKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in RuleKind)
        message = translate("rules.errors.unknown_kind", language, value=str(kind), choices=choices)
        raise RuleParamsError([("kind", message)]) from None
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise RuleParamsError([("params", translate("rules.errors.not_an_object", language))])
    try:
        parsed = SCHEMAS[rule_kind].model_validate(dict(params))
    except ValidationError as error:
        raise RuleParamsError(_pydantic_errors(error, language)) from None
    return parsed  # type: ignore[return-value]


def validate_params(
    kind: RuleKind | str, params: Mapping[str, Any] | None, language: str = "en"
) -> dict[str, Any]:
    """Normalized parameters (defaults filled in, spellings unified), ready to store as JSON."""
    return parse_params(kind, params, language).model_dump(mode="json")
