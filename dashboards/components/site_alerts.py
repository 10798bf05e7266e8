"""Site-level alerts (a gas leak, a flame in the kitchen) as a banner above the overview's cards."""

from __future__ import annotations

import streamlit as st

from core.use_cases.alerts import finding_text
from core.use_cases.overview import SiteAlert
from dashboards.components.i18n import language, t
from dashboards.components.markdown import md_escape
from dashboards.components.resident_cards import device_name
from dashboards.components.timefmt import ago, local_time

ALERTS_PAGE = "app_pages/alerts.py"


def where_text(alert: SiteAlert, with_site: bool) -> str:
    """'kitchen (Gas valve)', the device id, or 'the whole site'; the site's name when asked."""
    if alert.room:
        place = t(
            "app.overview.site.where_room", room=alert.room, device=device_name(alert.device_type)
        )
    elif alert.device_id:
        place = t("notify.who.device", device=alert.device_id)
    else:
        place = t("notify.who.site")
    return (
        t("app.overview.site.where_site", place=place, site=alert.site_name) if with_site else place
    )


def site_alert_text(alert: SiteAlert, with_site: bool) -> str:
    """'Critical: **Gas leak** · kitchen (Gas valve) · since 14:05 (Asia/Seoul time), 5 min ago'."""
    status = "" if alert.status.value == "open" else t(f"app.alert_status.{alert.status}")
    return t(
        "app.overview.site.line",
        severity=t(f"app.severity.{alert.severity}"),
        what=md_escape(finding_text(alert.kind, alert.details, alert.title, language())),
        where=md_escape(where_text(alert, with_site)),
        time=local_time(alert.opened_at, alert.timezone),
        timezone=alert.timezone,
        ago=ago(alert.opened_at),
        status=f" · {status}" if status else "",
    )


def render_site_alerts(alerts: list[SiteAlert]) -> None:
    """Critical site alerts as red banners (with a link to act on them); others as a warning."""
    with_site = len({a.site_id for a in alerts}) > 1
    for alert in alerts:
        text = site_alert_text(alert, with_site)
        if alert.severity.value == "critical":
            st.error(text, icon=":material/emergency:")
        else:
            st.warning(text, icon=":material/warning:")
        st.page_link(
            ALERTS_PAGE,
            label=t("app.overview.site.open_alert"),
            icon=":material/notifications_active:",
            query_params={"alert": str(alert.id)},
        )
