"""The Rules page: the rule builder, its live description, validation, backtest and audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from core.contract.catalogue import DeviceType
from core.rules.params import validate_params
from core.seed import DEFAULT_RULES, device_id
from core.timeutil import utcnow
from models import (
    AlertRule,
    AuditEntry,
    Reading,
    Resident,
    RuleKind,
    RuleOverride,
    ScopeType,
    Severity,
)
from tests.dashboards.conftest import AppDatabase, no_exception, texts

PAGE = "rules"
PICK = "rules.pick"
NEW = "rules.edit.0"


def add_rule(app_db: AppDatabase, name: str, **params: object) -> int:
    """A threshold rule of the test's own, so the seeded rules stay as they are."""
    values = {"metric": "heart_rate", "op": ">", "value": 120, "for_minutes": 5, **params}
    with app_db.session() as session:
        rule = AlertRule(
            name=name,
            kind=RuleKind.THRESHOLD,
            params=validate_params(RuleKind.THRESHOLD, values),
            severity=Severity.WARNING,
            scope_type=ScopeType.SITE,
            site_id=app_db.site_id,
            route=[],
            auto_resolve=True,
        )
        session.add(rule)
        session.commit()
        return rule.id


def last_audit_id(app_db: AppDatabase) -> int:
    with app_db.session() as session:
        return session.scalar(select(func.max(AuditEntry.id))) or 0


def audit_actions(app_db: AppDatabase, rule_id: int, after: int = 0) -> list[tuple[str, str]]:
    """What was audited about this rule (SQLite may reuse a deleted rule's id: `after` an entry)."""
    with app_db.session() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.actor_name)
            .where(
                AuditEntry.target_type == "rule",
                AuditEntry.target_id == str(rule_id),
                AuditEntry.id > after,
            )
            .order_by(AuditEntry.id)
        )
        return [tuple(row) for row in rows]


def open_rule(open_app, rule_id: int, username: str = "operator"):
    at = open_app(username, page=PAGE)
    at.selectbox(key=PICK).set_value(rule_id).run()
    no_exception(at)
    return at


@pytest.mark.parametrize("username", ["operator", "admin"])
def test_operators_and_admins_see_every_rule_in_words(open_app, username) -> None:
    at = open_app(username, page=PAGE)
    no_exception(at)
    table = at.dataframe[0].value
    names = set(table["Rule"])
    assert {spec["name"] for spec in DEFAULT_RULES} <= names
    assert "Heart rate above 120 bpm for 5 minutes" in set(table["What it does"])
    assert "Measurement beyond a limit" in set(table["Kind"])
    assert "New rule" in texts(at)


def test_a_caregiver_cannot_open_the_rules_page(open_app) -> None:
    at = open_app("caregiver1")
    try:
        at.switch_page(f"app_pages/{PAGE}.py").run()
    except ValueError:
        return  # not even registered for this role
    assert "권한이 없습니다" in texts(at)
    assert not at.dataframe


def test_the_page_speaks_korean(open_app) -> None:
    at = open_app("operator", page=PAGE)
    at.session_state["iotcare.language"] = "ko"
    at.run()
    no_exception(at)
    table = at.dataframe[0].value
    assert "심박수" in " ".join(table["하는 일"])
    assert "규칙" in texts(at)


def test_create_a_rule_with_the_form_says_what_it_does_and_audits(open_app, app_db) -> None:
    at = open_app("operator", page=PAGE)
    at.text_input(key=f"{NEW}.name").input("Very high heart rate")
    at.number_input(key=f"{NEW}.threshold.value").set_value(150.0)
    at.number_input(key=f"{NEW}.threshold.for_minutes").set_value(10)
    at.run()
    no_exception(at)
    assert "Heart rate above 150 bpm for 10 minutes" in texts(at)
    mark = last_audit_id(app_db)
    at.button(key=f"{NEW}.save").click().run()
    no_exception(at)
    assert "Rule “Very high heart rate” created." in texts(at)
    operator_id = app_db.user("operator").id
    with app_db.session() as session:
        rule = session.scalar(select(AlertRule).where(AlertRule.name == "Very high heart rate"))
        assert rule is not None
        assert rule.params == {
            "metric": "heart_rate",
            "op": ">",
            "value": 150.0,
            "for_minutes": 10,
            "hysteresis": 0.0,
        }
        assert rule.enabled and rule.site_id == app_db.site_id
        assert rule.created_by == operator_id
        assert rule.route  # new rules notify along the default route
    assert audit_actions(app_db, rule.id, mark) == [("rule.create", "operator")]
    assert at.selectbox(key=PICK).value == rule.id  # the new rule is open for editing


