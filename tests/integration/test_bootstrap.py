"""One process bootstrap: a Runtime whose sessions carry the settings, so alert changes made in
any process queue their notifications in the same transaction; and the notebooks' first cell."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import schema
from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.bootstrap import Runtime, boot, notebook
from core.db import make_engine, session_scope, session_settings
from core.seed import seed_demo
from core.settings import Settings
from models import Alert, Channel, Notification, NotificationPurpose, Role, RuleKind, Severity
from tests.conftest import make_test_settings
from tests.factories import Factory


@pytest.fixture
def runtime(empty_database: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = boot(make_test_settings(tmp_path, database_url=empty_database), process="test")
    schema.upgrade(rt.engine)
    yield rt
    rt.close()


def _fall(session: Session, resident_id: int) -> lifecycle.Raised:
    return lifecycle.raise_alert(
        session,
        kind=RuleKind.EVENT,
        severity=Severity.CRITICAL,
        subject=Subject("resident", str(resident_id), None, resident_id, "fall1"),
        title="Fall detected",
        details={"event_type": "fall_detected"},
    )


def test_boot_makes_one_engine_sessions_carrying_the_settings_and_every_channel(
    runtime: Runtime,
) -> None:
    with runtime.sessions() as session:
        assert session_settings(session) is runtime.settings
        assert session.get_bind() is runtime.engine
    assert set(runtime.channels) == set(Channel)


def test_an_alert_raised_in_a_booted_session_queues_its_notifications(runtime: Runtime) -> None:
    with session_scope(runtime.sessions) as session:
        make = Factory(session)
        resident = make.resident(make.site())
        carer = make.user(residents=(resident,))
        alert = _fall(session, resident.id).alert
        carer_id, alert_id = carer.id, alert.id
    with runtime.sessions() as session:
        queued = session.execute(
            select(Notification.recipient_id, Notification.purpose, Notification.channel).where(
                Notification.alert_id == alert_id
            )
        ).all()
    assert (carer_id, NotificationPurpose.NEW, Channel.INBOX) in queued


def test_a_session_without_settings_queues_nothing(runtime: Runtime) -> None:
    # The offline history replay opens its sessions so: the past is not announced.
    engine = make_engine(runtime.settings)
    try:
        with session_scope(runtime.sessions) as session:
            make = Factory(session)
            resident = make.resident(make.site())
            make.user(residents=(resident,))
            resident_id = resident.id
        with Session(engine) as session, session.begin():
            assert session_settings(session) is None
            _fall(session, resident_id)
        with runtime.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Alert)) == 1
            assert session.scalar(select(func.count()).select_from(Notification)) == 0
    finally:
        engine.dispose()


def test_the_notebook_cell_reads_as_the_demo_operator(
    tmp_path: Path, override_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'nb.db'}"
    engine = make_engine(override_settings(database_url=url))
    schema.upgrade(engine)
    engine.dispose()
    with caplog.at_level(logging.INFO, logger="core.bootstrap"):
        rt, session, viewer = notebook()
    try:
        assert viewer.username == "analyst" and viewer.role is Role.OPERATOR
        assert "No 'operator' user" in caplog.text
        assert str(rt.engine.url) == url
        seed_demo(session)
        session.commit()
    finally:
        session.close()
        rt.close()
    rt, session, viewer = notebook()
    try:
        assert viewer.username == "operator"
        assert session_settings(session) is rt.settings
    finally:
        session.close()
        rt.close()
