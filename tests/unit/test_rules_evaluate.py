"""Pure rule evaluators on crafted data: each kind fires when it should, and not otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from core.rules import evaluate as ev
from core.rules.describe import describe_finding
from core.rules.evaluate import State
from core.rules.events import event_rule_matches, match_event_rules
from core.rules.params import parse_params
from models.enums import RuleKind

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 21:00 in Seoul


def at(minutes: float, base: datetime = T0) -> datetime:
    return base + timedelta(minutes=minutes)


def params(kind: RuleKind, **values: Any) -> Any:
    return parse_params(kind, values)


def hr_rule(**overrides: Any) -> Any:
    values = {"metric": "heart_rate", "op": ">", "value": 120, "for_minutes": 5, "hysteresis": 5}
    return params(RuleKind.THRESHOLD, **(values | overrides))


def series(values: list[float], step_s: float = 30, device: str = "w1", **kw: Any) -> ev.Series:
    return ev.Series(
        device, [(T0 + timedelta(seconds=i * step_s), v) for i, v in enumerate(values)], **kw
    )


def one(findings: list[ev.Finding]) -> ev.Finding:
    assert len(findings) == 1, findings
    return findings[0]


def threshold(samples: ev.Series, now: datetime, rule: Any = None) -> ev.Finding:
    return one(ev.evaluate_threshold({"r": [samples]}, rule or hr_rule(), now))


# --- threshold


def test_threshold_fires_when_held_exactly_for_the_duration() -> None:
    s = series([130] * 11)  # 0..300 s, all above
    finding = threshold(s, at(5))
    assert finding.state is State.ALARM
    assert finding.device_id == "w1"
    assert finding.details["value"] == 130
    assert finding.details["minutes"] == 5.0


def test_threshold_does_not_fire_a_second_short() -> None:
    s = ev.Series("w1", [(T0, 130), (T0 + timedelta(seconds=299), 131)])
    assert threshold(s, at(5)).state is State.HOLD


def test_threshold_value_at_the_limit_is_not_above_it() -> None:
    assert threshold(series([120] * 20), at(10)).state is State.HOLD
    rule = hr_rule(op=">=")
    assert threshold(series([120] * 20), at(10), rule).state is State.ALARM


def test_threshold_needs_the_condition_continuously() -> None:
    values = [130] * 6 + [119] + [130] * 6  # a dip below the limit restarts the duration
    assert threshold(series(values), at(7)).state is State.HOLD


def test_threshold_hysteresis_holds_inside_the_band_and_clears_beyond() -> None:
    high = [130] * 11
    # 118 is below the limit but inside the 5 bpm band: not clear yet (no flapping).
    assert threshold(series([*high, 118]), at(6)).state is State.HOLD
    assert threshold(series([*high, 116, 121]), at(6)).state is State.HOLD
    # 115 = 120 - 5 is back beyond the band: clear.
    cleared = threshold(series([*high, 115]), at(6))
    assert cleared.state is State.CLEAR
    assert cleared.details["value"] == 115


def test_threshold_band_dip_keeps_the_same_episode() -> None:
    values = [110, *([130] * 11), 118, *([130] * 11)]
    first = threshold(series(values[:12]), at(6))
    later = threshold(series(values), at(12))
    assert first.state is later.state is State.ALARM
    assert first.since == later.since == T0 + timedelta(seconds=30)


def test_threshold_clear_then_high_again_is_a_new_episode() -> None:
    values = [110, *([130] * 11), 100, *([130] * 11)]
    first = threshold(series(values[:12]), at(6))
    later = threshold(series(values), at(12))
    assert later.state is State.ALARM
    assert first.since is not None and later.since is not None
    assert later.since > first.since


def test_threshold_episode_unknown_when_high_since_before_the_data() -> None:
    finding = threshold(series([130] * 20), at(10))
    assert finding.state is State.ALARM
    assert finding.since is None


def test_threshold_below_with_hysteresis_above() -> None:
    rule = hr_rule(op="<", value=40, for_minutes=2, hysteresis=3)
    assert threshold(series([35] * 5), at(2), rule).state is State.ALARM
    assert threshold(series([35] * 5 + [42]), at(3), rule).state is State.HOLD
    assert threshold(series([35] * 5 + [43]), at(3), rule).state is State.CLEAR


def test_threshold_zero_duration_fires_on_one_sample() -> None:
    assert threshold(series([121]), T0, hr_rule(for_minutes=0)).state is State.ALARM


def test_threshold_ignores_samples_after_now() -> None:
    assert threshold(series([130] * 11), at(4)).state is State.HOLD


def test_threshold_quarantined_device_is_ignored() -> None:
    subjects = {"r": [series([130] * 11, quarantined=True)]}
    assert ev.evaluate_threshold(subjects, hr_rule(), at(5)) == []


def test_threshold_resident_alarms_when_any_device_does() -> None:
    wearable = series([130] * 11, device="wear")
    bed = series([70] * 11, device="bed")
    finding = one(ev.evaluate_threshold({"r": [bed, wearable]}, hr_rule(), at(5)))
    assert finding.state is State.ALARM
    assert finding.device_id == "wear"
    clear = one(ev.evaluate_threshold({"r": [bed]}, hr_rule(), at(5)))
    assert clear.state is State.CLEAR


def test_threshold_no_samples_no_finding() -> None:
    assert ev.evaluate_threshold({"r": [ev.Series("w", [])]}, hr_rule(), T0) == []


# --- local windows


@pytest.mark.parametrize(
    ("clock", "start", "end", "inside"),
    [
        (time(23, 0), time(22, 0), time(6, 0), True),
        (time(2, 0), time(22, 0), time(6, 0), True),
        (time(6, 0), time(22, 0), time(6, 0), False),  # the end is exclusive
        (time(22, 0), time(22, 0), time(6, 0), True),  # the start is inclusive
        (time(12, 0), time(22, 0), time(6, 0), False),
        (time(12, 0), time(7, 0), time(22, 0), True),
        (time(3, 0), time(7, 0), time(7, 0), True),  # same start and end: the whole day
    ],
)
def test_in_window(clock: time, start: time, end: time, inside: bool) -> None:
    assert ev.in_window(clock, start, end) is inside


def test_window_began_across_midnight() -> None:
    now = datetime(2026, 3, 10, 17, 30, tzinfo=UTC)  # 02:30 on the 11th in Seoul
    began = ev.window_began(now, "Asia/Seoul", time(22, 0), time(6, 0))
    assert began == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # 22:00 on the 10th in Seoul
    assert ev.window_began(now, "UTC", time(22, 0), time(6, 0)) is None


# --- inactivity


def activity(
    last: datetime | None,
    *,
    tz: str = "UTC",
    start: time = time(7, 0),
    end: time = time(22, 0),
    routine: dict[int, float] | None = None,
    quarantined: bool = False,
) -> ev.Activity:
    return ev.Activity(tz, start, end, [ev.MotionSource("m1", last, quarantined)], routine or {})


def inactive(subject: ev.Activity, now: datetime, **values: Any) -> ev.Finding:
    rule = params(RuleKind.INACTIVITY, **({"max_minutes": 240} | values))
    return one(ev.evaluate_inactivity({"r": subject}, rule, now))


def test_inactivity_fires_at_the_limit_not_before() -> None:
    now = T0  # 12:00 UTC, inside 07:00-22:00
    assert inactive(activity(now - timedelta(minutes=240)), now).state is State.ALARM
    assert inactive(activity(now - timedelta(minutes=239)), now).state is State.CLEAR


def test_inactivity_alarm_details() -> None:
    last = T0 - timedelta(minutes=300)
    finding = inactive(activity(last), T0)
    assert finding.since == last
    assert finding.details["quiet_minutes"] == 300
    assert finding.details["limit_source"] == "fixed"
    assert finding.device_id == "m1"


def test_inactivity_counts_only_active_hours() -> None:
    # Last movement at 21:00 the day before; at 10:00 the active hours (from 07:00) are 3 h old.
    now = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    last = datetime(2026, 3, 9, 21, 0, tzinfo=UTC)
    assert inactive(activity(last), now).state is State.HOLD  # not yet, but not clear either
    later = inactive(activity(last), now + timedelta(hours=1))
    assert later.state is State.ALARM
    assert later.since == datetime(2026, 3, 10, 7, 0, tzinfo=UTC)


def test_inactivity_never_fires_outside_active_hours() -> None:
    now = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
    assert inactive(activity(now - timedelta(hours=10)), now).state is State.HOLD


def test_inactivity_in_the_residents_timezone() -> None:
    # 12:00 UTC is 21:00 in Seoul: active until 22:00 there, while the UTC day is active too.
    last = T0 - timedelta(hours=5)
    assert inactive(activity(last, tz="Asia/Seoul"), T0).state is State.ALARM
    # 14:00 UTC is 23:00 in Seoul: outside that resident's active hours, inside UTC's.
    later = T0 + timedelta(hours=2)
    assert inactive(activity(last, tz="Asia/Seoul"), later).state is State.HOLD
    assert inactive(activity(last), later).state is State.ALARM


def test_inactivity_active_hours_across_midnight() -> None:
    # A night-shift resident, active 20:00-04:00: at 02:00 nobody has moved since 21:00.
    now = datetime(2026, 3, 11, 2, 0, tzinfo=UTC)
    last = datetime(2026, 3, 10, 21, 0, tzinfo=UTC)
    subject = activity(last, start=time(20, 0), end=time(4, 0))
    assert inactive(subject, now).state is State.ALARM
    assert inactive(subject, datetime(2026, 3, 11, 5, 0, tzinfo=UTC)).state is State.HOLD
    # No movement at all: the quiet time counts from 20:00 the evening before.
    silent = inactive(activity(None, start=time(20, 0), end=time(4, 0)), now)
    assert silent.state is State.ALARM
    assert silent.since == datetime(2026, 3, 10, 20, 0, tzinfo=UTC)


def test_inactivity_routine_replaces_the_fixed_limit() -> None:
    last = T0 - timedelta(minutes=100)
    routine = {12: 60.0}  # at 12:00 the resident usually moves at least once an hour
    subject = activity(last, routine=routine)
    assert inactive(subject, T0).state is State.CLEAR  # fixed limit: 240 minutes
    finding = inactive(subject, T0, use_routine=True, factor=1.5)  # 60 × 1.5 = 90 minutes
    assert finding.state is State.ALARM
    assert finding.details["limit_minutes"] == 90
    assert finding.details["limit_source"] == "routine"
    # A usual gap of 80 minutes × 1.5 = 120: 100 minutes is still normal.
    relaxed = activity(last, routine={12: 80.0})
    assert inactive(relaxed, T0, use_routine=True, factor=1.5).state is State.CLEAR


def test_inactivity_routine_uses_the_local_hour_and_falls_back() -> None:
    last = T0 - timedelta(minutes=100)
    # 12:00 UTC is 21:00 in Seoul: the routine of hour 21 applies, not of hour 12.
    subject = activity(last, tz="Asia/Seoul", routine={12: 200.0, 21: 30.0})
    assert inactive(subject, T0, use_routine=True).state is State.ALARM
    # No routine learned for that hour: the fixed limit (240 minutes).
    unknown = activity(last, routine={3: 30.0})
    finding = inactive(unknown, T0, use_routine=True)
    assert finding.state is State.CLEAR
    assert finding.details["limit_source"] == "fixed"


def test_inactivity_quarantined_sensor_is_ignored() -> None:
    rule = params(RuleKind.INACTIVITY, max_minutes=240)
    subject = activity(None, quarantined=True)
    assert ev.evaluate_inactivity({"r": subject}, rule, T0) == []


# --- device offline


def offline(device: ev.DeviceState, now: datetime, minutes: int = 30) -> ev.Finding:
    rule = params(RuleKind.DEVICE_OFFLINE, minutes=minutes)
    return one(ev.evaluate_device_offline({"d": device}, rule, now))


def test_offline_after_exactly_n_minutes_of_silence() -> None:
    device = ev.DeviceState("d1", status="online", last_seen=T0)
    assert offline(device, at(29)).state is State.CLEAR
    finding = offline(device, at(30))
    assert finding.state is State.ALARM
    assert finding.since == T0
    assert finding.details["silent_minutes"] == 30


def test_offline_when_the_status_says_so_for_the_rules_minutes() -> None:
    device = ev.DeviceState("d1", status="offline", status_since=T0, last_seen=T0)
    assert offline(device, at(1), minutes=10).state is State.HOLD
    assert offline(device, at(9), minutes=10).state is State.HOLD
    finding = offline(device, at(11), minutes=10)
    assert finding.state is State.ALARM
    assert finding.since == T0
    assert finding.details["status"] == "offline"
    assert finding.details["offline_minutes"] == 11


def test_offline_for_a_minute_then_back_online_never_alarms() -> None:
    # A 10-minute rule ticking every minute: offline at T0, online again at T0+1.
    states = []
    for minute in range(0, 30):
        if minute < 1:
            device = ev.DeviceState("d1", status="offline", status_since=T0, last_seen=T0)
        else:
            # Back, and reporting every minute since.
            device = ev.DeviceState("d1", status="online", status_since=at(1), last_seen=at(minute))
        states.append(offline(device, at(minute), minutes=10).state)
    assert State.ALARM not in states


def test_offline_counts_from_when_it_went_offline_not_from_a_later_heartbeat() -> None:
    # Offline since T0; a repeated offline status at T0+8 moved last_seen, not status_since.
    device = ev.DeviceState("d1", status="offline", status_since=T0, last_seen=at(8))
    finding = offline(device, at(10), minutes=10)
    assert finding.state is State.ALARM
    assert finding.since == T0


def test_offline_when_its_start_is_unknown_counts_from_the_last_message() -> None:
    device = ev.DeviceState("d1", status="offline", last_seen=T0)
    assert offline(device, at(5), minutes=10).state is State.HOLD
    assert offline(device, at(10), minutes=10).state is State.ALARM


def test_offline_never_seen_counts_from_registration() -> None:
    device = ev.DeviceState("d1", registered_at=T0)
    assert offline(device, at(10)).state is State.HOLD
    finding = offline(device, at(30))
    assert finding.state is State.ALARM
    assert finding.details["never_seen"] is True


def test_offline_quarantined_device_is_ignored() -> None:
    rule = params(RuleKind.DEVICE_OFFLINE, minutes=30)
    device = ev.DeviceState("d1", status="offline", last_seen=T0, quarantined=True)
    assert ev.evaluate_device_offline({"d": device}, rule, at(60)) == []


# --- battery


def battery(device: ev.DeviceState, below: int = 15, **values: Any) -> ev.Finding:
    rule = params(RuleKind.BATTERY_LOW, below_pct=below, **values)
    return one(ev.evaluate_battery_low({"d": device}, rule))


def test_battery_low_boundaries_and_margin() -> None:
    assert battery(ev.DeviceState("d", battery=14)).state is State.ALARM
    assert battery(ev.DeviceState("d", battery=15)).state is State.HOLD  # not below, in margin
    assert battery(ev.DeviceState("d", battery=19)).state is State.HOLD
    assert battery(ev.DeviceState("d", battery=20)).state is State.CLEAR
    assert battery(ev.DeviceState("d", battery=15), hysteresis=0).state is State.CLEAR


def test_battery_reading_wins_over_status() -> None:
    finding = battery(ev.DeviceState("d", battery=80, battery_reading=10.0))
    assert finding.state is State.ALARM
    assert finding.details == {"battery_pct": 10.0, "source": "reading", "below_pct": 15}


def test_battery_unknown_or_quarantined_gives_nothing() -> None:
    rule = params(RuleKind.BATTERY_LOW, below_pct=15)
    assert ev.evaluate_battery_low({"d": ev.DeviceState("d")}, rule) == []
    quarantined = ev.DeviceState("d", battery=3, quarantined=True)
    assert ev.evaluate_battery_low({"d": quarantined}, rule) == []


# --- night exit

NIGHT = {"start": "22:00", "end": "06:00"}


def door(*opened: datetime, device: str = "door1", **kw: Any) -> ev.DoorSource:
    samples: list[ev.Sample] = []
    for ts in opened:
        samples += [(ts - timedelta(minutes=10), 0.0), (ts, 1.0), (ts + timedelta(minutes=1), 0.0)]
    return ev.DoorSource(device, sorted(samples), **kw)


def night(
    source: ev.DoorSource, now: datetime, tz: str = "UTC", since: datetime | None = None
) -> ev.Finding:
    rule = params(RuleKind.NIGHT_EXIT, **NIGHT)
    watch = ev.DoorWatch(tz, [source])
    return one(
        ev.evaluate_night_exit({"r": watch}, rule, now, since or now - timedelta(minutes=15))
    )


def test_night_exit_fires_for_an_opening_at_night() -> None:
    opened = datetime(2026, 3, 10, 23, 5, tzinfo=UTC)
    finding = night(door(opened), opened + timedelta(minutes=3))
    assert finding.state is State.ALARM
    assert finding.since == opened
    assert finding.details["local_time"] == "23:05"


def test_night_exit_across_midnight_and_boundaries() -> None:
    for clock, fires in [((2, 30), True), ((22, 0), True), ((6, 0), False), ((5, 59), True)]:
        opened = datetime(2026, 3, 11, *clock, tzinfo=UTC)
        finding = night(door(opened), opened + timedelta(minutes=2))
        assert (finding.state is State.ALARM) is fires, clock


def test_night_exit_daytime_opening_clears() -> None:
    opened = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert night(door(opened), opened + timedelta(minutes=2)).state is State.CLEAR


def test_night_exit_in_the_residents_timezone() -> None:
    # 14:00 UTC is 23:00 in Seoul: night there, afternoon in UTC.
    opened = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    now = opened + timedelta(minutes=2)
    assert night(door(opened), now, tz="Asia/Seoul").state is State.ALARM
    assert night(door(opened), now, tz="UTC").state is State.CLEAR


def test_night_exit_only_counts_openings_since_the_last_tick() -> None:
    opened = datetime(2026, 3, 10, 23, 5, tzinfo=UTC)
    finding = night(
        door(opened), opened + timedelta(minutes=3), since=opened + timedelta(minutes=1)
    )
    assert finding.state is State.HOLD  # still night, nothing new


def test_night_exit_door_open_before_the_data_is_not_an_opening() -> None:
    ts = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    source = ev.DoorSource("door1", [(ts, 1.0), (ts + timedelta(minutes=10), 1.0)])
    assert night(source, ts + timedelta(minutes=11), since=ts).state is State.HOLD


def test_night_exit_event_and_reading_count_once() -> None:
    opened = datetime(2026, 3, 10, 23, 5, tzinfo=UTC)
    source = door(opened, opened_events=[opened - timedelta(seconds=2)])
    finding = night(source, opened + timedelta(minutes=3))
    assert finding.details["openings"] == 1
    assert finding.since == opened - timedelta(seconds=2)


def test_night_exit_quarantined_door_is_ignored() -> None:
    opened = datetime(2026, 3, 10, 23, 5, tzinfo=UTC)
    rule = params(RuleKind.NIGHT_EXIT, **NIGHT)
    watch = ev.DoorWatch("UTC", [door(opened, quarantined=True)])
    now = opened + timedelta(minutes=3)
    assert ev.evaluate_night_exit({"r": watch}, rule, now, now - timedelta(minutes=15)) == []


# --- data quality


def run(suite: str, minutes: float, success: bool) -> ev.QualityOutcome:
    return ev.QualityOutcome(suite, at(minutes), success, failed=0 if success else 2, evaluated=9)


def test_data_quality_failed_run_since_the_last_tick() -> None:
    rule = params(RuleKind.DATA_QUALITY, suites=[])
    findings = ev.evaluate_data_quality(
        [run("readings", -30, True), run("readings", -5, False)], rule, T0, at(-10)
    )
    finding = one(findings)
    assert finding.state is State.ALARM
    assert finding.key == "readings"
    assert finding.details["failed"] == 2
    # The same failure before the last tick is not news; the suite is not clear either.
    assert one(
        ev.evaluate_data_quality([run("readings", -15, False)], rule, T0, at(-10))
    ).state is (State.HOLD)


def test_data_quality_only_listed_suites_and_clear_on_success() -> None:
    rule = params(RuleKind.DATA_QUALITY, suites=["events"])
    runs = [run("readings", -5, False), run("events", -20, False), run("events", -3, True)]
    finding = one(ev.evaluate_data_quality(runs, rule, T0, at(-10)))
    assert (finding.key, finding.state) == ("events", State.CLEAR)


# --- event rules (ingest's instant path)


def event_rule(**fields: Any) -> SimpleNamespace:
    values = {
        "id": 1,
        "kind": RuleKind.EVENT,
        "enabled": True,
        "params": {"event_types": ["fall_detected", "button_pressed"]},
        "scope_type": "site",
        "site_id": None,
        "resident_id": None,
        "device_type": None,
    }
    return SimpleNamespace(**(values | fields))


def fall(**fields: Any) -> SimpleNamespace:
    values = {
        "type": "fall_detected",
        "device_id": "d1",
        "site_id": "s1",
        "resident_id": 7,
        "device_type": "fall_detector",
    }
    return SimpleNamespace(**(values | fields))


def test_event_rule_matching_by_type_and_scope() -> None:
    anywhere = event_rule(scope_type="site")
    at_s1 = event_rule(site_id="s1")
    resident_7 = event_rule(scope_type="resident", resident_id=7)
    buttons = event_rule(scope_type="device_type", device_type="panic_button")
    rules = [anywhere, at_s1, resident_7, buttons]
    assert match_event_rules(rules, fall()) == [anywhere, at_s1, resident_7]
    assert match_event_rules(rules, fall(site_id="s2", resident_id=8)) == [anywhere]
    press = fall(type="button_pressed", device_type="panic_button")
    assert match_event_rules(rules, press) == [anywhere, at_s1, resident_7, buttons]
    assert match_event_rules(rules, fall(type="door_opened")) == []
    assert match_event_rules(rules, fall(), quarantined=True) == []


def test_disabled_or_broken_event_rules_never_match() -> None:
    disabled = event_rule(scope_type="site", enabled=False)
    broken = event_rule(scope_type="site", params={"event_types": ["earthquake"]})
    assert match_event_rules([disabled, broken], fall()) == []


def test_event_rule_matches_is_pure() -> None:
    params = parse_params(RuleKind.EVENT, {"event_types": ["gas_leak"]})
    scope = SimpleNamespace(scope_type="site", site_id=None, resident_id=None, device_type=None)
    assert event_rule_matches(params, scope, fall(type="gas_leak"))
    assert not event_rule_matches(params, scope, fall())


def test_every_alarm_can_be_put_in_words() -> None:
    opened = datetime(2026, 3, 10, 23, 5, tzinfo=UTC)
    alarms = {
        RuleKind.THRESHOLD: threshold(series([130] * 11), at(5)),
        RuleKind.INACTIVITY: inactive(activity(T0 - timedelta(minutes=300)), T0),
        RuleKind.DEVICE_OFFLINE: offline(
            ev.DeviceState("d1", status="offline", last_seen=at(-45)), T0
        ),
        RuleKind.BATTERY_LOW: battery(ev.DeviceState("d", battery=9)),
        RuleKind.NIGHT_EXIT: night(door(opened), opened + timedelta(minutes=3)),
        RuleKind.DATA_QUALITY: one(
            ev.evaluate_data_quality(
                [run("readings", -5, False)], params(RuleKind.DATA_QUALITY), T0, at(-10)
            )
        ),
    }
    words = {kind: describe_finding(kind, f.details) for kind, f in alarms.items()}
    assert all(f.state is State.ALARM for f in alarms.values())
    assert words == {
        RuleKind.THRESHOLD: "Heart rate 130 bpm: above 120 bpm for 5 minutes",
        RuleKind.INACTIVITY: "No movement for 5 hours (limit 4 hours)",
        RuleKind.DEVICE_OFFLINE: "The device reported it is offline; last message 45 minutes ago",
        RuleKind.BATTERY_LOW: "Battery at 9%",
        RuleKind.NIGHT_EXIT: "Door opened at 23:05",
        RuleKind.DATA_QUALITY: "Suite readings: 2 of 9 checks failed",
    }
    assert describe_finding(RuleKind.NIGHT_EXIT, alarms[RuleKind.NIGHT_EXIT].details, "ko") == (
        "23:05에 문 열림"
    )


# --- defaults that must be quiet on ordinary days (issue 13)


def test_night_from_active_hours_follows_each_resident() -> None:
    rule = params(RuleKind.NIGHT_EXIT)  # no times: outside the resident's active hours

    def state(clock: tuple[int, int], hours: tuple[time, time] | None) -> State:
        opened = datetime(2026, 3, 10, *clock, tzinfo=UTC)
        watch = ev.DoorWatch("UTC", [door(opened)], hours)
        since = opened - timedelta(minutes=1)
        return one(ev.evaluate_night_exit({"r": watch}, rule, opened, since)).state

    night_owl = (time(9, 0), time(23, 30))
    early_bird = (time(5, 0), time(20, 0))
    # 22:30 is inside the night owl's active hours, but night for the early bird.
    assert state((22, 30), night_owl) is not State.ALARM
    assert state((22, 30), early_bird) is State.ALARM
    # 05:30: the early bird is up; the night owl's night lasts until 09:00.
    assert state((5, 30), early_bird) is not State.ALARM
    assert state((5, 30), night_owl) is State.ALARM
    # Doors of no resident: the default night, 22:00-06:00.
    assert state((23, 0), None) is State.ALARM
    assert state((21, 0), None) is not State.ALARM


def test_inactivity_routine_limit_stays_between_the_floor_and_max() -> None:
    rule = {"max_minutes": 150, "use_routine": True, "factor": 1.5, "min_minutes": 90}
    # A busy hour's usual gap of 8 minutes would make a 12-minute limit: the floor is 90.
    busy = activity(T0 - timedelta(minutes=60), routine={12: 8.0})
    finding = inactive(busy, T0, **rule)
    assert finding.state is State.CLEAR
    assert finding.details["limit_minutes"] == 90
    # A long usual gap (a nap) cannot push the limit past max_minutes: 3 hours are caught.
    nap = activity(T0 - timedelta(hours=3), routine={12: 200.0})
    finding = inactive(nap, T0, **rule)
    assert finding.state is State.ALARM
    assert finding.details["limit_minutes"] == 150


def test_inactivity_counts_quiet_time_from_when_motion_data_began() -> None:
    rule = {"max_minutes": 150}
    # Active since 07:00; the sensor's data began at 11:00 (installed, or the history's start):
    # at 12:00 only an hour is known to be quiet.
    since = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
    fresh = ev.Activity(
        "UTC", time(7, 0), time(22, 0), [ev.MotionSource("m1", None)], {}, True, since
    )
    assert inactive(fresh, T0, **rule).state is State.HOLD
    assert inactive(fresh, since + timedelta(minutes=150), **rule).state is State.ALARM
    # Before the data began there is nothing to judge; without any data, neither.
    assert ev.evaluate_inactivity({"r": fresh}, params(RuleKind.INACTIVITY, **rule), at(-90)) == []
    nothing = ev.Activity("UTC", time(7, 0), time(22, 0), [ev.MotionSource("m1", None)], {}, False)
    assert ev.evaluate_inactivity({"r": nothing}, params(RuleKind.INACTIVITY, **rule), T0) == []


def test_setup_notice_in_words() -> None:
    for language in ("en", "ko"):
        text = describe_finding("inactivity", {"setup": True}, language)
        assert text and "{" not in text
    assert "motion" in describe_finding("inactivity", {"setup": True}, "en")