def test_the_form_says_what_is_wrong_and_saves_nothing(open_app, app_db) -> None:
    with app_db.session() as session:
        before = session.scalar(select(func.count()).select_from(AlertRule))
    at = open_app("operator", page=PAGE)
    at.number_input(key=f"{NEW}.threshold.value").set_value(300.0)
    at.run()
    assert "Limit for Heart rate must be between 20 and 250 bpm." in texts(at)
    at.button(key=f"{NEW}.save").click().run()
    no_exception(at)
    shown = texts(at)
    assert "Give the rule a name." in shown
    assert "Limit for Heart rate must be between 20 and 250 bpm." in shown
    at.radio(key=f"{NEW}.scope_type").set_value(ScopeType.RESIDENT).run()
    at.text_input(key=f"{NEW}.name").input("Some rule")
    at.button(key=f"{NEW}.save").click().run()
    assert "Choose the resident the rule applies to." in texts(at)
    with app_db.session() as session:
        assert session.scalar(select(func.count()).select_from(AlertRule)) == before


def test_every_kind_has_a_form_that_describes_it(open_app) -> None:
    at = open_app("operator", page=PAGE)
    expected = {
        RuleKind.EVENT: "Choose at least one item for Events.",
        RuleKind.INACTIVITY: "No movement for 4 hours during active hours",
        RuleKind.DEVICE_OFFLINE: "Device silent for 30 minutes or reporting offline",
        RuleKind.NIGHT_EXIT: "Door opened between 22:00 and 06:00",
        RuleKind.BATTERY_LOW: "Battery below 15%",
        RuleKind.DATA_QUALITY: "A data-quality check failed (any suite)",
    }
    for kind, sentence in expected.items():
        at.selectbox(key=f"{NEW}.kind").set_value(kind).run()
        no_exception(at)
        assert sentence in texts(at), kind
    at.selectbox(key=f"{NEW}.kind").set_value(RuleKind.EVENT).run()
    at.multiselect(key=f"{NEW}.event.event_types").select("fall_detected").run()
    assert "Device reports: fall detected" in texts(at)


def test_edit_turn_off_and_on_and_every_change_is_audited(open_app, app_db) -> None:
    mark = last_audit_id(app_db)
    rule_id = add_rule(app_db, "Editable rule")
    at = open_rule(open_app, rule_id)
    key = f"rules.edit.{rule_id}"
    assert "This rule is on" in texts(at)
    at.number_input(key=f"{key}.threshold.value").set_value(130.0)
    at.selectbox(key=f"{key}.severity").set_value(Severity.CRITICAL)
    at.button(key=f"{key}.save").click().run()
    no_exception(at)
    assert "Changes to “Editable rule” saved." in texts(at)
    at.button(key=f"{key}.toggle").click().run()
    assert "Rule “Editable rule” is off." in texts(at)
    assert "This rule is off" in texts(at)
    at.button(key=f"{key}.toggle").click().run()
    assert "Rule “Editable rule” is on." in texts(at)
    at.button(key=f"{key}.save").click().run()
    assert "Nothing to save" in texts(at)
    with app_db.session() as session:
        rule = session.get(AlertRule, rule_id)
        assert rule.params["value"] == 130.0 and rule.severity is Severity.CRITICAL
        assert rule.enabled
        entry = session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "rule.update", AuditEntry.target_id == str(rule_id)
            )
        )
        assert entry.details["changes"]["severity"] == ["warning", "critical"]
    assert audit_actions(app_db, rule_id, mark) == [
        ("rule.update", "operator"),
        ("rule.disable", "operator"),
        ("rule.enable", "operator"),
    ]


def test_delete_asks_for_confirmation(open_app, app_db) -> None:
    mark = last_audit_id(app_db)
    rule_id = add_rule(app_db, "Rule to delete")
    at = open_rule(open_app, rule_id, "admin")
    key = f"rules.edit.{rule_id}"
    at.button(key=f"{key}.delete").click().run()
    assert "Tick the box to confirm first." in texts(at)
    with app_db.session() as session:
        assert session.get(AlertRule, rule_id) is not None
    at.checkbox(key=f"{key}.confirm").check()
    at.button(key=f"{key}.delete").click().run()
    no_exception(at)
    assert "Rule “Rule to delete” deleted." in texts(at)
    assert at.selectbox(key=PICK).value == 0
    with app_db.session() as session:
        assert session.get(AlertRule, rule_id) is None
    assert audit_actions(app_db, rule_id, mark) == [("rule.delete", "admin")]


