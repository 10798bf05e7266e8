"""My account: language, quiet hours for notifications, password, my API tokens."""

from __future__ import annotations

from datetime import time

import streamlit as st

from core.access import Permission, acting_user
from core.errors import IotCareError
from core.users import change_own_password, update_preferences
from dashboards.components import tokens
from dashboards.components.auth import sign_in_as
from dashboards.components.i18n import LANGUAGE_NAMES, language, t
from dashboards.components.page import flash, require_page, show_error, show_flashes
from dashboards.context import app_context, db_session
from models import User

viewer = require_page(Permission.OWN_ACCOUNT)
st.title(t("app.nav.account"))
show_flashes()

with db_session() as session:
    user = session.get(User, viewer.user_id)
    assert user is not None  # refresh_viewer signed out a deleted user already
    quiet = (user.quiet_start, user.quiet_end)
st.caption(t("app.account.who", username=viewer.username, role=t(f"app.roles.{viewer.role}")))

st.subheader(t("app.account.preferences"))
with st.form("preferences"):
    chosen = st.selectbox(
        t("app.common.language"),
        options=list(LANGUAGE_NAMES),
        index=list(LANGUAGE_NAMES).index(language()),
        format_func=LANGUAGE_NAMES.__getitem__,
    )
    quiet_on = st.checkbox(t("app.account.quiet_on"), value=quiet[0] is not None)
    left, right = st.columns(2)
    start = left.time_input(t("app.account.quiet_start"), value=quiet[0] or time(22, 0))
    end = right.time_input(t("app.account.quiet_end"), value=quiet[1] or time(7, 0))
    st.caption(t("app.account.quiet_help"))
    saved = st.form_submit_button(t("app.common.save"), type="primary")
if saved:
    try:
        with db_session() as session:
            user = acting_user(session, viewer)
            update_preferences(
                session, user, language=chosen, quiet_hours=(start, end) if quiet_on else None
            )
            sign_in_as(user, now=st.session_state.get("iotcare.signed_in_at"))
        flash(t("app.account.saved"))
        st.rerun()
    except IotCareError as error:
        show_error(error)

st.subheader(t("app.account.password"))
with st.form("password", clear_on_submit=True):
    current = st.text_input(t("app.account.current_password"), type="password")
    new = st.text_input(t("app.account.new_password"), type="password")
    again = st.text_input(t("app.account.repeat_password"), type="password")
    changed = st.form_submit_button(t("app.account.change_password"))
if changed:
    if new != again:
        st.error(t("errors.password_mismatch"))
    else:
        try:
            with db_session() as session:
                change_own_password(session, acting_user(session, viewer), current, new)
            st.success(t("app.account.password_changed"))
        except IotCareError as error:
            show_error(error)

# Family users cannot use the API: their role sees nothing of it.
if viewer.can(Permission.VIEW_RESIDENTS):
    st.subheader(t("app.tokens.mine"))
    st.caption(t("app.tokens.help"))
    tokens.show_new_token(t)
    zone = app_context().settings.default_timezone
    mine = tokens.token_table(viewer, t, zone, viewer.user_id, {})
    tokens.issue_form(viewer, t, "account.tokens")
    tokens.revoke_form(viewer, t, "account.tokens", mine)
