"""Care home page, roster tab: upload a roster CSV, check it (dry run), then import it."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import roster
from core.access import Viewer
from core.errors import IotCareError
from dashboards.components.i18n import language, t
from dashboards.components.page import flash
from dashboards.context import db_session

REPORT_KEY = "care.roster.report"


def render(viewer: Viewer) -> None:
    """The roster tab: every row's problem is listed; nothing is written while there is one."""
    st.caption(t("app.care.roster_help"))
    upload = st.file_uploader(
        t("app.care.roster_file"), type=["csv"], key="care.roster.file", max_upload_size=5
    )
    left, right = st.columns(2)
    check = left.button(t("app.care.roster_check"), key="care.roster.check", disabled=not upload)
    apply = right.button(
        t("app.care.roster_import"), type="primary", key="care.roster.import", disabled=not upload
    )
    if upload is None or not (check or apply):
        return
    try:
        with db_session() as session:
            report = roster.import_roster(session, viewer, upload.getvalue(), dry_run=check)
    except IotCareError as error:
        st.error(error.localized(language()))
        return
    lang = language()
    if report.problems:
        st.error(report.summary(lang))
        st.dataframe(
            pd.DataFrame(
                {
                    t("app.care.col.row"): [p.row for p in report.problems],
                    t("app.care.col.column"): [p.column or "" for p in report.problems],
                    t("app.care.col.problem"): [p.message(lang) for p in report.problems],
                }
            ),
            hide_index=True,
            width="stretch",
        )
    elif report.applied:
        flash(report.summary(lang))
        st.rerun()
    else:
        st.success(report.summary(lang))
