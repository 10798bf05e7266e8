"""The demo's default rules: quiet on simulated ordinary days, alert on what matters, upgradable."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.rules.backtest import RuleDraft, backtest
from core.rules.engine import evaluate_rules
from core.seed import (
    DEFAULT_RULES,
    PREVIOUS_DEFAULTS,
    offline_rules,
    seed_demo,
    update_default_rules,
)
from core.timeutil import utcnow
from models import (
    Alert,
    AlertRule,
    Reading,
    ResidentRoutine,
    RuleKind,
    ScopeType,
    Severity,
)
from simulator.history import seed_history
from tests.factories import Factory
from tests.integration.test_seed_history import demo_engine  # noqa: F401 - fixture

# What each history scenario may rightly alert on.
SCENARIO_KINDS = {
    "long_inactivity": {RuleKind.INACTIVITY},
    "night_exit": {RuleKind.NIGHT_EXIT},
    "device_offline": {RuleKind.DEVICE_OFFLINE},
    "flapping": {RuleKind.DEVICE_OFFLINE},
    "threshold_flapping": {RuleKind.THRESHOLD},
}
# Alerts per resident and day that no incident explains: at most this many.
QUIET = 0.1


def _spec(name: str) -> dict[str, Any]:
    return next(spec for spec in DEFAULT_RULES if spec["name"] == name)


def _explained(scenarios: list[str], kind: RuleKind, subject: str) -> bool:
    """Whether a scenario of the history (name:target@offset) explains an alert's subject."""
    for text in scenarios:
        name, rest = text.split(":", 1)
        target = rest.split("@", 1)[0]
        if kind not in SCENARIO_KINDS.get(name, set()):
            continue
        # Resident scenarios name the resident's index, device ones the device (sunrise-r07-env).
        if subject == target or subject.startswith(f"sunrise-r{target.zfill(2)}-"):
            return True
    return False


def test_default_rules_are_quiet_on_simulated_ordinary_days(demo_engine: Engine) -> None:  # noqa: F811
    """Two simulated days of 20 residents: every windowed default rule replayed over them."""
    now = utcnow()
    history = seed_history(demo_engine, site_id="sunrise", days=2, seed=3, now=now)
    resident_days = 20 * 2
    with Session(demo_engine) as session:
        rules = session.scalars(
            select(AlertRule).where(AlertRule.kind.not_in([RuleKind.EVENT, RuleKind.DATA_QUALITY]))
        ).all()
        assert {RuleKind(r.kind) for r in rules} >= {
            RuleKind.THRESHOLD,
            RuleKind.INACTIVITY,
            RuleKind.DEVICE_OFFLINE,
            RuleKind.NIGHT_EXIT,
            RuleKind.BATTERY_LOW,
        }
        noisy: dict[str, int] = {}
        for rule in rules:
            draft = RuleDraft(
                RuleKind(rule.kind),
                rule.params,
                scope_type=rule.scope_type,
                site_id=rule.site_id,
                device_type=rule.device_type,
                auto_resolve=rule.auto_resolve,
            )
            result = backtest(session, draft, history.end, days=2)
            unexplained = [
                f
                for f in result.firings
                if f.new_alert
                and history.start <= f.at
                and not _explained(
                    history.scenarios,
                    RuleKind(rule.kind),
                    f.device_id if f.subject_type == "resident" and f.device_id else f.subject_id,
                )
            ]
            noisy[rule.name] = len(unexplained)
    assert sum(noisy.values()) / resident_days <= QUIET, noisy


