"""core.use_cases.commands: targets, sending (audited), hand-over to dispatch, status, access."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.access import AccessDenied, Viewer
from core.contract.catalogue import DeviceType
from core.errors import ConflictError, IotCareError, NotFoundError
from core.timeutil import utcnow
from core.use_cases import commands as q
from models import AuditEntry, Command, CommandStatus, DeviceStatus, Role


class RecordingSender:
    """A CommandSender that keeps what it was asked to publish."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(self, topic: str, payload: bytes) -> None:
        self.sent.append((topic, payload))


@pytest.fixture
def valves(factory):
    """An accepted valve, a quarantined valve, a wearable; an operator and a caregiver."""
    site = factory.site(timezone="Asia/Seoul")
    resident = factory.resident(site)
    valve = factory.device(DeviceType.GAS_VALVE, site=site, name="Kitchen valve", room="kitchen")
    stray = factory.device(DeviceType.GAS_VALVE, site=site, quarantined=True)
    wear = factory.device(DeviceType.WEARABLE, resident=resident, status=DeviceStatus.ONLINE)
    return {
        "site": site,
        "valve": valve,
        "stray": stray,
        "wear": wear,
        "operator": Viewer.of(factory.user(Role.OPERATOR)),
        "caregiver": Viewer.of(factory.user(Role.CAREGIVER, residents=(resident,))),
    }


def test_caregiver_is_denied(db_session, valves, settings) -> None:
    caregiver, valve = valves["caregiver"], valves["valve"]
    calls = [
        lambda: q.targets(db_session, caregiver),
        lambda: q.send_command(db_session, caregiver, valve.id, "close_valve"),
        lambda: q.recent_commands(db_session, caregiver),
        lambda: q.command_status(db_session, caregiver, uuid.uuid4()),
        lambda: q.hand_over(sessionmaker(), caregiver, settings, []),
    ]
    for call in calls:
        with pytest.raises(AccessDenied):
            call()
    assert db_session.scalars(select(Command).where(Command.device_id == valve.id)).all() == []


def test_targets_are_accepted_actuators_only(db_session, valves) -> None:
    found = q.targets(db_session, valves["operator"], site_id=valves["site"].id)
    assert [target.device_id for target in found] == [valves["valve"].id]
    assert found[0].commands == ("close_valve", "open_valve")
    assert found[0].site_timezone == "Asia/Seoul" and found[0].room == "kitchen"


def test_send_records_a_pending_audited_command(db_session, valves) -> None:
    operator, valve = valves["operator"], valves["valve"]
    row = q.send_command(db_session, operator, valve.id, "close_valve", reason=" gas smell ")
    assert row.status is CommandStatus.PENDING and row.requested_by == operator.user_id
    assert row.reason == "gas smell"
    entry = db_session.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "command.request", AuditEntry.target_id == valve.id
        )
    )
    assert entry.actor_id == operator.user_id
    assert entry.details["command_id"] == str(row.id)

    table = q.recent_commands(db_session, operator, device_id=valve.id)
    assert list(table["command_id"]) == [str(row.id)]
    assert table.iloc[0]["status"] == "pending"
    assert table.iloc[0]["requested_by"] == operator.username
    assert table.iloc[0]["device"] == "Kitchen valve"
    assert q.command_status(db_session, operator, row.id) == "pending"
    # Unanswered past its expiry, it reads as expired before the sweeper marks it.
    later = row.expires_at + timedelta(seconds=1)
    assert q.command_status(db_session, operator, row.id, now=later) == "expired"
    record = q.command_record(db_session, operator, row.id, now=later)
    assert record["command_id"] == str(row.id) and record["status"] == "expired"
    assert record["reason"] == "gas smell" and record["requested_by"] == operator.username


def test_send_refuses_with_readable_errors(db_session, valves) -> None:
    operator = valves["operator"]
    with pytest.raises(NotFoundError) as missing:
        q.send_command(db_session, operator, "no-such-valve", "close_valve")
    assert missing.value.key == "errors.commands.no_device"
    with pytest.raises(ConflictError) as quarantined:
        q.send_command(db_session, operator, valves["stray"].id, "close_valve")
    assert quarantined.value.key == "errors.commands.quarantined"
    with pytest.raises(IotCareError) as wrong:
        q.send_command(db_session, operator, valves["wear"].id, "close_valve")
    assert wrong.value.key == "errors.commands.not_accepted"
    with pytest.raises(NotFoundError):
        q.command_status(db_session, operator, uuid.uuid4())
    with pytest.raises(NotFoundError) as gone:
        q.command_record(db_session, operator, uuid.uuid4())
    assert gone.value.key == "errors.commands.missing"


def test_hand_over_publishes_through_the_dispatcher(engine, settings) -> None:
    """Committed for real: dispatch uses its own sessions, as it does in the app."""
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session:
        from tests.factories import Factory

        maker = Factory(session)
        site = maker.site()
        valve = maker.device(DeviceType.GAS_VALVE, site=site)
        operator = Viewer.of(maker.user(Role.OPERATOR))
        command = q.send_command(session, operator, valve.id, "close_valve")
        session.commit()
    try:
        sender = RecordingSender()
        stats = q.hand_over(sessions, operator, settings, [command.id], sender=sender)
        assert stats is not None and stats.sent == 1
        assert sender.sent[0][0] == f"care/v1/{site.id}/{valve.id}/cmd"
        assert str(command.id).encode() in sender.sent[0][1]
        with sessions() as session:
            assert q.command_status(session, operator, command.id) == "sent"
        # Without a broker configured, the app only records; the flow sends.
        assert q.hand_over(sessions, operator, settings, [command.id]) is None
    finally:
        with sessions() as session:
            from models import Device, Site, User

            session.execute(Command.__table__.delete().where(Command.id == command.id))
            session.execute(AuditEntry.__table__.delete().where(AuditEntry.target_id == valve.id))
            session.execute(Device.__table__.delete().where(Device.id == valve.id))
            session.execute(Site.__table__.delete().where(Site.id == site.id))
            session.execute(User.__table__.delete().where(User.id == operator.user_id))
            session.commit()


def test_system_commands_show_without_a_requester(db_session, valves) -> None:
    from core.commands import request_command

    row = request_command(db_session, valves["valve"].id, "close_valve", reason="gas_leak")
    table = q.recent_commands(db_session, valves["operator"], device_id=valves["valve"].id)
    assert table.iloc[0]["command_id"] == str(row.id)
    assert table.iloc[0]["requested_by"] is None
    assert utcnow() < row.expires_at
