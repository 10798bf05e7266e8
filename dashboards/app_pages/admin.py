"""Users and access (admins): accounts, roles, caregiver assignments, family links, contact
channels, quiet hours, API tokens and service accounts. Every change goes through
core.use_cases.admin (tokens: core.api_tokens), which validates, audits and refuses to leave the
platform without an active administrator. Each tab is a module of dashboards.components.admin."""

from __future__ import annotations

import streamlit as st

from core.access import Permission, viewer_timezone
from core.i18n import translator
from core.use_cases import admin
from dashboards.components.admin.assignments import assignments_tab
from dashboards.components.admin.channels import channels_tab
from dashboards.components.admin.roles import roles_tab
from dashboards.components.admin.tokens_tab import tokens_tab
from dashboards.components.admin.users import show_new_password, users_tab
from dashboards.components.admin.view import AdminView
from dashboards.components.i18n import language
from dashboards.components.page import require_page, show_flashes
from dashboards.context import app_context, db_session

viewer = require_page(Permission.MANAGE_USERS)
# Bound to the language now: format_func callbacks may run outside the script run.
t = translator(language())
st.title(t("app.nav.admin"))
show_flashes()
show_new_password(t)

with db_session() as session:
    view = AdminView(
        viewer=viewer,
        t=t,
        zone=viewer_timezone(session, viewer, app_context().settings.default_timezone),
        people=admin.list_users(session, viewer),
        sites=admin.list_sites(session, viewer),
        residents=admin.list_residents(session, viewer),
        assignments=admin.list_assignments(session, viewer),
        family_links=admin.list_family_links(session, viewer),
        permissions=admin.role_permissions(viewer),
    )

users, assignments, channels, tokens, roles = st.tabs(
    [
        t("app.admin.tab.users"),
        t("app.admin.tab.assignments"),
        t("app.admin.tab.channels"),
        t("app.admin.tab.tokens"),
        t("app.admin.tab.roles"),
    ]
)
with users:
    users_tab(view)
with assignments:
    assignments_tab(view)
with channels:
    channels_tab(view)
with tokens:
    tokens_tab(view)
with roles:
    roles_tab(view)