def test_default_inactivity_catches_three_quiet_hours_routine_or_not(
    db_session: Session, factory: Factory
) -> None:
    spec = _spec("No movement during the day")
    assert spec["params"]["use_routine"] is True  # the learned routine, where there is one
    site = factory.site(timezone="UTC")
    plain, napper, busy = (
        factory.resident(site, active_hours=(time(7, 0), time(21, 30))) for _ in range(3)
    )
    rule = AlertRule(
        name=spec["name"],
        kind=spec["kind"],
        severity=spec["severity"],
        params=spec["params"],
        scope_type=ScopeType.SITE,
        site_id=site.id,
        route=[],
        auto_resolve=True,
    )
    db_session.add(rule)
    now = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    for resident, still in ((plain, 180), (napper, 180), (busy, 100)):
        sensor = factory.device("motion_sensor", resident=resident)
        db_session.add(
            Reading(device_id=sensor.id, metric="motion", ts=now - timedelta(hours=6), value=1)
        )
        db_session.add(
            Reading(
                device_id=sensor.id, metric="motion", ts=now - timedelta(minutes=still), value=1
            )
        )
        db_session.add(Reading(device_id=sensor.id, metric="motion", ts=now, value=0))
    # The napper usually has long gaps at 14:00, the busy resident short ones.
    db_session.add(ResidentRoutine(resident_id=napper.id, hour=14, usual_gap_minutes=200, days=14))
    db_session.add(ResidentRoutine(resident_id=busy.id, hour=14, usual_gap_minutes=50, days=14))
    db_session.flush()
    evaluate_rules(db_session, now)
    found = {
        a.resident_id: a.details
        for a in db_session.scalars(select(Alert).where(Alert.rule_id == rule.id))
    }
    # 3 hours without movement alarm whatever the routine; 100 minutes where 75 is usual.
    assert set(found) == {plain.id, napper.id, busy.id}
    assert found[plain.id]["limit_minutes"] == 150
    assert found[napper.id]["limit_minutes"] == 150
    assert found[busy.id]["limit_minutes"] == 90


def test_default_battery_low_is_a_warning_and_offline_limits_follow_the_device_type() -> None:
    assert _spec("Battery low")["severity"] is Severity.WARNING
    assert _spec("Door opened at night")["params"] == {}
    limits = {spec["device_type"]: spec["params"]["minutes"] for spec in offline_rules()}
    assert limits["panic_button"] == 90 and limits["motion_sensor"] == 15
    assert all(spec["scope_type"] is ScopeType.DEVICE_TYPE for spec in offline_rules())


def _as_earlier_seed(session: Session) -> None:
    """Turn a fresh demo seed's rules back into what the previous seed made."""
    rules = session.scalars(select(AlertRule).order_by(AlertRule.id)).all()
    per_type = [r for r in rules if r.kind is RuleKind.DEVICE_OFFLINE]
    for extra in per_type[1:]:
        session.delete(extra)
    old = per_type[0]
    old.name, old.scope_type, old.device_type = "Device offline", ScopeType.SITE, None
    for rule in rules:
        if rule.name in PREVIOUS_DEFAULTS:
            _kind, severity, params = PREVIOUS_DEFAULTS[rule.name]
            rule.severity, rule.params = severity, params
    session.flush()


def test_reseeding_updates_unchanged_default_rules_only(db_session: Session) -> None:
    seed_demo(db_session)
    _as_earlier_seed(db_session)
    edited = db_session.scalar(select(AlertRule).where(AlertRule.name == "Door opened at night"))
    assert edited is not None
    edited.params = {"start": "23:00", "end": "05:00"}  # an operator's choice
    db_session.flush()

    again = seed_demo(db_session)
    assert not again.created
    assert set(again.rules_updated) == {
        "No movement during the day",
        "Device offline",
        "Battery low",
    }
    rules = {r.name: r for r in db_session.scalars(select(AlertRule))}
    assert (
        rules["No movement during the day"].params == _spec("No movement during the day")["params"]
    )
    assert rules["Battery low"].severity is Severity.WARNING
    assert rules["Door opened at night"].params == {"start": "23:00", "end": "05:00"}
    offline = {
        r.device_type: r.params["minutes"]
        for r in rules.values()
        if r.kind is RuleKind.DEVICE_OFFLINE
    }
    assert offline == {s["device_type"]: s["params"]["minutes"] for s in offline_rules()}
    count = len(rules)

    # Idempotent: a second run finds nothing to update.
    assert update_default_rules(db_session, "sunrise") == []
    assert len(db_session.scalars(select(AlertRule)).all()) == count
