"""IoT Care app: sign-in, then the pages the signed-in person's role allows.

Run with `streamlit run dashboards/streamlit_app.py` (or `iotcare app`).
"""

from __future__ import annotations

import streamlit as st

from core.errors import IotCareError
from dashboards.components.auth import (
    handle_ack_link,
    refresh_viewer,
    session_cookie_script,
    sign_in_form,
    sign_out,
)
from dashboards.components.i18n import language, t
from dashboards.components.unread import unread_summary
from dashboards.context import app_context
from dashboards.navigation import pages_for

st.set_page_config(page_title="IoT Care", page_icon=":material/elderly:", layout="wide")

try:
    app_context()
except IotCareError as error:  # a bad setting: say which, no traceback
    st.error(error.localized(language()))
    st.stop()

handle_ack_link()
viewer = refresh_viewer()
if viewer is None:
    session_cookie_script()  # clears a cookie that named an ended session
    st.navigation([st.Page(sign_in_form, title=t("app.signin.title"), url_path="signin")]).run()
    st.stop()

sections = pages_for(viewer)
navigation = st.navigation(
    {
        t(f"app.nav.section.{section}"): [
            st.Page(
                spec.path,
                title=t(spec.title_key),
                icon=spec.icon,
                url_path=spec.name,
                default=spec.name == "overview",
            )
            for spec in specs
        ]
        for section, specs in sections.items()
    }
)
with st.sidebar:
    st.caption(t("app.signed_in_as", name=viewer.display_name, role=t(f"app.roles.{viewer.role}")))
    # On every page, refreshed on its own: what waits for this person.
    unread_summary(viewer, app_context().settings.app_refresh)
    if st.button(t("app.signout"), icon=":material/logout:"):
        sign_out(t("app.signed_out"))
        st.rerun()
    session_cookie_script()  # keeps the session for a reload
navigation.run()
