"""Devices page forms: add a device; rename, reassign, replace or decommission the chosen one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.access import Viewer
from core.contract.catalogue import DeviceType
from core.use_cases import devices as q
from core.use_cases import devices_admin
from dashboards.components.care_admin import run_change
from dashboards.components.fleet import device_type
from dashboards.components.i18n import t
from dashboards.context import db_session


def _select(
    where: Any,
    label: str,
    values: list[Any],
    describe: Callable[[Any], str],
    *,
    key: str,
    index: int = 0,
) -> Any:
    """A selectbox of `values` shown as `describe` says, labels made now in the reader's language.

    The widget holds positions, and its labels are fixed when the page runs: a label function
    that translates when called would be called again outside this run (Streamlit's test
    harness does so), in whatever language is current there.
    """
    labels = [describe(value) for value in values]
    chosen = where.selectbox(
        label, range(len(values)), index=index, format_func=labels.__getitem__, key=key
    )
    return values[chosen]


def add_form(viewer: Viewer, site_info: dict[str, tuple[str, str]], default_site: str) -> None:
    """An expander with the form to register a device."""
    if not site_info:
        return
    with st.expander(t("app.care.devices.add_title")):
        sites = list(site_info)
        site = st.selectbox(
            t("app.care.field.site"),
            sites,
            index=sites.index(default_site) if default_site in sites else 0,
            format_func=lambda s: site_info.get(s, (s, ""))[0],
            key="devices.add.site",
        )
        with db_session() as session:
            residents = q.site_residents(session, viewer, site)
        with st.form("devices.add"):
            left, right = st.columns(2)
            device_id = left.text_input(
                t("app.care.field.id"), key="devices.add.id", help=t("app.care.site_id_help")
            )
            kind = _select(
                right,
                t("app.care.devices.type"),
                [k.value for k in DeviceType],
                device_type,
                key="devices.add.type",
            )
            resident = _select(
                st,
                t("app.care.field.resident"),
                [None, *residents],
                lambda r: (
                    t("app.care.devices.no_resident") if r is None else residents.get(r, str(r))
                ),
                key="devices.add.resident",
            )
            left, right = st.columns(2)
            room = left.text_input(
                t("app.care.field.room"),
                key="devices.add.room",
                help=t("app.care.devices.room_help"),
            )
            name = right.text_input(t("app.care.field.name"), key="devices.add.name")
            add = st.form_submit_button(t("app.care.devices.add"), key="devices.add.go")
        if add:
            ok, created = run_change(
                viewer,
                t("app.care.devices.added", device=device_id.strip()),
                devices_admin.add_device,
                device_id=device_id,
                site_id=site,
                device_type=kind,
                resident_id=resident,
                room=room,
                name=name,
            )
            if ok:
                st.query_params["device"] = created
                st.rerun()


def change_forms(viewer: Viewer, detail: q.DeviceDetail) -> None:
    """An expander to rename/reassign, replace or decommission the device shown."""
    if detail.quarantined or detail.decommissioned_at is not None:
        # The quarantine decision comes first (accept or reject above); a decommissioned
        # device is history, no longer changed.
        return
    device_id = detail.device_id
    with st.expander(t("app.care.devices.change_title")):
        with db_session() as session:
            residents = q.site_residents(session, viewer, detail.site_id)
        options = [None, *residents]
        with st.form(f"devices.edit.{device_id}"):
            name = st.text_input(t("app.care.field.name"), value=detail.name or "")
            resident = _select(
                st,
                t("app.care.field.resident"),
                options,
                lambda r: (
                    t("app.care.devices.no_resident") if r is None else residents.get(r, str(r))
                ),
                index=options.index(detail.resident_id) if detail.resident_id in options else 0,
                key=f"devices.edit.resident.{device_id}",
            )
            room = st.text_input(
                t("app.care.field.room"),
                value=detail.room or "",
                key=f"devices.edit.room.{device_id}",
            )
            save = st.form_submit_button(t("app.common.save"), key="devices.edit.go")
        if save:
            ok, _ = run_change(
                viewer,
                t("app.care.devices.saved", device=device_id),
                devices_admin.update_device,
                device_id,
                name=name,
                resident_id=resident,
                room=room,
            )
            if ok:
                st.rerun()
        left, right = st.columns(2)
        with left.form(f"devices.replace.{device_id}"):
            new_id = st.text_input(t("app.care.devices.new_id"), key="devices.replace.id")
            st.caption(t("app.care.devices.replace_help"))
            replace = st.form_submit_button(t("app.care.devices.replace"), key="devices.replace.go")
        with right.form(f"devices.retire.{device_id}"):
            reason = st.text_input(t("app.care.field.reason"), key="devices.retire.reason")
            st.caption(t("app.care.devices.retire_help"))
            retire = st.form_submit_button(t("app.care.devices.retire"), key="devices.retire.go")
        if replace:
            ok, created = run_change(
                viewer,
                t("app.care.devices.replaced", old=device_id, new=new_id.strip()),
                devices_admin.replace_device,
                device_id,
                new_id,
            )
            if ok:
                st.query_params["device"] = created
                st.rerun()
        if retire:
            ok, _ = run_change(
                viewer,
                t("app.care.devices.retired", device=device_id),
                devices_admin.decommission,
                device_id,
                reason=reason,
            )
            if ok:
                st.query_params.pop("device", None)
                st.rerun()
