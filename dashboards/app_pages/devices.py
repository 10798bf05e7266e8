"""Devices: the fleet at a glance, quarantine decisions, and one device's recent messages."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.access import Permission
from core.contract.catalogue import DeviceType
from core.errors import IotCareError
from core.i18n import plural
from core.use_cases import devices as q
from dashboards.components import device_admin
from dashboards.components.fleet import device_pick_label, device_type, label, or_dash, when
from dashboards.components.i18n import t
from dashboards.components.markdown import md_escape
from dashboards.components.page import flash, require_page, run_action, show_error, show_flashes
from dashboards.components.silences import maintenance_windows
from dashboards.context import db_session

MESSAGE_HOURS = 24

viewer = require_page(Permission.MANAGE_DEVICES)
st.title(t("app.nav.devices"))
show_flashes()

with db_session() as session:
    site_info = q.sites(session, viewer)
    summary = q.fleet_summary(session, viewer)
    waiting = q.fleet(session, viewer, q.FleetFilter(quarantined=True))

if summary.total == 0:
    st.info(t("app.devices.empty"))
    device_admin.add_form(viewer, site_info, viewer.site_id or next(iter(site_info), ""))
    st.stop()


def site_tz(site_id: str) -> str:
    """The site's timezone (UTC for a site that vanished meanwhile)."""
    return site_info.get(site_id, ("", "UTC"))[1]


default_site = viewer.site_id if viewer.site_id in site_info else next(iter(site_info))
st.caption(
    t("app.devices.site_time", timezone=site_tz(default_site), site=site_info[default_site][0])
)
maintenance_windows(viewer, site_tz(default_site))
online_col, silent_col, offline_col, quarantined_col = st.columns(4)
online_col.metric(t("app.devices.online"), summary.online)
silent_col.metric(t("app.devices.silent"), summary.silent, help=t("app.devices.silent_help"))
offline_col.metric(t("app.devices.offline"), summary.offline)
quarantined_col.metric(t("app.devices.quarantined"), summary.quarantined)
st.caption(
    plural(
        t,
        "app.devices.summary",
        summary.total,
        total=summary.total,
        low_battery=summary.low_battery,
        threshold=q.LOW_BATTERY,
    )
)

# --- quarantine decisions

st.subheader(plural(t, "app.devices.quarantine.title", len(waiting)))
if waiting.empty:
    st.caption(t("app.devices.quarantine.none"))
else:
    st.caption(t("app.devices.quarantine.help"))
    sites_of = dict(zip(waiting["device_id"], waiting["site_id"], strict=True))
    choice = st.selectbox(
        t("app.devices.quarantine.pick"),
        options=list(waiting["device_id"]),
        format_func=lambda d: f"{d} ({site_info.get(sites_of[d], (sites_of[d], ''))[0]})",
        key="devices.quarantine.pick",
    )
    row = waiting.set_index("device_id").loc[choice]
    st.caption(
        t(
            "app.devices.detail.status",
            status=t(f"app.device_status.{row['status']}"),
            last_seen=when(row["last_seen"], site_tz(row["site_id"])),
        )
    )
    with db_session() as session:
        residents = q.site_residents(session, viewer, row["site_id"])
    with st.form("accept"):
        st.markdown(f"**{t('app.devices.quarantine.accept_title')}**")
        kinds = [None, *(kind.value for kind in DeviceType)]
        chosen_type = st.selectbox(
            t("app.devices.quarantine.type"),
            options=kinds,
            format_func=lambda k: t("app.devices.types.none") if k is None else device_type(k),
            help=t("app.devices.quarantine.type_help"),
        )
        chosen_resident = st.selectbox(
            t("app.devices.quarantine.resident"),
            options=[None, *residents],
            format_func=lambda r: (
                t("app.devices.quarantine.no_resident") if r is None else residents[r]
            ),
        )
        room = st.text_input(t("app.devices.quarantine.room"), max_chars=64)
        name = st.text_input(t("app.devices.quarantine.name"), max_chars=200)
        accept = st.form_submit_button(t("app.devices.quarantine.accept"), type="primary")
    if accept:
        if chosen_type is None:
            st.error(t("errors.devices.type_unknown"))
        else:
            ok, _ = run_action(
                viewer,
                t("app.devices.quarantine.accepted", device=choice),
                q.accept_device,
                choice,
                device_type=chosen_type,
                resident_id=chosen_resident,
                room=room,
                name=name,
            )
            if ok:
                st.rerun()
    with st.form("reject"):
        st.markdown(f"**{t('app.devices.quarantine.reject_title')}**")
        st.caption(t("app.devices.quarantine.reject_help"))
        reason = st.text_input(t("app.devices.quarantine.reason"), max_chars=500)
        block = st.checkbox(t("app.devices.quarantine.block"), value=True)
        sure = st.checkbox(t("app.devices.quarantine.reject_confirm", device=choice))
        reject = st.form_submit_button(t("app.devices.quarantine.reject"))
    if reject:
        if not sure:
            st.error(t("app.devices.quarantine.reject_unconfirmed"))
        else:
            try:
                with db_session() as session:
                    result = q.reject_device(session, viewer, choice, reason=reason, block=block)
                flash(
                    t(
                        "app.devices.quarantine.rejected_blocked"
                        if result.blocked
                        else "app.devices.quarantine.rejected",
                        device=choice,
                        readings=plural(t, "count.readings", result.readings_kept),
                        events=plural(t, "count.events", result.events_kept),
                    )
                )
                st.rerun()
            except IotCareError as error:
                show_error(error)

