"""Sign-in, session lifetime, sign-out, and one-click acknowledgement links."""

from __future__ import annotations

import logging
from datetime import datetime

import streamlit as st

from core.access import Viewer
from core.errors import IotCareError
from core.notify.links import acknowledge_with_link
from core.timeutil import utcnow
from core.users import authenticate
from dashboards.components.i18n import language, language_picker, set_language, t
from dashboards.context import app_context, db_session
from models import User

log = logging.getLogger(__name__)

VIEWER_KEY = "iotcare.viewer"
SIGNED_IN_AT_KEY = "iotcare.signed_in_at"
NOTICE_KEY = "iotcare.notice"


def current_viewer() -> Viewer | None:
    """The signed-in person of this browser session, or None."""
    viewer = st.session_state.get(VIEWER_KEY)
    return viewer if isinstance(viewer, Viewer) else None


def sign_in_as(user: User, now: datetime | None = None) -> Viewer:
    """Start a signed-in session for a user (language switches to theirs)."""
    viewer = Viewer.of(user)
    st.session_state[VIEWER_KEY] = viewer
    st.session_state[SIGNED_IN_AT_KEY] = now or utcnow()
    set_language(viewer.language)
    return viewer


def sign_out(notice: str | None = None) -> None:
    """End the session; an optional notice is shown on the sign-in page."""
    for key in (VIEWER_KEY, SIGNED_IN_AT_KEY):
        st.session_state.pop(key, None)
    if notice:
        st.session_state[NOTICE_KEY] = notice


def refresh_viewer() -> Viewer | None:
    """Check the session is still valid: not expired, user still active; role changes apply now."""
    viewer = current_viewer()
    if viewer is None:
        return None
    started = st.session_state.get(SIGNED_IN_AT_KEY)
    if (
        not isinstance(started, datetime)
        or utcnow() - started > app_context().settings.session_timeout
    ):
        sign_out(t("app.signin.expired"))
        return None
    with db_session() as session:
        user = session.get(User, viewer.user_id)
        if user is None or not user.active:
            sign_out(t("errors.inactive_user"))
            return None
        fresh = Viewer.of(user)
    if fresh != viewer:
        fresh = Viewer(**{**fresh.__dict__, "language": language()})
        st.session_state[VIEWER_KEY] = fresh
    return fresh


def sign_in_form() -> None:
    """The sign-in page: username, password, language."""
    st.title(t("app.name"))
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(notice)
    if language_picker(key="iotcare.signin_language"):
        st.rerun()
    with st.form("sign_in"):
        st.subheader(t("app.signin.title"))
        username = st.text_input(t("app.signin.username"), autocomplete="username")
        password = st.text_input(
            t("app.signin.password"), type="password", autocomplete="current-password"
        )
        submitted = st.form_submit_button(t("app.signin.submit"), type="primary")
    if not submitted:
        return
    if not username.strip() or not password:
        st.error(t("app.signin.missing"))
        return
    with db_session() as session:
        user = authenticate(session, username, password)
        if user is None:
            log.info("sign-in failed", extra={"username": username.strip().lower()})
            st.error(t("app.signin.failed"))
            return
        sign_in_as(user)
        log.info("signed in", extra={"username": user.username, "role": user.role.value})
    st.rerun()


def handle_ack_link() -> None:
    """`?ack=<token>` from a notification: acknowledge as its recipient, then drop the token."""
    token = st.query_params.get("ack")
    if not token:
        return
    del st.query_params["ack"]
    try:
        with db_session() as session:
            alert = acknowledge_with_link(session, app_context().settings, token)
            title = alert.title
    except IotCareError as error:
        st.error(error.localized(language()))
        return
    st.success(t("app.ack_link.done", title=title))
