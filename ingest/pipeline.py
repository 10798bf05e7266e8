"""Batching, durable writes and acknowledgement after the write.

The MQTT thread parses each message into the current batch. A flusher thread swaps the batch out
when it is full (rows), when the broker's in-flight window is full (messages), when messages stop
arriving for a moment, or when its oldest message has waited the flush interval; writes it to
every sink; and only then acknowledges its messages. While a store is down the batch is retried
with backoff and nothing is acknowledged, so the broker keeps (and stops sending) the rest:
back-pressure with memory bounded by the window.

A batch a store refuses for what is in it (a data error, not a connection failure) is never
retried as is: it is split in halves, re-parsed from the messages it came from, until the one
message the store refuses is alone; that message becomes a `store_rejected` dead letter and the
rest is written. One message can never stop ingest.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime

import psycopg2
from sqlalchemy import exc as sa_exc

from core.contract.errors import ContractError, Reason
from core.timeutil import utcnow
from ingest.batch import Batch
from ingest.metrics import IngestMetrics
from ingest.parse import Limits, SiteOf, apply_message, dead_letter, unregistered
from ingest.sinks.base import Sink, SinkUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What is needed to acknowledge one message: its id, QoS and the connection it came on."""

    mid: int
    qos: int
    generation: int


Acker = Callable[[Sequence[Delivery]], None]

# One received message as parsed into a batch: topic, payload and receive time. Kept so a batch
# a store refuses can be re-parsed in parts to find the message it refuses.
Message = tuple[str, bytes, datetime]

# Failures of the store itself (unreachable, restarting, locked, out of disk, a deadlock):
# retried with backoff. Anything else is taken to be about the batch's contents.
_TRANSIENT: tuple[type[BaseException], ...] = (
    SinkUnavailable,
    OSError,  # ConnectionError, TimeoutError, a full disk under a spool
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # the connection pool is exhausted
    psycopg2.OperationalError,  # raw cursors (bulk readings) raise psycopg2's own errors
    psycopg2.InterfaceError,
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
)


