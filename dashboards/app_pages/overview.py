"""Overview: a card per resident the viewer looks after, worst state first, refreshed live.

The cards live in a fragment that reruns itself every IOTCARE_APP_REFRESH; the filters and the
page number are widgets with keys inside it, so a refresh keeps the reader's place. Above them,
in the same fragment, the unresolved alerts about a site the viewer works at (a gas leak in the
kitchen) as a banner: what, where, since when in the site's time.
"""

from __future__ import annotations

import math

import streamlit as st

from core.access import Permission, viewer_timezone
from core.errors import IotCareError
from core.timeutil import utcnow
from core.use_cases.overview import CareState, ResidentCard, resident_overview
from dashboards.components.i18n import t
from dashboards.components.page import require_page, show_error
from dashboards.components.resident_cards import render_card
from dashboards.components.silences import overview_silences
from dashboards.components.site_alerts import render_site_alerts
from dashboards.components.timefmt import local_time
from dashboards.context import app_context, db_session

PAGE_SIZE = 30
COLUMNS = 3
STATE_KEY = "overview.state"
SEARCH_KEY = "overview.search"
PAGE_KEY = "overview.page"

viewer = require_page(Permission.VIEW_RESIDENTS)
refresh = app_context().settings.app_refresh
st.title(t("app.nav.overview"))


def _site_timezone() -> str:
    with db_session() as session:
        return viewer_timezone(session, viewer, "UTC")


def _matches(card: ResidentCard, states: list[str], search: str) -> bool:
    if states and card.state.value not in states:
        return False
    if not search:
        return True
    needle = search.casefold()
    return needle in card.name.casefold() or needle in (card.room or "").casefold()


@st.fragment(run_every=refresh)
def board(timezone: str) -> None:
    """Counts, filters and the cards; reruns on its own without resetting the widgets."""
    try:
        with db_session() as session:
            overview = resident_overview(session, viewer)
    except IotCareError as error:
        show_error(error)
        return
    render_site_alerts(overview.site_alerts)
    if not overview.cards:
        st.info(
            t(
                "app.overview.empty_all"
                if viewer.sees_all_residents
                else "app.overview.empty_caregiver"
            )
        )
        return
    columns = st.columns(len(CareState) + (1 if overview.site_alerts else 0))
    if overview.site_alerts:
        critical = len(overview.critical_site_alerts)
        columns.pop(0).metric(
            t("app.overview.site_alerts_metric"),
            len(overview.site_alerts),
            t("app.overview.site_alerts_critical", n=critical) if critical else None,
            delta_color="inverse",  # red: more critical alerts is worse
        )
    for column, state in zip(columns, CareState, strict=True):
        column.metric(t(f"app.overview.state.{state}"), overview.counts[state])
    overview_silences(viewer, len(overview.cards))
    states = st.pills(
        t("app.overview.show"),
        options=[s.value for s in CareState],
        format_func=lambda s: t(f"app.overview.state.{s}"),
        selection_mode="multi",
        key=STATE_KEY,
    )
    search = st.text_input(t("app.overview.search"), key=SEARCH_KEY).strip()
    shown = [c for c in overview.cards if _matches(c, list(states or []), search)]
    if not shown:
        st.info(t("app.overview.no_match"))
        return
    pages = max(1, math.ceil(len(shown) / PAGE_SIZE))
    if st.session_state.get(PAGE_KEY, 1) > pages:
        st.session_state[PAGE_KEY] = pages  # fewer cards after a filter or a refresh
    page = 1
    if pages > 1:
        page = int(
            st.number_input(
                t("app.overview.page"), min_value=1, max_value=pages, step=1, key=PAGE_KEY
            )
        )
    first = (page - 1) * PAGE_SIZE
    chunk = shown[first : first + PAGE_SIZE]
    st.caption(
        t("app.overview.showing", first=first + 1, last=first + len(chunk), total=len(shown))
    )
    # Row by row, so that on a narrow screen (columns stacked) the cards stay worst first.
    for row in range(0, len(chunk), COLUMNS):
        for column, card in zip(st.columns(COLUMNS), chunk[row : row + COLUMNS], strict=False):
            with column:
                render_card(card)
    st.caption(t("app.overview.trend_legend"))
    st.caption(
        t(
            "app.overview.updated",
            time=local_time(overview.as_of or utcnow(), timezone, with_date=False),
            timezone=timezone,
            seconds=int(refresh.total_seconds()),
        )
    )


board(_site_timezone())
