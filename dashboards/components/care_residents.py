"""Care home page, residents tab: admit, edit (contacts too), move room, discharge, readmit."""

from __future__ import annotations

from datetime import time

import pandas as pd
import streamlit as st

from core.access import Viewer
from core.use_cases import residents_admin
from core.use_cases.residents_admin import MAX_CONTACTS, ContactInput, ResidentRecord
from dashboards.components.care_admin import run_change
from dashboards.components.i18n import t
from dashboards.components.timefmt import local_time
from dashboards.context import db_session

FORM_CONTACTS = 2  # contact rows in a form; more through the CLI or the roster


def _contact_inputs(prefix: str, current: list[ContactInput]) -> list[ContactInput]:
    """Rows of contact fields (name, relation, phone, e-mail), filled with the current ones."""
    shown = max(FORM_CONTACTS, len(current))
    out = []
    for i in range(min(shown, MAX_CONTACTS)):
        had = current[i] if i < len(current) else ContactInput("")
        st.caption(t("app.care.contact_n", n=i + 1))
        cols = st.columns(4)
        out.append(
            ContactInput(
                cols[0].text_input(
                    t("app.care.field.contact_name"), value=had.name, key=f"{prefix}.cn{i}"
                ),
                cols[1].text_input(
                    t("app.care.field.contact_relation"),
                    value=had.relation or "",
                    key=f"{prefix}.cr{i}",
                ),
                cols[2].text_input(
                    t("app.care.field.contact_phone"), value=had.phone or "", key=f"{prefix}.cp{i}"
                ),
                cols[3].text_input(
                    t("app.care.field.contact_email"), value=had.email or "", key=f"{prefix}.ce{i}"
                ),
            )
        )
    return out


def _admit(viewer: Viewer, site_names: dict[str, str]) -> None:
    with st.expander(t("app.care.resident_create")), st.form("care.resident.create"):
        site = st.selectbox(
            t("app.care.field.site"),
            list(site_names),
            format_func=lambda s: site_names.get(s, s),
            key="care.resident.site",
        )
        left, right = st.columns(2)
        name = left.text_input(t("app.care.field.name"), key="care.resident.name")
        room = right.text_input(t("app.care.field.room"), key="care.resident.room")
        left, mid, right = st.columns(3)
        start = left.time_input(
            t("app.care.field.active_start"), value=time(7, 0), key="care.resident.start"
        )
        end = mid.time_input(
            t("app.care.field.active_end"), value=time(22, 0), key="care.resident.end"
        )
        zone = right.text_input(
            t("app.care.field.timezone"), key="care.resident.tz", help=t("app.care.resident_tz")
        )
        notes = st.text_area(t("app.care.field.notes"), key="care.resident.notes")
        contacts = _contact_inputs("care.resident.new", [])
        create = st.form_submit_button(t("app.care.admit"), type="primary", key="care.resident.go")
    if create:
        ok, _ = run_change(
            viewer,
            t("app.care.resident_created", name=name.strip()),
            residents_admin.create_resident,
            site_id=site or "",
            name=name,
            room=room,
            timezone=zone,
            active_start=start,
            active_end=end,
            notes=notes,
            contacts=contacts,
        )
        if ok:
            st.rerun()


def _edit(viewer: Viewer, r: ResidentRecord) -> None:
    rid = r.resident_id
    with st.form(f"care.resident.edit.{rid}"):
        left, right = st.columns(2)
        name = left.text_input(t("app.care.field.name"), value=r.name, key=f"care.edit.name.{rid}")
        zone = right.text_input(
            t("app.care.field.timezone"), value=r.timezone or "", help=t("app.care.resident_tz")
        )
        left, right = st.columns(2)
        start = left.time_input(t("app.care.field.active_start"), value=r.active_start)
        end = right.time_input(t("app.care.field.active_end"), value=r.active_end)
        notes = st.text_area(t("app.care.field.notes"), value=r.notes or "")
        contacts = _contact_inputs(f"care.edit.{rid}", r.contacts)
        save = st.form_submit_button(t("app.common.save"), key="care.resident.save")
    if save:
        ok, _ = run_change(
            viewer,
            t("app.care.resident_saved", name=name.strip()),
            residents_admin.update_resident,
            rid,
            name=name,
            timezone=zone,
            active_start=start,
            active_end=end,
            notes=notes,
            contacts=contacts,
        )
        if ok:
            st.rerun()


