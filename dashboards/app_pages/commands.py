"""Commands: send an actuator command after confirming it, and follow it to its ack or timeout."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from core.access import Permission
from core.commands import DEFAULT_TTL
from core.errors import IotCareError
from core.i18n import plural
from core.use_cases import commands as q
from dashboards.components.fleet import label, or_dash, when
from dashboards.components.i18n import t
from dashboards.components.markdown import md_escape
from dashboards.components.page import flash, require_page, show_error, show_flashes
from dashboards.context import app_context, db_session

CONFIRM_KEY = "commands.confirm"
AUTO_REFRESH = timedelta(seconds=5)

viewer = require_page(Permission.SEND_COMMANDS)
st.title(t("app.nav.commands"))
show_flashes()
st.caption(t("app.commands.intro", minutes=int(DEFAULT_TTL.total_seconds() // 60)))

with db_session() as session:
    targets = {target.device_id: target for target in q.targets(session, viewer)}


def command_name(name: str) -> str:
    """A command as people read it ('Close the gas valve')."""
    return label("app.commands.name", name)


def device_label(device_id: str) -> str:
    """'Kitchen valve · kitchen (sunrise-kitchen-gasvalve)'."""
    target = targets.get(device_id)
    if target is None or not (target.name or target.room):
        return device_id
    return t(
        "app.commands.device_label",
        name=target.name or device_id,
        room=or_dash(target.room),
        device=device_id,
    )


# --- send, in two steps: choose, then confirm

st.subheader(t("app.commands.send_title"))
pending = st.session_state.get(CONFIRM_KEY)
if not targets:
    st.info(t("app.commands.no_targets"))
elif pending is None:
    device_id = st.selectbox(
        t("app.commands.device"),
        options=list(targets),
        format_func=device_label,
        key="commands.device",
    )
    command = st.selectbox(
        t("app.commands.command"),
        options=list(targets[device_id].commands) if device_id else [],
        format_func=command_name,
        key="commands.command",
    )
    reason = st.text_input(
        t("app.commands.reason"), help=t("app.commands.reason_help"), max_chars=500
    )
    if st.button(t("app.commands.prepare"), type="primary"):
        if not device_id or not command:
            st.error(t("errors.commands.no_device_chosen"))
        else:
            st.session_state[CONFIRM_KEY] = {
                "device_id": device_id,
                "command": command,
                "reason": reason,
            }
            st.rerun()
else:
    st.markdown(f"**{t('app.commands.confirm_title')}**")
    st.warning(
        t(
            "app.commands.confirm_text",
            command=command_name(pending["command"]),
            device=md_escape(device_label(pending["device_id"])),
        )
    )
    target = targets.get(pending["device_id"])
    if target is not None and target.status == "offline":
        st.caption(t("app.commands.offline_warning"))
    yes, no = st.columns(2)
    if yes.button(t("app.commands.confirm"), type="primary"):
        del st.session_state[CONFIRM_KEY]
        try:
            with db_session() as session:
                row = q.send_command(
                    session,
                    viewer,
                    pending["device_id"],
                    pending["command"],
                    reason=pending["reason"],
                )
                command_id = row.id
            context = app_context()
            stats = q.hand_over(context.sessions, viewer, context.settings, [command_id])
            key = "app.commands.published" if stats and stats.sent else "app.commands.queued"
            flash(
                t(
                    key,
                    command=command_name(pending["command"]),
                    device=md_escape(device_label(pending["device_id"])),
                )
            )
            st.rerun()
        except IotCareError as error:
            show_error(error)
    if no.button(t("app.common.cancel")):
        del st.session_state[CONFIRM_KEY]
        flash(t("app.commands.cancelled"))
        st.rerun()

# --- what happened to them

st.subheader(t("app.commands.history"))
auto = st.toggle(t("app.commands.auto_refresh"), value=True, key="commands.auto")


@st.fragment(run_every=AUTO_REFRESH if auto else None)
def history() -> None:
    """The latest commands with their status; re-run on its own while commands are waiting."""
    st.button(t("app.common.refresh"), key="commands.refresh")
    with db_session() as session:
        table = q.recent_commands(session, viewer)
    if table.empty:
        st.info(t("app.commands.none"))
        return
    timezone = table["site_timezone"].iloc[0]
    st.caption(t("app.common.site_time", timezone=timezone))
    waiting = int(table["status"].isin(["pending", "sent"]).sum())
    if waiting:
        st.caption(plural(t, "app.commands.open_count", waiting))
    zones = table["site_timezone"]
    shown = table.assign(
        created_at=[when(v, z) for v, z in zip(table["created_at"], zones, strict=True)],
        sent_at=[when(v, z) for v, z in zip(table["sent_at"], zones, strict=True)],
        acked_at=[when(v, z) for v, z in zip(table["acked_at"], zones, strict=True)],
        expires_at=[when(v, z) for v, z in zip(table["expires_at"], zones, strict=True)],
        device=[
            f"{name} ({device})" if name else device
            for name, device in zip(table["device"], table["device_id"], strict=True)
        ],
        command=table["command"].map(command_name),
        status=table["status"].map(lambda s: t(f"app.commands.status.{s}")),
        requested_by=table["requested_by"].map(
            lambda u: t("app.commands.by_system") if u is None or u != u else u
        ),
        reason=table["reason"].map(or_dash),
        ack_detail=table["ack_detail"].map(or_dash),
    )
    st.dataframe(
        shown[
            [
                "created_at",
                "device",
                "command",
                "status",
                "requested_by",
                "reason",
                "sent_at",
                "acked_at",
                "expires_at",
                "attempts",
                "ack_detail",
            ]
        ],
        hide_index=True,
        use_container_width=True,
        column_config={
            "created_at": t("app.commands.column.created"),
            "device": t("app.commands.column.device"),
            "command": t("app.commands.column.command"),
            "status": t("app.commands.column.status"),
            "requested_by": t("app.commands.column.requested_by"),
            "reason": t("app.commands.column.reason"),
            "sent_at": t("app.commands.column.sent"),
            "acked_at": t("app.commands.column.acked"),
            "expires_at": t("app.commands.column.expires"),
            "attempts": t("app.commands.column.attempts"),
            "ack_detail": t("app.commands.column.detail"),
        },
    )


history()
