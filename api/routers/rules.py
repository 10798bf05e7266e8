"""Alert rules for operators: list, read, create, update, and backtest a draft on stored data.

Thin: core.use_cases.rules checks the role (managing rules), validates the parameters with the
rule builder's own checks (every problem named, in the token user's language), and audits every
change ("rule.create", "rule.update", "rule.enable", "rule.disable") as the Rules page does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.auth import Reader, Session_, Writer
from api.frames import plain
from api.ids import RuleId
from api.params import MAX_ID, NO_NUL_PATTERN, SITE_ID_PATTERN, beyond_schema
from core.contract.catalogue import DeviceType
from core.rules.backtest import DEFAULT_DAYS, MAX_DAYS, BacktestResult
from core.use_cases import rules as q
from models import RuleKind, ScopeType, Severity

_CHECKS = (
    "params suit the kind (e.g. threshold: a known metric, an operator, a value); the site, "
    "resident or device type the scope names exists; a saved rule keeps its kind."
)

router = APIRouter(prefix="/rules", tags=["rules"])

# Firings listed in a backtest answer; the counts always cover all of them.
MAX_FIRINGS = 500


class RuleSummary(BaseModel):
    """A rule as the list shows it, with what it does in the token user's language."""

    id: int
    name: str
    kind: RuleKind
    severity: Severity
    scope_type: ScopeType
    site_id: str | None
    resident_id: int | None
    resident: str | None
    device_type: str | None
    enabled: bool
    auto_resolve: bool
    overrides: int = Field(description="How many residents have their own settings.")
    what: str
    updated_at: datetime | None


class Override(BaseModel):
    """A resident's own settings of a rule."""

    id: int
    resident_id: int
    resident: str
    params: dict[str, Any]
    note: str | None


class RuleOut(BaseModel):
    """One rule with its per-resident overrides."""

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
    overrides: list[Override]


class RuleIn(BaseModel):
    """A rule's settings (as the rule builder takes them; `params` depend on the kind)."""

    name: str = Field(max_length=200, pattern=NO_NUL_PATTERN)
    kind: RuleKind
    params: dict[str, Any] = Field(
        description="The kind's parameters, e.g. threshold: metric, op, value, for_minutes."
    )
    severity: Severity
    scope_type: ScopeType = ScopeType.SITE
    site_id: str | None = Field(None, pattern=SITE_ID_PATTERN, description="Null: every site.")
    resident_id: int | None = Field(None, ge=1, le=MAX_ID, description="With scope_type resident.")
    device_type: DeviceType | None = Field(None, description="With scope_type device_type.")
    auto_resolve: bool = False
    enabled: bool = True
    description: str | None = Field(None, max_length=2000, pattern=NO_NUL_PATTERN)

    def as_input(self) -> q.RuleInput:
        """The core's input."""
        return q.RuleInput(**self.model_dump(mode="json"))


class BacktestIn(RuleIn):
    """A draft to replay over the last `days` of stored data (nothing is saved)."""

    name: str = Field(
        "", max_length=200, pattern=NO_NUL_PATTERN, description="Optional for a draft."
    )
    days: int = Field(DEFAULT_DAYS, ge=1, le=MAX_DAYS)
    rule_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Replay this saved rule's overrides too."
    )


class Firing(BaseModel):
    """One time the draft would have fired."""

    subject_type: str
    subject_id: str
    subject: str
    at: datetime
    new_alert: bool = Field(description="False: a repeat counted on the alert still open.")
    device_id: str | None


class BacktestOut(BaseModel):
    """What the replay found and how much data it saw."""

    kind: RuleKind
    start: datetime
    end: datetime
    step_seconds: float
    fired: int
    new_alerts: int
    resolved: int
    subjects: int
    data_points: int
    elapsed_seconds: float
    firings: list[Firing] = Field(description=f"The first {MAX_FIRINGS} firings, in time order.")


def _out(session: Session_, token: Reader | Writer, rule_id: int) -> RuleOut:
    view = q.get_rule(session, token.viewer, rule_id)
    fields = {name: getattr(view, name) for name in RuleOut.model_fields if name != "overrides"}
    overrides = [
        Override(
            id=o.id, resident_id=o.resident_id, resident=o.resident, params=o.params, note=o.note
        )
        for o in view.overrides
    ]
    return RuleOut(**fields, overrides=overrides)


def _backtest_out(result: BacktestResult) -> BacktestOut:
    firings = result.frame().sort_values("at", kind="stable").head(MAX_FIRINGS)
    return BacktestOut(
        kind=result.kind,
        start=result.start,
        end=result.end,
        step_seconds=result.step.total_seconds(),
        fired=result.fired,
        new_alerts=result.new_alerts,
        resolved=result.resolved,
        subjects=result.subjects,
        data_points=result.data_points,
        elapsed_seconds=result.elapsed_seconds,
        firings=[
            Firing(**{k: plain(v) for k, v in row.items()}) for row in firings.to_dict("records")
        ],
    )


@router.get("", summary="List rules")
def list_rules(session: Session_, token: Reader) -> list[RuleSummary]:
    """Every rule, by name (needs the operator or admin role)."""
    frame = q.list_rules(session, token.viewer)
    return [
        RuleSummary(**{k: plain(v) for k, v in row.items()}) for row in frame.to_dict("records")
    ]


@router.get("/{rule_id}", summary="Get a rule")
def get_rule(rule_id: RuleId, session: Session_, token: Reader) -> RuleOut:
    """One rule with its per-resident overrides (404 when missing)."""
    return _out(session, token, rule_id)


@router.post("", summary="Create a rule", status_code=201, openapi_extra=beyond_schema(_CHECKS))
def create_rule(body: RuleIn, session: Session_, token: Writer) -> RuleOut:
    """Save a new rule (audited); 422 lists every setting that is wrong."""
    rule_id = q.create_rule(session, token.viewer, body.as_input())
    session.commit()
    return _out(session, token, rule_id)


@router.put("/{rule_id}", summary="Update a rule", openapi_extra=beyond_schema(_CHECKS))
def update_rule(rule_id: RuleId, body: RuleIn, session: Session_, token: Writer) -> RuleOut:
    """Replace a rule's settings (its kind stays); enabling or disabling is audited apart."""
    q.update_rule(session, token.viewer, rule_id, body.as_input())
    q.set_rule_enabled(session, token.viewer, rule_id, body.enabled)
    session.commit()
    return _out(session, token, rule_id)


@router.post("/backtest", summary="Backtest a rule draft", openapi_extra=beyond_schema(_CHECKS))
def backtest(body: BacktestIn, session: Session_, token: Reader) -> BacktestOut:
    """How often the draft would have fired over the last `days` of stored data."""
    draft = RuleIn.model_validate(body.model_dump(exclude={"days", "rule_id"}))
    result = q.backtest_rule(
        session, token.viewer, draft.as_input(), days=body.days, rule_id=body.rule_id
    )
    return _backtest_out(result)
