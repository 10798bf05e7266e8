"""Rules and their findings in words, English or Korean, for pages and notifications."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from core.contract.catalogue import METRICS
from core.i18n import plural, translate, translator
from core.rules.params import (
    BatteryLowParams,
    DataQualityParams,
    DeviceOfflineParams,
    EventParams,
    InactivityParams,
    NightExitParams,
    RuleParamsError,
    ThresholdParams,
    parse_params,
)
from models.enums import RuleKind

log = logging.getLogger(__name__)

_OP_KEYS = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
# Units written without a space after the number, as people write them.
_TIGHT_UNITS = frozenset({"%", "°C"})


class RuleLike(Protocol):
    """What describing needs of a rule (an AlertRule fits)."""

    kind: Any
    params: Any


def number(value: float) -> str:
    """120.0 → '120', 38.25 → '38.25'."""
    return str(int(value)) if float(value).is_integer() else f"{float(value):g}"


def amount(metric: str, value: float) -> str:
    """A value with its metric's unit: '120 bpm', '38.5°C', '90%'."""
    unit = METRICS[metric].unit if metric in METRICS else ""
    if not unit or unit == "bool":
        return number(value)
    return f"{number(value)}{unit}" if unit in _TIGHT_UNITS else f"{number(value)} {unit}"


def duration(minutes: float, language: str = "en") -> str:
    """Minutes in words: '5 minutes', '4 hours', '1 h 30 min' (rounded to whole minutes)."""
    total = max(0, round(minutes))
    hours, rest = divmod(total, 60)
    if hours == 0:
        return plural(translator(language), "rules.duration.minutes", total)
    if rest == 0:
        return plural(translator(language), "rules.duration.hours", hours)
    return translate("rules.duration.hours_minutes", language, hours=hours, minutes=rest)


def metric_name(metric: str, language: str = "en") -> str:
    """The metric as people call it ('Heart rate', '심박수'); its code when unknown."""
    try:
        return translate(f"rules.metrics.{metric}", language)
    except KeyError:
        return metric


def _op(op: str, language: str) -> str:
    return translate(f"rules.ops.{_OP_KEYS[op]}", language)


def _join(items: list[str], language: str) -> str:
    return translate("rules.describe.list_separator", language).join(items)


def describe_params(kind: RuleKind | str, params: Mapping[str, Any], language: str = "en") -> str:
    """What a rule of this kind with these parameters watches for, in one line."""
    parsed = parse_params(kind, params, language)
    t = "rules.describe."
    match parsed:
        case ThresholdParams():
            values = {
                "metric": metric_name(parsed.metric, language),
                "op": _op(parsed.op, language),
                "amount": amount(parsed.metric, parsed.value),
            }
            if parsed.for_minutes == 0:
                return translate(t + "threshold_instant", language, **values)
            return translate(
                t + "threshold", language, duration=duration(parsed.for_minutes, language), **values
            )
        case EventParams():
            events = _join(
                [translate(f"rules.events.{e}", language) for e in parsed.event_types], language
            )
            if parsed.action:
                action = translate(f"rules.actions.{parsed.action}", language)
                return translate(t + "event_action", language, events=events, action=action)
            return translate(t + "event", language, events=events)
        case InactivityParams():
            limit = duration(parsed.max_minutes, language)
            if parsed.use_routine:
                return translate(
                    t + "inactivity_routine",
                    language,
                    factor=number(parsed.factor),
                    floor=duration(min(parsed.min_minutes, parsed.max_minutes), language),
                    duration=limit,
                )
            return translate(t + "inactivity", language, duration=limit)
        case DeviceOfflineParams():
            return translate(
                t + "device_offline", language, duration=duration(parsed.minutes, language)
            )
        case NightExitParams():
            if parsed.from_active_hours:
                return translate(t + "night_exit_active_hours", language)
            return translate(t + "night_exit", language, start=parsed.start, end=parsed.end)
        case BatteryLowParams():
            return translate(t + "battery_low", language, pct=parsed.below_pct)
        case DataQualityParams():
            if not parsed.suites:
                return translate(t + "data_quality_any", language)
            return translate(
                t + "data_quality", language, suites=_join(list(parsed.suites), language)
            )
    raise AssertionError(f"no description for {kind}")  # pragma: no cover


def describe_rule(rule: RuleLike, language: str = "en") -> str:
    """A rule in words, e.g. 'Heart rate above 120 bpm for 5 minutes' (ko: '심박수 ... 지속')."""
    try:
        return describe_params(rule.kind, rule.params or {}, language)
    except RuleParamsError as error:
        log.warning("rule %s has invalid parameters: %s", getattr(rule, "id", "?"), error)
        name = getattr(rule, "name", None) or str(rule.kind)
        return translate("rules.describe.invalid", language, name=name)


def describe_finding(kind: RuleKind | str, details: Mapping[str, Any], language: str = "en") -> str:
    """What an alert found, from the details the engine stored (e.g. 'Heart rate 131 bpm: ...')."""
    t = "rules.finding."
    kind = RuleKind(kind)
    if kind is RuleKind.THRESHOLD:
        metric = str(details["metric"])
        return translate(
            t + "threshold",
            language,
            metric=metric_name(metric, language),
            amount=amount(metric, float(details["value"])),
            op=_op(str(details["op"]), language),
            limit=amount(metric, float(details["limit"])),
            duration=duration(float(details["minutes"]), language),
        )
    if kind is RuleKind.INACTIVITY:
        if details.get("setup"):
            return translate(t + "inactivity_setup", language)
        return translate(
            t + "inactivity",
            language,
            duration=duration(float(details["quiet_minutes"]), language),
            limit=duration(float(details["limit_minutes"]), language),
        )
    if kind is RuleKind.DEVICE_OFFLINE:
        silent = duration(float(details.get("silent_minutes") or 0), language)
        if details.get("never_seen"):
            return translate(t + "device_offline_never", language, duration=silent)
        if details.get("status") == "offline":
            return translate(t + "device_offline_status", language, duration=silent)
        return translate(t + "device_offline", language, duration=silent)
    if kind is RuleKind.NIGHT_EXIT:
        return translate(t + "night_exit", language, time=str(details["local_time"]))
    if kind is RuleKind.BATTERY_LOW:
        return translate(t + "battery_low", language, pct=number(float(details["battery_pct"])))
    if kind is RuleKind.DATA_QUALITY:
        return translate(
            t + "data_quality",
            language,
            suite=str(details["suite"]),
            failed=details.get("failed", 0),
            evaluated=plural(
                translator(language), "count.checks", int(details.get("evaluated", 0))
            ),
        )
    raise ValueError(f"no finding text for {kind.value} alerts")
