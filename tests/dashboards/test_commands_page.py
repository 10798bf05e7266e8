"""The Commands page: two-step confirmation, the command row and its audit, statuses shown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.timeutil import utcnow
from models import AuditEntry, Command, CommandStatus
from tests.dashboards.conftest import empty_tables, no_exception, texts

VALVE = "sunrise-kitchen-gasvalve"


def _button(at, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, [b.label for b in at.button]
    return matches[0]


def test_caregiver_has_no_commands_page(open_app) -> None:
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        open_app("caregiver2", page="commands")


def test_empty_history_says_what_appears_there(open_app, app_db) -> None:
    empty_tables(app_db, Command)
    for username in ("operator", "admin"):
        at = open_app(username, page="commands")
        no_exception(at)
        assert at.title[0].value == "Commands"
        assert "No commands yet." in texts(at)
        assert at.selectbox[0].value == VALVE
        assert at.selectbox[1].options == ["Close the gas valve", "Open the gas valve"]


def test_send_asks_for_confirmation_then_records_an_audited_command(open_app, app_db) -> None:
    empty_tables(app_db, Command)
    operator_id = app_db.user("operator").id
    at = open_app("operator", page="commands")
    at.selectbox[1].set_value("close_valve")
    at.text_input[0].input("gas smell in the kitchen")
    _button(at, "Send…").click().run()
    no_exception(at)
    assert "Close the gas valve on" in texts(at)
    with app_db.session() as session:
        assert session.scalars(select(Command)).all() == []  # nothing before confirming

    _button(at, "Cancel").click().run()
    assert "Nothing was sent." in texts(at)
    with app_db.session() as session:
        assert session.scalars(select(Command)).all() == []

    at.selectbox[1].set_value("close_valve")
    at.text_input[0].input("gas smell in the kitchen")
    _button(at, "Send…").click().run()
    _button(at, "Yes, send it").click().run()
    no_exception(at)
    assert "the dispatcher sends it within a minute" in texts(at)  # no broker in this test
    with app_db.session() as session:
        command = session.scalars(select(Command)).one()
        assert command.device_id == VALVE and command.command == "close_valve"
        assert command.status is CommandStatus.PENDING
        assert command.reason == "gas smell in the kitchen"
        assert command.requested_by == operator_id
        entry = session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "command.request",
                AuditEntry.details["command_id"].as_string() == str(command.id),
            )
        )
        assert entry is not None and entry.actor_name == "operator"
    history = at.dataframe[0].value
    assert list(history["status"]) == ["Pending"]
    assert list(history["command"]) == ["Close the gas valve"]
    assert "Times are shown in Asia/Seoul time." in texts(at)


def test_statuses_through_ack_and_timeout_in_korean(open_app, app_db) -> None:
    empty_tables(app_db, Command)
    now = utcnow()
    with app_db.session() as session:
        for minutes, status, acked in (
            (1, CommandStatus.ACKED, now),
            (2, CommandStatus.SENT, None),  # unanswered past expiry: reads as expired
            (3, CommandStatus.FAILED, now),
        ):
            created = now - timedelta(minutes=minutes)
            session.add(
                Command(
                    device_id=VALVE,
                    command="open_valve",
                    params={},
                    status=status,
                    created_at=created,
                    sent_at=created,
                    acked_at=acked,
                    expires_at=created + timedelta(seconds=30),
                    ack_detail="valve stuck" if status is CommandStatus.FAILED else None,
                )
            )
        session.commit()
    at = open_app("operator", page="commands")
    at.session_state["iotcare.language"] = "ko"
    at.run()
    no_exception(at)
    history = at.dataframe[0].value
    assert list(history["status"]) == ["응답 받음", "만료", "실패"]
    assert set(history["requested_by"]) == {"플랫폼 (자동)"}
    assert "valve stuck" in set(history["ack_detail"])
