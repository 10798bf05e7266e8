"""Resident page: emergency contacts, family users, the dated care notes and a form to write one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.access import Viewer
from core.use_cases import care_notes
from core.use_cases.family import family_contacts
from core.use_cases.residents_admin import contacts_of
from dashboards.components.care_admin import run_change
from dashboards.components.i18n import t
from dashboards.components.markdown import md_escape
from dashboards.components.page import show_flashes
from dashboards.components.timefmt import local_time
from dashboards.context import db_session


def render(viewer: Viewer, resident_id: int, timezone: str) -> None:
    """Contacts and family, the newest notes first, the form (the viewer may see the resident)."""
    with db_session() as session:
        notes = care_notes.list_notes(session, viewer, resident_id)
        # The resident page checked the viewer may see this resident before calling.
        contacts = contacts_of(session, resident_id)
        family = family_contacts(session, viewer, resident_id)
    if contacts:
        st.subheader(t("app.resident.contacts"))
        st.dataframe(
            pd.DataFrame(
                {
                    t("app.care.field.contact_name"): [c.name for c in contacts],
                    t("app.care.field.contact_relation"): [c.relation or "" for c in contacts],
                    t("app.care.field.contact_phone"): [c.phone or "" for c in contacts],
                    t("app.care.field.contact_email"): [c.email or "" for c in contacts],
                }
            ),
            hide_index=True,
            width="stretch",
        )
    if family:
        st.subheader(t("app.resident.family.title"), help=t("app.resident.family.help"))
        st.dataframe(
            pd.DataFrame(
                {
                    t("app.resident.family.name"): [f.name for f in family],
                    t("app.resident.family.relation"): [f.relation or "" for f in family],
                    t("app.resident.family.channels"): [
                        ", ".join(f"{channel}: {address}" for channel, address in f.channels)
                        for f in family
                    ],
                }
            ),
            hide_index=True,
            width="stretch",
        )
    st.subheader(t("app.care.notes.title"))
    show_flashes()  # "Note added." after the rerun that shows the note
    with st.form(f"care.note.{resident_id}", clear_on_submit=True):
        text = st.text_area(t("app.care.notes.write"), key="care.note.text")
        add = st.form_submit_button(t("app.care.notes.add"), key="care.note.go")
    if add:
        ok, _ = run_change(
            viewer, t("app.care.notes.added"), care_notes.add_note, resident_id, text
        )
        if ok:
            st.rerun()
    if notes.empty:
        st.caption(t("app.care.notes.none"))
    for note in notes.itertuples():
        st.caption(
            t(
                "app.care.notes.by",
                author=md_escape(note.author),
                when=local_time(note.at, timezone),
            )
        )
        # Plain text: what a caregiver typed is never read as Markdown or HTML.
        st.text(note.text)
