"""Alert rules for operators: list, check, create, edit, enable, disable, delete, per-resident
overrides, and the backtest of a draft before it is saved.

Only viewers with Permission.MANAGE_RULES (operators, admins) may call these. Every change is
audited with the acting user ("rule.create", "rule.update", "rule.enable", "rule.disable",
"rule.delete", "rule.override.set", "rule.override.remove"). Parameters are checked with the
kind's schema (core.rules.params), so the form can say what is wrong per field, in the viewer's
language.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core import audit
from core.access import Permission, Viewer, acting_user, require
from core.contract.catalogue import DeviceType
from core.errors import IotCareError, NotFoundError
from core.i18n import translate
from core.rules.backtest import DEFAULT_DAYS, MAX_DAYS, BacktestResult, RuleDraft, backtest
from core.rules.describe import describe_params, describe_rule
from core.rules.params import RuleParamsError, validate_params
from core.seed import DEFAULT_ROUTE
from core.timeutil import utcnow
from models import AlertRule, Resident, RuleKind, RuleOverride, ScopeType, Severity, Site

MAX_NAME = 200
# Kinds whose parameters the engine replaces per resident (event rules run in ingest, and
# data-quality rules are about suites, not people).
OVERRIDABLE = frozenset(
    {
        RuleKind.THRESHOLD,
        RuleKind.INACTIVITY,
        RuleKind.DEVICE_OFFLINE,
        RuleKind.NIGHT_EXIT,
        RuleKind.BATTERY_LOW,
    }
)
RULE_COLUMNS = [
    "id",
    "name",
    "kind",
    "severity",
    "scope_type",
    "site_id",
    "resident_id",
    "resident",
    "device_type",
    "enabled",
    "auto_resolve",
    "overrides",
    "what",
    "updated_at",
]
OVERRIDE_COLUMNS = ["id", "resident_id", "resident", "params", "what", "note"]
# Fields an edit may change, as audited.
_EDITABLE = (
    "name",
    "description",
    "params",
    "severity",
    "scope_type",
    "site_id",
    "resident_id",
    "device_type",
    "auto_resolve",
)


class RuleFormError(IotCareError):
    """A rule (or override) that cannot be saved; `errors` holds (field, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__(
            "; ".join(f"{name}: {message}" for name, message in errors),
            key=f"errors.rules.form.{'one' if len(errors) == 1 else 'other'}",
            count=len(errors),
        )


@dataclass(frozen=True)
class RuleInput:
    """What the rule builder submits: a rule's settings, saved or not yet."""

    name: str
    kind: RuleKind | str
    params: Mapping[str, Any]
    severity: Severity | str
    scope_type: ScopeType | str = ScopeType.SITE
    site_id: str | None = None
    resident_id: int | None = None
    device_type: str | None = None
    auto_resolve: bool = False
    enabled: bool = True
    description: str | None = None


@dataclass(frozen=True)
class OverrideView:
    """A per-resident override as the rule's page shows it."""

    id: int
    resident_id: int
    resident: str
    params: dict[str, Any]
    note: str | None


@dataclass(frozen=True)
class RuleView:
    """One rule with its overrides, for the editor."""

    id: int
    name: str
    description: str | None
    kind: RuleKind
    params: dict[str, Any]
    severity: Severity
    scope_type: ScopeType
    site_id: str | None
    resident_id: int | None
    device_type: str | None
    auto_resolve: bool
    enabled: bool
    updated_at: datetime | None
    overrides: list[OverrideView] = field(default_factory=list)

    def as_input(self) -> RuleInput:
        """The rule's settings as the builder's input."""
        return RuleInput(
            name=self.name,
            kind=self.kind,
            params=dict(self.params),
            severity=self.severity,
            scope_type=self.scope_type,
            site_id=self.site_id,
            resident_id=self.resident_id,
            device_type=self.device_type,
            auto_resolve=self.auto_resolve,
            enabled=self.enabled,
            description=self.description,
        )


@dataclass(frozen=True)
class RuleChoices:
    """What the builder offers to choose from: sites, active residents, device types."""

    sites: dict[str, str]  # id -> name
    residents: dict[int, str]  # id -> "name (room)"
    device_types: list[str]
    timezone: str  # the viewer's site's (or the first site's) timezone, for showing times


@dataclass(frozen=True)
class CheckedRule:
    """A rule input after checking: normalized parameters and the resolved scope."""

    kind: RuleKind
    params: dict[str, Any]
    severity: Severity
    scope_type: ScopeType
    site_id: str | None
    resident_id: int | None
    device_type: str | None


def _t(viewer: Viewer, key: str, **params: Any) -> str:
    return translate(key, viewer.language, **params)


def check_rule(
    session: Session, viewer: Viewer, data: RuleInput, *, need_name: bool = True
) -> CheckedRule:
    """The rule's settings checked and normalized; RuleFormError lists every problem.

    A backtest passes need_name=False: a draft may be tried before it has a name.
    """
    require(viewer, Permission.MANAGE_RULES)
    errors: list[tuple[str, str]] = []
    name = (data.name or "").strip()
    if not name and need_name:
        errors.append(("name", _t(viewer, "errors.rules.name_required")))
    elif len(name) > MAX_NAME:
        errors.append(("name", _t(viewer, "errors.rules.name_too_long", max=MAX_NAME)))
    try:
        severity = Severity(data.severity)
    except ValueError:
        errors.append(("severity", _t(viewer, "errors.rules.severity")))
        severity = Severity.WARNING
    try:
        scope = ScopeType(data.scope_type)
    except ValueError:
        errors.append(("scope_type", _t(viewer, "errors.rules.scope")))
        scope = ScopeType.SITE
    site_id, resident_id, device_type = data.site_id or None, None, None
    if site_id is not None and session.get(Site, site_id) is None:
        errors.append(("site_id", _t(viewer, "errors.rules.site_missing")))
    if scope is ScopeType.RESIDENT:
        resident = session.get(Resident, data.resident_id) if data.resident_id else None
        if resident is None or not resident.active:
            errors.append(("resident_id", _t(viewer, "errors.rules.resident_required")))
        else:
            resident_id, site_id = resident.id, resident.site_id
    elif scope is ScopeType.DEVICE_TYPE:
        if data.device_type not in {t.value for t in DeviceType}:
            errors.append(("device_type", _t(viewer, "errors.rules.device_type_required")))
        else:
            device_type = data.device_type
    params: dict[str, Any] = {}
    kind = RuleKind.THRESHOLD
    try:
        kind = RuleKind(data.kind)
        params = validate_params(kind, data.params, viewer.language)
    except ValueError:
        errors.append(("kind", _t(viewer, "errors.rules.kind")))
    except RuleParamsError as error:
        errors.extend(error.errors)
    if errors:
        raise RuleFormError(errors)
    return CheckedRule(kind, params, severity, scope, site_id, resident_id, device_type)


def _rule(session: Session, rule_id: int) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFoundError(f"rule {rule_id} does not exist", key="errors.rules.missing")
    return rule


def _override_views(session: Session, rule_ids: list[int]) -> dict[int, list[OverrideView]]:
    found: dict[int, list[OverrideView]] = {rid: [] for rid in rule_ids}
    if not rule_ids:
        return found
    rows = session.execute(
        select(RuleOverride, Resident.name)
        .join(Resident, Resident.id == RuleOverride.resident_id)
        .where(RuleOverride.rule_id.in_(rule_ids))
        .order_by(Resident.name, RuleOverride.id)
    ).tuples()
    for override, name in rows:
        found[override.rule_id].append(
            OverrideView(
                override.id, override.resident_id, name, dict(override.params or {}), override.note
            )
        )
    return found


def list_rules(session: Session, viewer: Viewer) -> pd.DataFrame:
    """Every rule, by name, with what it does in the viewer's language (columns RULE_COLUMNS)."""
    require(viewer, Permission.MANAGE_RULES)
    counts = dict(
        session.execute(select(RuleOverride.rule_id, func.count()).group_by(RuleOverride.rule_id))
        .tuples()
        .all()
    )
    residents = dict(session.execute(select(Resident.id, Resident.name)).tuples().all())
    rows = []
    for rule in session.scalars(select(AlertRule).order_by(AlertRule.name, AlertRule.id)):
        rows.append(
            {
                "id": rule.id,
                "name": rule.name,
                "kind": RuleKind(rule.kind).value,
                "severity": Severity(rule.severity).value,
                "scope_type": ScopeType(rule.scope_type or ScopeType.SITE).value,
                "site_id": rule.site_id,
                "resident_id": rule.resident_id,
                "resident": residents.get(rule.resident_id) if rule.resident_id else None,
                "device_type": rule.device_type,
                "enabled": bool(rule.enabled),
                "auto_resolve": bool(rule.auto_resolve),
                "overrides": counts.get(rule.id, 0),
                "what": describe_rule(rule, viewer.language),
                "updated_at": rule.updated_at,
            }
        )
    return pd.DataFrame(rows, columns=RULE_COLUMNS)


def get_rule(session: Session, viewer: Viewer, rule_id: int) -> RuleView:
    """One rule and its per-resident overrides; NotFoundError when it does not exist."""
    require(viewer, Permission.MANAGE_RULES)
    rule = _rule(session, rule_id)
    return RuleView(
        id=rule.id,
        name=rule.name,
        description=rule.description,
        kind=RuleKind(rule.kind),
        params=dict(rule.params or {}),
        severity=Severity(rule.severity),
        scope_type=ScopeType(rule.scope_type or ScopeType.SITE),
        site_id=rule.site_id,
        resident_id=rule.resident_id,
        device_type=rule.device_type,
        auto_resolve=bool(rule.auto_resolve),
        enabled=bool(rule.enabled),
        updated_at=rule.updated_at,
        overrides=_override_views(session, [rule.id])[rule.id],
    )


def rule_choices(session: Session, viewer: Viewer) -> RuleChoices:
    """Sites, active residents and device types the builder offers."""
    require(viewer, Permission.MANAGE_RULES)
    sites = list(session.execute(select(Site.id, Site.name, Site.timezone).order_by(Site.name)))
    residents = {
        rid: f"{name} ({room})" if room else name
        for rid, name, room in session.execute(
            select(Resident.id, Resident.name, Resident.room)
            .where(Resident.active.is_(True))
            .order_by(Resident.name, Resident.id)
        )
    }
    zones = {site_id: tz for site_id, _, tz in sites}
    timezone = zones.get(viewer.site_id or "") or (sites[0][2] if sites else "UTC")
    return RuleChoices(
        sites={site_id: name for site_id, name, _ in sites},
        residents=residents,
        device_types=[t.value for t in DeviceType],
        timezone=timezone,
    )


def describe_draft(viewer: Viewer, kind: RuleKind | str, params: Mapping[str, Any]) -> str:
    """What a rule with these parameters does, in the viewer's language (RuleParamsError if bad)."""
    require(viewer, Permission.MANAGE_RULES)
    return describe_params(kind, params, viewer.language)


def _stored(checked: CheckedRule) -> dict[str, Any]:
    return {
        "params": checked.params,
        "severity": checked.severity,
        "scope_type": checked.scope_type,
        "site_id": checked.site_id,
        "resident_id": checked.resident_id,
        "device_type": checked.device_type,
    }


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def create_rule(session: Session, viewer: Viewer, data: RuleInput) -> int:
    """Save a new rule (audited "rule.create"); its id. RuleFormError when settings are wrong."""
    checked = check_rule(session, viewer, data)
    user = acting_user(session, viewer)
    rule = AlertRule(
        name=data.name.strip(),
        description=(data.description or "").strip() or None,
        kind=checked.kind,
        auto_resolve=bool(data.auto_resolve),
        enabled=bool(data.enabled),
        route=copy.deepcopy(DEFAULT_ROUTE),
        created_by=user.id,
        **_stored(checked),
    )
    session.add(rule)
    session.flush()
    audit.record(
        session,
        user,
        "rule.create",
        "rule",
        rule.id,
        name=rule.name,
        kind=checked.kind.value,
        params=checked.params,
        severity=checked.severity.value,
        scope_type=checked.scope_type.value,
        enabled=rule.enabled,
    )
    return rule.id


def update_rule(session: Session, viewer: Viewer, rule_id: int, data: RuleInput) -> list[str]:
    """Save changes to a rule (audited "rule.update" with before and after); the changed fields.

    The kind of a saved rule does not change (its alerts and overrides are of that kind).
    """
    require(viewer, Permission.MANAGE_RULES)
    rule = _rule(session, rule_id)
    if RuleKind(data.kind) is not RuleKind(rule.kind):
        raise RuleFormError([("kind", _t(viewer, "errors.rules.kind_fixed"))])
    checked = check_rule(session, viewer, data)
    user = acting_user(session, viewer)
    wanted = {
        "name": data.name.strip(),
        "description": (data.description or "").strip() or None,
        "auto_resolve": bool(data.auto_resolve),
        **_stored(checked),
    }
    changes: dict[str, list[Any]] = {}
    for name in _EDITABLE:
        before, after = _plain(getattr(rule, name)), _plain(wanted[name])
        if before != after:
            changes[name] = [before, after]
            setattr(rule, name, wanted[name])
    if changes:
        rule.updated_at = utcnow()
        audit.record(session, user, "rule.update", "rule", rule.id, name=rule.name, changes=changes)
        session.flush()
    return list(changes)


def set_rule_enabled(session: Session, viewer: Viewer, rule_id: int, enabled: bool) -> bool:
    """Enable or disable a rule (audited "rule.enable" / "rule.disable"); whether it changed."""
    require(viewer, Permission.MANAGE_RULES)
    rule = _rule(session, rule_id)
    user = acting_user(session, viewer)
    if bool(rule.enabled) == enabled:
        return False
    rule.enabled = enabled
    rule.updated_at = utcnow()
    action = "rule.enable" if enabled else "rule.disable"
    audit.record(session, user, action, "rule", rule.id, name=rule.name)
    session.flush()
    return True


def delete_rule(session: Session, viewer: Viewer, rule_id: int) -> None:
    """Delete a rule and its overrides (audited "rule.delete" with its settings).

    Its past alerts stay, no longer linked to a rule; disabling keeps the rule instead.
    """
    require(viewer, Permission.MANAGE_RULES)
    rule = _rule(session, rule_id)
    user = acting_user(session, viewer)
    audit.record(
        session,
        user,
        "rule.delete",
        "rule",
        rule.id,
        name=rule.name,
        kind=RuleKind(rule.kind).value,
        params=rule.params,
        severity=Severity(rule.severity).value,
    )
    # Explicitly, not by the foreign key's cascade: SQLite enforces it only when asked to.
    session.execute(delete(RuleOverride).where(RuleOverride.rule_id == rule.id))
    session.delete(rule)
    session.flush()


def set_override(
    session: Session,
    viewer: Viewer,
    rule_id: int,
    resident_id: int,
    params: Mapping[str, Any],
    note: str | None = None,
) -> int:
    """Give a resident their own parameters for a rule (audited "rule.override.set"); its id.

    Only the settings that differ from the rule's are stored, so later changes to the rule's
    other settings still apply to the resident. RuleFormError when the result is not valid.
    """
    require(viewer, Permission.MANAGE_RULES)
    rule = _rule(session, rule_id)
    kind = RuleKind(rule.kind)
    if kind not in OVERRIDABLE:
        raise RuleFormError([("kind", _t(viewer, "errors.rules.no_overrides"))])
    resident = session.get(Resident, resident_id)
    if resident is None or not resident.active:
        raise RuleFormError([("resident_id", _t(viewer, "errors.rules.resident_required"))])
    base = dict(rule.params or {})
    try:
        merged = validate_params(kind, {**base, **params}, viewer.language)
    except RuleParamsError as error:
        raise RuleFormError(error.errors) from None
    differing = {name: value for name, value in merged.items() if base.get(name) != value}
    if not differing:
        raise RuleFormError([("params", _t(viewer, "errors.rules.override_same"))])
    user = acting_user(session, viewer)
    override = session.scalar(
        select(RuleOverride).where(
            RuleOverride.rule_id == rule.id, RuleOverride.resident_id == resident.id
        )
    )
    before = dict(override.params or {}) if override is not None else None
    if override is None:
        override = RuleOverride(rule_id=rule.id, resident_id=resident.id)
        session.add(override)
    override.params = differing
    override.note = (note or "").strip() or None
    session.flush()
    audit.record(
        session,
        user,
        "rule.override.set",
        "rule",
        rule.id,
        resident_id=resident.id,
        resident=resident.name,
        before=before,
        params=differing,
    )
    return override.id


def remove_override(session: Session, viewer: Viewer, override_id: int) -> None:
    """Remove a resident's override: the rule's own parameters apply again (audited)."""
    require(viewer, Permission.MANAGE_RULES)
    override = session.get(RuleOverride, override_id)
    if override is None:
        raise NotFoundError(
            f"override {override_id} does not exist", key="errors.rules.override_missing"
        )
    user = acting_user(session, viewer)
    audit.record(
        session,
        user,
        "rule.override.remove",
        "rule",
        override.rule_id,
        resident_id=override.resident_id,
        params=override.params,
    )
    session.delete(override)
    session.flush()


def describe_override(
    viewer: Viewer,
    kind: RuleKind | str,
    rule_params: Mapping[str, Any],
    override: Mapping[str, Any],
) -> str:
    """What the rule does for a resident with this override, in the viewer's language."""
    require(viewer, Permission.MANAGE_RULES)
    try:
        return describe_params(kind, {**rule_params, **override}, viewer.language)
    except RuleParamsError:
        return _t(viewer, "app.rules.override_invalid")


def backtest_rule(
    session: Session,
    viewer: Viewer,
    data: RuleInput,
    *,
    days: int = DEFAULT_DAYS,
    rule_id: int | None = None,
    now: datetime | None = None,
) -> BacktestResult:
    """How often this draft would have fired over the last `days` (1..MAX_DAYS) of stored data.

    Nothing is saved. With `rule_id`, the saved rule's per-resident overrides are replayed too.
    """
    checked = check_rule(session, viewer, data, need_name=False)
    if not 1 <= days <= MAX_DAYS:
        raise RuleFormError([("days", _t(viewer, "errors.rules.days", max=MAX_DAYS))])
    overrides: dict[int, dict[str, Any]] = {}
    if rule_id is not None and checked.kind in OVERRIDABLE:
        for override in session.scalars(
            select(RuleOverride).where(RuleOverride.rule_id == rule_id)
        ):
            overrides[override.resident_id] = dict(override.params or {})
    draft = RuleDraft(
        kind=checked.kind,
        params=checked.params,
        scope_type=checked.scope_type,
        site_id=checked.site_id,
        resident_id=checked.resident_id,
        device_type=checked.device_type,
        auto_resolve=bool(data.auto_resolve),
        overrides=overrides,
    )
    return backtest(session, draft, now or utcnow(), days=days)
