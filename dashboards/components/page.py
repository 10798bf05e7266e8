"""What every page starts with: the signed-in viewer, checked against the page's permission;
and how a page runs a change and tells the person how it went."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.access import Permission, Viewer
from core.errors import IotCareError
from dashboards.components.auth import current_viewer
from dashboards.components.i18n import language, t
from dashboards.components.markdown import md_escape
from dashboards.context import db_session


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


def run_action(
    viewer: Viewer,
    done: str,
    change: Callable[..., Any],
    *args: Any,
    on_error: Callable[[IotCareError], None] = show_error,
    **kwargs: Any,
) -> tuple[bool, Any]:
    """Run `change(session, viewer, *args, **kwargs)` in its own transaction: (True, result)
    with `done` flashed, or the error shown by `on_error` and (False, None)."""
    try:
        with db_session() as session:
            result = change(session, viewer, *args, **kwargs)
    except IotCareError as error:
        on_error(error)
        return False, None
    flash(done)
    return True, result
