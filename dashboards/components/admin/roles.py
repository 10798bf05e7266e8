"""The admin page's Roles tab: what each role may do."""

from __future__ import annotations

import streamlit as st

from dashboards.components.admin.view import AdminView


def roles_tab(view: AdminView) -> None:
    """Each role and its permissions, in words."""
    t = view.t
    st.caption(t("app.admin.roles_help"))
    for role_value, granted in view.permissions.items():
        st.markdown(f"**{view.role_label(role_value)}**")
        st.markdown("\n".join(f"- {t(f'app.admin.permission.{p}')}" for p in granted))
