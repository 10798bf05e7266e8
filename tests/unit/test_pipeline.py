"""The pipeline acknowledges a message only after every sink has written it."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import orjson

from ingest.batch import Batch
from ingest.metrics import IngestMetrics
from ingest.pipeline import Delivery, Pipeline, PipelineConfig

TOPIC = "care/v1/s1/d1/telemetry"


def payload(i: int) -> bytes:
    return orjson.dumps({"ts": 1_763_800_000_000 + i, "readings": {"heart_rate": 60 + i % 50}})


class RecordingSink:
    """Keeps written batches; can be told to fail, like a database that went away."""

    name = "recording"

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.failing = threading.Event()
        self.attempts = 0

    def write(self, batch: Batch) -> None:
        self.attempts += 1
        if self.failing.is_set():
            raise ConnectionError("database unreachable")
        self.batches.append(batch)

    def backlog_bytes(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def rows(self) -> int:
        return sum(len(b.readings) for b in self.batches)


class Acks:
    def __init__(self) -> None:
        self.mids: list[int] = []
        self.event = threading.Event()

    def __call__(self, deliveries: Sequence[Delivery]) -> None:
        self.mids.extend(d.mid for d in deliveries)
        self.event.set()


def make(
    window: int = 1000,
    interval: float = 10.0,
    batch_size: int = 5000,
    idle: float = 60.0,
    blocked: frozenset[str] = frozenset(),
):
    sink, acks = RecordingSink(), Acks()
    pipeline = Pipeline(
        [sink],
        acks,
        PipelineConfig(
            batch_size=batch_size,
            flush_interval=interval,
            idle_flush=idle,
            inflight_window=window,
            retry_initial=0.01,
            retry_max=0.05,
        ),
        IngestMetrics(),
        blocked=lambda: blocked,
    )
    pipeline.start()
    return pipeline, sink, acks


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def test_full_inflight_window_flushes_at_once() -> None:
    pipeline, sink, acks = make(window=20, interval=30.0)
    for i in range(20):
        pipeline.submit(TOPIC, payload(i), Delivery(i + 1, 1, 0))
    assert wait_for(lambda: len(acks.mids) == 20, timeout=2.0)
    assert sink.rows() == 20
    pipeline.stop()


def test_batch_size_triggers_a_flush() -> None:
    pipeline, _sink, acks = make(window=10_000, interval=30.0, batch_size=5)
    for i in range(5):
        pipeline.submit(TOPIC, payload(i), Delivery(i + 1, 1, 0))
    assert wait_for(lambda: len(acks.mids) == 5, timeout=2.0)
    pipeline.stop()


def test_flush_interval_bounds_the_wait() -> None:
    pipeline, _sink, acks = make(window=10_000, interval=0.05, batch_size=5000)
    pipeline.submit(TOPIC, payload(1), Delivery(1, 1, 0))
    # One message of a 5,000 batch is written and acknowledged on the interval, before stop().
    assert wait_for(lambda: acks.mids == [1], timeout=2.0)
    pipeline.stop()


def test_a_pause_in_traffic_flushes_without_waiting_for_the_interval() -> None:
    # The broker's window may be smaller than ours: when it stops sending, write what we have.
    pipeline, _sink, acks = make(window=10_000, interval=60.0, idle=0.005)
    for i in range(3):
        pipeline.submit(TOPIC, payload(i), Delivery(i + 1, 1, 0))
    assert wait_for(lambda: len(acks.mids) == 3, timeout=1.0)
    pipeline.stop()


def test_nothing_is_acknowledged_while_the_store_is_down() -> None:
    pipeline, sink, acks = make(window=5, interval=0.01)
    sink.failing.set()
    for i in range(5):
        pipeline.submit(TOPIC, payload(i), Delivery(i + 1, 1, 0))
    assert wait_for(lambda: sink.attempts >= 5)
    assert acks.mids == []
    assert pipeline.failing_since is not None and "unreachable" in (pipeline.last_error or "")
    sink.failing.clear()
    assert wait_for(lambda: len(acks.mids) == 5)
    assert sink.rows() == 5 and pipeline.failing_since is None
    pipeline.stop()


def test_stop_flushes_and_acknowledges_the_rest() -> None:
    pipeline, sink, acks = make(window=1000, interval=60.0)
    for i in range(7):
        pipeline.submit(TOPIC, payload(i), Delivery(i + 1, 1, 0))
    pipeline.stop()
    assert sorted(acks.mids) == list(range(1, 8))
    assert sink.rows() == 7


def test_stop_during_outage_leaves_messages_for_redelivery() -> None:
    pipeline, sink, acks = make(window=3, interval=0.01)
    sink.failing.set()
    for i in range(3):
        pipeline.submit(TOPIC, payload(i), Delivery(i + 1, 1, 0))
    assert wait_for(lambda: sink.attempts >= 2)
    pipeline.stop(timeout=5)
    assert not pipeline.alive()
    assert acks.mids == []


def test_qos0_and_dead_letters_are_accounted() -> None:
    pipeline, sink, acks = make(window=2, interval=0.01)
    pipeline.submit(TOPIC, b"garbage", Delivery(1, 1, 0))
    pipeline.submit(TOPIC, payload(1), Delivery(2, 0, 0))
    assert wait_for(lambda: acks.event.is_set())
    pipeline.stop()
    assert acks.mids == [1]  # QoS0 needs no acknowledgement
    dead = [d for b in sink.batches for d in b.dead_letters]
    assert [d.reason for d in dead] == ["invalid_json"]
    assert pipeline.metrics.total(pipeline.metrics.dead_letters) == 1


def test_messages_of_blocked_devices_are_dead_lettered_and_acknowledged() -> None:
    pipeline, sink, acks = make(window=3, interval=0.01, blocked=frozenset({"d1"}))
    pipeline.submit(TOPIC, payload(1), Delivery(1, 1, 0))
    pipeline.submit("care/v1/s1/d1/status", b'{"online": true}', Delivery(2, 1, 0))
    pipeline.submit("care/v1/s1/d2/telemetry", payload(2), Delivery(3, 1, 0))
    assert wait_for(lambda: len(acks.mids) == 3)
    pipeline.stop()
    [batch] = sink.batches
    assert [(r.device_id, r.metric) for r in batch.readings] == [("d2", "heart_rate")]
    assert [d.reason for d in batch.dead_letters] == ["device_blocked", "device_blocked"]
    assert "d1" in batch.dead_letters[0].detail and batch.dead_letters[0].payload == payload(1)
    # Not "seen": a blocked device is neither registered again nor marked alive.
    assert set(batch.seen) == {"d2"} and not batch.statuses


class PickySink(RecordingSink):
    """Refuses, as a data error, any batch holding a reading of `poison` bpm (like a database)."""

    def __init__(self, poison: float, error: type[Exception] = ValueError) -> None:
        super().__init__()
        self.poison = poison
        self.error = error

    def write(self, batch: Batch) -> None:
        self.attempts += 1
        if any(r.value == self.poison for r in batch.readings):
            raise self.error(f"row refused: {self.poison}")
        if self.failing.is_set():
            raise self.error("every write refused")
        self.batches.append(batch)


def make_with(sink: RecordingSink, window: int = 1000):
    acks = Acks()
    pipeline = Pipeline(
        [sink],
        acks,
        PipelineConfig(
            inflight_window=window, flush_interval=0.01, retry_initial=0.01, retry_max=0.05
        ),
        IngestMetrics(),
    )
    pipeline.start()
    return pipeline, acks


def test_one_refused_message_is_dead_lettered_and_the_rest_written() -> None:
    sink = PickySink(poison=60 + 7)  # payload(7) carries 67 bpm
    pipeline, acks = make_with(sink, window=20)
    for i in range(20):
        pipeline.submit(TOPIC, payload(i), Delivery(i + 1, 1, 0))
    assert wait_for(lambda: len(acks.mids) == 20)
    pipeline.stop()
    assert sink.rows() == 19
    assert sorted(r.value for b in sink.batches for r in b.readings) == sorted(
        60 + i for i in range(20) if i != 7
    )
    dead = [d for b in sink.batches for d in b.dead_letters]
    assert [d.reason for d in dead] == ["store_rejected"]
    assert dead[0].payload == payload(7) and "row refused: 67" in dead[0].detail
    assert "ValueError" in dead[0].detail and dead[0].topic == TOPIC
    # Bisection, not one write per message: about 2·log2(20) writes.
    assert sink.attempts < 20
    assert pipeline.metrics.total(pipeline.metrics.dead_letters) == 1


def test_a_store_refusing_everything_is_retried_not_dead_lettered() -> None:
    # Even the dead letter is refused: the store is failing, not the message. Nothing may be
    # dead-lettered nor acknowledged until it recovers; then everything is written as data.
    sink = PickySink(poison=-1.0, error=RuntimeError)
    sink.failing.set()
    pipeline, acks = make_with(sink, window=4)
    for i in range(4):
        pipeline.submit(TOPIC, payload(i), Delivery(i + 1, 1, 0))
    assert wait_for(lambda: sink.attempts >= 12)
    assert acks.mids == [] and pipeline.failing_since is not None
    sink.failing.clear()
    assert wait_for(lambda: len(acks.mids) == 4)
    pipeline.stop()
    assert sink.rows() == 4
    assert not [d for b in sink.batches for d in b.dead_letters]


def test_connection_failures_are_retried_whole_not_split() -> None:
    sink = RecordingSink()
    sink.failing.set()
    pipeline, acks = make_with(sink, window=8)
    for i in range(8):
        pipeline.submit(TOPIC, payload(i), Delivery(i + 1, 1, 0))
    assert wait_for(lambda: sink.attempts >= 3)
    sink.failing.clear()
    assert wait_for(lambda: len(acks.mids) == 8)
    pipeline.stop()
    # Written as the one batch it was, never split.
    assert [len(b.readings) for b in sink.batches] == [8]


def test_the_site_registry_routes_wrong_site_messages_to_dead_letters() -> None:
    sink, acks = RecordingSink(), Acks()
    pipeline = Pipeline(
        [sink],
        acks,
        PipelineConfig(inflight_window=2, flush_interval=0.01),
        IngestMetrics(),
        site_of={"d1": "s1"}.get,
    )
    pipeline.start()
    pipeline.submit(TOPIC, payload(1), Delivery(1, 1, 0))
    pipeline.submit("care/v1/s2/d1/telemetry", payload(2), Delivery(2, 1, 0))
    assert wait_for(lambda: len(acks.mids) == 2)
    pipeline.stop()
    [batch] = sink.batches
    assert len(batch.readings) == 1 and [d.reason for d in batch.dead_letters] == ["wrong_site"]