def test_a_resident_gets_their_own_limit_and_loses_it_again(open_app, app_db) -> None:
    mark = last_audit_id(app_db)
    rule_id = add_rule(app_db, "Rule with overrides")
    at = open_rule(open_app, rule_id)
    key = f"rules.edit.{rule_id}"
    assert "No resident has their own settings for this rule." in texts(at)
    with app_db.session() as session:
        rid = session.scalar(
            select(Resident.id).where(Resident.site_id == app_db.site_id).order_by(Resident.id)
        )
    at.selectbox(key=f"{key}.override.resident").set_value(rid).run()
    no_exception(at)
    at.number_input(key=f"{key}.override.{rid}.threshold.value").set_value(140.0)
    at.text_input(key=f"{key}.override.{rid}.note").input("Athlete: high resting pulse")
    at.button(key=f"{key}.override.add").click().run()
    no_exception(at)
    with app_db.session() as session:
        (override,) = session.scalars(select(RuleOverride).where(RuleOverride.rule_id == rule_id))
        assert override.resident_id == rid
        assert override.params == {"value": 140.0}  # only what differs from the rule
        assert override.note == "Athlete: high resting pulse"
    shown = texts(at)
    assert "Heart rate above 140 bpm for 5 minutes" in shown
    at.button(key=f"{key}.override.remove.{override.id}").click().run()
    no_exception(at)
    with app_db.session() as session:
        assert session.get(RuleOverride, override.id) is None
    assert audit_actions(app_db, rule_id, mark) == [
        ("rule.override.set", "operator"),
        ("rule.override.remove", "operator"),
    ]


def test_backtest_a_draft_before_saving(open_app, app_db) -> None:
    wearable = device_id(app_db.site_id, 1, DeviceType.WEARABLE)
    start = utcnow().replace(second=0, microsecond=0) - timedelta(hours=3)
    with app_db.session() as session:
        session.add_all(
            Reading(
                device_id=wearable,
                metric="heart_rate",
                ts=start + i * timedelta(minutes=1),
                value=v,
            )
            for i, v in enumerate([90] * 10 + [135] * 30 + [90] * 10)
        )
        session.commit()
    try:
        at = open_app("operator", page=PAGE)
        assert at.button(key=f"{NEW}.run").disabled  # no limit yet: nothing to replay
        at.number_input(key=f"{NEW}.threshold.value").set_value(130.0).run()
        at.button(key=f"{NEW}.run").click().run()
        no_exception(at)
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Times it would have fired"] == "1"
        assert metrics["New alerts"] == "1"
        shown = texts(at)
        assert "Replayed 7 days (50 values stored)" in shown
        assert "Times are shown in Asia/Seoul time." in shown
        assert at.get("plotly_chart")
        assert at.dataframe[-1].value.iloc[0]["Times it would have fired"] == 1
        with app_db.session() as session:  # a backtest saves nothing
            assert not session.scalar(select(AlertRule).where(AlertRule.name == ""))

        # An event nobody ever reported: the backtest says there is nothing to judge.
        at.selectbox(key=f"{NEW}.kind").set_value(RuleKind.EVENT).run()
        at.multiselect(key=f"{NEW}.event.event_types").select("wandering").run()
        at.button(key=f"{NEW}.run").click().run()
        no_exception(at)
        assert "There is no stored data for this rule in the last 7 days" in texts(at)
    finally:
        with app_db.session() as session:
            session.execute(delete(Reading).where(Reading.device_id == wearable))
            session.commit()


def test_night_exit_can_follow_each_residents_active_hours(open_app) -> None:
    at = open_app("operator", page=PAGE)
    at.selectbox(key=f"{NEW}.kind").set_value(RuleKind.NIGHT_EXIT).run()
    assert "Door opened between 22:00 and 06:00" in texts(at)
    at.checkbox(key=f"{NEW}.night_exit.active_hours").check().run()
    no_exception(at)
    assert "Door opened outside the resident's active hours (their night)" in texts(at)
