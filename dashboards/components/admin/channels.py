"""The admin page's Channels tab: where a user's notifications go (email, Telegram, webhook,
ntfy, SMS; the in-app inbox always), adding, switching and removing them."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.use_cases import admin
from dashboards.components.admin.view import AdminView
from dashboards.components.page import run_action
from dashboards.context import db_session
from models import Channel

ADDABLE_CHANNELS = [Channel.EMAIL, Channel.TELEGRAM, Channel.WEBHOOK, Channel.NTFY, Channel.SMS]


def channels_tab(view: AdminView) -> None:
    """The picked user's channels, a form to add one, and switching or removing one."""
    t = view.t
    st.caption(t("app.admin.channels_help"))
    owner = st.selectbox(
        t("app.admin.pick_user"),
        list(view.user_rows),
        format_func=view.user_label,
        key="admin.channels.user",
    )
    if owner is None:
        return
    with db_session() as session:
        channels = admin.list_channels(session, view.viewer, owner)
    st.dataframe(
        pd.DataFrame(
            {
                t("app.admin.col.channel"): [
                    t(f"app.admin.channel.{c}") for c in channels["channel"]
                ],
                t("app.admin.col.address"): channels["address"],
                t("app.admin.col.state"): [
                    t("app.admin.state.on") if e else t("app.admin.state.off")
                    for e in channels["enabled"]
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    with st.form("admin.channel_add", clear_on_submit=True):
        kind = st.selectbox(
            t("app.admin.col.channel"),
            ADDABLE_CHANNELS,
            format_func=lambda c: t(f"app.admin.channel.{c}"),
            key="admin.channel.kind",
        )
        address = st.text_input(
            t("app.admin.col.address"),
            key="admin.channel.address",
            help=t("app.admin.address_help"),
        )
        add = st.form_submit_button(
            t("app.admin.channel_add"), type="primary", key="admin.channel.go"
        )
    if add:
        ok, _ = run_action(
            view.viewer,
            t("app.admin.channel_added", channel=t(f"app.admin.channel.{kind}")),
            admin.add_channel,
            owner,
            kind,
            address,
        )
        if ok:
            st.rerun()
    editable = {
        int(r.channel_id): r for r in channels.itertuples() if r.channel != Channel.INBOX.value
    }
    if editable:
        _change_one(view, owner, editable)
    else:
        st.info(t("app.admin.inbox_only"))


def _change_one(view: AdminView, owner: int, editable: dict[int, Any]) -> None:
    """Pick one of the owner's channels (not the inbox) to switch on or off, or remove."""
    t = view.t
    picked = st.selectbox(
        t("app.admin.pick_channel"),
        list(editable),
        format_func=lambda i: (
            t(
                "app.admin.channel_label",
                channel=t(f"app.admin.channel.{editable[i].channel}"),
                address=editable[i].address,
                state=t("app.admin.state.on") if editable[i].enabled else t("app.admin.state.off"),
            )
            if i in editable
            else str(i)
        ),
        key=f"admin.channel.pick.{owner}",
    )
    row = editable[picked]
    left, right = st.columns(2)
    switch = left.button(
        t("app.admin.channel_disable") if row.enabled else t("app.admin.channel_enable"),
        key="admin.channel.toggle",
    )
    drop = right.button(t("app.admin.remove"), key="admin.channel.remove")
    ok = False
    if switch:
        ok, _ = run_action(
            view.viewer,
            t("app.admin.channel_saved"),
            admin.set_channel_enabled,
            picked,
            not row.enabled,
        )
    if drop:
        ok, _ = run_action(
            view.viewer, t("app.admin.channel_removed"), admin.remove_channel, picked
        )
    if ok:
        st.rerun()