def is_transient(error: BaseException) -> bool:
    """Whether a write failure is the store's (retry later) rather than the data's (split)."""
    if isinstance(error, _TRANSIENT):
        return True
    return isinstance(error, sa_exc.DBAPIError) and bool(error.connection_invalidated)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Flush triggers and retry bounds."""

    batch_size: int = 5000
    flush_interval: float = 0.2
    inflight_window: int = 20
    # No message for this long means the broker stopped sending: either traffic paused or its
    # in-flight window (which may be smaller than ours) is full. Flush rather than wait.
    idle_flush: float = 0.005
    retry_initial: float = 0.1
    retry_max: float = 30.0
    limits: Limits = field(default_factory=Limits)


@dataclass(slots=True)
class _Part:
    """A batch to write and the messages it was parsed from (a refused one: its dead letter)."""

    batch: Batch
    messages: list[Message]
    refused: bool = False


class Pipeline:
    """Parse → batch → write to every sink → acknowledge."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        acker: Acker,
        config: PipelineConfig,
        metrics: IngestMetrics,
        clock: Callable[[], datetime] = utcnow,
        blocked: Callable[[], Set[str]] = frozenset,
        site_of: SiteOf | None = None,
    ) -> None:
        self.sinks = list(sinks)
        # Ids of devices an operator rejected (the registry cache's current set).
        self.blocked = blocked
        # Where the registry has each device: a message under another site is dead-lettered.
        self.site_of: SiteOf = site_of or unregistered
        self.acker = acker
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self._cond = threading.Condition()
        self._batch = Batch()
        self._deliveries: list[Delivery] = []
        self._messages: list[Message] = []
        self._first_at: float | None = None
        self._last_at = 0.0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self.last_write_at: float | None = None
        # Arrival (monotonic) of the oldest message of the batch being written, for health.
        self._writing_since: float | None = None

    # --- called from the MQTT thread

    def submit(self, topic: str, payload: bytes, delivery: Delivery | None) -> None:
        """Add one message; wakes the flusher when a flush trigger is reached."""
        now = self.clock()
        with self._cond:
            apply_message(
                self._batch, topic, payload, now, self.config.limits, self.blocked(), self.site_of
            )
            self._messages.append((topic, payload, now))
            if delivery is not None and delivery.qos > 0:
                self._deliveries.append(delivery)
            self._last_at = time.monotonic()
            if self._first_at is None:
                self._first_at = self._last_at
                self._cond.notify()
            if (
                self._batch.messages >= self.config.inflight_window
                or self._batch.rows() >= self.config.batch_size
            ):
                self._cond.notify()
        self.metrics.received.inc()

    def pending(self) -> int:
        """Messages received and not yet acknowledged (current batch only)."""
        return self._batch.messages

    def oldest_unwritten(self) -> float | None:
        """Monotonic arrival time of the oldest message not yet written; None when none waits."""
        times = [t for t in (self._writing_since, self._first_at) if t is not None]
        return min(times) if times else None

    # --- the flusher

    def start(self) -> None:
        """Start the flusher thread."""
        self._thread = threading.Thread(target=self._run, name="ingest-flusher", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        """Whether the flusher thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Flush what was received, acknowledge what was written, stop the flusher."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _take(self) -> tuple[Batch, list[Delivery], list[Message], float | None] | None:
        config = self.config
        with self._cond:
            while True:
                batch = self._batch
                if batch.messages:
                    assert self._first_at is not None
                    now = time.monotonic()
                    due = min(
                        self._first_at + config.flush_interval, self._last_at + config.idle_flush
                    )
                    if (
                        self._stopping
                        or batch.messages >= config.inflight_window
                        or batch.rows() >= config.batch_size
                        or now >= due
                    ):
                        break
                    self._cond.wait(due - now)
                elif self._stopping:
                    return None
                else:
                    self._cond.wait()
            taken = (self._batch, self._deliveries, self._messages, self._first_at)
            self._batch, self._deliveries, self._messages, self._first_at = Batch(), [], [], None
            return taken

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            batch, deliveries, messages, first_at = taken
            self._writing_since = first_at
            if not self._write(batch, messages):
                return  # stopping during an outage: unacknowledged messages are redelivered
            self.acker(deliveries)
            self._writing_since = None
            self._account(batch, first_at)

    def _write(self, batch: Batch, messages: list[Message]) -> bool:
        """Write to every sink, retrying each failing one; False if asked to stop meanwhile."""
        delay = self.config.retry_initial
        started = time.perf_counter()
        for sink in self.sinks:
            # What is still to write to this sink, in order: the batch, or its parts once split.
            parts = [_Part(batch, messages)]
            while parts:
                part = parts[0]
                try:
                    sink.write(part.batch)
                except Exception as error:
                    if not part.refused and part.messages and not is_transient(error):
                        parts[0:1] = self._split(sink.name, part.messages, error)
                        continue
                    if part.refused:
                        # Even its dead letter was refused: the store is failing, not this
                        # message. Retry the message itself, with backoff.
                        parts[0] = self._parsed(part.messages)
                    self._note_failure(sink.name, error, delay)
                    with self._cond:
                        if self._stopping:
                            log.warning(
                                "stopping while %s is failing: %d message(s) left "
                                "unacknowledged for redelivery",
                                sink.name,
                                batch.messages,
                            )
                            return False
                        # Jitter, so replicas do not hammer a recovering database in step.
                        self._cond.wait(delay * random.uniform(0.5, 1.0))  # noqa: S311
                    delay = min(delay * 2, self.config.retry_max)
                    continue
                if part.refused:
                    self.metrics.dead_letters.labels(reason=Reason.STORE_REJECTED.value).inc()
                parts.pop(0)
        if self.failing_since is not None:
            log.info(
                "stores reachable again after %.1f s; catching up",
                time.monotonic() - self.failing_since,
            )
        self.failing_since = None
        self.last_error = None
        self.last_write_at = time.monotonic()
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        return True

    def _parsed(self, messages: list[Message]) -> _Part:
        """A batch parsed again from some of a refused batch's messages."""
        batch = Batch()
        limits, blocked = self.config.limits, self.blocked()
        for topic, payload, received in messages:
            apply_message(batch, topic, payload, received, limits, blocked, self.site_of)
        return _Part(batch, messages)

    def _split(self, sink: str, messages: list[Message], error: Exception) -> list[_Part]:
        """Halves of a refused batch; a message refused alone becomes a dead letter instead."""
        if len(messages) > 1:
            middle = len(messages) // 2
            return [self._parsed(messages[:middle]), self._parsed(messages[middle:])]
        topic, payload, received = messages[0]
        text = str(error).strip().splitlines()
        detail = f"{sink}: {type(error).__name__}: {text[0] if text else ''}"
        log.warning("%s refused a message on %r; dead-lettering it: %s", sink, topic[:200], detail)
        batch = Batch(messages=1)
        dead_letter(
            batch,
            topic,
            payload,
            ContractError(Reason.STORE_REJECTED, detail),
            received,
            self.config.limits,
        )
        return [_Part(batch, messages, refused=True)]

    def _note_failure(self, sink: str, error: Exception, delay: float) -> None:
        first = self.failing_since is None
        if first:
            self.failing_since = time.monotonic()
        self.last_error = f"{sink}: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
        self.metrics.write_failures.labels(sink=sink).inc()
        level = logging.WARNING if first or delay >= self.config.retry_max else logging.DEBUG
        log.log(
            level,
            "write to %s failed, retrying in up to %.1f s without acknowledging: %s",
            sink,
            delay,
            self.last_error,
        )

    def _account(self, batch: Batch, first_at: float | None) -> None:
        metrics = self.metrics
        metrics.written.labels(kind="reading").inc(len(batch.readings))
        metrics.written.labels(kind="event").inc(len(batch.events))
        for dead in batch.dead_letters:
            metrics.dead_letters.labels(reason=dead.reason).inc()
        if first_at is not None:
            metrics.lag_seconds.set(time.monotonic() - first_at)
        metrics.spool_bytes.set(sum(s.backlog_bytes() for s in self.sinks))
