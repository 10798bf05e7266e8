"""No message stops ingest on a real database: each poison is dead-lettered, the rest stored."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from core import registry, schema
from core.db import make_engine
from ingest.batch import Batch
from ingest.metrics import IngestMetrics
from ingest.parse import Limits, apply_message
from ingest.pipeline import Delivery, Pipeline, PipelineConfig
from ingest.registry_cache import RegistryCache
from ingest.sinks.sql import SqlSink
from models import DeadLetter, Device, Event, Reading, Site
from tests.conftest import make_test_settings
from tests.support.databases import migrated_database

NOW = datetime.now(UTC).replace(microsecond=0)
TS = (NOW - timedelta(minutes=1)).isoformat()
# The database below refuses this reading (a constraint standing in for any row-level refusal).
POISON_BPM = 66.5


@pytest.fixture(scope="module")
def engine(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated database with site `home` (device w1) and site `away` (device a1)."""
    directory = tmp_path_factory.mktemp("poison")
    with migrated_database(db_backend, directory) as url:
        engine = make_engine(make_test_settings(directory, database_url=url))
        schema.upgrade(engine)
        with Session(engine) as session:
            registry.create_site(session, "home", "Home", "Asia/Seoul")
            registry.create_site(session, "away", "Away", "Asia/Seoul")
            registry.add_device(session, device_id="w1", site_id="home", device_type="wearable")
            registry.add_device(session, device_id="a1", site_id="away", device_type="wearable")
            session.commit()
        with engine.begin() as connection:
            if db_backend == "postgresql":
                connection.execute(
                    text(
                        "ALTER TABLE readings ADD CONSTRAINT no_poison"
                        f" CHECK (value <> {POISON_BPM})"
                    )
                )
            else:
                connection.execute(
                    text(
                        "CREATE TRIGGER no_poison BEFORE INSERT ON readings "
                        f"WHEN NEW.value = {POISON_BPM} BEGIN SELECT RAISE(ABORT, 'poison'); END"
                    )
                )
        yield engine
        engine.dispose()


def loaded_cache(engine: Engine) -> RegistryCache:
    cache = RegistryCache(refresh_seconds=3600)
    with engine.connect() as connection:
        cache.load(connection)
    return cache


def telemetry(device: str, bpm: float, site: str = "home", ts: str = TS) -> tuple[str, bytes]:
    return f"care/v1/{site}/{device}/telemetry", orjson.dumps(
        {"ts": ts, "readings": {"heart_rate": bpm}}
    )


def count(engine: Engine, model: type, *where) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def dead_letters_since(engine: Engine, first_id: int) -> list[DeadLetter]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(DeadLetter).where(DeadLetter.id > first_id).order_by(DeadLetter.id)
            )
        )


def last_dead_letter_id(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.max(DeadLetter.id))) or 0


def event(body: dict) -> tuple[str, bytes]:
    return "care/v1/home/w1/event", orjson.dumps({"ts": TS, "type": "fall_detected", **body})


POISONS = {
    "nul-in-event-data-key": (event({"data": {"zone\x00": "bath"}}), "schema"),
    "nul-in-event-data-text": (event({"data": {"zone": "ba\x00th"}}), "schema"),
    "event-data-nested-1000": (
        (
            "care/v1/home/w1/event",
            b'{"ts": "%s", "type": "fall_detected", "data": %s{}%s}'
            % (TS.encode(), b'{"a": ' * 999, b"}" * 999),
        ),
        "schema",
    ),
    "nul-in-unknown-metric": (
        ("care/v1/home/w1/telemetry", orjson.dumps({"ts": TS, "readings": {"hr\x00": 1}})),
        "unknown_metric",
    ),
    "nul-in-unknown-event": (
        ("care/v1/home/w1/event", orjson.dumps({"ts": TS, "type": "fall\x00"})),
        "unknown_event",
    ),
    "nul-in-ts": (telemetry("w1", 70, ts="2026-12-05T00:00:00\x00Z"), "bad_timestamp"),
    "year-9999-minus-14h": (telemetry("w1", 70, ts="9999-12-31T23:59:59-14:00"), "bad_timestamp"),
    "year-1-plus-14h": (telemetry("w1", 70, ts="0001-01-01T00:00:00+14:00"), "bad_timestamp"),
    "nul-in-topic": (("care/v1/home/w\x00/telemetry", b"{}"), "unknown_topic"),
    "known-device-other-site": (telemetry("w1", 70, site="away"), "wrong_site"),
}


@pytest.mark.parametrize("name", list(POISONS))
def test_each_poison_is_dead_lettered_and_its_batch_written(engine: Engine, name: str) -> None:
    (topic, payload), reason = POISONS[name]
    cache = loaded_cache(engine)
    first = last_dead_letter_id(engine)
    good_ts = (NOW - timedelta(seconds=len(name))).isoformat()
    batch = Batch()
    for t, p in (telemetry("w1", 71, ts=good_ts), (topic, payload)):
        apply_message(batch, t, p, NOW, Limits(), cache.blocked(), cache.site_of)

    SqlSink(engine, cache, "Asia/Seoul").write(batch)

    [dead] = dead_letters_since(engine, first)
    assert dead.reason == reason
    assert dead.payload == payload and "\x00" not in dead.topic + (dead.detail or "")
    assert count(engine, Reading, Reading.device_id == "w1", Reading.value == 71) >= 1


