"""Rule parameters: normalization, and messages per field in English and Korean."""

from __future__ import annotations

import string
from datetime import time
from types import SimpleNamespace
from typing import Any

import pytest

from core.contract.catalogue import REPORT_INTERVALS
from core.i18n import catalogue
from core.rules.describe import describe_finding, describe_params, describe_rule, duration
from core.rules.params import (
    SCHEMAS,
    RuleParamsError,
    default_offline_minutes,
    form_defaults,
    parse_params,
    validate_params,
)
from core.seed import DEFAULT_RULES, offline_rules
from models.enums import RuleKind


def errors(kind: str, params: Any, language: str = "en") -> dict[str, str]:
    with pytest.raises(RuleParamsError) as caught:
        validate_params(kind, params, language)
    return dict(caught.value.errors)


def test_rule_keys_exist_in_both_languages_with_the_same_placeholders() -> None:
    def placeholders(template: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}

    english = {k: v for k, v in catalogue("en").items() if k.startswith("rules.")}
    korean = {k: v for k, v in catalogue("ko").items() if k.startswith("rules.")}
    assert set(english) == set(korean)
    for key, template in english.items():
        assert placeholders(template) == placeholders(korean[key]), key


@pytest.mark.parametrize("spec", (*DEFAULT_RULES, *offline_rules()), ids=lambda s: s["name"])
def test_the_demo_rules_are_valid_and_stable(spec: dict[str, Any]) -> None:
    normalized = validate_params(spec["kind"], spec["params"])
    assert validate_params(spec["kind"], normalized) == normalized


def test_normalization_fills_defaults_and_unifies_spellings() -> None:
    assert validate_params(
        "threshold", {"metric": " spo2 ", "op": "≤", "value": "90", "for_minutes": 5.0}
    ) == {"metric": "spo2", "op": "<=", "value": 90.0, "for_minutes": 5, "hysteresis": 0.0}
    assert validate_params("night_exit", {"start": "7:05", "end": "06:00"}) == {
        "start": "07:05",
        "end": "06:00",
    }
    assert validate_params(
        "event", {"event_types": ["gas_leak", "gas_leak", "smoke_detected"]}
    ) == {"event_types": ["gas_leak", "smoke_detected"], "action": None}
    assert validate_params("battery_low", {"below_pct": 15}) == {"below_pct": 15, "hysteresis": 5}
    assert validate_params("inactivity", {"max_minutes": 240}) == {
        "max_minutes": 240,
        "use_routine": False,
        "factor": 1.5,
        "min_minutes": 90,
    }


def test_threshold_messages_in_english() -> None:
    found = errors("threshold", {"metric": "heartrate", "op": "=", "value": "high", "x": 1})
    assert set(found) == {"metric", "op", "value", "x"}
    assert found["metric"].startswith("“heartrate” is not a measurement IoT Care knows.")
    assert "Heart rate (heart_rate)" in found["metric"]
    assert found["op"] == (
        "Comparison must be one of: above (>), at or above (>=), below (<), at or below (<=)."
    )
    assert found["value"] == "Limit must be a number."
    assert found["x"] == "“x” is not a setting of this kind of rule; remove it."


def test_threshold_messages_in_korean() -> None:
    found = errors("threshold", {"metric": "heartrate", "op": "=", "value": "high"}, "ko")
    assert "심박수 (heart_rate)" in found["metric"]
    assert (
        found["op"]
        == "비교은(는) 다음 중 하나여야 합니다: 초과 (>), 이상 (>=), 미만 (<), 이하 (<=)."
    )
    assert found["value"] == "기준값은(는) 숫자여야 합니다."


def test_limits_outside_what_the_sensor_reports() -> None:
    params = {"metric": "heart_rate", "op": ">", "value": 300, "for_minutes": -1, "hysteresis": 500}
    found = errors("threshold", params)
    assert found == {
        "value": "Limit for Heart rate must be between 20 and 250 bpm.",
        "for_minutes": "Duration (minutes) must be at least 0.",
        "hysteresis": "Margin before clearing must be smaller than the whole range of Heart rate "
        "(230 bpm).",
    }
    korean = errors("threshold", params, "ko")
    assert korean["value"] == "심박수의 기준값은(는) 20~250 bpm 사이여야 합니다."
    assert korean["for_minutes"] == "지속 시간(분)은(는) 0 이상이어야 합니다."


def test_a_yes_no_signal_cannot_have_a_threshold() -> None:
    assert (
        "is a yes/no signal"
        in errors("threshold", {"metric": "motion", "op": ">", "value": 0})["metric"]
    )


