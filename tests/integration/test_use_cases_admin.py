"""Admin queries: access, translated validation, last-admin guard, assignments, channels, audit."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy import select

from core.access import AccessDenied, Permission, Viewer
from core.errors import IotCareError
from core.security import verify_password
from core.use_cases import admin
from models import AuditEntry, CaregiverAssignment, Channel, ContactChannel, Role, User


def _actions(session, target_id: int) -> list[str]:
    return list(
        session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.target_id == str(target_id))
            .order_by(AuditEntry.id)
        )
    )


@pytest.fixture
def people(db_session, factory):
    """Make this test's admin the only active one (other tests' admins are deactivated)."""
    for user in db_session.scalars(select(User).where(User.role == Role.ADMIN)):
        user.active = False
    boss = factory.user(Role.ADMIN)
    operator = factory.user(Role.OPERATOR)
    site = factory.site()
    resident = factory.resident(site)
    caregiver = factory.user(Role.CAREGIVER, site_id=site.id)
    db_session.flush()
    return Viewer.of(boss), Viewer.of(operator), Viewer.of(caregiver), site, resident


def test_only_admins_manage_users(db_session, people) -> None:
    _, operator, caregiver, _, resident = people
    for viewer in (operator, caregiver):
        for call in (
            lambda v=viewer: admin.list_users(db_session, v),
            lambda v=viewer: admin.create_account(db_session, v, username="x1", role="caregiver"),
            lambda v=viewer: admin.reset_password(db_session, v, caregiver.user_id),
            lambda v=viewer: admin.assign_caregiver(db_session, v, caregiver.user_id, resident.id),
            lambda v=viewer: admin.role_permissions(v),
        ):
            with pytest.raises(AccessDenied):
                call()


def test_create_with_generated_password_validated_and_audited(db_session, people) -> None:
    boss, _, _, site, _ = people
    created = admin.create_account(
        db_session, boss, username=" Nurse.Lee ", role="caregiver", language="ko", site_id=site.id
    )
    user = db_session.get(User, created.user_id)
    assert user.username == "nurse.lee" and user.language == "ko" and user.site_id == site.id
    assert verify_password(user.password_hash, created.password)
    assert len(created.password) >= 10
    assert _actions(db_session, user.id) == ["user.create"]
    cases = [
        ({"username": "Bad Name!"}, "errors.admin.username_invalid"),
        ({"username": "nurse.lee"}, "errors.admin.username_taken"),
        ({"role": "boss"}, "errors.admin.role_unknown"),
        ({"language": "fr"}, "errors.language_unknown"),
        ({"site_id": "nowhere"}, "errors.admin.site_missing"),
        ({"password": "short"}, "errors.admin.password_short"),
    ]
    for overrides, key in cases:
        kwargs = {"username": "fresh.one", "role": "operator", **overrides}
        with pytest.raises(IotCareError) as error:
            admin.create_account(db_session, boss, **kwargs)
        assert error.value.key == key, overrides
        assert "{" not in error.value.localized("ko")


def test_the_last_active_admin_is_kept(db_session, people, factory) -> None:
    boss, _, _, _, _ = people
    for change in (
        lambda: admin.set_active(db_session, boss, boss.user_id, False),
        lambda: admin.update_user(
            db_session,
            boss,
            boss.user_id,
            display_name="Boss",
            role="operator",
            language="en",
            site_id=None,
        ),
    ):
        with pytest.raises(IotCareError) as error:
            change()
        assert error.value.key == "errors.admin.last_admin"
    me = db_session.get(User, boss.user_id)
    assert me.active and me.role is Role.ADMIN
    second = factory.user(Role.ADMIN)
    admin.set_active(db_session, boss, second.id, False)
    with pytest.raises(IotCareError):
        admin.set_active(db_session, boss, boss.user_id, False)
    admin.set_active(db_session, boss, second.id, True)
    admin.set_active(db_session, boss, boss.user_id, False)  # another admin is active now
    assert not db_session.get(User, boss.user_id).active
    assert _actions(db_session, second.id)[-2:] == ["user.deactivate", "user.reactivate"]


def test_role_change_drops_assignments_and_is_audited(db_session, people) -> None:
    boss, _, caregiver, site, resident = people
    admin.assign_caregiver(db_session, boss, caregiver.user_id, resident.id, tier=1)
    admin.assign_caregiver(db_session, boss, caregiver.user_id, resident.id, tier=2)
    rows = admin.list_assignments(db_session, boss, user_id=caregiver.user_id)
    assert rows["tier"].tolist() == [2]
    changed = admin.update_user(
        db_session,
        boss,
        caregiver.user_id,
        display_name="Now operating",
        role="operator",
        language="ko",
        site_id=site.id,
    )
    assert set(changed) == {"role", "display_name", "language"}
    assert admin.list_assignments(db_session, boss, user_id=caregiver.user_id).empty
    assert _actions(db_session, caregiver.user_id)[-5:] == [
        "assignment.add",
        "assignment.tier",
        "user.role",
        "user.preferences",
        "user.update",
    ]
    with pytest.raises(IotCareError) as error:
        admin.assign_caregiver(db_session, boss, caregiver.user_id, resident.id)
    assert error.value.key == "errors.admin.not_caregiver"


def test_assignment_rules(db_session, people) -> None:
    boss, _, caregiver, _, resident = people
    with pytest.raises(IotCareError) as error:
        admin.assign_caregiver(db_session, boss, caregiver.user_id, resident.id, tier=3)
    assert error.value.key == "errors.admin.tier_unknown"
    with pytest.raises(IotCareError) as error:
        admin.assign_caregiver(db_session, boss, caregiver.user_id, 10**9)
    assert error.value.key == "errors.admin.resident_missing"
    admin.assign_caregiver(db_session, boss, caregiver.user_id, resident.id)
    assignment = db_session.scalar(
        select(CaregiverAssignment).where(CaregiverAssignment.user_id == caregiver.user_id)
    )
    users = admin.list_users(db_session, boss).set_index("user_id")
    assert users.loc[caregiver.user_id, "residents"] == 1
    admin.unassign(db_session, boss, assignment.id)
    assert db_session.get(CaregiverAssignment, assignment.id) is None
    assert _actions(db_session, caregiver.user_id)[-1] == "assignment.remove"


@pytest.mark.parametrize(
    ("channel", "address", "key"),
    [
        ("email", "kim@example", "errors.admin.email_invalid"),
        ("email", "  ", "errors.admin.address_empty"),
        ("telegram", "12ab", "errors.admin.telegram_invalid"),
        ("webhook", "ftp://example.com/hook", "errors.admin.webhook_invalid"),
        ("webhook", "https://", "errors.admin.webhook_invalid"),
        ("inbox", "someone", "errors.admin.inbox_fixed"),
        ("sms", "010", "errors.admin.phone_invalid"),
        ("ntfy", "https://ntfy.example.org/a/b", "errors.admin.ntfy_invalid"),
        ("fax", "010", "errors.admin.channel_unknown"),
    ],
)
def test_bad_addresses_are_explained(channel: str, address: str, key: str) -> None:
    with pytest.raises(IotCareError) as error:
        admin.validate_address(channel, address)
    assert error.value.key == key


def test_good_addresses_pass() -> None:
    assert admin.validate_address("email", " kim@example.co.kr ") == "kim@example.co.kr"
    assert admin.validate_address("telegram", "-1001234567890") == "-1001234567890"
    assert admin.validate_address("telegram", "@care_team") == "@care_team"
    assert admin.validate_address("webhook", "https://hooks.example.com/x?y=1")


def test_channels_added_switched_removed_and_inbox_fixed(db_session, people) -> None:
    boss, _, caregiver, _, _ = people
    channel_id = admin.add_channel(db_session, boss, caregiver.user_id, "email", "kim@example.com")
    with pytest.raises(IotCareError) as error:
        admin.add_channel(db_session, boss, caregiver.user_id, "email", "kim@example.com")
    assert error.value.key == "errors.admin.channel_taken"
    admin.set_channel_enabled(db_session, boss, channel_id, False)
    frame = admin.list_channels(db_session, boss, caregiver.user_id)
    assert frame[["channel", "enabled"]].values.tolist() == [["email", False], ["inbox", True]]
    inbox = db_session.scalar(
        select(ContactChannel.id).where(
            ContactChannel.user_id == caregiver.user_id, ContactChannel.channel == Channel.INBOX
        )
    )
    for change in (
        lambda: admin.set_channel_enabled(db_session, boss, inbox, False),
        lambda: admin.remove_channel(db_session, boss, inbox),
    ):
        with pytest.raises(IotCareError):
            change()
    admin.remove_channel(db_session, boss, channel_id)
    assert db_session.get(ContactChannel, channel_id) is None
    assert _actions(db_session, caregiver.user_id)[-3:] == [
        "channel.add",
        "channel.disable",
        "channel.remove",
    ]


def test_password_reset_and_quiet_hours(db_session, people) -> None:
    boss, _, caregiver, _, _ = people
    secret = admin.reset_password(db_session, boss, caregiver.user_id)
    user = db_session.get(User, caregiver.user_id)
    assert verify_password(user.password_hash, secret)
    admin.set_quiet_hours(db_session, boss, caregiver.user_id, (time(22, 0), time(6, 0)))
    assert (user.quiet_start, user.quiet_end) == (time(22, 0), time(6, 0))
    with pytest.raises(IotCareError) as error:
        admin.set_quiet_hours(db_session, boss, caregiver.user_id, (time(1, 0), time(1, 0)))
    assert error.value.key == "errors.quiet_hours_empty"
    admin.set_quiet_hours(db_session, boss, caregiver.user_id, None)
    assert user.quiet_start is None
    audited = db_session.scalars(
        select(AuditEntry)
        .where(AuditEntry.target_id == str(caregiver.user_id))
        .order_by(AuditEntry.id)
    ).all()
    assert [a.action for a in audited][-3:] == [
        "user.password",
        "user.preferences",
        "user.preferences",
    ]
    assert {a.actor_id for a in audited[-3:]} == {boss.user_id}


def test_role_permissions_table(people) -> None:
    boss, _, _, _, _ = people
    table = admin.role_permissions(boss)
    assert table[Role.ADMIN][-1].value == "manage_users"
    assert [p.value for p in table[Role.CAREGIVER]] == [
        "own_account",
        "view_residents",
        "handle_alerts",
    ]
    assert all(Permission.OWN_ACCOUNT in table[role] for role in Role)
