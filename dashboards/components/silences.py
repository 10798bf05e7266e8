"""Silences on the pages: a resident away or in hospital, site and device maintenance windows.

Thin: core.silences validates, checks access and audits; this shows the list and the form, with
times in the site's timezone, and says in the reader's language what is wrong.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import streamlit as st

from core import silences
from core.access import Permission, Viewer
from core.errors import IotCareError
from core.i18n import plural
from core.timeutil import utcnow
from dashboards.components.i18n import t
from dashboards.components.markdown import md_escape
from dashboards.components.page import flash, run_action, show_error, show_flashes
from dashboards.components.timefmt import local_time
from dashboards.context import db_session
from models import SilenceReason, SilenceScope

RESIDENT_REASONS = (SilenceReason.AWAY, SilenceReason.HOSPITAL, SilenceReason.OTHER)
MAINTENANCE_REASONS = (SilenceReason.MAINTENANCE, SilenceReason.OTHER)


def reason_label(reason: SilenceReason | str) -> str:
    """'Away', 'In hospital', ... in the reader's language."""
    return t(f"app.silences.reason_{SilenceReason(reason).value}")


def describe(view: silences.SilenceView) -> str:
    """'In hospital until 2026-12-08 18:00' (or 'from ... until ...'), in the site's time."""
    until = local_time(view.ends_at, view.timezone)
    if view.active:
        return t("app.silences.active", reason=reason_label(view.reason), until=until)
    start = local_time(view.starts_at, view.timezone)
    return t("app.silences.upcoming", reason=reason_label(view.reason), start=start, until=until)


def _local_end(day: object, at: time, timezone: str) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(timezone))  # type: ignore[arg-type]


def _listing(viewer: Viewer, views: list[silences.SilenceView], key: str) -> None:
    if not views:
        st.caption(t("app.silences.none"))
        return
    for view in views:
        text, action = st.columns([4, 1])
        label = t(f"app.silences.scope_{view.scope.value}") + f" · {view.label}: "
        line = label + describe(view)
        if view.note:
            line += f" — {view.note}"
        if view.created_by:
            line += " · " + t("app.silences.by", name=view.created_by)
        text.markdown(md_escape(line))
        may = view.scope is SilenceScope.RESIDENT or viewer.can(Permission.MANAGE_DEVICES)
        if may and action.button(t("app.silences.end"), key=f"{key}.end.{view.id}"):
            ok, _ = run_action(viewer, t("app.silences.ended"), silences.cancel_as, view.id)
            if ok:
                st.rerun()


def _form(
    viewer: Viewer,
    key: str,
    timezone: str,
    reasons: tuple[SilenceReason, ...],
    targets: dict[str, tuple[SilenceScope, str]] | None,
    resident_id: int | None,
) -> None:
    with st.form(f"{key}.form", clear_on_submit=True):
        st.markdown(f"**{t('app.silences.add')}**")
        choice = None
        if targets:
            choice = st.selectbox(t("app.silences.target"), list(targets), key=f"{key}.target")
        # Labels as options, not format_func: the choice survives a change of language.
        labels = {reason_label(r): r for r in reasons}
        picked = st.selectbox(t("app.silences.reason"), list(labels), key=f"{key}.reason")
        reason = labels.get(picked, reasons[0]) if picked is not None else reasons[0]
        tomorrow = (utcnow() + timedelta(days=1)).astimezone(ZoneInfo(timezone))
        day_col, time_col = st.columns(2)
        day = day_col.date_input(t("app.silences.until_day"), tomorrow.date(), key=f"{key}.day")
        at = time_col.time_input(t("app.silences.until_time"), time(18, 0), key=f"{key}.time")
        note = st.text_input(t("app.silences.note"), key=f"{key}.note", max_chars=500)
        st.caption(t("app.silences.from_now", timezone=timezone))
        if not st.form_submit_button(t("app.silences.save")):
            return
    if targets and choice is not None:
        scope, target = targets[choice]
    else:
        scope, target = SilenceScope.RESIDENT, str(resident_id)
    try:
        with db_session() as session:
            created = silences.create_as(
                session,
                viewer,
                scope=scope,
                target=target,
                ends_at=_local_end(day, at, timezone),
                reason=reason,
                note=note,
            )
            until = local_time(created.ends_at, timezone)
    except IotCareError as error:
        show_error(error)
        return
    flash(t("app.silences.saved", until=until))
    st.rerun()