@pytest.mark.parametrize(
    ("kind", "params", "field", "english", "korean"),
    [
        (
            "threshold",
            {"metric": "heart_rate", "op": ">", "value": 120, "for_minutes": 2.5},
            "for_minutes",
            "Duration (minutes) must be a whole number.",
            "지속 시간(분)은(는) 정수여야 합니다.",
        ),
        (
            "event",
            {"event_types": []},
            "event_types",
            "Choose at least one item for Events.",
            "이벤트에서 하나 이상 선택하세요.",
        ),
        (
            "inactivity",
            {"max_minutes": 2},
            "max_minutes",
            "Longest time without movement (minutes) must be at least 5.",
            "움직임 없는 최대 시간(분)은(는) 5 이상이어야 합니다.",
        ),
        (
            "inactivity",
            {"max_minutes": 60, "use_routine": "sometimes"},
            "use_routine",
            "Use the learned routine must be yes or no.",
            "학습된 일과 사용은(는) 예 또는 아니요여야 합니다.",
        ),
        (
            "device_offline",
            {},
            "minutes",
            "Minutes without a message is required.",
            "메시지 없는 시간(분)을(를) 입력해야 합니다.",
        ),
        (
            "night_exit",
            {"start": "25:00", "end": "06:00"},
            "start",
            "Start time must be a time of day such as 22:00.",
            "시작 시각은(는) 22:00처럼 하루 중 시각이어야 합니다.",
        ),
        (
            "night_exit",
            {"start": "22:00", "end": "22:00"},
            "end",
            "End time must differ from the start time, or the window would be empty.",
            "종료 시각은(는) 시작 시각과 달라야 합니다. 같으면 시간대가 비게 됩니다.",
        ),
        (
            "battery_low",
            {"below_pct": 150},
            "below_pct",
            "Battery level (%) must be at most 100.",
            "배터리 잔량(%)은(는) 100 이하여야 합니다.",
        ),
        (
            "data_quality",
            {"suites": ["readings", " "]},
            "suites",
            "Data-quality suites cannot contain an empty name.",
            "데이터 품질 검사 묶음에 빈 이름이 있으면 안 됩니다.",
        ),
    ],
)
def test_field_messages(kind: str, params: Any, field: str, english: str, korean: str) -> None:
    assert errors(kind, params)[field] == english
    assert errors(kind, params, "ko")[field] == korean


def test_unknown_event_and_action() -> None:
    found = errors("event", {"event_types": ["fall"], "action": "explode"})
    assert found["event_types"].startswith("“fall” is not an event devices report.")
    assert "fall detected (fall_detected)" in found["event_types"]
    assert found["action"].startswith("“explode” is not an action IoT Care can take.")
    korean = errors("event", {"event_types": ["fall"]}, "ko")
    assert "낙상 감지 (fall_detected)" in korean["event_types"]


def test_unknown_kind_and_settings_that_are_not_a_mapping() -> None:
    assert errors("teleport", {})["kind"].startswith("“teleport” is not a kind of rule.")
    assert errors("battery_low", [15])["params"] == "The settings must be a set of named values."
    assert (
        errors("battery_low", [15], "ko")["params"]
        == "설정은 이름이 붙은 값들의 모음이어야 합니다."
    )


def test_error_is_an_iotcare_error_listing_every_field() -> None:
    with pytest.raises(RuleParamsError) as caught:
        validate_params("threshold", {})
    assert [field for field, _ in caught.value.errors] == ["metric", "op", "value"]
    assert "Measurement is required." in str(caught.value)


def rule(kind: RuleKind, params: dict[str, Any], name: str = "R") -> SimpleNamespace:
    return SimpleNamespace(kind=kind, params=params, name=name, id=1)


@pytest.mark.parametrize(
    ("kind", "params", "english", "korean"),
    [
        (
            RuleKind.THRESHOLD,
            {"metric": "heart_rate", "op": ">", "value": 120, "for_minutes": 5},
            "Heart rate above 120 bpm for 5 minutes",
            "심박수 120 bpm 초과 5분 지속",
        ),
        (
            RuleKind.THRESHOLD,
            {"metric": "body_temp_c", "op": ">=", "value": 38.5, "for_minutes": 0},
            "Body temperature at or above 38.5°C",
            "체온 38.5°C 이상",
        ),
        (
            RuleKind.EVENT,
            {"event_types": ["flame_detected", "gas_leak"], "action": "close_valve"},
            "Device reports: flame detected, gas leak; then close the gas valve",
            "기기 보고: 불꽃 감지, 가스 누출; 이후 가스 밸브 잠금",
        ),
        (
            RuleKind.INACTIVITY,
            {"max_minutes": 90},
            "No movement for 1 h 30 min during active hours",
            "활동 시간 중 1시간 30분 동안 움직임 없음",
        ),
        (
            RuleKind.DEVICE_OFFLINE,
            {"minutes": 60},
            "Device silent for 1 hour or reporting offline",
            "기기가 1시간 동안 메시지가 없거나 오프라인을 보고함",
        ),
        (
            RuleKind.NIGHT_EXIT,
            {"start": "22:00", "end": "06:00"},
            "Door opened between 22:00 and 06:00",
            "22:00~06:00 사이 문 열림",
        ),
        (RuleKind.BATTERY_LOW, {"below_pct": 15}, "Battery below 15%", "배터리 15% 미만"),
        (
            RuleKind.DATA_QUALITY,
            {"suites": ["readings", "events"]},
            "A data-quality check failed: readings, events",
            "데이터 품질 검사 실패: readings, events",
        ),
    ],
)
def test_describe_rule(kind: RuleKind, params: dict, english: str, korean: str) -> None:
    assert describe_rule(rule(kind, params), "en") == english
    assert describe_rule(rule(kind, params), "ko") == korean


