"""What every page starts with: the signed-in viewer, checked against the page's permission."""

from __future__ import annotations

import streamlit as st

from core.access import Permission, Viewer
from core.errors import IotCareError
from dashboards.components.auth import current_viewer
from dashboards.components.i18n import language, t
from dashboards.components.markdown import md_escape


def require_page(permission: Permission) -> Viewer:
    """The viewer, or stop the page with a message when not signed in or not allowed."""
    viewer = current_viewer()
    if viewer is None:
        st.warning(t("app.signin.required"))
        st.stop()
    if not viewer.can(permission):
        st.error(t("errors.access_denied"))
        st.stop()
    return viewer


def show_error(error: IotCareError) -> None:
    """An error as a person reads it: in their language, without a traceback."""
    # Messages may quote what someone typed (a name, a rule field): shown literally.
    st.error(md_escape(error.localized(language())))


def flash(message: str) -> None:
    """A message shown once on the next run (survives st.rerun)."""
    st.session_state.setdefault("iotcare.flash", []).append(message)


def show_flashes() -> None:
    """Show and clear the messages queued by `flash`."""
    for message in st.session_state.pop("iotcare.flash", []):
        st.success(message)