def test_nul_in_free_text_is_removed_and_the_status_stored(engine: Engine) -> None:
    cache = loaded_cache(engine)
    batch = Batch()
    status = orjson.dumps({"state": "online", "fw": "2.1\x00.0"})
    ack = orjson.dumps({"id": str(uuid.uuid4()), "status": "error", "detail": "jam\x00"})
    apply_message(batch, "care/v1/home/w1/status", status, NOW, Limits())
    apply_message(batch, "care/v1/home/w1/cmd/ack", ack, NOW, Limits())
    assert not batch.dead_letters
    SqlSink(engine, cache, "Asia/Seoul").write(batch)
    with Session(engine) as session:
        assert session.get(Device, "w1").firmware == "2.1.0"


class Acks:
    def __init__(self) -> None:
        self.mids: list[int] = []

    def __call__(self, deliveries: Sequence[Delivery]) -> None:
        self.mids.extend(d.mid for d in deliveries)


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_the_pipeline_dead_letters_only_the_row_the_database_refuses(engine: Engine) -> None:
    cache = loaded_cache(engine)
    first = last_dead_letter_id(engine)
    acks = Acks()
    pipeline = Pipeline(
        [SqlSink(engine, cache, "Asia/Seoul")],
        acks,
        PipelineConfig(inflight_window=30, flush_interval=5.0, idle_flush=5.0, retry_max=0.2),
        IngestMetrics(),
        blocked=cache.blocked,
        site_of=cache.site_of,
    )
    pipeline.start()
    base = NOW - timedelta(hours=1)
    try:
        for i in range(30):
            bpm = POISON_BPM if i == 11 else 100 + i
            topic, payload = telemetry("w1", bpm, ts=(base + timedelta(seconds=i)).isoformat())
            pipeline.submit(topic, payload, Delivery(i + 1, 1, 0))
        assert wait_for(lambda: len(acks.mids) == 30), pipeline.last_error
    finally:
        pipeline.stop()
    stored = count(
        engine,
        Reading,
        Reading.device_id == "w1",
        Reading.ts >= base,
        Reading.ts < base + timedelta(seconds=30),
    )
    assert stored == 29
    [dead] = dead_letters_since(engine, first)
    assert dead.reason == "store_rejected" and b"66.5" in dead.payload
    assert dead.detail and dead.detail.startswith("sql: ")


def test_the_cache_learns_nothing_from_a_rolled_back_batch(engine: Engine) -> None:
    cache = loaded_cache(engine)
    batch = Batch()
    for topic, payload in (telemetry("newcomer", 80, site="nowhere"), telemetry("w1", POISON_BPM)):
        apply_message(batch, topic, payload, NOW, Limits(), cache.blocked(), cache.site_of)
    with pytest.raises(Exception):  # noqa: B017 - the database's own refusal
        SqlSink(engine, cache, "Asia/Seoul").write(batch)
    assert cache.get("newcomer") is None and not cache.has_site("nowhere")
    assert count(engine, Device, Device.id == "newcomer") == 0
    assert count(engine, Site, Site.id == "nowhere") == 0
    # Written without the refused row, the device is quarantined and the cache learns it.
    batch = Batch()
    topic, payload = telemetry("newcomer", 80, site="nowhere")
    apply_message(batch, topic, payload, NOW, Limits(), cache.blocked(), cache.site_of)
    SqlSink(engine, cache, "Asia/Seoul").write(batch)
    assert cache.get("newcomer") is not None and cache.get("newcomer").quarantined
    assert cache.site_of("newcomer") == "nowhere"


def test_events_of_a_device_quarantined_in_the_same_batch_are_stored(engine: Engine) -> None:
    # The event insert reads what the batch just registered before the cache learns it.
    cache = loaded_cache(engine)
    batch = Batch()
    topic, payload = "care/v1/home/stranger/event", event({})[1]
    apply_message(batch, topic, payload, NOW, Limits(), cache.blocked(), cache.site_of)
    SqlSink(engine, cache, "Asia/Seoul").write(batch)
    assert count(engine, Event, Event.device_id == "stranger") == 1


def test_a_device_registered_elsewhere_since_the_cache_loaded_is_a_wrong_site(
    engine: Engine,
) -> None:
    cache = loaded_cache(engine)
    # An operator (or another replica) registers "late" at site "away" after this cache loaded.
    with Session(engine) as session:
        registry.add_device(session, device_id="late", site_id="away", device_type="wearable")
        session.commit()
    first = last_dead_letter_id(engine)
    acks = Acks()
    pipeline = Pipeline(
        [SqlSink(engine, cache, "Asia/Seoul")],
        acks,
        PipelineConfig(inflight_window=2, flush_interval=5.0, idle_flush=5.0, retry_max=0.2),
        IngestMetrics(),
        blocked=cache.blocked,
        site_of=cache.site_of,
    )
    pipeline.start()
    try:
        for mid, (topic, payload) in enumerate(
            (telemetry("late", 90), telemetry("w1", 91)), start=1
        ):
            pipeline.submit(topic, payload, Delivery(mid, 1, 0))
        assert wait_for(lambda: len(acks.mids) == 2), pipeline.last_error
    finally:
        pipeline.stop()
    assert count(engine, Reading, Reading.device_id == "late") == 0
    assert count(engine, Reading, Reading.device_id == "w1", Reading.value == 91) == 1
    assert [d.reason for d in dead_letters_since(engine, first)] == ["wrong_site"]
