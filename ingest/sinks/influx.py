"""The optional InfluxDB 2.x sink: readings become line protocol, spooled to disk, then drained.

`InfluxSink.write` only appends the batch's lines to an on-disk spool (fsynced), so the ingest
pipeline may acknowledge as soon as it returns; InfluxDB being slow or down never holds up the
system of record until the spool reaches its bound (then `SinkUnavailable`: back-pressure).
A background thread drains the spool oldest first through influxdb-client's batching WriteApi
(gzip on) and deletes segments only once InfluxDB accepted every line in them, which it learns
from the WriteApi's success and error callbacks. Delivery is at-least-once: a crash between
acceptance and delete re-sends those lines, which InfluxDB stores idempotently (same series and
timestamp overwrite the same point).

Data model: measurement = device type ("unknown" when the registry does not know it), tags
device, resident (when known) and site, one float field per metric, timestamps in milliseconds.
Readings of one device at one instant share a line.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import WriteOptions, WriteType
from reactivex.scheduler import ThreadPoolScheduler

from ingest.batch import Batch, ReadingRow
from ingest.sinks.base import SinkUnavailable
from ingest.spool import Segment, Spool, SpoolFull

if TYPE_CHECKING:
    from core.settings import Settings

log = logging.getLogger(__name__)

# device id -> (device type, resident id); (None, None) for a device the registry lacks.
Lookup = Callable[[str], tuple[str | None, int | None]]

UNKNOWN_MEASUREMENT = "unknown"
WRITE_PRECISION = WritePrecision.MS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

# The same escapes as influxdb-client's Point: what the server's parser expects. Newlines,
# tabs and carriage returns cannot appear raw in a line, so they become visible sequences.
_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_KEY = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)

# Statuses that no retry can fix: the lines themselves are refused (parse error, field type
# conflict, body too large). They are set aside in a file instead of blocking the spool forever.
_PERMANENT_STATUSES = frozenset({400, 413, 422})


# --------------------------------------------------------------------------- line protocol


def escape_measurement(name: str) -> str:
    """Escape a measurement name for line protocol (commas and spaces)."""
    return name.translate(_ESCAPE_MEASUREMENT)


def escape_key(text: str) -> str:
    """Escape a tag key, tag value or field key for line protocol (commas, equals, spaces)."""
    return text.translate(_ESCAPE_KEY)


def timestamp_ms(ts: datetime) -> int:
    """Milliseconds since the Unix epoch, exactly (integer arithmetic, floor), for aware `ts`."""
    if ts.tzinfo is None or ts.tzinfo.utcoffset(ts) is None:
        raise ValueError(f"naive datetime {ts.isoformat()} (timezone-aware UTC required)")
    return (ts - _EPOCH) // _MILLISECOND


def format_float(value: float) -> str | None:
    """A float field value (always a float, so the field's type never flips); None if not finite."""
    number = float(value)
    if not math.isfinite(number):
        return None  # line protocol has no NaN or infinity
    return repr(number)


def format_series(measurement: str, tags: dict[str, str]) -> str:
    """Measurement and tag set, tags sorted by key as InfluxDB prefers; empty values left out."""
    tag_set = "".join(
        f",{escape_key(key)}={escape_key(tags[key])}" for key in sorted(tags) if tags[key] != ""
    )
    return escape_measurement(measurement) + tag_set


def format_fields(fields: dict[str, float]) -> str:
    """The field set (empty when no value is finite)."""
    parts = []
    for key, value in fields.items():
        text = format_float(value)
        if text is not None:
            parts.append(f"{escape_key(key)}={text}")
    return ",".join(parts)


def format_line(
    measurement: str, tags: dict[str, str], fields: dict[str, float], ts_ms: int
) -> str | None:
    """One line of line protocol; None when it would have no field."""
    field_set = format_fields(fields)
    if not field_set:
        return None
    return f"{format_series(measurement, tags)} {field_set} {ts_ms}"


def readings_to_lines(readings: Iterable[ReadingRow], lookup: Lookup) -> list[bytes]:
    """Line protocol for readings: one line per device, site and millisecond, metrics as fields."""
    points: dict[tuple[str, str, int], dict[str, float]] = {}
    for reading in readings:
        key = (reading.device_id, reading.site_id, timestamp_ms(reading.ts))
        points.setdefault(key, {})[reading.metric] = reading.value
    # One registry lookup and one escaped series per device and site per batch (the hot path).
    series: dict[tuple[str, str], str] = {}
    lines: list[bytes] = []
    skipped = 0
    for (device_id, site_id, ts_ms), fields in points.items():
        prefix = series.get((device_id, site_id))
        if prefix is None:
            device_type, resident_id = lookup(device_id)
            tags = {"device": device_id, "site": site_id}
            if resident_id is not None:
                tags["resident"] = str(resident_id)
            prefix = format_series(device_type or UNKNOWN_MEASUREMENT, tags)
            series[(device_id, site_id)] = prefix
        field_set = format_fields(fields)
        if not field_set:
            skipped += 1
            continue
        lines.append(f"{prefix} {field_set} {ts_ms}".encode())
    if skipped:
        log.warning("influx: skipped %d points with no finite value", skipped)
    return lines


# --------------------------------------------------------------------------- delivery


@dataclass(frozen=True, slots=True)
class InfluxSinkOptions:
    """Tuning of the drainer; seconds throughout (tests use small values)."""

    batch_size: int = 5000  # lines per HTTP write (WriteOptions.batch_size)
    flush_interval: float = 0.1  # WriteApi flushes a partial batch after this long
    timeout: float = 10.0  # one HTTP request
    backoff_min: float = 1.0  # first wait after a failed delivery; doubles per failure
    backoff_max: float = 30.0  # longest wait between attempts
    retry_after_max: float = 300.0  # a larger Retry-After is capped to this
    group_max_bytes: int = 4 * 1024 * 1024  # spool bytes read into memory per delivery
    poll_interval: float = 1.0  # idle re-check of the spool (writes wake the drainer anyway)
    close_timeout: float = 5.0  # bounded final attempt to drain on close


@dataclass(slots=True)
class _Failure:
    """Why a delivery attempt did not get every line in."""

    error: BaseException | str
    retry_after: float | None = None


class _Round:
    """One submission of lines to the WriteApi, settled by its callbacks."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.accepted = 0
        self.settled = 0
        self.retry: list[bytes] = []
        self.rejected: list[tuple[list[bytes], BaseException]] = []
        self.failure: _Failure | None = None
        self._done = threading.Condition()

    def succeed(self, body: bytes) -> None:
        count = len(_split_body(body))
        with self._done:
            self.accepted += count
            self.settled += count
            self._done.notify_all()

    def fail(self, body: bytes, error: BaseException) -> None:
        lines = _split_body(body)
        status = _status_of(error)
        with self._done:
            if status in _PERMANENT_STATUSES:
                self.rejected.append((lines, error))
            else:
                self.retry.extend(lines)
                retry_after = _retry_after_of(error)
                if self.failure is None or (retry_after or 0) > (self.failure.retry_after or 0):
                    self.failure = _Failure(error, retry_after)
            self.settled += len(lines)
            self._done.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._done:
            return self._done.wait_for(lambda: self.settled >= self.expected, timeout)


def _split_body(body: bytes | str) -> list[bytes]:
    # The WriteApi joins our lines with b"\n"; our lines never contain a raw newline.
    data = body.encode("utf-8") if isinstance(body, str) else body
    return [line for line in data.split(b"\n") if line]


def _status_of(error: BaseException) -> int | None:
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def _retry_after_of(error: BaseException) -> float | None:
    value = getattr(error, "retry_after", None)
    return parse_retry_after(value) if value else None


def parse_retry_after(value: str) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if invalid."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _Channel:
    """One InfluxDBClient with its batching WriteApi; callbacks go to the current round."""

    def __init__(self, url: str, token: str, org: str, options: InfluxSinkOptions) -> None:
        self.client = InfluxDBClient(
            url=url, token=token, org=org, enable_gzip=True, timeout=int(options.timeout * 1000)
        )
        # Our own scheduler: WriteOptions' default one is a single pool shared process-wide.
        self.scheduler = ThreadPoolScheduler(max_workers=1)
        write_options = WriteOptions(
            write_type=WriteType.batching,
            batch_size=options.batch_size,
            flush_interval=max(1, int(options.flush_interval * 1000)),
            jitter_interval=0,
            # The client's own retries sleep inside its writer thread (Retry-After unbounded)
            # where close() cannot interrupt them; the drainer retries instead, stop-aware.
            max_retries=0,
            max_close_wait=int(options.close_timeout * 1000),
            write_scheduler=self.scheduler,
        )
        self.api = self.client.write_api(
            write_options=write_options,
            success_callback=self._on_success,
            error_callback=self._on_error,
        )
        self.round: _Round | None = None
        self.abandoned = False

    def _on_success(self, _conf: tuple[str, str, str], body: bytes) -> None:
        current = self.round
        if current is not None and not self.abandoned:
            current.succeed(body)

    def _on_error(self, _conf: tuple[str, str, str], body: bytes, error: Exception) -> None:
        current = self.round
        if current is not None and not self.abandoned:
            current.fail(body, error)

    def submit(self, bucket: str, org: str, lines: Sequence[bytes]) -> _Round:
        current = _Round(len(lines))
        self.round = current
        self.api.write(bucket=bucket, org=org, record=list(lines), write_precision=WRITE_PRECISION)
        return current

    def close(self) -> None:
        self.abandoned = True
        try:
            self.api.close()
        finally:
            self.scheduler.executor.shutdown(wait=False)
            self.client.close()


@dataclass(slots=True)
class _Group:
    """Segments being delivered together, and the lines of them not yet accepted."""

    segments: list[Segment]
    pending: list[bytes]
    total: int


class InfluxSink:
    """Sink writing readings to InfluxDB 2.x through a durable on-disk spool."""

    name = "influx"

    def __init__(
        self,
        *,
        url: str,
        token: str,
        org: str,
        bucket: str,
        spool: Spool,
        lookup: Lookup,
        options: InfluxSinkOptions | None = None,
        rejected_dir: Path | None = None,
    ) -> None:
        """Start draining `spool` (which this sink now owns) to InfluxDB in the background."""
        self.url = url
        self.org = org
        self.bucket = bucket
        self.options = options or InfluxSinkOptions()
        self.rejected_dir = rejected_dir or spool.directory.with_name(
            spool.directory.name + "-rejected"
        )
        self._token = token
        self._spool = spool
        self._lookup = lookup
        self._channel: _Channel | None = None
        self._group: _Group | None = None
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._deadline = math.inf
        self._closed = False
        self.delivered_lines = 0
        self.rejected_lines = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="influx-drainer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ Sink protocol

    def write(self, batch: Batch) -> None:
        """Append the batch's readings to the spool, durably; SinkUnavailable when it is full."""
        if self._closed:
            raise SinkUnavailable("the InfluxDB sink is closed")
        lines = readings_to_lines(batch.readings, self._lookup)
        if not lines:
            return
        try:
            self._spool.append(lines)
        except SpoolFull as error:
            raise SinkUnavailable(str(error)) from error
        self._wake.set()

    def backlog_bytes(self) -> int:
        """Bytes in the spool waiting for InfluxDB."""
        return self._spool.size_bytes()

    def close(self) -> None:
        """Try to drain for at most close_timeout, then stop; the rest stays spooled."""
        if self._closed:
            return
        self._closed = True
        self._deadline = time.monotonic() + self.options.close_timeout
        self._closing.set()
        self._wake.set()
        self._thread.join(self.options.close_timeout + self.options.timeout + 1)
        if self._thread.is_alive():
            log.warning("influx: drainer did not stop in time; leaving it to exit on its own")
        self._drop_channel()
        self._spool.close()
        left = self._spool.size_bytes()
        if left:
            log.info("influx: %d bytes left in the spool for the next start", left)

    # ------------------------------------------------------------------ drainer

    def _run(self) -> None:
        log.info("influx: draining to %s (org %s, bucket %s)", self.url, self.org, self.bucket)
        while True:
            try:
                if self._closing.is_set() and time.monotonic() >= self._deadline:
                    return
                group = self._group or self._take_group()
                if group is None:
                    if self._closing.is_set():
                        return
                    self._wake.wait(self.options.poll_interval)
                    self._wake.clear()
                    continue
                self._group = group
                failure = self._deliver(group)
            except Exception as error:  # the drainer must outlive any surprise
                log.exception("influx: drainer error")
                failure = _Failure(error)
            if failure is None:
                self._finish(self._group)
                continue
            if self._closing.is_set():
                return  # the final attempt is bounded: no back-off at shutdown
            self._back_off(failure)

    def _take_group(self) -> _Group | None:
        segments: list[Segment] = []
        lines: list[bytes] = []
        size = 0
        for segment, records in self._spool:
            segments.append(segment)
            lines.extend(records)
            size += segment.size
            if size >= self.options.group_max_bytes:
                break
        if not segments:
            return None
        return _Group(segments, lines, len(lines))

    def _deliver(self, group: _Group) -> _Failure | None:
        """Send the group's pending lines once; None when none are left."""
        if not group.pending:
            return None
        channel = self._channel or self._open_channel()
        current = channel.submit(self.bucket, self.org, group.pending)
        batches = math.ceil(len(group.pending) / self.options.batch_size)
        # Each HTTP write is bounded by the timeout; past this the WriteApi is presumed stuck.
        limit = self.options.flush_interval + batches * (self.options.timeout + 1) + 5
        if not self._await(current, time.monotonic() + limit):
            if not self._closing.is_set():
                log.error(
                    "influx: no answer for %d lines in %.0f s; reconnecting",
                    current.expected,
                    limit,
                )
                self._drop_channel()
            # Lines answered for so far are unknown here; re-sending all is safe (idempotent).
            return _Failure("no answer from the write API in time")
        self.delivered_lines += current.accepted
        for lines, error in current.rejected:
            self._set_aside(lines, error)
        group.pending = current.retry
        return current.failure if group.pending else None

    def _await(self, current: _Round, until: float) -> bool:
        """Wait for the round to settle, giving up at `until` or at the close deadline."""
        while True:
            end = min(until, self._deadline) if self._closing.is_set() else until
            remaining = end - time.monotonic()
            if remaining <= 0:
                return False
            # Short slices, so a close() arriving mid-wait is noticed promptly.
            if current.wait(min(remaining, 0.1)):
                return True

    def _finish(self, group: _Group | None) -> None:
        if group is not None:
            for segment in group.segments:
                self._spool.delete(segment)
            log.debug(
                "influx: delivered %d lines from %d segments", group.total, len(group.segments)
            )
        self._group = None
        if self.consecutive_failures:
            log.info("influx: delivering again after %d failed attempts", self.consecutive_failures)
        self.consecutive_failures = 0
        self.last_error = None

    def _back_off(self, failure: _Failure) -> None:
        self.consecutive_failures += 1
        self.last_error = _describe(failure.error)
        delay = self.options.backoff_min * 2 ** min(self.consecutive_failures - 1, 30)
        # Jitter, so replicas that failed together do not retry in step.
        delay = min(self.options.backoff_max, delay * random.uniform(0.8, 1.2))  # noqa: S311
        if failure.retry_after is not None:
            delay = max(delay, min(failure.retry_after, self.options.retry_after_max))
        pending = len(self._group.pending) if self._group else 0
        level = logging.WARNING if self.consecutive_failures <= 3 else logging.ERROR
        log.log(
            level,
            "influx: %d lines not delivered (%s); retry %d in %.2f s, %d bytes spooled",
            pending,
            self.last_error,
            self.consecutive_failures,
            delay,
            self._spool.size_bytes(),
        )
        self._closing.wait(delay)

    def _set_aside(self, lines: list[bytes], error: BaseException) -> None:
        # Kept as a line-protocol file (the reason as a comment) an operator can fix and replay.
        self.rejected_dir.mkdir(parents=True, exist_ok=True)
        path = self.rejected_dir / f"{time.time_ns()}.lp"
        reason = _describe(error).replace("\n", " ")
        with open(path, "wb") as handle:
            handle.write(f"# rejected by InfluxDB: {reason}\n".encode())
            handle.write(b"\n".join(lines) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.rejected_lines += len(lines)
        log.error("influx: InfluxDB refused %d lines (%s); kept in %s", len(lines), reason, path)

    def _open_channel(self) -> _Channel:
        self._channel = _Channel(self.url, self._token, self.org, self.options)
        return self._channel

    def _drop_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            try:
                channel.close()
            except Exception:
                log.exception("influx: error closing the client")


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    status = _status_of(error)
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return f"HTTP {status}: {message}" if status else f"{type(error).__name__}: {message}"


def make_influx_sink(
    settings: Settings, lookup: Lookup, options: InfluxSinkOptions | None = None
) -> InfluxSink | None:
    """The InfluxDB sink the settings ask for, or None when IOTCARE_INFLUX_URL is unset."""
    if not settings.influx_url:
        return None
    token = settings.influx_token.get_secret_value() if settings.influx_token else ""
    spool_dir = Path(settings.data_dir) / "spool" / "influx"
    spool = Spool(spool_dir, settings.spool_max_bytes)
    if options is None:
        options = InfluxSinkOptions(backoff_max=settings.ingest_retry_max.total_seconds())
    return InfluxSink(
        url=settings.influx_url,
        token=token,
        org=settings.influx_org,
        bucket=settings.influx_bucket,
        spool=spool,
        lookup=lookup,
        options=options,
        rejected_dir=spool_dir.with_name("influx-rejected"),
    )


__all__ = [
    "InfluxSink",
    "InfluxSinkOptions",
    "Lookup",
    "escape_key",
    "escape_measurement",
    "format_fields",
    "format_line",
    "format_series",
    "make_influx_sink",
    "parse_retry_after",
    "readings_to_lines",
    "timestamp_ms",
]
