"""The admin page's Tokens tab: everyone's API tokens (issuing, revoking) and service accounts
for machines that use the API."""

from __future__ import annotations

import streamlit as st

from core import api_tokens
from dashboards.components import tokens
from dashboards.components.admin.view import AdminView
from dashboards.components.markdown import md_escape
from dashboards.components.page import run_action
from models import Role

SERVICE_ROLES = [Role.OPERATOR, Role.CAREGIVER, Role.ADMIN]


def tokens_tab(view: AdminView) -> None:
    """Every token, issuing one for a user, revoking one, and making a service account."""
    t, people = view.t, view.people
    st.caption(t("app.tokens.help"))
    tokens.show_new_token(t)
    usernames = {int(r.user_id): str(r.username) for r in people.itertuples()}
    rows = tokens.token_table(view.viewer, t, view.zone, None, usernames)
    # Family users cannot use the API (their role sees nothing of it); inactive users neither.
    owners = {
        int(r.user_id): view.user_label(int(r.user_id))
        for r in people.itertuples()
        if r.active and r.role != Role.FAMILY.value
    }
    st.subheader(t("app.tokens.issue_title"))
    tokens.issue_form(view.viewer, t, "admin.tokens", owners)
    tokens.revoke_form(view.viewer, t, "admin.tokens", rows)
    _service_form(view)


def _service_form(view: AdminView) -> None:
    """A service account: a user that cannot sign in, for a machine's API tokens."""
    t = view.t
    st.subheader(t("app.tokens.service_title"))
    st.caption(t("app.tokens.service_help"))
    with st.form("admin.service", clear_on_submit=True):
        service_name = st.text_input(t("app.admin.col.username"), key="admin.service.username")
        service_display = st.text_input(t("app.admin.col.name"), key="admin.service.name")
        service_role = st.selectbox(
            t("app.admin.col.role"),
            SERVICE_ROLES,
            format_func=view.role_label,
            key="admin.service.role",
        )
        service_site = st.selectbox(
            t("app.admin.col.site"),
            view.site_options,
            format_func=view.site_label,
            key="admin.service.site",
        )
        make_service = st.form_submit_button(t("app.tokens.service_create"))
    if not make_service:
        return

    ok, _ = run_action(
        view.viewer,
        t("app.tokens.service_created", username=md_escape(service_name.strip().lower())),
        api_tokens.create_service_account,
        username=service_name,
        role=service_role,
        display_name=service_display.strip() or None,
        site_id=service_site,
    )
    if ok:
        st.rerun()
