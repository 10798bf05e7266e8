"""Care home page, sites tab: the sites, a form to create one and a form to edit one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.access import Viewer
from core.use_cases import sites_admin
from dashboards.components.care_admin import run_change
from dashboards.components.i18n import t


def render(viewer: Viewer, sites: pd.DataFrame) -> None:
    """The sites tab."""
    st.dataframe(
        pd.DataFrame(
            {
                t("app.care.col.site_id"): sites["site_id"],
                t("app.care.col.name"): sites["name"],
                t("app.care.col.timezone"): sites["timezone"],
                t("app.care.col.residents"): sites["residents"],
                t("app.care.col.devices"): sites["devices"],
                t("app.care.col.address"): sites["address"].fillna(""),
                t("app.care.col.contacts"): sites["contacts"].fillna(""),
            }
        ),
        hide_index=True,
        width="stretch",
    )
    with st.expander(t("app.care.site_create")), st.form("care.site.create"):
        site_id = st.text_input(
            t("app.care.field.site"), key="care.site.id", help=t("app.care.site_id_help")
        )
        name = st.text_input(t("app.care.field.name"), key="care.site.name")
        zone = st.text_input(
            t("app.care.field.timezone"),
            value="Asia/Seoul",
            key="care.site.timezone",
            help=t("app.care.timezone_help"),
        )
        address = st.text_area(t("app.care.field.address"), key="care.site.address")
        contacts = st.text_area(
            t("app.care.field.contacts"), key="care.site.contacts", help=t("app.care.contacts_help")
        )
        create = st.form_submit_button(t("app.care.create"), type="primary", key="care.site.go")
    if create:
        ok, _ = run_change(
            viewer,
            t("app.care.site_created", site=site_id.strip()),
            sites_admin.create_site,
            site_id=site_id,
            name=name,
            timezone=zone,
            address=address,
            contacts=contacts,
        )
        if ok:
            st.rerun()

    if sites.empty:
        return
    rows = {r.site_id: r for r in sites.itertuples()}
    chosen = st.selectbox(
        t("app.care.site_pick"),
        list(rows),
        format_func=lambda s: f"{rows[s].name} ({s})" if s in rows else str(s),
        key="care.site.pick",
    )
    site = rows[chosen]
    with st.form(f"care.site.edit.{chosen}"):
        new_name = st.text_input(t("app.care.field.name"), value=site.name)
        new_zone = st.text_input(t("app.care.field.timezone"), value=site.timezone)
        new_address = st.text_area(t("app.care.field.address"), value=site.address or "")
        new_contacts = st.text_area(t("app.care.field.contacts"), value=site.contacts or "")
        save = st.form_submit_button(t("app.common.save"), key="care.site.save")
    if save:
        ok, _ = run_change(
            viewer,
            t("app.care.site_saved", site=chosen),
            sites_admin.update_site,
            chosen,
            name=new_name,
            timezone=new_zone,
            address=new_address,
            contacts=new_contacts,
        )
        if ok:
            st.rerun()
