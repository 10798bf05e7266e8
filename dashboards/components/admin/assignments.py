"""The admin page's Assignments tab: which caregivers look after which residents, and which
residents each family user follows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from core.i18n import plural
from core.use_cases import admin
from dashboards.components.admin.view import AdminView
from dashboards.components.markdown import md_escape
from dashboards.components.page import run_action
from models import Role


def assignments_tab(view: AdminView) -> None:
    """Residents nobody covers, then caregivers' assignments, then family users' links."""
    t, residents, assignments = view.t, view.residents, view.assignments
    st.caption(t("app.admin.assign_help"))
    covered = set(assignments.loc[assignments["tier"].eq(1), "resident_id"])
    uncovered = residents[~residents["resident_id"].isin(covered)]
    if not uncovered.empty:
        st.warning(
            plural(
                t,
                "app.admin.uncovered",
                len(uncovered),
                names=", ".join(uncovered["name"].head(10)),
            )
        )
    resident_names = {
        int(r.resident_id): t(
            "app.admin.resident_label",
            name=r.name,
            room=r.room or t("app.common.none"),
            site=view.site_label(r.site_id),
        )
        for r in residents.itertuples()
    }
    _caregivers(view, resident_names)
    _family(view, resident_names)


def _caregivers(view: AdminView, resident_names: dict[int, str]) -> None:
    """A caregiver's residents (primary or backup), assigning one and removing one."""
    t, assignments = view.t, view.assignments
    caregivers = [
        uid for uid, r in view.user_rows.items() if r.role == Role.CAREGIVER.value and r.active
    ]
    if not caregivers:
        st.info(t("app.admin.no_caregivers"))
        return
    caregiver = st.selectbox(
        t("app.admin.pick_caregiver"),
        caregivers,
        format_func=view.user_label,
        key="admin.caregiver",
    )
    theirs = assignments[assignments["user_id"].eq(caregiver)]
    if theirs.empty:
        st.info(t("app.admin.no_assignments"))
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    t("app.admin.col.resident"): theirs["resident"],
                    t("app.admin.col.room"): theirs["room"].fillna(t("app.common.none")),
                    t("app.admin.col.site"): [view.site_label(s) for s in theirs["site_id"]],
                    t("app.admin.col.tier"): [t(f"app.admin.tier.{v}") for v in theirs["tier"]],
                }
            ),
            hide_index=True,
            width="stretch",
        )
    with st.form("admin.assign"):
        resident = st.selectbox(
            t("app.admin.resident"),
            list(resident_names),
            format_func=lambda i: resident_names.get(i, str(i)),
            key="admin.assign.resident",
        )
        tier = st.radio(
            t("app.admin.tier_label"),
            list(admin.TIERS),
            format_func=lambda v: t(f"app.admin.tier.{v}"),
            horizontal=True,
            key="admin.assign.tier",
        )
        assign = st.form_submit_button(t("app.admin.assign"), type="primary", key="admin.assign.go")
    if assign:
        if resident is None:
            st.error(t("errors.admin.resident_missing"))
        else:
            ok, _ = run_action(
                view.viewer,
                t("app.admin.assigned", resident=md_escape(resident_names[resident])),
                admin.assign_caregiver,
                caregiver,
                resident,
                tier,
            )
            if ok:
                st.rerun()
    if not theirs.empty:
        remove_one(
            view,
            t("app.admin.remove_assignment"),
            {int(r.assignment_id): r.resident for r in theirs.itertuples()},
            pick_key=f"admin.unassign.pick.{caregiver}",
            button_key="admin.unassign.go",
            done="app.admin.unassigned",
            change=admin.unassign,
        )


def _family(view: AdminView, resident_names: dict[int, str]) -> None:
    """Family users: which resident(s) each follows (their page and the daily report)."""
    t, family_links = view.t, view.family_links
    st.subheader(t("app.admin.family.title"))
    st.caption(t("app.admin.family.help"))
    relatives = [
        uid for uid, r in view.user_rows.items() if r.role == Role.FAMILY.value and r.active
    ]
    if not relatives:
        st.info(t("app.admin.family.none"))
        return
    relative = st.selectbox(
        t("app.admin.family.pick"), relatives, format_func=view.user_label, key="admin.family"
    )
    followed = family_links[family_links["user_id"].eq(relative)]
    if followed.empty:
        st.info(t("app.admin.family.no_links"))
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    t("app.admin.col.resident"): followed["resident"],
                    t("app.admin.col.room"): followed["room"].fillna(t("app.common.none")),
                    t("app.admin.family.relation"): followed["relation"].fillna(""),
                }
            ),
            hide_index=True,
            width="stretch",
        )
    with st.form("admin.family_link"):
        followed_resident = st.selectbox(
            t("app.admin.resident"),
            list(resident_names),
            format_func=lambda i: resident_names.get(i, str(i)),
            key="admin.family.resident",
        )
        relation = st.text_input(t("app.admin.family.relation"), key="admin.family.relation")
        link = st.form_submit_button(
            t("app.admin.family.link"), type="primary", key="admin.family.go"
        )
    if link:
        if followed_resident is None:
            st.error(t("errors.admin.resident_missing"))
        else:
            ok, _ = run_action(
                view.viewer,
                t("app.admin.family.linked", resident=md_escape(resident_names[followed_resident])),
                admin.link_family_member,
                relative,
                followed_resident,
                relation,
            )
            if ok:
                st.rerun()
    if not followed.empty:
        remove_one(
            view,
            t("app.admin.family.remove"),
            {int(r.link_id): r.resident for r in followed.itertuples()},
            pick_key=f"admin.family.unlink.pick.{relative}",
            button_key="admin.family.unlink.go",
            done="app.admin.family.unlinked",
            change=admin.unlink_family_member,
        )


def remove_one(
    view: AdminView,
    label: str,
    residents: dict[int, str],
    *,
    pick_key: str,
    button_key: str,
    done: str,
    change: Callable[..., Any],
) -> None:
    """Pick one of a person's links to residents (id -> resident name) and remove it."""
    left, right = st.columns([3, 1])
    chosen = left.selectbox(
        label, list(residents), format_func=lambda i: residents.get(i, str(i)), key=pick_key
    )
    right.write("")
    if right.button(view.t("app.admin.remove"), key=button_key):
        ok, _ = run_action(
            view.viewer, view.t(done, resident=md_escape(residents[chosen])), change, chosen
        )
        if ok:
            st.rerun()
