"""Whatever devices send, the SQL sink writes the batch, and every message is stored or kept.

Property, on SQLite and PostgreSQL: a batch of arbitrary messages routed by `apply_message` is
written by `SqlSink.write` without raising (no message can stall ingest), each message either
produced rows or a dead letter, and what the batch holds is in the database afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select, tuple_
from sqlalchemy.orm import Session

from core import registry, schema
from core.contract.catalogue import METRICS, EventType
from core.db import make_engine
from ingest.batch import Batch
from ingest.parse import Limits, apply_message
from ingest.registry_cache import RegistryCache
from ingest.sinks.sql import SqlSink
from models import DeadLetter, Event, Reading
from tests.conftest import make_test_settings
from tests.support.databases import migrated_database

NOW = datetime.now(UTC).replace(microsecond=0)
LIMITS = Limits(max_payload_bytes=65_536, dead_letter_payload_bytes=4096)


@pytest.fixture(scope="module")
def engine(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated database with site `home` and its wearable `w1`."""
    directory = tmp_path_factory.mktemp("fuzz")
    with migrated_database(db_backend, directory) as url:
        engine = make_engine(make_test_settings(directory, database_url=url))
        schema.upgrade(engine)
        with Session(engine) as session:
            registry.create_site(session, "home", "Home", "Asia/Seoul")
            registry.add_device(session, device_id="w1", site_id="home", device_type="wearable")
            session.commit()
        yield engine
        engine.dispose()


# Text that stores refuse or drivers cannot encode, mixed into ordinary text.
nasty = st.sampled_from(["\x00", "a\x00", "\ud800", "\udfff x", "\n", '"', "\\", "한", "😀"])
texts = st.lists(st.text(max_size=6) | nasty, max_size=3).map("".join)
# Numbers beyond 64 bits and float extremes; NaN and infinities are written by json.dumps as
# the non-standard tokens NaN and Infinity.
numbers = (
    st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 1, -1, 2**63, -(2**63) - 1, 1e308, 5e-324])
)
scalars = st.none() | st.booleans() | numbers | texts
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=12,
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
timestamps = (
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
    ).map(datetime.isoformat)
    | st.sampled_from(
        [
            "9999-12-31T23:59:59-14:00",
            "0001-01-01T00:00:00+14:00",
            "2026-12-05T00:00:00\x00Z",
            (NOW - timedelta(minutes=3)).isoformat(),
            (NOW - timedelta(days=400)).isoformat(),
        ]
    )
    | numbers
    | texts
    | st.just(int((NOW - timedelta(seconds=30)).timestamp() * 1000))
)
metric_names = st.sampled_from([*METRICS]) | texts
readings = st.dictionaries(metric_names, st.booleans() | numbers | texts, max_size=4)
telemetry = st.fixed_dictionaries(
    {"ts": timestamps, "readings": readings}, optional={"seq": json_values}
)
events = st.fixed_dictionaries(
    {"ts": timestamps, "type": st.sampled_from([e.value for e in EventType]) | texts},
    optional={"data": json_values},
)
statuses = st.fixed_dictionaries(
    {"state": st.sampled_from(["online", "offline"]) | texts},
    optional={"fw": texts | numbers, "battery": numbers, "rssi": numbers},
)
acks = st.fixed_dictionaries(
    {"id": st.uuids().map(str) | texts, "status": st.sampled_from(["ok", "error"]) | texts},
    optional={"detail": json_values},
)
bodies = telemetry | st.fixed_dictionaries({"batch": st.lists(telemetry, max_size=3)})
bodies = bodies | events | statuses | acks | json_values


def deep_event(levels: int) -> bytes:
    """An event whose data is nested `levels` objects deep (beyond what encoders recurse)."""
    ts = (NOW - timedelta(minutes=1)).isoformat()
    return b'{"ts": "%s", "type": "fall_detected", "data": %s{}%s}' % (
        ts.encode(),
        b'{"k": ' * (levels - 1),
        b"}" * (levels - 1),
    )


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """JSON as a device might send it: non-ASCII or escaped, NaN tokens, duplicate keys."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return deep_event(draw(st.integers(1, 1100)))
    if choice == 1:
        # Duplicate keys: the last one wins in orjson, so the first is what a reader might see.
        first, second = draw(timestamps), draw(timestamps)
        body = f'{{"ts": {json.dumps(first)}, "readings": {{"heart_rate": 70}}, "ts": '
        return (body + json.dumps(second) + "}").encode("utf-8", "surrogatepass")
    if choice == 2:
        return draw(st.binary(max_size=64))
    text = json.dumps(draw(bodies), ensure_ascii=draw(st.booleans()), allow_nan=True)
    # A lone surrogate left raw (ensure_ascii=False) is not UTF-8: sent as the bytes it encodes.
    return text.encode("utf-8", "surrogatepass")


devices = st.sampled_from(["w1", "w1", "stranger", "n-2"]) | st.from_regex(r"\A[a-z0-9_-]{1,12}\Z")
sites = st.sampled_from(["home", "home", "elsewhere"]) | st.from_regex(r"\A[a-z]{1,8}\Z")
kinds = st.sampled_from(["telemetry", "event", "status", "cmd/ack", "cmd", "other"])
topics = st.builds(lambda s, d, k: f"care/v1/{s}/{d}/{k}", sites, devices, kinds) | texts
messages = st.lists(st.tuples(topics, payloads()), min_size=1, max_size=8)


def dead_letter_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(DeadLetter)) or 0


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batch_messages=messages)
def test_any_batch_is_written_and_every_message_stored_or_dead_lettered(
    engine: Engine, batch_messages: list[tuple[str, bytes]]
) -> None:
    cache = RegistryCache(refresh_seconds=3600)
    with engine.connect() as connection:
        cache.load(connection)
    batch = Batch()
    for topic, payload in batch_messages:
        alone = Batch()
        apply_message(alone, topic, payload, NOW, LIMITS, cache.blocked(), cache.site_of)
        rows = len(alone.readings) + len(alone.events) + len(alone.statuses) + len(alone.acks)
        assert rows > 0 or alone.dead_letters, (topic, payload)
        apply_message(batch, topic, payload, NOW, LIMITS, cache.blocked(), cache.site_of)
    assert batch.messages == len(batch_messages)
    before = dead_letter_count(engine)

    SqlSink(engine, cache, "Asia/Seoul").write(batch)

    assert dead_letter_count(engine) - before == len(batch.dead_letters)
    with Session(engine) as session:
        if batch.readings:
            keys = {(r.device_id, r.metric, r.ts) for r in batch.readings}
            stored = session.execute(
                select(Reading.device_id, Reading.metric, Reading.ts).where(
                    tuple_(Reading.device_id, Reading.metric).in_({(d, m) for d, m, _ in keys})
                )
            ).all()
            found = {
                (d, m, ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts) for d, m, ts in stored
            }
            assert keys <= found
        for event in batch.events:
            assert session.scalar(
                select(func.count())
                .select_from(Event)
                .where(
                    Event.device_id == event.device_id,
                    Event.type == event.type,
                    Event.ts == event.ts,
                )
            )
