"""Audit-log queries: access, filters, paging, CSV in the site's timezone."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from core import audit
from core.access import AccessDenied, Viewer, viewer_timezone
from core.errors import IotCareError
from core.use_cases.audit import (
    AuditFilter,
    audit_choices,
    audit_csv,
    audit_entries,
    readable_details,
)
from models import AuditEntry, Role

T0 = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def log(db_session, factory):
    """An operator, a caregiver and five entries an hour apart (newest: the operator's ack)."""
    site = factory.site(timezone="America/New_York")
    operator = factory.user(Role.OPERATOR, site_id=site.id)
    caregiver = factory.user(Role.CAREGIVER)
    db_session.query(AuditEntry).delete()
    for n, (actor, action, kind, target) in enumerate(
        [
            (None, "alert.open", "alert", "a1"),
            (caregiver, "alert.acknowledge", "alert", "a1"),
            (None, "command.expired", "device", "valve-9"),
            (operator, "device.add", "device", "dev-2"),
            (operator, "alert.acknowledge", "alert", "a2"),
        ]
    ):
        entry = audit.record(db_session, actor, action, kind, target, n=n, note="ok")
        entry.at = T0 + timedelta(hours=n)
    db_session.flush()
    return Viewer.of(operator), Viewer.of(caregiver)


def test_caregivers_may_not_read_the_audit_log(db_session, log) -> None:
    _, caregiver = log
    for call in (
        lambda: audit_entries(db_session, caregiver),
        lambda: audit_choices(db_session, caregiver),
        lambda: audit_csv(db_session, caregiver, None, "UTC"),
    ):
        with pytest.raises(AccessDenied):
            call()


def test_filters_by_actor_action_target_and_time(db_session, log) -> None:
    operator, caregiver = log
    everything = audit_entries(db_session, operator)
    assert everything.total == 5
    assert everything.entries["target_id"].tolist() == ["a2", "dev-2", "valve-9", "a1", "a1"]
    by_actor = audit_entries(db_session, operator, AuditFilter(actor=operator.username))
    assert by_actor.entries["action"].tolist() == ["alert.acknowledge", "device.add"]
    acks = audit_entries(db_session, operator, AuditFilter(action="alert.acknowledge"))
    assert set(acks.entries["actor"]) == {operator.username, caregiver.username}
    target = AuditFilter(target_type="alert", target_id=" a1 ")
    assert audit_entries(db_session, operator, target).total == 2
    window = AuditFilter(start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=3))
    assert audit_entries(db_session, operator, window).entries["details"].map(
        lambda d: d["n"]
    ).tolist() == [2, 1]
    with pytest.raises(IotCareError) as error:
        audit_entries(db_session, operator, AuditFilter(start=T0, end=T0))
    assert error.value.key == "errors.audit.range"


def test_pages_and_choices(db_session, log) -> None:
    operator, _ = log
    second = audit_entries(db_session, operator, page=2, page_size=2)
    assert second.pages == 3 and second.page == 2
    assert second.entries["target_id"].tolist() == ["valve-9", "a1"]
    beyond = audit_entries(db_session, operator, page=99, page_size=2)
    assert beyond.page == 3 and len(beyond.entries) == 1
    choices = audit_choices(db_session, operator)
    assert "system" in choices.actors and operator.username in choices.actors
    assert choices.actions == sorted(
        ["alert.open", "alert.acknowledge", "command.expired", "device.add"]
    )
    assert choices.target_types == ["alert", "device"]


def test_csv_has_every_match_in_the_site_timezone(db_session, log) -> None:
    operator, _ = log
    zone = viewer_timezone(db_session, operator, "Asia/Seoul")
    assert zone == "America/New_York"
    rows = list(csv.reader(io.StringIO(audit_csv(db_session, operator, AuditFilter(), zone))))
    assert rows[0][1] == "at (America/New_York)"
    assert len(rows) == 6
    assert rows[-1][1] == "2031-03-01T07:00:00-05:00"
    assert '"note": "ok"' in rows[-1][6]


def test_viewer_without_site_gets_the_default_timezone(db_session, factory) -> None:
    admin = Viewer.of(factory.user(Role.ADMIN))
    assert viewer_timezone(db_session, admin, "Asia/Seoul") == "Asia/Seoul"


def test_readable_details() -> None:
    assert readable_details({"note": "ok", "ids": [1, 2], "empty": None}) == "note: ok; ids: [1, 2]"
    assert readable_details({}) == ""
