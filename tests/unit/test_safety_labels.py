"""The safety benchmark's matching of alerts to labels: kind, subject and time window decide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.safety_scenarios import Label, Notified, Occurrence, match
from models import RuleKind

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
RULES = {
    1: (RuleKind.EVENT, {"event_types": ["fall_detected", "button_pressed"]}),
    2: (RuleKind.THRESHOLD, {"metric": "heart_rate", "op": ">", "value": 120}),
    3: (RuleKind.THRESHOLD, {"metric": "heart_rate", "op": "<", "value": 40}),
}


def occurrence(
    at: datetime,
    kind: RuleKind = RuleKind.EVENT,
    rule: int = 1,
    resident: int | None = 7,
    action: str = "opened",
    alert: str = "a1",
) -> Occurrence:
    return Occurrence(alert, at, action, kind, rule, "sunrise", resident, "dev", "title")


def label(kind: str, start: datetime, deadline: timedelta, resident: int = 7) -> Label:
    return Label(kind, ("resident", str(resident)), "sunrise", start, start, start + deadline)


def test_a_repeat_detects_the_later_event_but_an_earlier_post_does_not_notify_it() -> None:
    fall = label("fall", T0, timedelta(seconds=1))
    panic = label("panic", T0 + timedelta(seconds=21), timedelta(seconds=1))
    occurrences = [
        occurrence(T0),
        occurrence(T0 + timedelta(seconds=21), action="repeated"),
    ]
    sent = [Notified("a1", T0 + timedelta(milliseconds=80), "new")]
    outcomes, unexplained, repeats = match([fall, panic], occurrences, sent, RULES)
    assert outcomes[0].occurrence == occurrences[0]
    assert outcomes[0].notified == sent[0]
    assert outcomes[1].occurrence == occurrences[1]
    assert outcomes[1].notified is None  # the only POST came before the panic press
    assert unexplained == [] and repeats == 0


def test_the_wrong_subject_direction_or_a_late_alert_does_not_count() -> None:
    high = label("high_heart_rate", T0, timedelta(minutes=7))
    occurrences = [
        occurrence(T0 + timedelta(minutes=3), RuleKind.THRESHOLD, rule=3),  # low, not high
        occurrence(T0 + timedelta(minutes=4), RuleKind.THRESHOLD, rule=2, resident=8),
        occurrence(T0 + timedelta(minutes=9), RuleKind.THRESHOLD, rule=2, alert="late"),
    ]
    outcomes, unexplained, _ = match([high], occurrences, [], RULES)
    assert outcomes[0].occurrence is None
    assert outcomes[0].late is not None and outcomes[0].late.alert_id == "late"
    # The low-rate alert and the other resident's are false alarms; the late one is explained.
    assert [o.at for o in unexplained] == [occurrences[0].at, occurrences[1].at]


def test_an_escalation_is_not_the_news_of_an_incident() -> None:
    fall = label("fall", T0, timedelta(seconds=1))
    sent = [Notified("a1", T0 + timedelta(milliseconds=300), "escalation")]
    outcomes, _, _ = match([fall], [occurrence(T0)], sent, RULES)
    assert outcomes[0].occurrence is not None and outcomes[0].notified is None
