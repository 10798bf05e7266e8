"""The admin page's Users tab: everyone's accounts, creating one, and changing one (profile,
quiet hours, active or not, a new password)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time

import pandas as pd
import streamlit as st

from core.i18n import plural
from core.use_cases import admin
from dashboards.components.admin.view import AdminView
from dashboards.components.i18n import LANGUAGE_NAMES
from dashboards.components.markdown import md_escape
from dashboards.components.page import run_action
from dashboards.components.timefmt import local_time
from models import Role

NEW_PASSWORD_KEY = "admin.new_password"  # noqa: S105 (a session-state key, not a secret)
ROLES = list(Role)


def show_new_password(t: Callable[..., str]) -> None:
    """A generated password, shown once right after it was made, and then forgotten."""
    handed_over = st.session_state.pop(NEW_PASSWORD_KEY, None)
    if handed_over:
        st.warning(t("app.admin.password_once", username=md_escape(handed_over[0])))
        st.code(handed_over[1], language=None)


def users_tab(view: AdminView) -> None:
    """The table of users, the form to create one, and the one picked to change."""
    t, people, zone = view.t, view.people, view.zone
    st.caption(t("app.common.site_time", timezone=zone))
    st.dataframe(
        pd.DataFrame(
            {
                t("app.admin.col.username"): people["username"],
                t("app.admin.col.name"): people["display_name"],
                t("app.admin.col.role"): [
                    t("app.tokens.service_role", role=view.role_label(r))
                    if service
                    else view.role_label(r)
                    for r, service in zip(people["role"], people["is_service"], strict=True)
                ],
                t("app.admin.col.language"): [LANGUAGE_NAMES.get(v, v) for v in people["language"]],
                t("app.admin.col.site"): [view.site_label(s) for s in people["site_id"]],
                t("app.admin.col.state"): [
                    t("app.admin.state.active") if a else t("app.admin.state.inactive")
                    for a in people["active"]
                ],
                t("app.admin.col.residents"): people["residents"],
                t("app.admin.col.last_login"): [
                    local_time(v, zone) if pd.notna(v) else t("app.time.never")
                    for v in people["last_login_at"]
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    _create_form(view)
    st.subheader(t("app.admin.manage_title"))
    chosen = st.selectbox(
        t("app.admin.pick_user"),
        list(view.user_rows),
        format_func=view.user_label,
        key="admin.user",
    )
    if chosen is not None:
        _edit_form(view, chosen)
        _quiet_form(view, chosen)
        _state_buttons(view, chosen)


def _create_form(view: AdminView) -> None:
    """A new account, with a generated password unless one is typed."""
    t, site_options = view.t, view.site_options
    with st.expander(t("app.admin.create_title")), st.form("admin.create", clear_on_submit=False):
        username = st.text_input(
            t("app.admin.username"), key="admin.create.username", help=t("app.admin.username_help")
        )
        display_name = st.text_input(t("app.admin.display_name"), key="admin.create.name")
        left, right = st.columns(2)
        role = left.selectbox(
            t("app.admin.role"), ROLES, format_func=view.role_label, key="admin.create.role"
        )
        lang = right.selectbox(
            t("app.common.language"),
            list(LANGUAGE_NAMES),
            format_func=LANGUAGE_NAMES.__getitem__,
            key="admin.create.language",
        )
        site = st.selectbox(
            t("app.admin.site"),
            site_options,
            index=1 if len(site_options) > 1 else 0,
            format_func=view.site_label,
            key="admin.create.site",
        )
        password = st.text_input(
            t("app.admin.password"),
            type="password",
            key="admin.create.password",
            help=t("app.admin.password_help"),
        )
        create = st.form_submit_button(t("app.admin.create"), type="primary", key="admin.create.go")
    if not create:
        return
    if not username.strip():
        st.error(t("errors.admin.username_empty"))
        return
    ok, created = run_action(
        view.viewer,
        t("app.admin.created", username=md_escape(username.strip().lower())),
        admin.create_account,
        username=username,
        role=role,
        display_name=display_name,
        language=lang,
        site_id=site,
        password=password or None,
    )
    if ok:
        if not password:
            st.session_state[NEW_PASSWORD_KEY] = (created.username, created.password)
        st.rerun()


def _edit_form(view: AdminView, chosen: int) -> None:
    """The picked user's name, role, language and site."""
    t, site_options = view.t, view.site_options
    person = view.user_rows[chosen]
    with st.form("admin.edit"):
        name = st.text_input(
            t("app.admin.display_name"),
            value=person.display_name,
            key=f"admin.edit.name.{chosen}",
        )
        left, right = st.columns(2)
        new_role = left.selectbox(
            t("app.admin.role"),
            ROLES,
            index=ROLES.index(Role(person.role)),
            format_func=view.role_label,
            key=f"admin.edit.role.{chosen}",
        )
        new_lang = right.selectbox(
            t("app.common.language"),
            list(LANGUAGE_NAMES),
            index=list(LANGUAGE_NAMES).index(person.language)
            if person.language in LANGUAGE_NAMES
            else 0,
            format_func=LANGUAGE_NAMES.__getitem__,
            key=f"admin.edit.language.{chosen}",
        )
        new_site = st.selectbox(
            t("app.admin.site"),
            site_options,
            index=site_options.index(person.site_id) if person.site_id in site_options else 0,
            format_func=view.site_label,
            key=f"admin.edit.site.{chosen}",
        )
        if Role(person.role) is Role.CAREGIVER and person.residents:
            st.caption(plural(t, "app.admin.role_change_help", person.residents))
        save = st.form_submit_button(t("app.common.save"), type="primary", key="admin.edit.go")
    if save:
        ok, _ = run_action(
            view.viewer,
            t("app.admin.saved", username=md_escape(person.username)),
            admin.update_user,
            chosen,
            display_name=name,
            role=new_role,
            language=new_lang,
            site_id=new_site,
        )
        if ok:
            st.rerun()