def test_describe_rule_with_broken_settings_names_it() -> None:
    broken = rule(RuleKind.BATTERY_LOW, {"below_pct": "low"}, name="Battery")
    assert describe_rule(broken, "en") == "Battery (its settings need attention)"
    assert describe_rule(broken, "ko") == "Battery (설정을 확인해야 합니다)"


def test_durations() -> None:
    assert [duration(m) for m in (1, 5, 60, 240, 90)] == [
        "1 minute",
        "5 minutes",
        "1 hour",
        "4 hours",
        "1 h 30 min",
    ]
    assert duration(150, "ko") == "2시간 30분"


def test_describe_finding() -> None:
    details = {"metric": "heart_rate", "op": ">", "limit": 120.0, "value": 131.0, "minutes": 7.0}
    assert (
        describe_finding("threshold", details) == "Heart rate 131 bpm: above 120 bpm for 7 minutes"
    )
    assert describe_finding("threshold", details, "ko") == "심박수 131 bpm: 7분 동안 120 bpm 초과"
    assert describe_finding("night_exit", {"local_time": "23:05"}, "ko") == "23:05에 문 열림"
    offline = {"silent_minutes": 45, "status": "online", "never_seen": False}
    assert describe_finding("device_offline", offline) == "No message for 45 minutes"


def test_night_exit_without_times_follows_active_hours() -> None:
    assert validate_params("night_exit", {}) == {"start": None, "end": None}
    parsed = parse_params("night_exit", {})
    assert parsed.from_active_hours
    assert parsed.window((time(6, 30), time(21, 0))) == (time(21, 0), time(6, 30))
    assert describe_params("night_exit", {}, "en") == (
        "Door opened outside the resident's active hours (their night)"
    )
    assert describe_params("night_exit", {}, "ko")
    for half in ({"start": "22:00"}, {"end": "06:00"}):
        with pytest.raises(RuleParamsError) as error:
            validate_params("night_exit", half, "ko")
        assert error.value.errors[0][0] == "end"


def test_default_device_silence_limit_comes_from_the_reporting_interval() -> None:
    # A device that reports every 30 minutes must not alarm at 30 minutes of silence.
    for device_type, interval in REPORT_INTERVALS.items():
        minutes = default_offline_minutes(device_type)
        assert minutes >= 3 * interval.total_seconds() / 60, device_type
        assert minutes >= 15, device_type
    assert default_offline_minutes("motion_sensor") == 15
    assert default_offline_minutes("door_sensor") == 30
    assert default_offline_minutes("panic_button") == 90  # heartbeat every 30 minutes
    assert default_offline_minutes("wearable") == 30
    assert default_offline_minutes(None) == 60


@pytest.mark.parametrize("kind", list(RuleKind))
def test_form_defaults_are_valid_settings_of_their_kind(kind: RuleKind) -> None:
    defaults = form_defaults(kind)
    schema_fields = set(SCHEMAS[kind].model_fields)
    assert set(defaults) <= schema_fields
    required = {name for name, f in SCHEMAS[kind].model_fields.items() if f.is_required()}
    if required <= set(defaults):
        # Kinds whose every required setting has a suggestion start from a rule that saves as is.
        saved = validate_params(kind, defaults)
        assert {name: saved[name] for name in defaults} == defaults


def test_form_defaults_take_the_schema_defaults_and_the_suggestions() -> None:
    assert form_defaults(RuleKind.INACTIVITY) == {
        "use_routine": False,
        "factor": 1.5,
        "min_minutes": 90,
        "max_minutes": 240,
    }
    assert form_defaults(RuleKind.NIGHT_EXIT) == {"start": "22:00", "end": "06:00"}
    assert form_defaults(RuleKind.THRESHOLD)["for_minutes"] == 5
