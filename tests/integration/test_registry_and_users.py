"""Registry and user services: validation with readable messages, audit entries."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import registry, users
from core.errors import ConflictError, IotCareError, NotFoundError
from models import AuditEntry, Channel, ContactChannel, Role
from tests.factories import DEFAULT_PASSWORD, Factory


def test_add_and_list_devices(db_session: Session, factory: Factory) -> None:
    site = factory.site("home1")
    resident = factory.resident(site)
    registry.add_device(
        db_session,
        device_id="home1-wear",
        site_id="home1",
        device_type="wearable",
        resident_id=resident.id,
    )
    factory.device("motion_sensor", site=site, device_id="home1-motion", quarantined=True)
    listed = registry.list_devices(db_session, site_id="home1")
    assert [d.id for d in listed] == ["home1-motion", "home1-wear"]
    assert [d.id for d in registry.list_devices(db_session, site_id="home1", quarantined=True)] == [
        "home1-motion"
    ]
    actions = db_session.scalars(
        select(AuditEntry.target_id).where(AuditEntry.action == "device.add")
    ).all()
    assert "home1-wear" in actions


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"device_id": "bad id"}, IotCareError, "not valid"),
        ({"device_type": "robot"}, IotCareError, "Unknown device type"),
        ({"site_id": "nowhere"}, NotFoundError, "No site"),
        ({"resident_id": 999999}, NotFoundError, "No resident"),
    ],
)
def test_add_device_rejects_bad_input(
    db_session: Session, factory: Factory, kwargs: dict, error: type, words: str
) -> None:
    factory.site("home2")
    values = {"device_id": "ok-1", "site_id": "home2", "device_type": "wearable", **kwargs}
    with pytest.raises(error, match=words):
        registry.add_device(db_session, **values)


def test_duplicate_device_is_a_conflict(db_session: Session, factory: Factory) -> None:
    factory.device(device_id="dup1")
    with pytest.raises(ConflictError):
        factory.device(device_id="dup1")


def test_create_user_and_authenticate(db_session: Session, factory: Factory) -> None:
    user = factory.user(Role.OPERATOR, username="Kim.Op", language="ko")
    assert user.username == "kim.op"
    assert users.authenticate(db_session, "KIM.OP", DEFAULT_PASSWORD) == user
    assert user.last_login_at is not None
    assert users.authenticate(db_session, "kim.op", "wrong password!") is None
    assert users.authenticate(db_session, "nobody", DEFAULT_PASSWORD) is None
    inbox = db_session.scalars(select(ContactChannel).where(ContactChannel.user_id == user.id))
    assert [c.channel for c in inbox] == [Channel.INBOX]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"username": "x"}, "not valid"),
        ({"password": "short"}, "at least"),
        ({"role": "king"}, "Unknown role"),
        ({"language": "fr"}, "Unknown language"),
    ],
)
def test_create_user_rejects_bad_input(db_session: Session, kwargs: dict, words: str) -> None:
    values = {"username": "valid.name", "password": DEFAULT_PASSWORD, "role": "caregiver", **kwargs}
    with pytest.raises(IotCareError, match=words):
        users.create_user(db_session, **values)


def test_only_caregivers_are_assigned(db_session: Session, factory: Factory) -> None:
    operator = factory.user(Role.OPERATOR)
    with pytest.raises(IotCareError, match="Only caregivers"):
        users.assign(db_session, operator, factory.resident())
