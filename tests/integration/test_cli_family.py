"""`iotcare users add NAME --role family --resident N`: a family user linked to a resident."""

from __future__ import annotations

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from core import registry
from models import FamilyLink, Role, User
from tests.support.cli import iotcare


def test_cli_adds_a_family_user_linked_to_a_resident(empty_database: str) -> None:
    assert iotcare("db", "upgrade", database_url=empty_database).returncode == 0
    engine = create_engine(empty_database)
    with Session(engine) as session:
        site = registry.create_site(session, "sunrise", "Sunrise", "Asia/Seoul")
        resident_id = registry.create_resident(session, site, "Kim Oksun").id
        session.commit()

    unlinked = iotcare(
        "users", "add", "kim.jr", "--role", "family", "--generate-password",
        database_url=empty_database,
    )  # fmt: skip
    assert unlinked.returncode == 1 and "linked to a resident" in unlinked.stderr
    missing = iotcare(
        "users", "add", "kim.jr", "--role", "family", "--resident", "999",
        "--generate-password", database_url=empty_database,
    )  # fmt: skip
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    added = iotcare(
        "users", "add", "kim.jr", "--role", "family", "--resident", str(resident_id),
        "--relation", "son", "--generate-password", database_url=empty_database,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert f"follows resident {resident_id}" in added.stdout

    with Session(engine) as session:
        user = session.scalar(select(User).where(User.username == "kim.jr"))
        assert user is not None and user.role is Role.FAMILY
        links = session.scalars(select(FamilyLink).where(FamilyLink.user_id == user.id)).all()
        assert [(link.resident_id, link.relation) for link in links] == [(resident_id, "son")]
    engine.dispose()
