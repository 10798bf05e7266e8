"""Whatever arrives, routing a message never raises, and every message is accounted for."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contract.catalogue import METRICS
from ingest.batch import Batch
from ingest.parse import Limits, apply_message

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_payload_bytes=4096, dead_letter_payload_bytes=512)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
readings = st.dictionaries(
    st.sampled_from([*METRICS, "unknown", ""]),
    st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False) | st.text(max_size=5),
    max_size=5,
)
telemetry_like = st.fixed_dictionaries(
    {"readings": readings},
    optional={
        "ts": st.integers(-(10**15), 10**15)
        | st.text(max_size=30)
        | st.just("2026-11-22T11:00:00Z"),
        "seq": json_values,
    },
)
topics = st.sampled_from(
    [
        "care/v1/s1/d1/telemetry",
        "care/v1/s1/d1/event",
        "care/v1/s1/d1/status",
        "care/v1/s1/d1/cmd/ack",
        "care/v1/s1/d1/cmd",
        "care/v1/s1/telemetry",
        "x/y",
    ]
) | st.text(max_size=80)


def check(topic: str, payload: bytes) -> None:
    batch = Batch()
    apply_message(batch, topic, payload, NOW, LIMITS)
    assert batch.messages == 1
    stored = len(batch.readings) + len(batch.events) + len(batch.statuses) + len(batch.acks)
    # Either something was stored, or the message is in the dead-letter list with a reason.
    assert stored > 0 or len(batch.dead_letters) == 1
    for dead in batch.dead_letters:
        assert dead.reason and dead.detail
        # PostgreSQL refuses U+0000 in text: a dead letter quoting one would fail its own write.
        assert "\x00" not in dead.topic + dead.detail
        assert dead.reason != "internal_error", dead.detail
        assert len(dead.payload) <= LIMITS.dead_letter_payload_bytes
        assert dead.payload_size == len(payload)
    for row in batch.readings:
        assert METRICS[row.metric].accepts(row.value)
    for event in batch.events:
        # Storable as jsonb: within the depth limit (orjson stops at 255) and free of U+0000.
        assert "\\u0000" not in orjson.dumps(event.data).decode()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(topic=topics, payload=st.binary(max_size=5000))
def test_random_bytes_never_crash(topic: str, payload: bytes) -> None:
    check(topic, payload)


@settings(max_examples=400, deadline=None)
@given(topic=topics, body=json_values)
def test_random_json_never_crashes(topic: str, body: object) -> None:
    check(topic, orjson.dumps(body))


def test_huge_numbers_are_dead_lettered() -> None:
    check("care/v1/s1/d1/telemetry", b'{"ts": 1e400, "readings": {"spo2": 1e999}}')
    check(
        "care/v1/s1/d1/telemetry",
        b'{"ts": 123456789012345678901234567890, "readings": {"spo2": 97}}',
    )


@settings(max_examples=400, deadline=None)
@given(body=telemetry_like | st.fixed_dictionaries({"batch": st.lists(telemetry_like, max_size=5)}))
def test_telemetry_shaped_json_never_crashes(body: dict) -> None:
    check("care/v1/s1/d1/telemetry", orjson.dumps(body))


@settings(max_examples=300, deadline=None)
@given(
    data=json_values,
    depth=st.integers(1, 1000),
    ts=st.text(max_size=30)
    | st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]),
)
def test_events_with_any_data_and_time_never_crash(data: object, depth: int, ts: str) -> None:
    nested = b'{"k": ' * depth + orjson.dumps(data) + b"}" * depth
    check(
        "care/v1/s1/d1/event",
        b'{"ts": %s, "type": "fall_detected", "data": %s}' % (orjson.dumps(ts), nested),
    )
