"""Users and access page: accounts, roles, assignments, channels, quiet hours; all audited."""

from __future__ import annotations

from datetime import time

from sqlalchemy import select

from core.security import verify_password
from models import (
    AuditEntry,
    CaregiverAssignment,
    Channel,
    ContactChannel,
    FamilyLink,
    Resident,
    Role,
    User,
)
from tests.dashboards.conftest import no_exception, texts


def _audited(app_db, action: str, target_id: int) -> list[AuditEntry]:
    with app_db.session() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == action, AuditEntry.target_id == str(target_id)
                )
            )
        )


def test_admin_creates_a_user_and_sees_the_generated_password_once(open_app, app_db) -> None:
    at = open_app("admin", page="admin")
    no_exception(at)
    at.text_input(key="admin.create.username").input("nurse.kim")
    at.text_input(key="admin.create.name").input("김간호")
    at.selectbox(key="admin.create.role").select(Role.CAREGIVER)
    at.selectbox(key="admin.create.language").select("ko")
    at.button(key="admin.create.go").click().run()
    no_exception(at)
    assert "User nurse.kim created." in texts(at)
    assert "shown only this once" in texts(at)
    password = at.code[0].value
    user = app_db.user("nurse.kim")
    assert user.role is Role.CAREGIVER and user.language == "ko"
    assert user.site_id == app_db.site_id and user.display_name == "김간호"
    assert verify_password(user.password_hash, password)
    created = _audited(app_db, "user.create", user.id)
    assert created and created[0].actor_name == "admin"
    at.run()
    assert not at.code  # shown once only


def test_a_bad_username_is_explained_in_the_admins_language(open_app, app_db) -> None:
    at = open_app("admin")
    at.session_state["iotcare.language"] = "ko"
    at.switch_page("app_pages/admin.py").run()
    at.text_input(key="admin.create.username").input("Bad Name!")
    at.button(key="admin.create.go").click().run()
    no_exception(at)
    assert "사용자 이름으로 쓸 수 없습니다" in "\n".join(e.value for e in at.error)
    with app_db.session() as session:
        assert session.scalar(select(User).where(User.username == "bad name!")) is None


def test_the_last_admin_cannot_deactivate_or_demote_themselves(open_app, app_db) -> None:
    admin_id = app_db.user("admin").id
    at = open_app("admin", page="admin")
    at.selectbox(key="admin.user").select(admin_id).run()
    at.button(key="admin.deactivate").click().run()
    no_exception(at)
    assert "last active administrator" in "\n".join(e.value for e in at.error)
    at.selectbox(key=f"admin.edit.role.{admin_id}").select(Role.OPERATOR)
    at.button(key="admin.edit.go").click().run()
    assert "last active administrator" in "\n".join(e.value for e in at.error)
    user = app_db.user("admin")
    assert user.active and user.role is Role.ADMIN


def test_deactivate_and_reactivate_a_caregiver(open_app, app_db) -> None:
    target = app_db.user("caregiver5").id
    at = open_app("admin", page="admin")
    at.selectbox(key="admin.user").select(target).run()
    at.button(key="admin.deactivate").click().run()
    no_exception(at)
    assert "caregiver5 is deactivated." in texts(at)
    assert not app_db.user("caregiver5").active
    at.button(key="admin.reactivate").click().run()
    assert app_db.user("caregiver5").active
    assert _audited(app_db, "user.deactivate", target)
    assert _audited(app_db, "user.reactivate", target)


def test_reset_password_and_edit_role_and_quiet_hours(open_app, app_db) -> None:
    target = app_db.user("caregiver4")
    at = open_app("admin", page="admin")
    at.selectbox(key="admin.user").select(target.id).run()
    at.button(key="admin.reset").click().run()
    no_exception(at)
    password = at.code[0].value
    assert verify_password(app_db.user("caregiver4").password_hash, password)
    assert _audited(app_db, "user.password", target.id)

    at.checkbox(key=f"admin.quiet.on.{target.id}").check()
    at.time_input(key=f"admin.quiet.start.{target.id}").set_value(time(23, 0))
    at.time_input(key=f"admin.quiet.end.{target.id}").set_value(time(6, 30))
    at.button(key="admin.quiet.go").click().run()
    no_exception(at)
    user = app_db.user("caregiver4")
    assert (user.quiet_start, user.quiet_end) == (time(23, 0), time(6, 30))

    at.text_input(key=f"admin.edit.name.{target.id}").input("Kim Supervisor")
    at.button(key="admin.edit.go").click().run()
    no_exception(at)
    assert app_db.user("caregiver4").display_name == "Kim Supervisor"
    assert _audited(app_db, "user.update", target.id)