# --- blocked device ids

with db_session() as session:
    blocked = q.blocked_devices(session, viewer)
with st.expander(plural(t, "app.devices.blocked.title", len(blocked)), expanded=False):
    if blocked.empty:
        st.caption(t("app.devices.blocked.none"))
    else:
        st.caption(t("app.devices.blocked.help"))
        st.dataframe(
            blocked.assign(
                blocked_at=[
                    when(at, site_tz(site))
                    for at, site in zip(blocked["blocked_at"], blocked["site_id"], strict=True)
                ],
                blocked_by=blocked["blocked_by"].map(or_dash),
                reason=blocked["reason"].map(or_dash),
            ),
            hide_index=True,
            use_container_width=True,
            column_config={
                "device_id": t("app.devices.column.device"),
                "site_id": t("app.devices.column.site"),
                "blocked_at": t("app.devices.column.blocked_at"),
                "blocked_by": t("app.devices.column.blocked_by"),
                "reason": t("app.devices.column.reason"),
            },
        )
        with st.form("unblock"):
            to_unblock = st.selectbox(
                t("app.devices.blocked.pick"), options=list(blocked["device_id"])
            )
            unblock = st.form_submit_button(t("app.devices.blocked.unblock"))
        if unblock:
            ok, _ = run_action(
                viewer,
                t("app.devices.blocked.unblocked", device=to_unblock),
                q.unblock_device,
                to_unblock,
            )
            if ok:
                st.rerun()

# --- the fleet table

st.subheader(t("app.nav.devices"))
with st.expander(t("app.devices.filters"), expanded=False):
    site_filter = None
    if len(site_info) > 1:
        site_filter = st.selectbox(
            t("app.devices.site"),
            options=[None, *site_info],
            format_func=lambda s: t("app.common.all") if s is None else site_info[s][0],
        )
    status_filter = st.selectbox(
        t("app.devices.status"),
        options=[None, *q.ShownStatus],
        format_func=lambda s: t("app.common.all") if s is None else t(f"app.device_status.{s}"),
    )
    type_filter = st.selectbox(
        t("app.devices.type"),
        options=[None, *(kind.value for kind in DeviceType)],
        format_func=lambda k: t("app.common.all") if k is None else device_type(k),
    )
    only_quarantined = st.checkbox(t("app.devices.quarantined_only"))
    with_decommissioned = st.checkbox(
        t("app.devices.decommissioned"), help=t("app.devices.decommissioned_help")
    )
    search = st.text_input(t("app.devices.search"), help=t("app.devices.search_help"))

flt = q.FleetFilter(
    site_id=site_filter,
    status=status_filter,
    device_type=type_filter,
    quarantined=True if only_quarantined else None,
    search=search or None,
    decommissioned=with_decommissioned,
)
with db_session() as session:
    table = q.fleet(session, viewer, flt)

if table.empty:
    st.info(t("app.devices.no_match"))
else:
    st.caption(plural(t, "app.devices.shown", summary.total, shown=len(table), total=summary.total))
    shown = table.assign(
        type=table["type"].map(device_type),
        status=table["status"].map(lambda s: t(f"app.device_status.{s}")),
        last_seen=[
            when(seen, site_tz(site))
            for seen, site in zip(table["last_seen"], table["site_id"], strict=True)
        ],
        resident=table["resident"].map(or_dash),
        room=table["room"].map(or_dash),
        firmware=table["firmware"].map(or_dash),
        decommissioned_at=[
            when(at, site_tz(site)) if pd.notna(at) else or_dash(None)
            for at, site in zip(table["decommissioned_at"], table["site_id"], strict=True)
        ],
    )
    columns = ["device_id", "name", "type", "resident", "room", "status", "last_seen"]
    columns += ["battery", "firmware", "quarantined"]
    if with_decommissioned:
        columns.append("decommissioned_at")
    if len(site_info) > 1:
        columns.insert(1, "site_id")
    st.dataframe(
        shown[columns],
        hide_index=True,
        use_container_width=True,
        column_config={
            "device_id": t("app.devices.column.device"),
            "site_id": t("app.devices.column.site"),
            "name": t("app.devices.column.name"),
            "type": t("app.devices.column.type"),
            "resident": t("app.devices.column.resident"),
            "room": t("app.devices.column.room"),
            "status": t("app.devices.column.status"),
            "last_seen": t("app.devices.column.last_seen"),
            "battery": st.column_config.ProgressColumn(
                t("app.devices.column.battery"), min_value=0, max_value=100, format="%d%%"
            ),
            "firmware": t("app.devices.column.firmware"),
            "quarantined": st.column_config.CheckboxColumn(t("app.devices.column.quarantined")),
            "decommissioned_at": t("app.devices.decommissioned"),
        },
    )

