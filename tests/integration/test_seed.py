"""The demo seed: what `make demo` shows a newcomer."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import users
from core.contract.catalogue import DeviceType
from core.seed import DEMO_RESIDENTS, seed_demo
from models import AlertRule, CaregiverAssignment, Device, Resident, Role, RuleKind


def count(session: Session, column) -> int:
    return session.scalar(select(func.count(column)))


def test_seed_demo_creates_a_living_site(db_session: Session) -> None:
    result = seed_demo(db_session)
    assert result.created
    assert count(db_session, Resident.id) == DEMO_RESIDENTS == result.residents
    types = set(db_session.scalars(select(Device.type).distinct()))
    assert types == {t.value for t in DeviceType}
    kinds = set(db_session.scalars(select(AlertRule.kind).distinct()))
    assert kinds == set(RuleKind)
    roles = [login.role for login in result.logins]
    assert roles.count(Role.CAREGIVER) == 5
    assert Role.OPERATOR in roles and Role.ADMIN in roles
    for login in result.logins:
        assert users.authenticate(db_session, login.username, login.password) is not None
    # Every resident has a caregiver on duty and a supervisor.
    tiers = db_session.execute(
        select(CaregiverAssignment.resident_id, func.count()).group_by(
            CaregiverAssignment.resident_id
        )
    ).all()
    assert len(tiers) == DEMO_RESIDENTS and all(n == 2 for _, n in tiers)


def test_seed_passwords_are_generated_not_fixed(db_session: Session) -> None:
    first = {login.username: login.password for login in seed_demo(db_session).logins}
    second = seed_demo(db_session)
    assert not second.created
    assert count(db_session, Resident.id) == DEMO_RESIDENTS
    for login in second.logins:
        assert login.password != first[login.username]
        assert users.authenticate(db_session, login.username, login.password) is not None
        assert users.authenticate(db_session, login.username, first[login.username]) is None
