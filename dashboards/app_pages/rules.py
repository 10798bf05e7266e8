"""Rules: the low-code rule builder. Create, edit, turn on or off and delete alert rules of every
kind, give residents their own settings, and backtest a draft on stored data before saving it.

Everything goes through core.use_cases.rules (operators and admins only; every change audited).
`?rule=<id>` opens a rule.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.access import Permission
from core.alerts.titles import title_text
from core.errors import IotCareError
from core.i18n import plural
from core.rules.backtest import DEFAULT_DAYS, MAX_DAYS, BacktestResult
from core.rules.params import RuleParamsError
from core.use_cases.rules import (
    OVERRIDABLE,
    RuleFormError,
    RuleInput,
    RuleView,
    backtest_rule,
    create_rule,
    delete_rule,
    describe_draft,
    describe_override,
    get_rule,
    list_rules,
    remove_override,
    rule_choices,
    set_override,
    set_rule_enabled,
    update_rule,
)
from dashboards.components.i18n import language, t
from dashboards.components.markdown import md_escape
from dashboards.components.page import flash, require_page, run_action, show_error, show_flashes
from dashboards.components.rule_form import (
    kind_label,
    params_inputs,
    rule_inputs,
    scope_text,
    show_errors,
)
from dashboards.components.timefmt import local_time
from dashboards.context import db_session
from models import RuleKind

PICK = "rules.pick"
PICK_NEXT = "rules.pick_next"
NEW = 0

# Sentences core writes (what a rule does, what is wrong) follow the language the page is in.
viewer = replace(require_page(Permission.MANAGE_RULES), language=language())
st.title(t("app.nav.rules"))
show_flashes()
st.caption(t("app.rules.intro"))

with db_session() as session:
    rules = list_rules(session, viewer)
    choices = rule_choices(session, viewer)

# --- the list

st.subheader(t("app.rules.list"))
if rules.empty:
    st.info(t("app.rules.empty"))
else:
    table = pd.DataFrame(
        {
            t("app.rules.col.name"): [title_text(n, language()) for n in rules["name"]],
            t("app.rules.col.kind"): rules["kind"].map(kind_label),
            t("app.rules.col.severity"): rules["severity"].map(lambda s: t(f"app.severity.{s}")),
            t("app.rules.col.scope"): [
                scope_text(
                    r.scope_type, choices.sites.get(r.site_id, r.site_id), r.resident, r.device_type
                )
                for r in rules.itertuples()
            ],
            t("app.rules.col.enabled"): rules["enabled"],
            t("app.rules.col.auto_resolve"): rules["auto_resolve"],
            t("app.rules.col.overrides"): rules["overrides"],
            t("app.rules.col.what"): rules["what"],
        }
    )
    st.dataframe(table, hide_index=True, width="stretch")

# --- which rule is open

ids = [NEW, *(int(i) for i in rules["id"])]
if PICK_NEXT in st.session_state:
    st.session_state[PICK] = st.session_state.pop(PICK_NEXT)
elif PICK not in st.session_state:
    wanted = st.query_params.get("rule")
    st.session_state[PICK] = int(wanted) if wanted and wanted.isdigit() else NEW
if st.session_state[PICK] not in ids:
    st.session_state[PICK] = NEW
names = {int(r.id): (r.name, r.kind, r.enabled) for r in rules.itertuples()}


def _pick_label(rule_id: int) -> str:
    if rule_id == NEW:
        return t("app.rules.new_rule")
    name, kind, enabled = names[rule_id]
    state = t("app.rules.state_enabled" if enabled else "app.rules.state_disabled")
    return t(
        "app.rules.pick_label",
        name=title_text(name, language()),
        kind=kind_label(kind),
        state=state,
    )


selected = st.selectbox(t("app.rules.pick"), ids, format_func=_pick_label, key=PICK)
view: RuleView | None = None
if selected != NEW:
    try:
        with db_session() as session:
            view = get_rule(session, viewer, selected)
    except IotCareError as error:
        show_error(error)
        st.stop()

st.divider()
key = f"rules.edit.{selected}"
st.subheader(
    t("app.rules.edit_title", name=md_escape(title_text(view.name, language())))
    if view
    else t("app.rules.new_title")
)
if view is not None:
    if view.enabled:
        st.success(t("app.rules.status_on"))
    else:
        st.warning(t("app.rules.status_off"))
    st.caption(
        t("app.rules.updated", when=local_time(view.updated_at, choices.timezone))
        + " "
        + t("app.common.site_time", timezone=choices.timezone)
    )

draft: RuleInput = rule_inputs(
    choices, view.as_input() if view else None, key, kind_fixed=view is not None
)

# --- what it does, as the operator types

st.markdown(f"**{t('app.rules.what')}**")
tried = f"{key}.tried"  # set once save was pressed: from then on every problem is shown
params_ok = True
try:
    st.info(describe_draft(viewer, draft.kind, draft.params))
except RuleParamsError as error:
    params_ok = False
    # A new rule starts with empty boxes: "Limit is required." before anyone typed is noise.
    # Until the first save, only problems with what was entered are shown.
    shown = [
        problem
        for problem in error.errors
        if view is not None or st.session_state.get(tried) or problem[0] in draft.params
    ]
    if shown:
        st.warning(t("app.rules.fix"))
        show_errors(shown)
    else:
        st.caption(t("app.rules.fill_in"))

# --- save, turn on or off, delete


def _save() -> None:
    try:
        with db_session() as session:
            if view is None:
                new_id = create_rule(session, viewer, draft)
            else:
                changed = update_rule(session, viewer, view.id, draft)
    except RuleFormError as error:
        st.error(t("app.rules.fix"))
        show_errors(error.errors)
        return
    except IotCareError as error:
        show_error(error)
        return
    if view is None:
        flash(t("app.rules.created", name=md_escape(draft.name.strip())))
        st.session_state[PICK_NEXT] = new_id
        st.rerun()
    if not changed:
        st.info(t("app.rules.unchanged"))
        return
    flash(t("app.rules.saved", name=md_escape(draft.name.strip())))
    st.rerun()


save_label = t("app.rules.save") if view else t("app.rules.save_new")
if st.button(save_label, type="primary", key=f"{key}.save"):
    st.session_state[tried] = True
    _save()

if view is not None:
    left, right = st.columns(2)
    toggle = t("app.rules.disable") if view.enabled else t("app.rules.enable")
    if left.button(toggle, key=f"{key}.toggle"):
        done = "app.rules.disabled_done" if view.enabled else "app.rules.enabled_done"
        ok, _ = run_action(
            viewer,
            t(done, name=md_escape(view.name)),
            set_rule_enabled,
            view.id,
            not view.enabled,
        )
        if ok:
            st.rerun()
    with right:
        confirm = st.checkbox(
            t("app.rules.delete_confirm"), help=t("app.rules.delete_help"), key=f"{key}.confirm"
        )
        if st.button(t("app.rules.delete"), key=f"{key}.delete"):
            if not confirm:
                st.warning(t("app.rules.delete_needs_confirm"))
            else:
                ok, _ = run_action(
                    viewer, t("app.rules.deleted", name=md_escape(view.name)), delete_rule, view.id
                )
                if ok:
                    st.session_state[PICK_NEXT] = NEW
                    st.rerun()

# --- backtest


def _show_backtest(result: BacktestResult, days: int) -> None:
    if not result.has_data:
        st.warning(plural(t, "app.rules.backtest.no_data", days, days=days))
    else:
        first, second, third = st.columns(3)
        first.metric(t("app.rules.backtest.fired"), result.fired)
        second.metric(t("app.rules.backtest.new_alerts"), result.new_alerts)
        third.metric(t("app.rules.backtest.subjects"), result.subjects)
        if result.fired == 0:
            st.success(plural(t, "app.rules.backtest.none_fired", days, days=days))
        else:
            per_day = result.per_day(choices.timezone)
            days_axis = [d.isoformat() for d in per_day["day"]]
            figure = go.Figure(
                [
                    go.Bar(
                        name=t("app.rules.backtest.kind_new"),
                        x=days_axis,
                        y=per_day["new_alerts"],
                    ),
                    go.Bar(
                        name=t("app.rules.backtest.kind_repeat"),
                        x=days_axis,
                        y=per_day["fired"] - per_day["new_alerts"],
                    ),
                ]
            )
            figure.update_layout(
                barmode="stack",
                height=280,
                margin={"l": 10, "r": 10, "t": 30, "b": 10},
                title=t("app.rules.backtest.per_day"),
                xaxis_title=t("app.rules.backtest.day"),
                yaxis_title=t("app.rules.backtest.count"),
                legend={"orientation": "h"},
            )
            st.plotly_chart(figure, key=f"{key}.chart")
            st.markdown(f"**{t('app.rules.backtest.per_subject')}**")
            subjects = result.per_subject().rename(
                columns={
                    "subject": t("app.rules.backtest.subject"),
                    "fired": t("app.rules.backtest.fired"),
                    "new_alerts": t("app.rules.backtest.new_alerts"),
                }
            )
            st.dataframe(subjects, hide_index=True, width="stretch")
        if RuleKind(result.kind) is RuleKind.EVENT:
            st.caption(t("app.rules.backtest.event_note"))
        elif not draft.auto_resolve:
            st.caption(t("app.rules.backtest.manual_note"))
    st.caption(
        t(
            "app.rules.backtest.runtime",
            days=plural(t, "count.days", days),
            points=plural(t, "count.values", result.data_points),
            seconds=f"{result.elapsed_seconds:.2f}",
            step=plural(t, "count.minutes", int(result.step.total_seconds() // 60)),
        )
        + " "
        + t("app.common.site_time", timezone=choices.timezone)
    )


st.divider()
st.subheader(t("app.rules.backtest.title"))
st.caption(t("app.rules.backtest.intro"))
days = st.slider(t("app.rules.backtest.days"), 1, MAX_DAYS, DEFAULT_DAYS, key=f"{key}.days")
if st.button(t("app.rules.backtest.run"), key=f"{key}.run", disabled=not params_ok):
    try:
        with db_session() as session:
            outcome = backtest_rule(
                session, viewer, draft, days=days, rule_id=view.id if view else None
            )
        _show_backtest(outcome, days)
    except RuleFormError as error:
        st.error(t("app.rules.fix"))
        show_errors(error.errors)
    except IotCareError as error:
        show_error(error)

# --- per-resident settings

kind = RuleKind(draft.kind)
if kind in OVERRIDABLE:
    st.divider()
    st.subheader(t("app.rules.overrides.title"))
    if view is None:
        st.info(t("app.rules.overrides.save_first"))
    else:
        st.caption(t("app.rules.overrides.intro"))
        if not view.overrides:
            st.info(t("app.rules.overrides.empty"))
        for override in view.overrides:
            # "Name (room)": two residents may share a name.
            who = choices.residents.get(override.resident_id, override.resident)
            st.markdown(
                f"**{md_escape(who)}** — "
                + describe_override(viewer, view.kind, view.params, override.params)
            )
            if override.note:
                st.caption(override.note)
            if st.button(
                t("app.rules.overrides.remove", name=md_escape(who)),
                key=f"{key}.override.remove.{override.id}",
            ):
                ok, _ = run_action(
                    viewer,
                    t("app.rules.overrides.removed", name=md_escape(who)),
                    remove_override,
                    override.id,
                )
                if ok:
                    st.rerun()
        residents: list[int | None] = [None, *choices.residents]
        resident_id = st.selectbox(
            t("app.rules.overrides.resident"),
            residents,
            format_func=lambda r: t("app.rules.choose") if r is None else choices.residents[r],
            key=f"{key}.override.resident",
        )
        if resident_id is not None:
            existing = next((o for o in view.overrides if o.resident_id == resident_id), None)
            start = {**view.params, **(existing.params if existing else {})}
            wanted = params_inputs(view.kind, start, f"{key}.override.{resident_id}")
            note = st.text_input(
                t("app.rules.overrides.note"),
                value=(existing.note or "") if existing else "",
                key=f"{key}.override.{resident_id}.note",
            )
            if st.button(t("app.rules.overrides.add"), key=f"{key}.override.add"):
                try:
                    with db_session() as session:
                        set_override(session, viewer, view.id, resident_id, wanted, note)
                    flash(
                        t(
                            "app.rules.overrides.added",
                            name=md_escape(choices.residents[resident_id]),
                        )
                    )
                    st.rerun()
                except RuleFormError as error:
                    show_errors(error.errors)
                except IotCareError as error:
                    show_error(error)
elif view is not None:
    st.caption(t("app.rules.overrides.not_for_kind"))