# After the quarantine forms, whose fields have the same labels.
device_admin.add_form(viewer, site_info, default_site)

# --- one device

st.subheader(t("app.devices.detail.title"))
all_ids = list(table["device_id"]) if not table.empty else []
wanted = st.query_params.get("device")
if wanted and wanted not in all_ids:
    all_ids.insert(0, wanted)
# A device without a name (one just found, or its resident gone) reads as its id, not "— nan".
names = (
    {row.device_id: device_pick_label(row.device_id, row.name) for row in table.itertuples()}
    if not table.empty
    else {}
)
picked = st.selectbox(
    t("app.devices.detail.pick"),
    options=all_ids,
    index=all_ids.index(wanted) if wanted in all_ids else None,
    format_func=lambda d: names.get(d, d),
    placeholder=t("app.devices.detail.pick_help"),
    key="devices.detail.pick",
)
if picked is None:
    st.caption(t("app.devices.detail.nothing"))
    st.stop()
if picked != wanted:
    st.query_params["device"] = picked

try:
    with db_session() as session:
        detail = q.device_detail(session, viewer, picked)
        messages = q.recent_messages(session, viewer, picked, hours=MESSAGE_HOURS)
except IotCareError as error:
    show_error(error)
    st.stop()

tz = detail.site_timezone
st.markdown(f"**{md_escape(detail.name or detail.device_id)}** · {md_escape(detail.device_id)}")
st.markdown(
    t(
        "app.devices.detail.facts",
        type=device_type(detail.type),
        site=md_escape(site_info.get(detail.site_id, (detail.site_id, tz))[0]),
        room=md_escape(or_dash(detail.room)),
        resident=md_escape(or_dash(detail.resident)),
    )
)
st.markdown(
    t(
        "app.devices.detail.status",
        status=t(f"app.device_status.{detail.shown_status}"),
        last_seen=when(detail.last_seen, tz),
    )
)
if detail.status_since is not None:
    st.caption(
        t(
            "app.devices.detail.status_since",
            status=t(f"app.device_status.{detail.status}"),
            since=when(detail.status_since, tz),
        )
    )
if detail.shown_status == q.ShownStatus.SILENT:
    st.warning(t("app.devices.detail.silent"))
st.caption(
    t(
        "app.devices.detail.hardware",
        battery=or_dash(None if detail.battery is None else f"{detail.battery}%"),
        rssi=or_dash(None if detail.rssi is None else f"{detail.rssi} dBm"),
        firmware=md_escape(or_dash(detail.firmware)),
        created=when(detail.created_at, tz),
    )
)
if detail.quarantined:
    st.warning(t("app.devices.detail.quarantined"))
if detail.decommissioned_at is not None:
    st.warning(t("app.devices.detail.decommissioned", at=when(detail.decommissioned_at, tz)))
device_admin.change_forms(viewer, detail)

st.markdown(f"**{plural(t, 'app.devices.detail.messages', MESSAGE_HOURS, hours=MESSAGE_HOURS)}**")
st.caption(t("app.devices.detail.status_note"))
if messages.empty:
    st.info(plural(t, "app.devices.detail.no_messages", MESSAGE_HOURS, hours=MESSAGE_HOURS))
else:
    st.dataframe(
        messages.assign(
            at=messages["at"].map(lambda v: when(v, tz)),
            kind=messages["kind"].map(lambda k: t(f"app.devices.kind.{k}")),
            what=[
                label("app.ingest.reason", w)
                if k == "dead_letter"
                else t(f"app.device_status.{w}")
                if k == "status"
                else w
                for k, w in zip(messages["kind"], messages["what"], strict=True)
            ],
            detail=[
                t(f"app.devices.status_reason.{d}") if k == "status" else d
                for k, d in zip(messages["kind"], messages["detail"], strict=True)
            ],
        ),
        hide_index=True,
        use_container_width=True,
        column_config={
            "at": t("app.devices.column.at"),
            "kind": t("app.devices.column.kind"),
            "what": t("app.devices.column.what"),
            "detail": t("app.devices.column.detail"),
        },
    )
