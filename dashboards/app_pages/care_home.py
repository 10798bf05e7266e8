"""Care home (operators and admins): sites, residents and bulk onboarding from a roster CSV.

The page only lays out forms; core.use_cases.sites_admin, residents_admin and core.roster check,
audit and refuse what a role may not do.
"""

from __future__ import annotations

import streamlit as st

from core.access import Permission, viewer_timezone
from core.use_cases import sites_admin
from dashboards.components import care_residents, care_roster, care_sites
from dashboards.components.i18n import t
from dashboards.components.page import require_page, show_flashes
from dashboards.context import app_context, db_session

viewer = require_page(Permission.MANAGE_RESIDENTS)
st.title(t("app.nav.care_home"))
show_flashes()

with db_session() as session:
    zone = viewer_timezone(session, viewer, app_context().settings.default_timezone)
    sites = sites_admin.list_sites(session, viewer)
site_names = dict(zip(sites["site_id"], sites["name"], strict=True))

sites_tab, residents_tab, roster_tab = st.tabs(
    [t("app.care.tab.sites"), t("app.care.tab.residents"), t("app.care.tab.roster")]
)
with sites_tab:
    care_sites.render(viewer, sites)
with residents_tab:
    care_residents.render(viewer, site_names, zone)
with roster_tab:
    care_roster.render(viewer)
