"""Notification text: English and Korean, times in the resident's timezone, the one-click link,
and the optional LLM summary against a faithful local chat-completions server."""

from __future__ import annotations

import json
import string
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr

from core.i18n import catalogue
from core.notify.render import AlertFacts, render_message, summarize
from core.settings import Settings
from models import NotificationPurpose
from tests.support.fake_llm import FakeLlm

LINK = "http://localhost:8501/?ack=v1.abc.7.123.sig"


def facts(**changes: object) -> AlertFacts:
    values: dict[str, object] = {
        "alert_id": "12345678-1234-5678-1234-567812345678",
        "severity": "critical",
        "kind": "event",
        "title": "Fall detected",
        "event_type": "fall_detected",
        "subject_type": "resident",
        "site_id": "sunrise",
        "site_name": "Sunrise Care Home",
        "resident_id": 3,
        "resident_name": "김영자",
        "room": "103",
        "device_id": "sunrise-r03-fall",
        # 00:31 UTC is 09:31 in Seoul.
        "opened_at": "2026-11-22T00:31:00+00:00",
        "resolved_at": None,
        "occurrences": 2,
        "timezone": "Asia/Seoul",
    }
    values.update(changes)
    return AlertFacts(**values)  # type: ignore[arg-type]


def test_english_new_alert_says_who_what_where_when_how_bad_and_links() -> None:
    message = render_message(facts(), NotificationPurpose.NEW, "en", "Nurse Kim", LINK)
    assert message.subject == "[CRITICAL] Fall detected — 김영자, room 103"
    for part in (
        "CRITICAL alert: Fall detected",
        "Who: 김영자, room 103",
        "Where: Sunrise Care Home",
        "Since: 2026-11-22 09:31 KST",
        "Occurrences: 2",
        f"(as Nurse Kim): {LINK}",
    ):
        assert part in message.body


def test_korean_new_alert_is_korean_throughout() -> None:
    message = render_message(facts(), NotificationPurpose.NEW, "ko", "요양보호사 1", LINK)
    assert message.subject == "[긴급] 낙상 감지 — 김영자 (103호)"
    for part in ("긴급 알림: 낙상 감지", "대상: 김영자 (103호)", "발생 시각: 2026-11-22 09:31 KST"):
        assert part in message.body
    assert "발생 횟수: 2회" in message.body
    assert LINK in message.body
    assert "Who:" not in message.body


def test_times_follow_the_residents_timezone() -> None:
    new_york = render_message(
        facts(timezone="America/New_York"), NotificationPurpose.NEW, "en", "X", LINK
    )
    assert "Since: 2026-11-21 19:31 EST" in new_york.body


def test_escalation_and_resolution_texts() -> None:
    escalation = render_message(facts(), NotificationPurpose.ESCALATION, "en", "Boss", LINK)
    assert "nobody has acknowledged" in escalation.body
    assert LINK in escalation.body
    resolved = render_message(
        facts(resolved_at="2026-11-22T00:45:00+00:00", severity="warning"),
        NotificationPurpose.RESOLVED,
        "ko",
        "Boss",
        None,
    )
    assert resolved.subject.startswith("해결됨:")
    assert "해결 시각: 2026-11-22 09:45 KST" in resolved.body
    assert "ack=" not in resolved.body


def test_device_and_site_alerts_name_the_device_or_site() -> None:
    device = facts(resident_name=None, room=None, event_type=None, title="Device offline")
    assert "device sunrise-r03-fall" in render_message(device, "new", "en", "Op", LINK).subject
    site = facts(resident_name=None, room=None, device_id=None, event_type=None, title="Smoke")
    assert "시설 전체" in render_message(site, "new", "ko", "Op", LINK).body


def test_unknown_event_type_falls_back_to_the_title() -> None:
    message = render_message(facts(event_type="teleported", title="Odd"), "new", "ko", "x", LINK)
    assert "Odd" in message.subject


def test_notify_catalogues_match() -> None:
    english, korean = catalogue("en"), catalogue("ko")
    keys = {k for k in english if k.startswith("notify.")}
    assert keys == {k for k in korean if k.startswith("notify.")}

    def names(text: str) -> set[str]:
        return {n for _, n, _, _ in string.Formatter().parse(text) if n}

    for key in keys:
        assert names(english[key]) == names(korean[key]), key


# --- optional LLM summary


@pytest.fixture
def llm() -> Iterator[FakeLlm]:
    server = FakeLlm("A resident fell in room 103; check on them first.", api_key="k-test")
    server.start()
    yield server
    server.stop()


