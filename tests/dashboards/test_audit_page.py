"""Audit log page: filters, paging, local times, readable details, CSV download."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from core import audit
from models import AuditEntry
from tests.dashboards.conftest import empty_tables, no_exception, texts


def _arrange(app_db, extra: int = 0) -> None:
    empty_tables(app_db, AuditEntry)
    operator = app_db.user("operator")
    with app_db.session() as session:
        entry = audit.record(
            session, operator, "alert.acknowledge", "alert", "a-1", note="checked on her"
        )
        entry.at = datetime(2030, 1, 1, 15, 30, tzinfo=UTC)  # 00:30 on Jan 2 in Seoul
        audit.record(session, None, "command.expired", "device", "valve-1", attempts=3)
        for n in range(extra):
            audit.record(session, None, "device.add", "device", f"dev-{n}")
        session.commit()


def test_operator_reads_the_log_in_site_time_with_readable_details(open_app, app_db) -> None:
    _arrange(app_db)
    at = open_app("operator", page="audit")
    no_exception(at)
    assert "Entries 1–1 of 1" in texts(at)  # the 2030 entry is outside the default 30 days
    at.date_input(key="audit.to").set_value(datetime(2030, 1, 3).date())
    at.button(key="audit.apply").click().run()
    no_exception(at)
    assert "Entries 1–2 of 2" in texts(at)
    table = at.dataframe[0].value
    assert "2030-01-02 00:30" in table["When"].tolist()
    assert "Alert acknowledged" in table["Action"].tolist()
    assert "note: checked on her" in table["Details"].tolist()
    assert "Times are shown in Asia/Seoul time." in texts(at)
    assert [b.label for b in at.download_button] == ["Download as CSV"]


def test_filter_by_actor_and_show_one_entry_in_full(open_app, app_db) -> None:
    _arrange(app_db)
    at = open_app("admin", page="audit")
    at.selectbox(key="audit.actor").select("system")
    at.button(key="audit.apply").click().run()
    no_exception(at)
    table = at.dataframe[0].value
    assert table["Who"].tolist() == ["system"]
    assert table["Target"].tolist() == ["Device valve-1"]
    assert json.loads(at.json[0].value) == {"attempts": 3}
    assert "**Command expired** (`command.expired`) by **system**" in texts(at)


def test_paging_through_many_entries(open_app, app_db) -> None:
    _arrange(app_db, extra=60)
    at = open_app("operator", page="audit")
    assert "Entries 1–50 of 61" in texts(at)
    at.number_input(key="audit.page_input").set_value(2).run()
    no_exception(at)
    assert "Entries 51–61 of 61" in texts(at)
    assert len(at.dataframe[0].value) == 11
    at.button(key="audit.apply").click().run()  # new filters start again on page one
    no_exception(at)
    assert "Entries 1–50 of 61" in texts(at)


def test_a_filter_matching_nothing_says_what_to_do(open_app, app_db) -> None:
    _arrange(app_db)
    at = open_app("operator", page="audit")
    at.text_input(key="audit.target_id").input("no-such-target")
    at.button(key="audit.apply").click().run()
    no_exception(at)
    assert "No audit entries match these filters" in texts(at)
    assert not at.dataframe


def test_caregivers_cannot_open_the_page(open_app) -> None:
    at = open_app("caregiver2")
    try:
        at.switch_page("app_pages/audit.py").run()
    except ValueError:
        return
    assert "권한이 없습니다" in texts(at)
    assert not at.dataframe
