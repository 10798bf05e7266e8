"""Users and access (admins): accounts, roles, caregiver assignments, family links, contact
channels, quiet hours, API tokens and service accounts. Every change goes through
core.queries.admin (tokens: core.api_tokens), which validates, audits and refuses to leave the
platform without an active administrator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from typing import Any

import pandas as pd
import streamlit as st

from core import api_tokens
from core.access import Permission, viewer_timezone
from core.errors import IotCareError
from core.i18n import plural, translator
from core.queries import admin
from dashboards.components import tokens
from dashboards.components.i18n import LANGUAGE_NAMES, language
from dashboards.components.markdown import md_escape
from dashboards.components.page import flash, require_page, show_error, show_flashes
from dashboards.components.timefmt import local_time
from dashboards.context import app_context, db_session
from models import Channel, Role

NEW_PASSWORD_KEY = "admin.new_password"  # noqa: S105 (a session-state key, not a secret)
ADDABLE_CHANNELS = [Channel.EMAIL, Channel.TELEGRAM, Channel.WEBHOOK, Channel.NTFY, Channel.SMS]

viewer = require_page(Permission.MANAGE_USERS)
# Bound to the language now: format_func callbacks may run outside the script run.
t = translator(language())
st.title(t("app.nav.admin"))
show_flashes()

# A generated password is shown once, right after it was made, and then forgotten.
handed_over = st.session_state.pop(NEW_PASSWORD_KEY, None)
if handed_over:
    st.warning(t("app.admin.password_once", username=md_escape(handed_over[0])))
    st.code(handed_over[1], language=None)

with db_session() as session:
    zone = viewer_timezone(session, viewer, app_context().settings.default_timezone)
    people = admin.list_users(session, viewer)
    sites = admin.list_sites(session, viewer)
    residents = admin.list_residents(session, viewer)
    assignments = admin.list_assignments(session, viewer)
    family_links = admin.list_family_links(session, viewer)
    permissions = admin.role_permissions(viewer)

site_names = dict(sites)
user_rows = {int(r.user_id): r for r in people.itertuples()}
roles = list(Role)
site_options: list[str | None] = [None, *site_names]


def role_label(role: str) -> str:
    """A role in words."""
    return t(f"app.roles.{role}")


def site_label(site_id: str | None) -> str:
    """A site's name, or 'no site'."""
    return t("app.admin.no_site") if not site_id else site_names.get(site_id, site_id)


def user_label(user_id: int) -> str:
    """'Name (username) · role', marked when inactive."""
    row = user_rows[user_id]
    label = t(
        "app.admin.user_label",
        name=row.display_name,
        username=row.username,
        role=role_label(row.role),
    )
    return label if row.active else t("app.admin.inactive_label", label=label)


def run_change(
    done: str, change: Callable[..., Any], *args: Any, **kwargs: Any
) -> tuple[bool, Any]:
    """Run an admin change in its own transaction: (True, result) and `done` flashed, or the
    error shown in the admin's language and (False, None)."""
    try:
        with db_session() as session:
            result = change(session, viewer, *args, **kwargs)
    except IotCareError as error:
        show_error(error)
        return False, None
    flash(done)
    return True, result


def remove_one(
    label: str,
    residents: dict[int, str],
    *,
    pick_key: str,
    button_key: str,
    done: str,
    change: Callable[..., Any],
) -> None:
    """Pick one of a person's links to residents (id -> resident name) and remove it."""
    left, right = st.columns([3, 1])
    chosen = left.selectbox(
        label, list(residents), format_func=lambda i: residents.get(i, str(i)), key=pick_key
    )
    right.write("")
    if right.button(t("app.admin.remove"), key=button_key):
        ok, _ = run_change(t(done, resident=md_escape(residents[chosen])), change, chosen)
        if ok:
            st.rerun()


users_tab, assign_tab, channels_tab, tokens_tab, roles_tab = st.tabs(
    [
        t("app.admin.tab.users"),
        t("app.admin.tab.assignments"),
        t("app.admin.tab.channels"),
        t("app.admin.tab.tokens"),
        t("app.admin.tab.roles"),
    ]
)