def test_assign_a_caregiver_as_supervisor_and_remove_it(open_app, app_db) -> None:
    caregiver = app_db.user("caregiver3")
    at = open_app("admin", page="admin")
    at.selectbox(key="admin.caregiver").select(caregiver.id).run()
    with app_db.session() as session:
        mine = set(
            session.scalars(
                select(CaregiverAssignment.resident_id).where(
                    CaregiverAssignment.user_id == caregiver.id
                )
            )
        )
        free = session.scalar(
            select(Resident.id).where(Resident.id.not_in(mine)).order_by(Resident.id)
        )
    at.selectbox(key="admin.assign.resident").select(free)
    at.radio(key="admin.assign.tier").set_value(2)
    at.button(key="admin.assign.go").click().run()
    no_exception(at)
    with app_db.session() as session:
        row = session.scalar(
            select(CaregiverAssignment).where(
                CaregiverAssignment.user_id == caregiver.id, CaregiverAssignment.resident_id == free
            )
        )
        assert row is not None and row.tier == 2
        assignment_id = row.id
    assert _audited(app_db, "assignment.add", caregiver.id)
    at.selectbox(key=f"admin.unassign.pick.{caregiver.id}").select(assignment_id)
    at.button(key="admin.unassign.go").click().run()
    no_exception(at)
    with app_db.session() as session:
        assert session.get(CaregiverAssignment, assignment_id) is None
    assert _audited(app_db, "assignment.remove", caregiver.id)


def test_admin_creates_a_family_user_and_links_them_to_a_resident(open_app, app_db) -> None:
    at = open_app("admin", page="admin")
    at.text_input(key="admin.create.username").input("kim.daughter")
    at.selectbox(key="admin.create.role").select(Role.FAMILY)
    at.button(key="admin.create.go").click().run()
    no_exception(at)
    user = app_db.user("kim.daughter")
    assert user.role is Role.FAMILY
    with app_db.session() as session:
        resident_id = session.scalar(select(Resident.id).order_by(Resident.id))
    at.selectbox(key="admin.family").select(user.id).run()
    assert "Not linked to any resident yet." in texts(at)
    at.selectbox(key="admin.family.resident").select(resident_id)
    at.text_input(key="admin.family.relation").input("daughter")
    at.button(key="admin.family.go").click().run()
    no_exception(at)
    with app_db.session() as session:
        link = session.scalar(select(FamilyLink).where(FamilyLink.user_id == user.id))
        assert (link.resident_id, link.relation) == (resident_id, "daughter")
        link_id = link.id
    assert _audited(app_db, "family.link", user.id)
    at.selectbox(key=f"admin.family.unlink.pick.{user.id}").select(link_id)
    at.button(key="admin.family.unlink.go").click().run()
    no_exception(at)
    with app_db.session() as session:
        assert session.get(FamilyLink, link_id) is None
    assert _audited(app_db, "family.unlink", user.id)


def test_contact_channels_are_validated_added_and_switched_off(open_app, app_db) -> None:
    owner = app_db.user("caregiver2")
    at = open_app("admin", page="admin")
    at.selectbox(key="admin.channels.user").select(owner.id).run()
    at.selectbox(key="admin.channel.kind").select(Channel.EMAIL)
    at.text_input(key="admin.channel.address").input("not-an-email")
    at.button(key="admin.channel.go").click().run()
    no_exception(at)
    assert "This is not an e-mail address" in "\n".join(e.value for e in at.error)
    at.selectbox(key="admin.channel.kind").select(Channel.TELEGRAM)
    at.text_input(key="admin.channel.address").input("-1001234567890")
    at.button(key="admin.channel.go").click().run()
    no_exception(at)
    with app_db.session() as session:
        row = session.scalar(
            select(ContactChannel).where(
                ContactChannel.user_id == owner.id, ContactChannel.channel == Channel.TELEGRAM
            )
        )
        assert row is not None and row.enabled and row.address == "-1001234567890"
        channel_id = row.id
    at.selectbox(key=f"admin.channel.pick.{owner.id}").select(channel_id)
    at.button(key="admin.channel.toggle").click().run()
    no_exception(at)
    with app_db.session() as session:
        assert session.get(ContactChannel, channel_id).enabled is False
    assert _audited(app_db, "channel.disable", owner.id)


def test_roles_tab_lists_what_each_role_may_do(open_app) -> None:
    at = open_app("admin", page="admin")
    shown = texts(at)
    assert "**administrator**" in shown and "- Manage users and access" in shown


def test_operators_and_caregivers_cannot_open_the_page(open_app) -> None:
    for username in ("operator", "caregiver1"):
        at = open_app(username)
        try:
            at.switch_page("app_pages/admin.py").run()
        except ValueError:
            continue  # not even registered for this role
        assert "access" in texts(at) or "권한이 없습니다" in texts(at)
        assert not at.dataframe
