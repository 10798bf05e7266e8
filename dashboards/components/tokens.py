"""API tokens on a page: the list, issuing one (shown once), revoking one.

The admin page's Tokens tab shows everyone's (and makes service accounts); the Account page
shows the signed-in person's own. Both go through core.api_tokens, which checks who may do what
and audits every change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pandas as pd
import streamlit as st

from core import api_tokens
from core.access import Viewer
from core.errors import IotCareError
from core.timeutil import utcnow
from dashboards.components.markdown import md_escape
from dashboards.components.page import run_action, show_error
from dashboards.components.timefmt import local_time
from dashboards.context import app_context, db_session

NEW_TOKEN_KEY = "tokens.new"  # noqa: S105 (a session-state key, not a secret)


def show_new_token(t: Callable[..., str]) -> None:
    """The token issued in the run before, shown this once and then forgotten."""
    issued = st.session_state.pop(NEW_TOKEN_KEY, None)
    if issued:
        st.warning(t("app.tokens.once", name=md_escape(issued[0])))
        st.code(issued[1], language=None)


def token_table(
    viewer: Viewer,
    t: Callable[..., str],
    zone: str,
    user_id: int | None,
    usernames: dict[int, str],
) -> list[api_tokens.ApiToken]:
    """The tokens (one user's, or everyone's for user_id None), as a table; returned too."""
    with db_session() as session:
        rows = api_tokens.list_tokens(session, viewer, user_id)
    if not rows:
        st.info(t("app.tokens.none"))
        return rows
    frame = pd.DataFrame(
        [
            {
                t("app.tokens.col.prefix"): f"{row.prefix}…",
                t("app.tokens.col.user"): usernames.get(row.user_id, str(row.user_id)),
                t("app.tokens.col.name"): row.name,
                t("app.tokens.col.scopes"): ", ".join(row.scopes),
                t("app.tokens.col.state"): t(f"tokens.state.{api_tokens.token_state(row)}"),
                t("app.tokens.col.expires"): local_time(row.expires_at, zone),
                t("app.tokens.col.last_used"): local_time(row.last_used_at, zone),
            }
            for row in rows
        ]
    )
    if user_id is not None:
        frame = frame.drop(columns=[t("app.tokens.col.user")])
    st.dataframe(frame, hide_index=True, width="stretch")
    return rows


def issue_form(
    viewer: Viewer,
    t: Callable[..., str],
    key: str,
    owners: dict[int, str] | None = None,
) -> None:
    """Issue a token: for the viewer, or (owners given) for one of those users."""
    with st.form(f"{key}.issue", clear_on_submit=True):
        if owners:
            owner = st.selectbox(
                t("app.tokens.owner"), list(owners), format_func=owners.get, key=f"{key}.owner"
            )
        else:
            owner = viewer.user_id
        name = st.text_input(t("app.tokens.name"), key=f"{key}.name")
        scopes = st.multiselect(
            t("app.tokens.scopes"),
            [scope.value for scope in api_tokens.Scope],
            default=["read"],
            format_func=lambda scope: t(f"app.tokens.scope.{scope}"),
            key=f"{key}.scopes",
        )
        days = st.number_input(
            t("app.tokens.days"), min_value=0, max_value=3650, value=90, key=f"{key}.days"
        )
        go = st.form_submit_button(t("app.tokens.issue"), type="primary")
    if not go:
        return
    try:
        with db_session() as session:
            issued = api_tokens.issue_token(
                session,
                app_context().settings,
                viewer,
                user_id=int(owner),
                name=name,
                scopes=scopes,
                expires_at=utcnow() + timedelta(days=int(days)) if days else None,
            )
    except IotCareError as error:
        show_error(error)
        return
    st.session_state[NEW_TOKEN_KEY] = (issued.row.name, issued.secret)
    st.rerun()


def revoke_form(
    viewer: Viewer, t: Callable[..., str], key: str, rows: list[api_tokens.ApiToken]
) -> None:
    """Pick an active token and revoke it."""
    active = {row.id: row for row in rows if api_tokens.token_state(row) == "active"}
    if not active:
        return
    left, right = st.columns([3, 1])
    chosen = left.selectbox(
        t("app.tokens.revoke_pick"),
        list(active),
        format_func=lambda i: f"{active[i].prefix}… {active[i].name}",
        key=f"{key}.revoke_pick",
    )
    right.write("")
    if right.button(t("app.tokens.revoke"), key=f"{key}.revoke"):
        ok, _ = run_action(
            viewer,
            t("app.tokens.revoked", name=md_escape(active[chosen].name)),
            api_tokens.revoke_token,
            int(chosen),
        )
        if ok:
            st.rerun()