def llm_settings(settings: Settings, llm: FakeLlm, **extra: object) -> Settings:
    values = {
        "llm_url": llm.endpoint,
        "llm_api_key": SecretStr("k-test"),
        "llm_model": "care-small",
        "llm_timeout": timedelta(seconds=0.5),
    }
    values.update(extra)
    return settings.model_copy(update=values)


def test_summary_from_the_llm_becomes_the_first_paragraph(settings: Settings, llm: FakeLlm) -> None:
    summary = summarize(llm_settings(settings, llm), facts(), NotificationPurpose.NEW, "ko")
    assert summary == "A resident fell in room 103; check on them first."
    message = render_message(facts(), "new", "ko", "x", LINK, summary=summary)
    assert message.body.startswith(summary + "\n\n긴급 알림")
    request = llm.requests[0]
    assert request["model"] == "care-small"
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "Korean" in request["messages"][0]["content"]
    sent_facts = json.loads(request["messages"][1]["content"])
    assert sent_facts["room"] == "103"
    assert sent_facts["since_local"] == "2026-11-22 09:31 KST"
    # Privacy: the resident's name never leaves for the LLM.
    assert "김영자" not in json.dumps(request, ensure_ascii=False)
    assert llm.problems == []


@pytest.mark.parametrize("mode", ["error", "garbage", "slow"])
def test_failing_llm_means_template_alone(settings: Settings, llm: FakeLlm, mode: str) -> None:
    llm.mode = mode
    started = time.monotonic()
    assert summarize(llm_settings(settings, llm), facts(), "new", "en") is None
    assert time.monotonic() - started < 1.5


def test_wrong_key_or_unreachable_llm_means_template_alone(
    settings: Settings, llm: FakeLlm
) -> None:
    wrong = llm_settings(settings, llm, llm_api_key=SecretStr("nope"))
    assert summarize(wrong, facts(), "new", "en") is None
    llm.stop()
    assert summarize(llm_settings(settings, llm), facts(), "new", "en") is None


def test_unconfigured_llm_is_not_called(settings: Settings) -> None:
    assert summarize(settings, facts(), "new", "en") is None


@pytest.mark.parametrize("reply", ["Click https://evil.example to confirm.", "", "word " * 200])
def test_summaries_with_links_or_rambling_are_dropped(
    settings: Settings, llm: FakeLlm, reply: str
) -> None:
    llm.reply = reply
    assert summarize(llm_settings(settings, llm), facts(), "new", "en") is None


def test_a_repeat_says_again_with_the_new_events_time_device_and_data() -> None:
    again = facts(
        occurrences=3,
        occurrence_at="2026-11-22T00:52:21+00:00",
        occurrence_device_id="sunrise-r03-panic",
        occurrence_data={"pressed": "long", "battery_pct": 71},
    )
    en = render_message(again, NotificationPurpose.REPEAT, "en", "Nurse Kim", LINK)
    assert en.subject == "[CRITICAL] Again (3×): Fall detected — 김영자, room 103"
    for part in (
        "it happened again: Fall detected",
        "This time: 2026-11-22 09:52 KST, device sunrise-r03-panic",
        "Reported: battery_pct=71, pressed=long",
        "First time: 2026-11-22 09:31 KST",
        f"(as Nurse Kim): {LINK}",
    ):
        assert part in en.body
    ko = render_message(again, NotificationPurpose.REPEAT, "ko", "요양보호사 1", LINK)
    assert ko.subject == "[긴급] 다시 발생(3회째): 낙상 감지 — 김영자 (103호)"
    assert "이번 발생 시각: 2026-11-22 09:52 KST, 기기 sunrise-r03-panic" in ko.body


def test_a_hostile_devices_event_data_cannot_flood_a_message() -> None:
    flood = facts(occurrence_at="2026-11-22T00:52:21+00:00", occurrence_data={"x": "A\n" * 5000})
    body = render_message(flood, NotificationPurpose.REPEAT, "en", "Nurse Kim", LINK).body
    reported = next(line for line in body.splitlines() if line.startswith("Reported: "))
    assert len(reported) <= len("Reported: ") + 200
    assert reported.endswith("…")
    empty = facts(occurrence_at="2026-11-22T00:52:21+00:00", occurrence_data={})
    assert "Reported: -" in render_message(empty, NotificationPurpose.REPEAT, "en", "K", LINK).body