def _move_and_discharge(viewer: Viewer, r: ResidentRecord, zone: str) -> None:
    rid = r.resident_id
    if r.active:
        left, right = st.columns(2)
        with left.form(f"care.move.{rid}"):
            room = st.text_input(t("app.care.move_to"), value=r.room or "", key="care.move.room")
            st.caption(t("app.care.move_help"))
            move = st.form_submit_button(t("app.care.move"), key="care.move.go")
        with right.form(f"care.discharge.{rid}"):
            reason = st.text_input(t("app.care.discharge_reason"), key="care.discharge.reason")
            st.caption(t("app.care.discharge_help"))
            discharge = st.form_submit_button(t("app.care.discharge"), key="care.discharge.go")
        if move:
            ok, _ = run_change(
                viewer,
                t("app.care.moved", name=r.name, room=room.strip()),
                residents_admin.move_room,
                rid,
                room,
            )
            if ok:
                st.rerun()
        if discharge:
            ok, _ = run_change(
                viewer,
                t("app.care.discharged", name=r.name),
                residents_admin.discharge,
                rid,
                reason=reason,
            )
            if ok:
                st.rerun()
    else:
        st.warning(t("app.care.discharged_on", when=local_time(r.discharged_at, zone)))
        if st.button(t("app.care.readmit"), key="care.readmit"):
            ok, _ = run_change(
                viewer, t("app.care.readmitted", name=r.name), residents_admin.readmit, rid
            )
            if ok:
                st.rerun()


def render(viewer: Viewer, site_names: dict[str, str], zone: str) -> None:
    """The residents tab."""
    if not site_names:
        st.info(t("app.care.no_sites"))
        return
    with db_session() as session:
        residents = residents_admin.list_residents(session, viewer)
    st.dataframe(
        pd.DataFrame(
            {
                t("app.care.col.name"): residents["name"],
                t("app.care.col.site"): [site_names.get(s, s) for s in residents["site_id"]],
                t("app.care.col.room"): residents["room"].fillna(""),
                t("app.care.col.state"): [
                    t("app.care.state.active") if a else t("app.care.state.discharged")
                    for a in residents["active"]
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    _admit(viewer, site_names)
    if residents.empty:
        return
    labels = {
        int(r.resident_id): t(
            "app.care.resident_label",
            name=r.name,
            room=r.room or "-",
            site=site_names.get(r.site_id, r.site_id),
        )
        + ("" if r.active else f" · {t('app.care.state.discharged')}")
        for r in residents.itertuples()
    }
    chosen = st.selectbox(
        t("app.care.resident_pick"),
        list(labels),
        format_func=lambda i: labels.get(i, str(i)),
        key="care.resident.pick",
    )
    with db_session() as session:
        record = residents_admin.resident_record(session, viewer, chosen)
        history = residents_admin.room_history(session, viewer, chosen)
    st.caption(t("app.care.assign_hint"))
    _edit(viewer, record)
    _move_and_discharge(viewer, record, zone)
    if not history.empty:
        st.markdown(f"**{t('app.care.room_history')}**")
        st.dataframe(
            pd.DataFrame(
                {
                    t("app.care.col.when"): [local_time(v, zone) for v in history["at"]],
                    t("app.care.col.room"): history["room"].fillna("-"),
                    t("app.care.col.by"): history["by"],
                }
            ),
            hide_index=True,
            width="stretch",
        )