# --- users
with users_tab:
    st.caption(t("app.common.site_time", timezone=zone))
    st.dataframe(
        pd.DataFrame(
            {
                t("app.admin.col.username"): people["username"],
                t("app.admin.col.name"): people["display_name"],
                t("app.admin.col.role"): [
                    t("app.tokens.service_role", role=role_label(r)) if service else role_label(r)
                    for r, service in zip(people["role"], people["is_service"], strict=True)
                ],
                t("app.admin.col.language"): [LANGUAGE_NAMES.get(v, v) for v in people["language"]],
                t("app.admin.col.site"): [site_label(s) for s in people["site_id"]],
                t("app.admin.col.state"): [
                    t("app.admin.state.active") if a else t("app.admin.state.inactive")
                    for a in people["active"]
                ],
                t("app.admin.col.residents"): people["residents"],
                t("app.admin.col.last_login"): [
                    local_time(v, zone) if pd.notna(v) else t("app.time.never")
                    for v in people["last_login_at"]
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )

    with st.expander(t("app.admin.create_title")), st.form("admin.create", clear_on_submit=False):
        username = st.text_input(
            t("app.admin.username"), key="admin.create.username", help=t("app.admin.username_help")
        )
        display_name = st.text_input(t("app.admin.display_name"), key="admin.create.name")
        left, right = st.columns(2)
        role = left.selectbox(
            t("app.admin.role"), roles, format_func=role_label, key="admin.create.role"
        )
        lang = right.selectbox(
            t("app.common.language"),
            list(LANGUAGE_NAMES),
            format_func=LANGUAGE_NAMES.__getitem__,
            key="admin.create.language",
        )
        site = st.selectbox(
            t("app.admin.site"),
            site_options,
            index=1 if len(site_options) > 1 else 0,
            format_func=site_label,
            key="admin.create.site",
        )
        password = st.text_input(
            t("app.admin.password"),
            type="password",
            key="admin.create.password",
            help=t("app.admin.password_help"),
        )
        create = st.form_submit_button(t("app.admin.create"), type="primary", key="admin.create.go")
    if create:
        if not username.strip():
            st.error(t("errors.admin.username_empty"))
        else:
            ok, created = run_change(
                t("app.admin.created", username=md_escape(username.strip().lower())),
                admin.create_account,
                username=username,
                role=role,
                display_name=display_name,
                language=lang,
                site_id=site,
                password=password or None,
            )
            if ok:
                if not password:
                    st.session_state[NEW_PASSWORD_KEY] = (created.username, created.password)
                st.rerun()

    st.subheader(t("app.admin.manage_title"))
    chosen = st.selectbox(
        t("app.admin.pick_user"), list(user_rows), format_func=user_label, key="admin.user"
    )
    if chosen is not None:
        person = user_rows[chosen]
        with st.form("admin.edit"):
            name = st.text_input(
                t("app.admin.display_name"),
                value=person.display_name,
                key=f"admin.edit.name.{chosen}",
            )
            left, right = st.columns(2)
            new_role = left.selectbox(
                t("app.admin.role"),
                roles,
                index=roles.index(Role(person.role)),
                format_func=role_label,
                key=f"admin.edit.role.{chosen}",
            )
            new_lang = right.selectbox(
                t("app.common.language"),
                list(LANGUAGE_NAMES),
                index=list(LANGUAGE_NAMES).index(person.language)
                if person.language in LANGUAGE_NAMES
                else 0,
                format_func=LANGUAGE_NAMES.__getitem__,
                key=f"admin.edit.language.{chosen}",
            )
            new_site = st.selectbox(
                t("app.admin.site"),
                site_options,
                index=site_options.index(person.site_id) if person.site_id in site_options else 0,
                format_func=site_label,
                key=f"admin.edit.site.{chosen}",
            )
            if Role(person.role) is Role.CAREGIVER and person.residents:
                st.caption(plural(t, "app.admin.role_change_help", person.residents))
            save = st.form_submit_button(t("app.common.save"), type="primary", key="admin.edit.go")
        if save:
            ok, _ = run_change(
                t("app.admin.saved", username=md_escape(person.username)),
                admin.update_user,
                chosen,
                display_name=name,
                role=new_role,
                language=new_lang,
                site_id=new_site,
            )
            if ok:
                st.rerun()

        with st.form("admin.quiet"):
            quiet_on = st.checkbox(
                t("app.admin.quiet_on"),
                value=pd.notna(person.quiet_start) and person.quiet_start is not None,
                key=f"admin.quiet.on.{chosen}",
            )
            left, right = st.columns(2)
            start = left.time_input(
                t("app.admin.quiet_start"),
                value=person.quiet_start if isinstance(person.quiet_start, time) else time(22, 0),
                key=f"admin.quiet.start.{chosen}",
            )
            end = right.time_input(
                t("app.admin.quiet_end"),
                value=person.quiet_end if isinstance(person.quiet_end, time) else time(7, 0),
                key=f"admin.quiet.end.{chosen}",
            )
            st.caption(t("app.admin.quiet_help"))
            save_quiet = st.form_submit_button(t("app.admin.quiet_save"), key="admin.quiet.go")
        if save_quiet:
            if quiet_on and start == end:
                st.error(t("errors.quiet_hours_empty"))
            else:
                ok, _ = run_change(
                    t("app.admin.quiet_saved", username=md_escape(person.username)),
                    admin.set_quiet_hours,
                    chosen,
                    (start, end) if quiet_on else None,
                )
                if ok:
                    st.rerun()

        left, right = st.columns(2)
        if person.active:
            toggle = left.button(t("app.admin.deactivate"), key="admin.deactivate")
            help_text = t("app.admin.deactivate_help")
        else:
            toggle = left.button(t("app.admin.reactivate"), key="admin.reactivate")
            help_text = t("app.admin.reactivate_help")
        reset = right.button(t("app.admin.reset_password"), key="admin.reset")
        st.caption(help_text)
        if toggle:
            done = "app.admin.deactivated" if person.active else "app.admin.reactivated"
            ok, _ = run_change(
                t(done, username=md_escape(person.username)),
                admin.set_active,
                chosen,
                not person.active,
            )
            if ok:
                st.rerun()
        if reset:
            ok, secret = run_change(
                t("app.admin.password_reset", username=md_escape(person.username)),
                admin.reset_password,
                chosen,
            )
            if ok:
                st.session_state[NEW_PASSWORD_KEY] = (person.username, secret)
                st.rerun()

# --- caregiver assignments
with assign_tab:
    st.caption(t("app.admin.assign_help"))
    covered = set(assignments.loc[assignments["tier"].eq(1), "resident_id"])
    uncovered = residents[~residents["resident_id"].isin(covered)]
    if not uncovered.empty:
        st.warning(
            plural(
                t,
                "app.admin.uncovered",
                len(uncovered),
                names=", ".join(uncovered["name"].head(10)),
            )
        )
    resident_names = {
        int(r.resident_id): t(
            "app.admin.resident_label",
            name=r.name,
            room=r.room or t("app.common.none"),
            site=site_label(r.site_id),
        )
        for r in residents.itertuples()
    }
    caregivers = [
        uid for uid, r in user_rows.items() if r.role == Role.CAREGIVER.value and r.active
    ]
    if not caregivers:
        st.info(t("app.admin.no_caregivers"))
    else:
        caregiver = st.selectbox(
            t("app.admin.pick_caregiver"), caregivers, format_func=user_label, key="admin.caregiver"
        )
        theirs = assignments[assignments["user_id"].eq(caregiver)]
        if theirs.empty:
            st.info(t("app.admin.no_assignments"))
        else:
            st.dataframe(
                pd.DataFrame(
                    {
                        t("app.admin.col.resident"): theirs["resident"],
                        t("app.admin.col.room"): theirs["room"].fillna(t("app.common.none")),
                        t("app.admin.col.site"): [site_label(s) for s in theirs["site_id"]],
                        t("app.admin.col.tier"): [t(f"app.admin.tier.{v}") for v in theirs["tier"]],
                    }
                ),
                hide_index=True,
                width="stretch",
            )
        with st.form("admin.assign"):
            resident = st.selectbox(
                t("app.admin.resident"),
                list(resident_names),
                format_func=lambda i: resident_names.get(i, str(i)),
                key="admin.assign.resident",
            )
            tier = st.radio(
                t("app.admin.tier_label"),
                list(admin.TIERS),
                format_func=lambda v: t(f"app.admin.tier.{v}"),
                horizontal=True,
                key="admin.assign.tier",
            )
            assign = st.form_submit_button(
                t("app.admin.assign"), type="primary", key="admin.assign.go"
            )
        if assign:
            if resident is None:
                st.error(t("errors.admin.resident_missing"))
            else:
                ok, _ = run_change(
                    t("app.admin.assigned", resident=md_escape(resident_names[resident])),
                    admin.assign_caregiver,
                    caregiver,
                    resident,
                    tier,
                )
                if ok:
                    st.rerun()
        if not theirs.empty:
            remove_one(
                t("app.admin.remove_assignment"),
                {int(r.assignment_id): r.resident for r in theirs.itertuples()},
                pick_key=f"admin.unassign.pick.{caregiver}",
                button_key="admin.unassign.go",
                done="app.admin.unassigned",
                change=admin.unassign,
            )

    # Family users: which resident(s) each follows (their page and the daily report).
    st.subheader(t("app.admin.family.title"))
    st.caption(t("app.admin.family.help"))
    relatives = [uid for uid, r in user_rows.items() if r.role == Role.FAMILY.value and r.active]
    if not relatives:
        st.info(t("app.admin.family.none"))
    else:
        relative = st.selectbox(
            t("app.admin.family.pick"), relatives, format_func=user_label, key="admin.family"
        )
        followed = family_links[family_links["user_id"].eq(relative)]
        if followed.empty:
            st.info(t("app.admin.family.no_links"))
        else:
            st.dataframe(
                pd.DataFrame(
                    {
                        t("app.admin.col.resident"): followed["resident"],
                        t("app.admin.col.room"): followed["room"].fillna(t("app.common.none")),
                        t("app.admin.family.relation"): followed["relation"].fillna(""),
                    }
                ),
                hide_index=True,
                width="stretch",
            )
        with st.form("admin.family_link"):
            followed_resident = st.selectbox(
                t("app.admin.resident"),
                list(resident_names),
                format_func=lambda i: resident_names.get(i, str(i)),
                key="admin.family.resident",
            )
            relation = st.text_input(t("app.admin.family.relation"), key="admin.family.relation")
            link = st.form_submit_button(
                t("app.admin.family.link"), type="primary", key="admin.family.go"
            )
        if link:
            if followed_resident is None:
                st.error(t("errors.admin.resident_missing"))
            else:
                ok, _ = run_change(
                    t(
                        "app.admin.family.linked",
                        resident=md_escape(resident_names[followed_resident]),
                    ),
                    admin.link_family_member,
                    relative,
                    followed_resident,
                    relation,
                )
                if ok:
                    st.rerun()
        if not followed.empty:
            remove_one(
                t("app.admin.family.remove"),
                {int(r.link_id): r.resident for r in followed.itertuples()},
                pick_key=f"admin.family.unlink.pick.{relative}",
                button_key="admin.family.unlink.go",
                done="app.admin.family.unlinked",
                change=admin.unlink_family_member,
            )

# --- contact channels
with channels_tab:
    st.caption(t("app.admin.channels_help"))
    owner = st.selectbox(
        t("app.admin.pick_user"), list(user_rows), format_func=user_label, key="admin.channels.user"
    )
    if owner is not None:
        with db_session() as session:
            channels = admin.list_channels(session, viewer, owner)
        st.dataframe(
            pd.DataFrame(
                {
                    t("app.admin.col.channel"): [
                        t(f"app.admin.channel.{c}") for c in channels["channel"]
                    ],
                    t("app.admin.col.address"): channels["address"],
                    t("app.admin.col.state"): [
                        t("app.admin.state.on") if e else t("app.admin.state.off")
                        for e in channels["enabled"]
                    ],
                }
            ),
            hide_index=True,
            width="stretch",
        )
        with st.form("admin.channel_add", clear_on_submit=True):
            kind = st.selectbox(
                t("app.admin.col.channel"),
                ADDABLE_CHANNELS,
                format_func=lambda c: t(f"app.admin.channel.{c}"),
                key="admin.channel.kind",
            )
            address = st.text_input(
                t("app.admin.col.address"),
                key="admin.channel.address",
                help=t("app.admin.address_help"),
            )
            add = st.form_submit_button(
                t("app.admin.channel_add"), type="primary", key="admin.channel.go"
            )
        if add:
            ok, _ = run_change(
                t("app.admin.channel_added", channel=t(f"app.admin.channel.{kind}")),
                admin.add_channel,
                owner,
                kind,
                address,
            )
            if ok:
                st.rerun()
        editable = {
            int(r.channel_id): r for r in channels.itertuples() if r.channel != Channel.INBOX.value
        }
        if editable:
            picked = st.selectbox(
                t("app.admin.pick_channel"),
                list(editable),
                format_func=lambda i: (
                    t(
                        "app.admin.channel_label",
                        channel=t(f"app.admin.channel.{editable[i].channel}"),
                        address=editable[i].address,
                        state=t("app.admin.state.on")
                        if editable[i].enabled
                        else t("app.admin.state.off"),
                    )
                    if i in editable
                    else str(i)
                ),
                key=f"admin.channel.pick.{owner}",
            )
            row = editable[picked]
            left, right = st.columns(2)
            switch = left.button(
                t("app.admin.channel_disable") if row.enabled else t("app.admin.channel_enable"),
                key="admin.channel.toggle",
            )
            drop = right.button(t("app.admin.remove"), key="admin.channel.remove")
            ok = False
            if switch:
                ok, _ = run_change(
                    t("app.admin.channel_saved"), admin.set_channel_enabled, picked, not row.enabled
                )
            if drop:
                ok, _ = run_change(t("app.admin.channel_removed"), admin.remove_channel, picked)
            if ok:
                st.rerun()
        else:
            st.info(t("app.admin.inbox_only"))

# --- roles
# --- API tokens and service accounts
with tokens_tab:
    st.caption(t("app.tokens.help"))
    tokens.show_new_token(t)
    usernames = {int(r.user_id): str(r.username) for r in people.itertuples()}
    rows = tokens.token_table(viewer, t, zone, None, usernames)
    # Family users cannot use the API (their role sees nothing of it); inactive users neither.
    owners = {
        int(r.user_id): user_label(int(r.user_id))
        for r in people.itertuples()
        if r.active and r.role != Role.FAMILY.value
    }
    st.subheader(t("app.tokens.issue_title"))
    tokens.issue_form(viewer, t, "admin.tokens", owners)
    tokens.revoke_form(viewer, t, "admin.tokens", rows)

    st.subheader(t("app.tokens.service_title"))
    st.caption(t("app.tokens.service_help"))
    with st.form("admin.service", clear_on_submit=True):
        service_name = st.text_input(t("app.admin.col.username"), key="admin.service.username")
        service_display = st.text_input(t("app.admin.col.name"), key="admin.service.name")
        service_role = st.selectbox(
            t("app.admin.col.role"),
            [Role.OPERATOR, Role.CAREGIVER, Role.ADMIN],
            format_func=role_label,
            key="admin.service.role",
        )
        service_site = st.selectbox(
            t("app.admin.col.site"), site_options, format_func=site_label, key="admin.service.site"
        )
        make_service = st.form_submit_button(t("app.tokens.service_create"))
    if make_service:
        ok, _ = run_change(
            t("app.tokens.service_created", username=md_escape(service_name.strip().lower())),
            lambda session, who: api_tokens.create_service_account(
                session,
                who,
                username=service_name,
                role=service_role,
                display_name=service_display.strip() or None,
                site_id=service_site,
            ),
        )
        if ok:
            st.rerun()

with roles_tab:
    st.caption(t("app.admin.roles_help"))
    for role_value, granted in permissions.items():
        st.markdown(f"**{role_label(role_value)}**")
        st.markdown("\n".join(f"- {t(f'app.admin.permission.{p}')}" for p in granted))