def _quiet_form(view: AdminView, chosen: int) -> None:
    """The picked user's quiet hours for notifications."""
    t = view.t
    person = view.user_rows[chosen]
    with st.form("admin.quiet"):
        quiet_on = st.checkbox(
            t("app.admin.quiet_on"),
            value=pd.notna(person.quiet_start) and person.quiet_start is not None,
            key=f"admin.quiet.on.{chosen}",
        )
        left, right = st.columns(2)
        start = left.time_input(
            t("app.admin.quiet_start"),
            value=person.quiet_start if isinstance(person.quiet_start, time) else time(22, 0),
            key=f"admin.quiet.start.{chosen}",
        )
        end = right.time_input(
            t("app.admin.quiet_end"),
            value=person.quiet_end if isinstance(person.quiet_end, time) else time(7, 0),
            key=f"admin.quiet.end.{chosen}",
        )
        st.caption(t("app.admin.quiet_help"))
        save_quiet = st.form_submit_button(t("app.admin.quiet_save"), key="admin.quiet.go")
    if not save_quiet:
        return
    if quiet_on and start == end:
        st.error(t("errors.quiet_hours_empty"))
        return
    ok, _ = run_action(
        view.viewer,
        t("app.admin.quiet_saved", username=md_escape(person.username)),
        admin.set_quiet_hours,
        chosen,
        (start, end) if quiet_on else None,
    )
    if ok:
        st.rerun()


def _state_buttons(view: AdminView, chosen: int) -> None:
    """Deactivate or reactivate the picked user, or give them a new password."""
    t = view.t
    person = view.user_rows[chosen]
    left, right = st.columns(2)
    if person.active:
        toggle = left.button(t("app.admin.deactivate"), key="admin.deactivate")
        help_text = t("app.admin.deactivate_help")
    else:
        toggle = left.button(t("app.admin.reactivate"), key="admin.reactivate")
        help_text = t("app.admin.reactivate_help")
    reset = right.button(t("app.admin.reset_password"), key="admin.reset")
    st.caption(help_text)
    if toggle:
        done = "app.admin.deactivated" if person.active else "app.admin.reactivated"
        ok, _ = run_action(
            view.viewer,
            t(done, username=md_escape(person.username)),
            admin.set_active,
            chosen,
            not person.active,
        )
        if ok:
            st.rerun()
    if reset:
        ok, secret = run_action(
            view.viewer,
            t("app.admin.password_reset", username=md_escape(person.username)),
            admin.reset_password,
            chosen,
        )
        if ok:
            st.session_state[NEW_PASSWORD_KEY] = (person.username, secret)
            st.rerun()
