"""Line protocol from readings: escaping, precision, data model, and the fake's strict parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ingest.batch import ReadingRow
from ingest.sinks.influx import (
    escape_key,
    escape_measurement,
    format_float,
    format_line,
    parse_retry_after,
    readings_to_lines,
    timestamp_ms,
)
from tests.support.fake_influx import LineProtocolError, parse_body, parse_line

T0 = datetime(2024, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC)
T0_MS = 1_709_294_400_123


def reading(
    device: str, metric: str, value: float, ts: datetime = T0, site: str = "s1"
) -> ReadingRow:
    return ReadingRow(device_id=device, metric=metric, ts=ts, value=value, site_id=site)


def test_escapes_special_characters() -> None:
    assert escape_measurement("my meas,ure=ment") == r"my\ meas\,ure=ment"
    assert escape_key("a,b=c d") == r"a\,b\=c\ d"
    assert escape_key("line\nbreak\ttab") == r"line\nbreak\ttab"
    assert escape_key("plain_id-42") == "plain_id-42"


def test_timestamp_is_exact_milliseconds() -> None:
    assert timestamp_ms(T0) == T0_MS  # sub-millisecond part dropped, no float rounding
    seoul = T0.astimezone(timezone(timedelta(hours=9)))
    assert timestamp_ms(seoul) == T0_MS
    assert timestamp_ms(datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC)) == -1
    far = datetime(2262, 4, 11, 23, 47, 16, 854_000, tzinfo=UTC)
    assert timestamp_ms(far) == 9_223_372_036_854


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        timestamp_ms(datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1.0"), (72.5, "72.5"), (True, "1.0"), (-0.25, "-0.25"), (1e16, "1e+16"), (3e-7, "3e-07")],
)
def test_fields_are_always_floats(value: float, text: str) -> None:
    assert format_float(value) == text
    assert isinstance(parse_line(f"m f={text} 1", "ms", 0)[2]["f"], float)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_left_out(value: float) -> None:
    assert format_float(value) is None
    assert format_line("m", {"t": "v"}, {"f": value}, 1) is None


def test_readings_become_one_line_per_device_and_instant() -> None:
    calls: list[str] = []

    def lookup(device_id: str) -> tuple[str | None, int | None]:
        calls.append(device_id)
        return {"w1": ("wearable", 7), "e1": ("env_sensor", None)}.get(device_id, (None, None))

    later = T0 + timedelta(seconds=1)
    lines = readings_to_lines(
        [
            reading("w1", "heart_rate", 72),
            reading("w1", "spo2", 97.5),
            reading("e1", "temperature_c", 21.5, site="kitchen"),
            reading("w1", "heart_rate", 74, ts=later),
            reading("ghost", "battery_pct", 50),
        ],
        lookup,
    )
    assert [line.decode() for line in lines] == [
        f"wearable,device=w1,resident=7,site=s1 heart_rate=72.0,spo2=97.5 {T0_MS}",
        f"env_sensor,device=e1,site=kitchen temperature_c=21.5 {T0_MS}",
        f"wearable,device=w1,resident=7,site=s1 heart_rate=74.0 {T0_MS + 1000}",
        f"unknown,device=ghost,site=s1 battery_pct=50.0 {T0_MS}",
    ]
    assert calls == ["w1", "e1", "ghost"]  # one registry lookup per device per batch


def test_output_parses_at_millisecond_precision() -> None:
    lines = readings_to_lines(
        [reading("w1", "heart_rate", 72), reading("w 2,x=y", "spo2", 97)],
        lambda _device: ("wearable", 3),
    )
    points = parse_body("\n".join(line.decode() for line in lines), "ms")
    assert points[0] == (
        "wearable",
        {"device": "w1", "resident": "3", "site": "s1"},
        {"heart_rate": 72.0},
        T0_MS * 1_000_000,
    )
    assert points[1][1]["device"] == "w 2,x=y"


# Text that may appear in ids; a trailing backslash cannot be expressed in line protocol (it
# would escape the separator), and raw newlines are not allowed, so those are left out.
_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\t"),
    min_size=1,
    max_size=20,
)


@given(measurement=_names, tag=_names, value=_names, field=_names, number=st.floats())
def test_round_trip_through_the_strict_parser(
    measurement: str, tag: str, value: str, field: str, number: float
) -> None:
    assume(not any(s.endswith("\\") for s in (measurement, tag, value, field)))
    line = format_line(measurement, {tag: value}, {field: number}, 42)
    if line is None:
        assert format_float(number) is None
        return
    assert parse_line(line, "ms", 0) == (measurement, {tag: value}, {field: number}, 42_000_000)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("m", "missing fields"),
        ("m,t=a", "missing fields"),
        ("m f=", "missing field value"),
        ("m,t= f=1", "missing tag value"),
        ("m,t=a b f=1", "missing field value"),
        ("m,=a f=1", "missing tag key"),
        ("m,t=a=b f=1", "invalid tag format"),
        ("m,t=a,t=b f=1", "duplicate tags"),
        ("m f=1,f=2", "duplicate field"),
        ("m f=1.2.3", "invalid field format"),
        ("m f=NaN", "invalid field format"),
        ("m f=1x", "invalid field format"),
        ('m f="open', "unbalanced quotes"),
        ("m f=1 12.5", "bad timestamp"),
        ("m f=1 1 2", "bad timestamp"),
        ("m f=1  1", "bad timestamp"),
        ("m f=1 99999999999999999", "time outside range"),
        ("m f=99999999999999999999i", "out of range"),
        (",t=a f=1", "missing measurement"),
    ],
)
def test_fake_parser_rejects_malformed_lines(line: str, reason: str) -> None:
    with pytest.raises(LineProtocolError, match=reason):
        parse_body(line, "ms")


def test_fake_parser_reads_every_field_type() -> None:
    body = '# comment\n\nm,t=a\\ b f=1.5,i=-3i,u=4u,b=true,B=F,s="say \\"hi\\" \\\\o/" 1\nm g=2'
    (first, second) = parse_body(body, "s")
    assert first == (
        "m",
        {"t": "a b"},
        {"f": 1.5, "i": -3, "u": 4, "b": True, "B": False, "s": 'say "hi" \\o/'},
        1_000_000_000,
    )
    assert second[2] == {"g": 2.0}


@pytest.mark.parametrize(
    ("header", "seconds"), [("3", 3.0), ("0", 0.0), ("-5", 0.0), ("soon", None), ("", None)]
)
def test_retry_after_header(header: str, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    seconds = parse_retry_after(when.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert seconds is not None and 28 <= seconds <= 30
