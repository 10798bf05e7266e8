"""The backtest predicts the engine: over the same seeded week, the same firings at the same ticks.

A demo site gets a week of simulated history (ingest's own code, incidents included). Fresh
copies of the default windowed rules (and a few varied ones) are then judged twice over that
week: by the engine, ticking over the replayed time (each tick sees only the data stored up to
it), and by the backtest, stepping at the same ticks. Both must fire for the same rule and
subject, as a new alert or a repeat, at the same tick, and resolve as often.

Device offline and battery are left out: the engine reads those from the registry as it is now
(last seen, status, battery), which a replay over the past cannot show it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from core import schema
from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.db import make_engine
from core.rules.backtest import RuleDraft, backtest
from core.rules.engine import evaluate_rules
from core.seed import seed_demo
from core.timeutil import utcnow
from models import Alert, AlertRule, RuleKind, ScopeType, Severity
from simulator.history import seed_history
from tests.conftest import make_test_settings

DAYS = 7
STEP = timedelta(minutes=30)
COMPARED = (RuleKind.THRESHOLD, RuleKind.INACTIVITY, RuleKind.NIGHT_EXIT)

Fired = tuple[str, str, datetime]  # (dedupe key, "open" or "repeat", tick)


@pytest.fixture
def seeded_week(empty_database: str, tmp_path: Path) -> Iterator[tuple[Engine, datetime]]:
    """A demo site with a week of history; the end of the week (a whole hour)."""
    engine = make_engine(make_test_settings(tmp_path, database_url=empty_database))
    schema.upgrade(engine)
    with Session(engine) as session, session.begin():
        seed_demo(session, timezone="Asia/Seoul")
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    result = seed_history(engine, site_id="sunrise", days=DAYS, seed=11, now=now)
    assert result.readings > 0 and result.end == now
    yield engine, now
    engine.dispose()


# Drawn by a seeded loop around the simulated vitals (heart rate 48-118, SpO2 94-99, body
# temperature 36.2-37.2), so the week has sustained, flapping and hysteresis-held episodes.
VITALS = (
    ("heart_rate", ">", (80.0, 85.0, 95.0), (0.0, 3.0, 5.0)),
    ("heart_rate", "<", (52.0, 55.0), (0.0, 2.0)),
    ("spo2", "<", (95.0, 96.0), (0.0, 1.0)),
    ("body_temp_c", ">=", (36.9, 37.0), (0.0, 0.2)),
)
RANDOM_THRESHOLDS = 4


def _rule(template: AlertRule | None, **fields: object) -> AlertRule:
    """A new enabled rule: the template's scope and severity, with `fields` over them."""
    base: dict[str, object] = {
        "severity": template.severity if template else Severity.WARNING,
        "scope_type": template.scope_type if template else ScopeType.SITE,
        "site_id": template.site_id if template else None,
        "resident_id": template.resident_id if template else None,
        "device_type": template.device_type if template else None,
        "enabled": True,
    }
    return AlertRule(**{**base, **fields})


def _copies(session: Session, rng: random.Random) -> list[AlertRule]:
    """Fresh rules (no alert yet): the defaults, others drawn around the vitals; the rest off."""
    defaults = session.scalars(
        select(AlertRule).where(AlertRule.kind.in_(COMPARED)).order_by(AlertRule.id)
    ).all()
    session.execute(update(AlertRule).values(enabled=False))
    rules = []
    for rule in defaults:
        fields = {"name": rule.name, "kind": rule.kind, "params": dict(rule.params or {})}
        rules.append(_rule(rule, **fields, auto_resolve=rule.auto_resolve))
    for n in range(RANDOM_THRESHOLDS):
        metric, op, values, margins = rng.choice(VITALS)
        params = {
            "metric": metric,
            "op": op,
            "value": rng.choice(values),
            "for_minutes": rng.choice([0, 5, 10, 30]),
            "hysteresis": rng.choice(margins),
        }
        name = f"drawn {n}: {metric} {op} {params['value']}"
        rules.append(
            _rule(None, name=name, kind=RuleKind.THRESHOLD, params=params, auto_resolve=n % 2 == 0)
        )
    inactivity = {"max_minutes": rng.choice([60, 90, 120]), "use_routine": False}
    rules.append(_rule(None, name="drawn quiet", kind=RuleKind.INACTIVITY, params=inactivity))
    session.add_all(rules)
    session.flush()
    return rules


def _engine_firings(
    session: Session, start: datetime, end: datetime
) -> tuple[set[Fired], Counter[int]]:
    """Tick the engine every STEP over (start, end]: what opened or repeated, and resolutions."""
    fired: set[Fired] = set()
    resolved: Counter[int] = Counter()
    now = start + STEP
    while now <= end:
        result = evaluate_rules(session, now, kinds=COMPARED)
        for transition, ids in (("open", result.opened), ("repeat", result.repeated)):
            for alert_id in ids:
                alert = session.get(Alert, alert_id)
                assert alert is not None
                if alert.rule_id is not None:  # not a setup notice (no motion data yet)
                    fired.add((alert.dedupe_key, transition, now))
        for alert_id in result.resolved:
            alert = session.get(Alert, alert_id)
            assert alert is not None
            if alert.rule_id is not None:
                resolved[alert.rule_id] += 1
        now += STEP
    return fired, resolved


def _backtest_firings(
    session: Session, rules: list[AlertRule], end: datetime
) -> tuple[set[Fired], Counter[int]]:
    fired: set[Fired] = set()
    resolved: Counter[int] = Counter()
    for rule in rules:
        draft = RuleDraft.of(session, rule)
        result = backtest(session, draft, end, days=DAYS, step=STEP)
        for f in result.firings:
            key = lifecycle.dedupe_key(rule.id, rule.kind, Subject(f.subject_type, f.subject_id))
            fired.add((key, "open" if f.new_alert else "repeat", f.at))
        resolved[rule.id] += result.resolved
    return fired, +resolved


@pytest.mark.timeout(900)  # a week of history, then 336 engine ticks and a dozen replays
def test_the_backtest_fires_as_the_engine_does_over_a_seeded_week(
    seeded_week: tuple[Engine, datetime],
) -> None:
    engine, end = seeded_week
    start = end - timedelta(days=DAYS)
    with Session(engine) as session, session.begin():
        rules = _copies(session, random.Random(11))
        predicted, predicted_resolved = _backtest_firings(session, rules, end)
        fired, resolved = _engine_firings(session, start, end)
    assert fired, "the seeded week should make the rules fire"
    assert sorted(predicted - fired) == [] and sorted(fired - predicted) == []
    assert predicted_resolved == resolved
