"""core.use_cases.rules, both backends: who may manage rules, checks per field, audit, overrides."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access import AccessDenied, Viewer
from core.errors import NotFoundError
from core.timeutil import utcnow
from core.use_cases import rules as q
from core.use_cases.rules import RuleFormError, RuleInput
from models import (
    AuditEntry,
    Reading,
    Role,
    RuleKind,
    RuleOverride,
    ScopeType,
    Severity,
    Site,
)
from tests.factories import Factory

HIGH_HR = {"metric": "heart_rate", "op": ">", "value": 120, "for_minutes": 5, "hysteresis": 5}


def viewer_of(factory: Factory, role: Role, language: str = "en", **kwargs: object) -> Viewer:
    return Viewer.of(factory.user(role, language=language, **kwargs))


def threshold(site: Site, **fields: object) -> RuleInput:
    values: dict[str, object] = {
        "name": "High heart rate",
        "kind": RuleKind.THRESHOLD,
        "params": HIGH_HR,
        "severity": Severity.WARNING,
        "site_id": site.id,
        "auto_resolve": True,
    }
    values.update(fields)
    return RuleInput(**values)  # type: ignore[arg-type]


def audited(session: Session, rule_id: int) -> list[tuple[str, str]]:
    session.flush()
    return [
        (action, actor)
        for action, actor in session.execute(
            select(AuditEntry.action, AuditEntry.actor_name)
            .where(AuditEntry.target_type == "rule", AuditEntry.target_id == str(rule_id))
            .order_by(AuditEntry.id)
        )
    ]


def test_a_caregiver_may_not_see_or_change_rules(db_session: Session, factory: Factory) -> None:
    site = factory.site()
    resident = factory.resident(site)
    operator = viewer_of(factory, Role.OPERATOR)
    rule_id = q.create_rule(db_session, operator, threshold(site))
    caregiver = viewer_of(factory, Role.CAREGIVER, residents=(resident,))
    draft = threshold(site)
    calls = [
        lambda: q.list_rules(db_session, caregiver),
        lambda: q.get_rule(db_session, caregiver, rule_id),
        lambda: q.rule_choices(db_session, caregiver),
        lambda: q.check_rule(db_session, caregiver, draft),
        lambda: q.describe_draft(caregiver, RuleKind.THRESHOLD, HIGH_HR),
        lambda: q.create_rule(db_session, caregiver, draft),
        lambda: q.update_rule(db_session, caregiver, rule_id, draft),
        lambda: q.set_rule_enabled(db_session, caregiver, rule_id, False),
        lambda: q.delete_rule(db_session, caregiver, rule_id),
        lambda: q.set_override(db_session, caregiver, rule_id, resident.id, {"value": 130}),
        lambda: q.remove_override(db_session, caregiver, 1),
        lambda: q.backtest_rule(db_session, caregiver, draft),
    ]
    for call in calls:
        with pytest.raises(AccessDenied):
            call()
    assert audited(db_session, rule_id) == [("rule.create", operator.username)]


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
def test_create_normalizes_and_audits_and_lists(
    db_session: Session, factory: Factory, role: Role
) -> None:
    site = factory.site()
    viewer = viewer_of(factory, role)
    rule_id = q.create_rule(
        db_session,
        viewer,
        threshold(site, name="  Pulse  ", params={**HIGH_HR, "op": "above"}, enabled=False),
    )
    view = q.get_rule(db_session, viewer, rule_id)
    assert view.name == "Pulse" and view.params["op"] == ">" and not view.enabled
    assert view.site_id == site.id and view.scope_type is ScopeType.SITE
    assert audited(db_session, rule_id) == [("rule.create", viewer.username)]
    table = q.list_rules(db_session, viewer)
    assert list(table.columns) == q.RULE_COLUMNS
    row = table.set_index("id").loc[rule_id]
    assert row["what"] == "Heart rate above 120 bpm for 5 minutes"
    assert (row["kind"], row["severity"], bool(row["enabled"])) == ("threshold", "warning", False)

    korean = viewer_of(factory, role, language="ko")
    what = q.list_rules(db_session, korean).set_index("id").loc[rule_id, "what"]
    assert "심박수" in what


def test_every_problem_is_named_per_field_in_the_viewers_language(
    db_session: Session, factory: Factory
) -> None:
    site = factory.site()
    bad = threshold(
        site,
        name=" ",
        params={"metric": "heart_rate", "op": ">", "value": 400},
        scope_type=ScopeType.DEVICE_TYPE,
        device_type="toaster",
    )
    with pytest.raises(RuleFormError) as caught:
        q.create_rule(db_session, viewer_of(factory, Role.OPERATOR), bad)
    fields = dict(caught.value.errors)
    assert fields["name"] == "Give the rule a name."
    assert fields["device_type"] == "Choose the type of device the rule applies to."
    assert fields["value"] == "Limit for Heart rate must be between 20 and 250 bpm."
    assert caught.value.localized("en") == "The rule has 3 settings to fix."

    with pytest.raises(RuleFormError) as caught:
        q.create_rule(db_session, viewer_of(factory, Role.OPERATOR, language="ko"), bad)
    assert dict(caught.value.errors)["name"] == "규칙 이름을 입력하세요."
    assert "심박수" in dict(caught.value.errors)["value"]

    resident_scope = threshold(site, scope_type=ScopeType.RESIDENT, resident_id=None)
    with pytest.raises(RuleFormError) as caught:
        q.check_rule(db_session, viewer_of(factory, Role.OPERATOR), resident_scope)
    assert [name for name, _ in caught.value.errors] == ["resident_id"]


def test_a_resident_rule_takes_the_residents_site(db_session: Session, factory: Factory) -> None:
    site = factory.site()
    resident = factory.resident(site)
    viewer = viewer_of(factory, Role.OPERATOR)
    rule_id = q.create_rule(
        db_session,
        viewer,
        RuleInput(
            name="Only for one person",
            kind=RuleKind.INACTIVITY,
            params={"max_minutes": 120},
            severity=Severity.INFO,
            scope_type=ScopeType.RESIDENT,
            resident_id=resident.id,
        ),
    )
    view = q.get_rule(db_session, viewer, rule_id)
    assert (view.scope_type, view.resident_id, view.site_id) == (
        ScopeType.RESIDENT,
        resident.id,
        site.id,
    )


def test_update_enable_disable_delete_are_audited(db_session: Session, factory: Factory) -> None:
    site = factory.site()
    resident = factory.resident(site)
    viewer = viewer_of(factory, Role.OPERATOR)
    rule_id = q.create_rule(db_session, viewer, threshold(site))

    changed = q.update_rule(
        db_session, viewer, rule_id, threshold(site, params={**HIGH_HR, "value": 130})
    )
    assert changed == ["params"]
    assert (
        q.update_rule(
            db_session, viewer, rule_id, threshold(site, params={**HIGH_HR, "value": 130})
        )
        == []
    )
    with pytest.raises(RuleFormError) as caught:
        q.update_rule(
            db_session,
            viewer,
            rule_id,
            threshold(site, kind=RuleKind.BATTERY_LOW, params={"below_pct": 10}),
        )
    assert caught.value.errors[0][0] == "kind"

    assert q.set_rule_enabled(db_session, viewer, rule_id, False) is True
    assert q.set_rule_enabled(db_session, viewer, rule_id, False) is False  # already off
    assert q.set_rule_enabled(db_session, viewer, rule_id, True) is True

    q.set_override(db_session, viewer, rule_id, resident.id, {"value": 140})
    q.delete_rule(db_session, viewer, rule_id)
    assert (
        db_session.scalars(select(RuleOverride).where(RuleOverride.rule_id == rule_id)).all() == []
    )
    with pytest.raises(NotFoundError):
        q.get_rule(db_session, viewer, rule_id)
    assert audited(db_session, rule_id) == [
        ("rule.create", viewer.username),
        ("rule.update", viewer.username),
        ("rule.disable", viewer.username),
        ("rule.enable", viewer.username),
        ("rule.override.set", viewer.username),
        ("rule.delete", viewer.username),
    ]
    update = db_session.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "rule.update", AuditEntry.target_id == str(rule_id)
        )
    )
    assert update.details["changes"]["params"][1]["value"] == 130


def test_overrides_keep_only_what_differs(db_session: Session, factory: Factory) -> None:
    site = factory.site()
    resident = factory.resident(site)
    viewer = viewer_of(factory, Role.OPERATOR)
    rule_id = q.create_rule(db_session, viewer, threshold(site))

    first = q.set_override(
        db_session, viewer, rule_id, resident.id, {**HIGH_HR, "value": 140}, "runner"
    )
    again = q.set_override(db_session, viewer, rule_id, resident.id, {"for_minutes": 10})
    assert again == first  # one override per resident, replaced
    (override,) = q.get_rule(db_session, viewer, rule_id).overrides
    assert override.params == {"for_minutes": 10} and override.note is None
    assert q.list_rules(db_session, viewer).set_index("id").loc[rule_id, "overrides"] == 1
    assert (
        q.describe_override(viewer, RuleKind.THRESHOLD, HIGH_HR, override.params)
        == "Heart rate above 120 bpm for 10 minutes"
    )

    with pytest.raises(RuleFormError) as caught:
        q.set_override(db_session, viewer, rule_id, resident.id, HIGH_HR)
    assert (
        caught.value.errors[0][1]
        == "These settings are the same as the rule's; change at least one."
    )
    with pytest.raises(RuleFormError) as caught:
        q.set_override(db_session, viewer, rule_id, resident.id, {"value": 1000})
    assert caught.value.errors[0][0] == "value"

    event_rule = q.create_rule(
        db_session,
        viewer,
        threshold(site, kind=RuleKind.EVENT, params={"event_types": ["fall_detected"]}),
    )
    with pytest.raises(RuleFormError):
        q.set_override(db_session, viewer, event_rule, resident.id, {"action": "close_valve"})

    q.remove_override(db_session, viewer, override.id)
    assert q.get_rule(db_session, viewer, rule_id).overrides == []
    with pytest.raises(NotFoundError):
        q.remove_override(db_session, viewer, override.id)


def test_backtest_of_a_draft_and_of_a_saved_rule_with_its_overrides(
    db_session: Session, factory: Factory
) -> None:
    site = factory.site()
    calm, runner = factory.resident(site), factory.resident(site)
    now = utcnow().replace(second=0, microsecond=0)
    for resident in (calm, runner):
        device = factory.device("wearable", resident=resident)
        db_session.add_all(
            Reading(
                device_id=device.id,
                metric="heart_rate",
                ts=now - timedelta(minutes=60 - i),
                value=130,
            )
            for i in range(30)
        )
    db_session.flush()
    viewer = viewer_of(factory, Role.OPERATOR)
    draft = threshold(site, name="")  # a draft may be tried before it has a name
    result = q.backtest_rule(db_session, viewer, draft, days=1, now=now)
    assert result.fired == 2 and result.has_data

    rule_id = q.create_rule(db_session, viewer, threshold(site))
    q.set_override(db_session, viewer, rule_id, runner.id, {"value": 140})
    saved = q.backtest_rule(db_session, viewer, threshold(site), days=1, rule_id=rule_id, now=now)
    assert [f.subject_id for f in saved.firings] == [str(calm.id)]

    with pytest.raises(RuleFormError) as caught:
        q.backtest_rule(db_session, viewer, draft, days=31)
    assert caught.value.errors == [("days", "Choose between 1 and 30 days.")]
    assert audited(db_session, rule_id)[-1][0] == "rule.override.set"  # backtests audit nothing


def test_choices_offer_sites_active_residents_and_device_types(
    db_session: Session, factory: Factory
) -> None:
    site = factory.site(timezone="Asia/Seoul")
    resident = factory.resident(site, name="Lee", room="7")
    viewer = viewer_of(factory, Role.OPERATOR, site_id=site.id)
    choices = q.rule_choices(db_session, viewer)
    assert choices.sites[site.id] == site.name
    assert choices.residents[resident.id] == "Lee (7)"
    assert "wearable" in choices.device_types
    assert choices.timezone == "Asia/Seoul"