def resident_banner(viewer: Viewer, resident_id: int) -> None:
    """Under the resident's name: 'In hospital until …' while a silence holds their alerts."""
    show_flashes()  # the resident page shows no flashes of its own: "saved", "ended"
    try:
        with db_session() as session:
            views = silences.visible_silences(session, viewer, resident_id=resident_id)
    except IotCareError as error:
        show_error(error)
        return
    active = [v for v in views if v.active]
    if active:
        st.warning(" · ".join(describe(v) for v in active))


def resident_silences(viewer: Viewer, resident_id: int, timezone: str) -> None:
    """The resident's silences (theirs and their site's), and a form to say they are away."""
    key = f"silences.resident.{resident_id}"
    try:
        with db_session() as session:
            views = silences.visible_silences(session, viewer, resident_id=resident_id)
    except IotCareError as error:
        show_error(error)
        return
    with st.expander(t("app.silences.title"), expanded=False):
        st.caption(t("app.silences.help"))
        _listing(viewer, views, key)
        if viewer.can(Permission.HANDLE_ALERTS):
            _form(viewer, key, timezone, RESIDENT_REASONS, None, resident_id)


def maintenance_windows(viewer: Viewer, timezone: str) -> None:
    """Operators: the site and device maintenance windows, and a form to add one (times in
    `timezone`)."""
    key = "silences.maintenance"
    with st.expander(t("app.silences.maintenance_title"), expanded=False):
        st.caption(t("app.silences.maintenance_help"))
        try:
            with db_session() as session:
                sites, devices = silences.maintenance_targets(session, viewer)
                views = [
                    v
                    for v in silences.visible_silences(session, viewer)
                    if v.scope is not SilenceScope.RESIDENT
                ]
        except IotCareError as error:
            show_error(error)
            return
        _listing(viewer, views, key)
        targets: dict[str, tuple[SilenceScope, str]] = {}
        for site_id, name in sites.items():
            targets[f"{t('app.silences.scope_site')}: {name}"] = (SilenceScope.SITE, site_id)
        for device_id, site_id in devices:
            label = f"{t('app.silences.scope_device')}: {device_id} ({sites.get(site_id, site_id)})"
            targets[label] = (SilenceScope.DEVICE, device_id)
        _form(viewer, key, timezone, MAINTENANCE_REASONS, targets, None)


def overview_silences(viewer: Viewer, total: int) -> None:
    """Residents whose alerts are held now: 'n of total', then a badge each, in their time."""
    try:
        with db_session() as session:
            away = silences.silenced_residents(session, viewer)
    except IotCareError as error:
        show_error(error)
        return
    if not away:
        return
    st.subheader(t("app.silences.overview_title"))
    st.caption(
        plural(
            t,
            "app.silences.overview_count",
            len(away),
            total=plural(t, "count.residents", total),
        )
    )
    badges = []
    for r in away:
        until = local_time(r.until, r.timezone)
        if r.by_site:
            badges.append(
                t("app.silences.badge_site", name=r.name, until=until, timezone=r.timezone)
            )
        else:
            badges.append(
                t(
                    "app.silences.badge",
                    name=r.name,
                    reason=reason_label(r.reason),
                    until=until,
                    timezone=r.timezone,
                )
            )
    st.markdown("\n".join(f"- {md_escape(b)}" for b in badges))
