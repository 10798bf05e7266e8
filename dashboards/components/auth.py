"""Sign-in, session lifetime, sign-out, and one-click acknowledgement links."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime

import streamlit as st

from core.access import Viewer
from core.alerts.titles import title_text
from core.errors import IotCareError
from core.notify.links import acknowledge_with_link
from core.sessions import end_session, resume_session, start_session
from core.timeutil import utcnow
from core.users import SignInLocked, sign_in
from dashboards.components.i18n import language, language_picker, set_language, t
from dashboards.components.markdown import md_escape
from dashboards.context import app_context, db_session
from models import User

log = logging.getLogger(__name__)

VIEWER_KEY = "iotcare.viewer"
SIGNED_IN_AT_KEY = "iotcare.signed_in_at"
NOTICE_KEY = "iotcare.notice"
SESSION_TOKEN_KEY = "iotcare.session_token"  # noqa: S105  (a state key, not a secret)
# The signed session token is kept in a cookie, so a reload finds it; it is worthless once the
# session ends or times out on the server. Streamlit's server cannot set cookies, so a small
# script in the page writes it (HttpOnly is impossible from a script; SameSite=Strict keeps other
# sites' requests from carrying it) and Streamlit reads it back from the request that opens
# the connection (st.context.cookies).
SESSION_COOKIE = "iotcare_session"
# Where the token goes only when the browser refuses the cookie (cookies blocked): the address.
SESSION_PARAM = "session"
# The cookie script this browser session writes: ("set", token, max-age seconds) or ("clear",).
COOKIE_KEY = "iotcare.session_cookie"
# Set once this browser session has looked at the cookie it opened with: that cookie is read
# once, not again after a sign-out in the same tab (it would name the session just ended).
COOKIE_READ_KEY = "iotcare.session_cookie_read"
# Set when the token came in the address (cookies blocked), which then keeps carrying it.
IN_ADDRESS_KEY = "iotcare.session_in_address"
# What a token may contain (core.sessions writes `s1.<urlsafe id>.<urlsafe signature>`): nothing
# else is ever put into the page's script.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_.-]{1,200}")


def current_viewer() -> Viewer | None:
    """The signed-in person of this browser session, or None."""
    viewer = st.session_state.get(VIEWER_KEY)
    return viewer if isinstance(viewer, Viewer) else None


def sent_cookies() -> Mapping[str, str]:
    """The cookies the browser sent when this connection opened (none outside a browser)."""
    return st.context.cookies


def sign_in_as(user: User, now: datetime | None = None, token: str | None = None) -> Viewer:
    """Start a signed-in session for a user (language switches to theirs).

    `token` is the server-side session's signed token: written to the session cookie (for the
    rest of the session's timeout) so a reload resumes.
    """
    viewer = Viewer.of(user)
    started = now or utcnow()
    st.session_state[VIEWER_KEY] = viewer
    st.session_state[SIGNED_IN_AT_KEY] = started
    if token:
        st.session_state[SESSION_TOKEN_KEY] = token
        left = app_context().settings.session_timeout - (utcnow() - started)
        st.session_state[COOKIE_KEY] = ("set", token, max(0, int(left.total_seconds())))
    set_language(viewer.language)
    return viewer


def sign_out(notice: str | None = None) -> None:
    """End the session (on the server too); an optional notice is shown on the sign-in page."""
    token = st.session_state.pop(SESSION_TOKEN_KEY, None) or st.query_params.get(SESSION_PARAM)
    if token:
        with db_session() as session:
            end_session(session, app_context().settings, token)
    if SESSION_PARAM in st.query_params:
        del st.query_params[SESSION_PARAM]
    for key in (VIEWER_KEY, SIGNED_IN_AT_KEY, IN_ADDRESS_KEY):
        st.session_state.pop(key, None)
    st.session_state[COOKIE_KEY] = ("clear",)
    if notice:
        st.session_state[NOTICE_KEY] = notice


def _resume_after_reload() -> Viewer | None:
    """After a reload: the session named by the cookie (or, cookies blocked, the address)."""
    read = st.session_state.get(COOKIE_READ_KEY, False)
    st.session_state[COOKIE_READ_KEY] = True
    from_cookie = None if read else sent_cookies().get(SESSION_COOKIE)
    token = from_cookie or st.query_params.get(SESSION_PARAM)
    if not token:
        return None
    with db_session() as session:
        resumed = resume_session(session, app_context().settings, token)
        if resumed is None:
            if SESSION_PARAM in st.query_params:
                del st.query_params[SESSION_PARAM]
            st.session_state[COOKIE_KEY] = ("clear",)
            st.session_state[NOTICE_KEY] = t("app.signin.expired")
            return None
        user, signed_in_at = resumed
        viewer = sign_in_as(user, now=signed_in_at, token=token)
    if not from_cookie:
        # The token came in the address: this browser keeps no cookie, so the address keeps it.
        st.session_state[IN_ADDRESS_KEY] = token
    return viewer


def session_cookie_script() -> None:
    """Write (or clear) the session cookie in the browser, as this browser session's state says.

    Rendered on every run while signed in, with the same content, so the browser gets it even
    when a rerun overtook the first one. When the browser refuses the cookie, the script puts
    the token in the address instead (the fallback the server then keeps on page switches).
    """
    wanted = st.session_state.get(COOKIE_KEY)
    if not wanted:
        return
    if wanted[0] == "clear":
        st.session_state.pop(COOKIE_KEY, None)  # once is enough: the server forgot the token
        token, max_age = "", 0
    else:
        _, token, max_age = wanted
        if not _TOKEN_SHAPE.fullmatch(token):
            log.error("refusing to write a session token of an unexpected shape")
            return
    st.html(
        _COOKIE_SCRIPT.replace("__NAME__", json.dumps(SESSION_COOKIE))
        .replace("__VALUE__", json.dumps(token))
        .replace("__MAX_AGE__", str(int(max_age)))
        .replace("__PARAM__", json.dumps(SESSION_PARAM)),
        unsafe_allow_javascript=True,
    )


_COOKIE_SCRIPT = """<script>
(() => {
  const name = __NAME__, value = __VALUE__, maxAge = __MAX_AGE__, param = __PARAM__;
  const secure = window.location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${name}=${value}; Max-Age=${maxAge}; Path=/; SameSite=Strict${secure}`;
  if (!value) return;
  const kept = document.cookie.split("; ").includes(`${name}=${value}`);
  if (!kept) {
    const url = new URL(window.location.href);
    url.searchParams.set(param, value);
    window.history.replaceState(window.history.state, "", url);
  }
})();
</script>"""


def refresh_viewer() -> Viewer | None:
    """Check the session is still valid: not expired, user still active; role changes apply now."""
    viewer = current_viewer() or _resume_after_reload()
    if viewer is None:
        return None
    settings = app_context().settings
    started = st.session_state.get(SIGNED_IN_AT_KEY)
    if not isinstance(started, datetime) or utcnow() - started > settings.session_timeout:
        sign_out(t("app.signin.expired"))
        return None
    token = st.session_state.get(SESSION_TOKEN_KEY)
    ended: str | None = None
    with db_session() as session:
        user = session.get(User, viewer.user_id)
        if user is None or not user.active:
            ended = t("errors.inactive_user")
        # Signed out elsewhere (another tab with this token), or timed out on the server.
        elif token and resume_session(session, settings, token) is None:
            ended = t("app.signin.expired")
        else:
            fresh = Viewer.of(user)
    if ended:  # signed out after the block: sign_out has its own database session
        sign_out(ended)
        return None
    in_address = st.session_state.get(IN_ADDRESS_KEY)
    if token and in_address == token and st.query_params.get(SESSION_PARAM) != token:
        # Cookies blocked, token in the address: page switches drop query parameters.
        st.query_params[SESSION_PARAM] = token
    if fresh != viewer:
        fresh = Viewer(**{**fresh.__dict__, "language": language()})
        st.session_state[VIEWER_KEY] = fresh
    return fresh


def client_address() -> str | None:
    """Where this browser connects from, for throttling sign-in per client.

    Behind the reverse proxy every connection comes from the proxy, so the address the proxy
    saw (the last X-Forwarded-For entry, which it sets itself) is used when there is one.
    """
    forwarded = st.context.headers.get("X-Forwarded-For")
    if isinstance(forwarded, str) and forwarded.strip():
        return forwarded.split(",")[-1].strip() or None
    address = st.context.ip_address
    # Not a string outside a real browser connection (AppTest): no client to count.
    return address if isinstance(address, str) else None


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
        try:
            user = sign_in(session, username, password, client=client_address())
        except SignInLocked as locked:
            log.warning("sign-in locked", extra={"username": username.strip().lower()})
            st.error(locked.localized(language()))
            return
        if user is None:
            log.info("sign-in failed", extra={"username": username.strip().lower()})
            st.error(t("app.signin.failed"))
            return
        token = start_session(session, app_context().settings, user)
        sign_in_as(user, token=token)
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
            title = title_text(alert.title, language())
    except IotCareError as error:
        st.error(error.localized(language()))
        return
    st.success(t("app.ack_link.done", title=md_escape(title)))
