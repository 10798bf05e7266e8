"""The rule builder's inputs: a rule's name, kind, severity and scope, and each kind's settings.

Widgets only collect what the operator typed; checking is core's (core.use_cases.rules and
core.rules.params), so the page shows the same per-field messages the engine would give.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any

import streamlit as st

from core.contract.catalogue import METRICS, EventType
from core.rules.describe import metric_name
from core.rules.params import ACTIONS, DEFAULT_NIGHT, OPS, form_defaults
from core.use_cases.rules import RuleChoices, RuleInput
from dashboards.components.i18n import language, t
from models import RuleKind, ScopeType, Severity

_OP_KEYS = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
MEASURED = [m.name for m in METRICS.values() if not m.boolean]


def kind_label(kind: RuleKind | str) -> str:
    """A kind of rule as people call it."""
    return t(f"app.rules.kinds.{RuleKind(kind).value}")


def device_type_label(device_type: str) -> str:
    """A device type as people call it."""
    return t(f"app.rules.device_types.{device_type}")


def scope_text(
    scope_type: str, site: str | None, resident: str | None, device_type: str | None
) -> str:
    """What a rule applies to, in words ('Site Sunrise', 'Resident 김영희', 'Wearable devices')."""
    scope = ScopeType(scope_type or ScopeType.SITE)
    if scope is ScopeType.RESIDENT:
        return t("app.rules.scope.resident_text", name=resident or t("app.common.unknown"))
    if scope is ScopeType.DEVICE_TYPE and device_type:
        return t("app.rules.scope.device_type_text", type=device_type_label(device_type))
    if site:
        return t("app.rules.scope.site_text", site=site)
    return t("app.rules.scope.all_sites_text")


def _index(options: list[Any], value: Any, default: int | None = 0) -> int | None:
    return options.index(value) if value in options else default


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _clock(value: Any, fallback: time) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        return fallback


def _label(name: str) -> str:
    return t(f"rules.fields.{name}")


def params_inputs(kind: RuleKind, current: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The settings of one kind of rule, starting from `current`; what was entered, unchecked."""
    k = f"{key}.{kind.value}"
    initial = {**form_defaults(kind), **current}
    if kind is RuleKind.THRESHOLD:
        metric = st.selectbox(
            _label("metric"),
            MEASURED,
            index=_index(MEASURED, current.get("metric")),
            format_func=lambda m: f"{metric_name(m, language())} ({METRICS[m].unit})",
            key=f"{k}.metric",
        )
        op = st.selectbox(
            _label("op"),
            list(OPS),
            index=_index(list(OPS), current.get("op")),
            format_func=lambda o: f"{t('rules.ops.' + _OP_KEYS[o])} ({o})",
            key=f"{k}.op",
        )
        value = st.number_input(
            f"{_label('value')} ({METRICS[metric].unit})",
            value=_float(current.get("value")),
            step=1.0,
            help=t("app.rules.help.value"),
            key=f"{k}.value",
        )
        left, right = st.columns(2)
        for_minutes = left.number_input(
            _label("for_minutes"),
            value=_int(initial.get("for_minutes")),
            step=1,
            help=t("app.rules.help.for_minutes"),
            key=f"{k}.for_minutes",
        )
        hysteresis = right.number_input(
            f"{_label('hysteresis')} ({METRICS[metric].unit})",
            value=_float(initial.get("hysteresis")),
            step=0.5,
            help=t("app.rules.help.hysteresis"),
            key=f"{k}.hysteresis",
        )
        return _present(
            metric=metric, op=op, value=value, for_minutes=for_minutes, hysteresis=hysteresis
        )
    if kind is RuleKind.EVENT:
        events = [e.value for e in EventType]
        chosen = st.multiselect(
            _label("event_types"),
            events,
            default=[e for e in current.get("event_types") or [] if e in events],
            format_func=lambda e: t(f"rules.events.{e}"),
            key=f"{k}.event_types",
        )
        actions: list[str | None] = [None, *ACTIONS]
        action = st.selectbox(
            _label("action"),
            actions,
            index=_index(actions, current.get("action")),
            format_func=lambda a: (
                t("app.rules.no_action") if a is None else t(f"rules.actions.{a}")
            ),
            key=f"{k}.action",
        )
        return {"event_types": chosen, "action": action}
    if kind is RuleKind.INACTIVITY:
        max_minutes = st.number_input(
            _label("max_minutes"),
            value=_int(initial.get("max_minutes")),
            step=15,
            help=t("app.rules.help.max_minutes"),
            key=f"{k}.max_minutes",
        )
        use_routine = st.checkbox(
            _label("use_routine"), value=bool(current.get("use_routine")), key=f"{k}.use_routine"
        )
        factor = st.number_input(
            _label("factor"),
            value=_float(initial.get("factor")),
            step=0.1,
            help=t("app.rules.help.factor"),
            disabled=not use_routine,
            key=f"{k}.factor",
        )
        min_minutes = st.number_input(
            _label("min_minutes"),
            value=_int(initial.get("min_minutes")),
            step=15,
            help=t("app.rules.help.min_minutes"),
            disabled=not use_routine,
            key=f"{k}.min_minutes",
        )
        return _present(
            max_minutes=max_minutes, use_routine=use_routine, factor=factor, min_minutes=min_minutes
        )
    if kind is RuleKind.DEVICE_OFFLINE:
        minutes = st.number_input(
            _label("minutes"),
            value=_int(initial.get("minutes")),
            step=5,
            help=t("app.rules.help.minutes"),
            key=f"{k}.minutes",
        )
        return _present(minutes=minutes)
    if kind is RuleKind.NIGHT_EXIT:
        # Saved without times, the night is each resident's time outside their active hours.
        from_hours = st.checkbox(
            _label("active_hours"),
            value=bool(current) and not current.get("start"),
            help=t("app.rules.help.active_hours"),
            key=f"{k}.active_hours",
        )
        if from_hours:
            return {}
        left, right = st.columns(2)
        start = left.time_input(
            _label("start"),
            value=_clock(initial.get("start"), DEFAULT_NIGHT[0]),
            step=900,
            help=t("app.rules.help.night"),
            key=f"{k}.start",
        )
        end = right.time_input(
            _label("end"),
            value=_clock(initial.get("end"), DEFAULT_NIGHT[1]),
            step=900,
            key=f"{k}.end",
        )
        return {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
    if kind is RuleKind.BATTERY_LOW:
        left, right = st.columns(2)
        below = left.number_input(
            _label("below_pct"),
            value=_int(initial.get("below_pct")),
            step=1,
            help=t("app.rules.help.below_pct"),
            key=f"{k}.below_pct",
        )
        margin = right.number_input(
            _label("hysteresis"),
            value=_int(initial.get("hysteresis")),
            step=1,
            help=t("app.rules.help.battery_hysteresis"),
            key=f"{k}.hysteresis",
        )
        return _present(below_pct=below, hysteresis=margin)
    suites = st.text_input(
        _label("suites"),
        value=", ".join(current.get("suites") or []),
        help=t("app.rules.suites_help"),
        key=f"{k}.suites",
    )
    return {"suites": [s.strip() for s in suites.split(",") if s.strip()]}


def _present(**values: Any) -> dict[str, Any]:
    # An emptied number box is left out, so the check says the setting is required.
    return {name: value for name, value in values.items() if value is not None}


def rule_inputs(
    choices: RuleChoices, current: RuleInput | None, key: str, *, kind_fixed: bool = False
) -> RuleInput:
    """The whole rule: name, kind, severity, scope, auto-resolve and the kind's settings."""
    kinds = list(RuleKind)
    name = st.text_input(
        t("app.rules.field.name"), value=current.name if current else "", key=f"{key}.name"
    )
    left, right = st.columns(2)
    kind = left.selectbox(
        t("app.rules.field.kind"),
        kinds,
        index=_index(kinds, RuleKind(current.kind) if current else RuleKind.THRESHOLD),
        format_func=kind_label,
        disabled=kind_fixed,
        key=f"{key}.kind",
    )
    severities = list(Severity)
    severity = right.selectbox(
        t("app.rules.field.severity"),
        severities,
        index=_index(severities, Severity(current.severity) if current else Severity.WARNING),
        format_func=lambda s: t(f"app.severity.{s.value}"),
        key=f"{key}.severity",
    )
    st.caption(t(f"app.rules.kind_help.{kind.value}"))
    if kind_fixed:
        st.caption(t("app.rules.kind_fixed_note"))
    scopes = list(ScopeType)
    scope = st.radio(
        t("app.rules.field.scope_type"),
        scopes,
        index=_index(scopes, ScopeType(current.scope_type) if current else ScopeType.SITE),
        format_func=lambda s: t(f"app.rules.scope.{s.value}"),
        horizontal=True,
        key=f"{key}.scope_type",
    )
    site_id: str | None = current.site_id if current else None
    resident_id: int | None = None
    device_type: str | None = None
    if scope is ScopeType.RESIDENT:
        residents: list[int | None] = [None, *choices.residents]
        resident_id = st.selectbox(
            t("app.rules.field.resident"),
            residents,
            index=_index(residents, current.resident_id if current else None),
            format_func=lambda r: t("app.rules.choose") if r is None else choices.residents[r],
            key=f"{key}.resident",
        )
    else:
        sites: list[str | None] = [None, *choices.sites]
        if site_id is None and current is None and len(choices.sites) == 1:
            site_id = next(iter(choices.sites))
        site_id = st.selectbox(
            t("app.rules.field.site"),
            sites,
            index=_index(sites, site_id),
            format_func=lambda s: t("app.rules.all_sites") if s is None else choices.sites[s],
            key=f"{key}.site",
        )
        if scope is ScopeType.DEVICE_TYPE:
            types: list[str | None] = [None, *choices.device_types]
            device_type = st.selectbox(
                t("app.rules.field.device_type"),
                types,
                index=_index(types, current.device_type if current else None),
                format_func=lambda d: t("app.rules.choose") if d is None else device_type_label(d),
                key=f"{key}.device_type",
            )
    st.markdown(f"**{t('app.rules.settings')}**")
    same_kind = current is not None and RuleKind(current.kind) is kind
    params = params_inputs(kind, current.params if same_kind and current else {}, key)
    auto_resolve = st.checkbox(
        t("app.rules.field.auto_resolve"),
        value=current.auto_resolve if current else kind is not RuleKind.EVENT,
        key=f"{key}.auto_resolve",
    )
    enabled = current.enabled if current else True
    if current is None:
        enabled = st.checkbox(t("app.rules.field.enabled"), value=True, key=f"{key}.enabled")
    description = st.text_area(
        t("app.rules.field.description"),
        value=(current.description or "") if current else "",
        height=68,
        key=f"{key}.description",
    )
    return RuleInput(
        name=name,
        kind=kind,
        params=params,
        severity=severity,
        scope_type=scope,
        site_id=site_id,
        resident_id=resident_id,
        device_type=device_type,
        auto_resolve=auto_resolve,
        enabled=enabled,
        description=description,
    )


def show_errors(errors: list[tuple[str, str]]) -> None:
    """Each problem as its own message (every message names its setting)."""
    for _field, message in errors:
        st.error(message)
