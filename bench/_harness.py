"""Shared parts of the ingest benchmarks: broker, database, publishers, consumers, /proc sampling.

Every process started here dies with the benchmark (parent-death signal) and is stopped in a
finally block; every database is dropped at the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing as mp
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import create_engine, insert, text

from core import schema
from core.contract.topics import INBOUND, TopicKind, device_topic, subscription
from devkit.databases import postgres_database
from devkit.mosquitto import PrivateMosquitto, with_parent_death_signal
from devkit.tcp_proxy import free_port
from models import Device, DeviceStatus, Site

TOPIC_ROOT = "care"
SITE = "bench"
SHARED_GROUP = "ingest"
READINGS_PER_MESSAGE = 3
POLL_SECONDS = 0.05
CLK_TCK = os.sysconf("SC_CLK_TCK")
# MQTT 5 session expiry for the consumers' persistent sessions (seconds).
SESSION_EXPIRY = 3600

log = logging.getLogger("bench")


def exit_on_sigterm() -> None:
    """Exit (status 143) on SIGTERM, so the finally blocks stop what the benchmark started and
    drop its database."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def die_with_parent() -> None:
    """Linux: SIGKILL this process when the benchmark that started it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn() -> Any:
    """A multiprocessing context that does not fork our threads (proxy, pollers) into children."""
    return mp.get_context("spawn")


def stop_process(process: Any) -> None:
    """Wait for a multiprocessing process to exit (10 s), then kill it; nothing if never started."""
    if process.pid is None:
        return
    process.join(10)
    if process.is_alive():
        process.kill()
        process.join(5)


def median(values: Sequence[float | None]) -> float | None:
    """Median of the known values."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


# --- the broker


def bench_broker(window: int) -> PrivateMosquitto:
    """A Mosquitto that never drops (queue limits off) with `window` unacknowledged deliveries.

    Persistence is on with Mosquitto's default autosave interval (30 min), as in the shipped
    config: no snapshot is written during a run.
    """
    return PrivateMosquitto(
        max_inflight_messages=window,
        max_queued_messages=10_000_000,
        max_queued_bytes=0,  # 0: no limit
        autosave_interval=1800,
        persistence=True,
    ).start()


# --- the database


def device_names(publishers: int, devices: int) -> list[list[str]]:
    """Disjoint device ids per publisher, so (device, ts) never collides between publishers."""
    per = max(1, devices // publishers)
    return [[f"p{p}d{d}" for d in range(per)] for p in range(publishers)]


@contextlib.contextmanager
def migrated_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new PostgreSQL database named `prefix`_<random> on `admin_url`'s server, migrated to the
    latest schema; dropped afterwards. Yields its URL."""
    with postgres_database(admin_url, prefix) as url:
        engine = create_engine(url)
        try:
            schema.upgrade(engine)
        finally:
            engine.dispose()
        yield url


@contextlib.contextmanager
def bench_database(admin_url: str, devices: Sequence[str]) -> Iterator[str]:
    """A new PostgreSQL database, migrated, `devices` registered as wearables; dropped after."""
    with migrated_database(admin_url, "iotcare_bench") as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(insert(Site), [{"id": SITE, "name": "Benchmark", "timezone": "UTC"}])
                if devices:
                    conn.execute(
                        insert(Device),
                        [
                            {
                                "id": d,
                                "site_id": SITE,
                                "type": "wearable",
                                "status": DeviceStatus.UNKNOWN,
                                "quarantined": False,
                            }
                            for d in devices
                        ],
                    )
        finally:
            engine.dispose()
        yield url


@dataclass(frozen=True)
class Stored:
    """What the readings table holds after a run."""

    readings: int
    messages: int  # distinct (device, ts): one per message
    dead_letters: int
    quarantined: int


def stored(url: str) -> Stored:
    """Count what ingest wrote (run after the consumer stopped)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            readings, messages = conn.execute(
                text("SELECT count(*), count(DISTINCT (device_id, ts)) FROM readings")
            ).one()
            dead = conn.scalar(text("SELECT count(*) FROM dead_letters"))
            quarantined = conn.scalar(text("SELECT count(*) FROM devices WHERE quarantined"))
        return Stored(int(readings), int(messages), int(dead or 0), int(quarantined or 0))
    finally:
        engine.dispose()


def reset_database(url: str) -> None:
    """Empty the tables a run writes, between repetitions."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE readings, dead_letters, ingest_replicas"))
            conn.execute(text("UPDATE devices SET last_seen = NULL"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE readings"))
    finally:
        engine.dispose()


# --- publishers (separate processes)


@dataclass(frozen=True)
class PublishPlan:
    """One publisher process's share of the load."""

    index: int
    url: str
    devices: list[str]
    count: int | None  # None: until told to stop
    rate: float  # messages/s for this publisher; 0: as fast as the broker acknowledges
    base_ms: int  # timestamp of each device's first message; then +10 ms per message
    client: str = "raw"  # raw: RawPublisher; paho: the simulator's MqttPublisher


@dataclass
class PublishResult:
    """What one publisher achieved (wall-clock times, comparable across processes)."""

    index: int
    published: int
    acknowledged: int
    started: float
    finished: float  # the broker acknowledged the last message


_VARIANTS = [
    {"heart_rate": 60.0 + i, "spo2": 95.0 + (i % 5) * 0.5, "body_temp_c": 36.2 + (i % 10) * 0.1}
    for i in range(16)
]


class RawPublisher:
    """A minimal MQTT 3.1.1 QoS1 publisher on a plain socket: packets built by hand and written
    500 at a time, PUBACKs counted from the socket.

    paho spends about 50-70 us of Python per QoS1 publish, so three paho publisher processes took
    1.4 of the machine's 2 cores to offer under 8,000 msg/s and the live mode measured them rather
    than the consumer. This does the same protocol work (the broker acknowledges every message,
    at most `inflight` unacknowledged) for a few microseconds a message.
    """

    def __init__(self, url: str, client_id: str, inflight: int = 1000) -> None:
        from core.mqtt_url import parse_broker_url

        address = parse_broker_url(url)
        self.host, self.port = address.host, address.port
        self.client_id = client_id
        self.inflight = inflight
        self.published = 0
        self.acknowledged = 0
        self._mid = 0
        self._buffer = bytearray()
        self._sock: Any = None

    def connect(self, timeout: float = 10.0) -> None:
        """CONNECT (clean session, no keepalive) and wait for a successful CONNACK."""
        import socket

        cid = self.client_id.encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"\x10" + _varint(len(body)) + body)
        reply = b""
        while len(reply) < 4:
            chunk = sock.recv(4 - len(reply))
            if not chunk:
                raise ConnectionError("broker closed the connection before CONNACK")
            reply += chunk
        if reply[0] != 0x20 or reply[3] != 0:
            raise ConnectionError(f"broker refused the connection: {reply!r}")
        sock.settimeout(None)
        self._sock = sock

    def topic(self, topic: str) -> bytes:
        """A topic encoded once: length prefix and UTF-8."""
        raw = topic.encode()
        return len(raw).to_bytes(2, "big") + raw

    def send(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Publish (encoded topic, payload) pairs at QoS1, waiting for room in the window."""
        if self.published - self.acknowledged + len(messages) > self.inflight:
            self._read_acks(self.published + len(messages) - self.inflight)
        packets = []
        mid = self._mid
        for topic, payload in messages:
            mid = mid % 65535 + 1
            length = len(topic) + 2 + len(payload)
            packets.append(b"\x32" + _varint(length) + topic + mid.to_bytes(2, "big") + payload)
        self._mid = mid
        self._sock.sendall(b"".join(packets))
        self.published += len(messages)
        self._read_acks(0, block=False)

    def flush(self, timeout: float = 600.0) -> bool:
        """Wait until the broker acknowledged everything published."""
        self._sock.settimeout(timeout)
        try:
            self._read_acks(self.published)
        except TimeoutError:
            return False
        finally:
            self._sock.settimeout(None)
        return True

    def _read_acks(self, until: int, block: bool = True) -> None:
        """Read PUBACKs until `until` are counted (or, not blocking, whatever has arrived)."""
        import socket

        buffer = self._buffer
        while True:
            try:
                chunk = self._sock.recv(65536, 0 if block else socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buffer += chunk
            used = 0
            end = len(buffer)
            while end - used >= 2:
                kind = buffer[used] >> 4
                length, shift, pos = 0, 0, used + 1
                while pos < end:
                    byte = buffer[pos]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    pos += 1
                    if not byte & 0x80:
                        break
                else:
                    break
                if pos + length > end:
                    break
                if kind == 4:  # PUBACK
                    self.acknowledged += 1
                used = pos + length
            del buffer[:used]
            if block and self.acknowledged >= until:
                return

    def close(self) -> None:
        """DISCONNECT and close the socket."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.sendall(b"\xe0\x00")
            self._sock.close()
            self._sock = None


def _varint(value: int) -> bytes:
    """MQTT's variable-length integer (remaining length)."""
    if value < 128:
        return bytes((value,))
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def publisher_main(
    plan: PublishPlan, go: Any, stop: Any, leave: Any, progress: Any, results: Any
) -> None:
    """Publish QoS1 telemetry of three readings per message; report; wait to be let go."""
    die_with_parent()
    client_id = f"bench-pub-{plan.index}-{uuid.uuid4().hex[:6]}"
    publisher: Any
    if plan.client == "paho":
        from core.settings import MqttProtocol
        from simulator.publisher import MqttPublisher

        publisher = MqttPublisher(
            plan.url,
            client_id=client_id,
            protocol=MqttProtocol.V311,
            inflight=1000,
            window=20_000,
        )
    else:
        publisher = RawPublisher(plan.url, client_id, inflight=2000)
    publisher.connect()
    names = [device_topic(TOPIC_ROOT, SITE, d, TopicKind.TELEMETRY) for d in plan.devices]
    raw = isinstance(publisher, RawPublisher)
    topics: list[Any] = [publisher.topic(t) for t in names] if raw else names
    n_devices = len(topics)
    dumps = orjson.dumps
    results.put(("ready", plan.index))
    go.wait()
    started = time.time()
    clock = time.perf_counter
    t0 = clock()
    sent = reported = 0
    count, rate = plan.count, plan.rate
    while not stop.is_set():
        if count is not None and sent >= count:
            break
        n = 500
        if rate > 0:
            due = int((clock() - t0) * rate) + 1 - sent
            if due <= 0:
                time.sleep(0.002)
                continue
            n = min(n, due)
        if count is not None:
            n = min(n, count - sent)
        chunk = []
        for _ in range(n):
            i = sent % n_devices
            seq = sent // n_devices
            body = {"ts": plan.base_ms + seq * 10, "seq": seq, "readings": _VARIANTS[seq % 16]}
            chunk.append((topics[i], dumps(body)))
            sent += 1
        if raw:
            publisher.send(chunk)
        else:
            for topic, payload in chunk:
                publisher.publish(topic, payload)
        acked = publisher.acknowledged
        if acked - reported >= 1000:
            with progress.get_lock():
                progress.value += acked - reported
            reported = acked
    publisher.flush(timeout=600)
    finished = time.time()
    with progress.get_lock():
        progress.value += publisher.acknowledged - reported
    results.put(
        (
            "done",
            PublishResult(plan.index, sent, min(sent, publisher.acknowledged), started, finished),
        )
    )
    leave.wait()
    publisher.close()


class Publishers:
    """Several publisher processes released together."""

    def __init__(
        self,
        url: str,
        devices: list[list[str]],
        total: int | None,
        rate: float,
        base_ms: int,
        client: str = "raw",
    ) -> None:
        ctx = spawn()
        self.go, self.stop, self.leave = ctx.Event(), ctx.Event(), ctx.Event()
        self.progress = ctx.Value("q", 0)
        self.results = ctx.Queue()
        n = len(devices)
        self.processes = []
        for p in range(n):
            count = None if total is None else total // n + (1 if p < total % n else 0)
            plan = PublishPlan(p, url, devices[p], count, rate / n, base_ms, client)
            self.processes.append(
                ctx.Process(
                    target=publisher_main,
                    args=(plan, self.go, self.stop, self.leave, self.progress, self.results),
                    daemon=True,
                    name=f"bench-publisher-{p}",
                )
            )
        self.done: list[PublishResult] = []

    @property
    def pids(self) -> list[int]:
        """Process ids of live publishers."""
        return [p.pid for p in self.processes if p.pid is not None and p.is_alive()]

    def start(self, timeout: float = 60.0) -> None:
        """Start the processes and wait until each is connected (not yet publishing)."""
        for process in self.processes:
            process.start()
        ready = 0
        deadline = time.monotonic() + timeout
        while ready < len(self.processes):
            kind, _ = self.results.get(timeout=max(0.1, deadline - time.monotonic()))
            if kind == "ready":
                ready += 1

    def release(self) -> float:
        """Start publishing; returns the wall-clock time."""
        now = time.time()
        self.go.set()
        return now

    def collect(self, timeout: float | None = None) -> list[PublishResult] | None:
        """Results once every publisher finished (None if not yet, within timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self.done) < len(self.processes):
            try:
                kind, result = self.results.get(timeout=0.05)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in self.processes):
                    raise RuntimeError("a publisher process failed") from None
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            if kind == "done":
                self.done.append(result)
        return self.done

    def close(self) -> None:
        """Let the processes disconnect and exit; kill stragglers."""
        self.stop.set()
        self.go.set()
        self.leave.set()
        for process in self.processes:
            stop_process(process)
        self.results.close()


def publish_summary(results: Sequence[PublishResult]) -> tuple[int, int, float, float, float]:
    """(published, acknowledged, started, finished, rate) over all publishers."""
    published = sum(r.published for r in results)
    acked = sum(r.acknowledged for r in results)
    started = min(r.started for r in results)
    finished = max(r.finished for r in results)
    seconds = finished - started
    return published, acked, started, finished, acked / seconds if seconds > 0 else 0.0


# --- the no-op subscriber (separate process)


def consumer_filters(shared: bool) -> list[str]:
    """The filters ingest subscribes to (all inbound kinds), shared or not."""
    return [subscription(TOPIC_ROOT, kind, SHARED_GROUP if shared else None) for kind in INBOUND]


class _Counter:
    """Counts and acknowledges; nothing else."""

    def __init__(self, expect: int, done: Any, progress: Any) -> None:
        self.n = 0
        self.progress = progress
        self.dups = 0
        self.first = 0.0
        self.last = 0.0
        self.expect = expect
        self.done = done

    def on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        client.ack(message.mid, message.qos)
        self.n += 1
        self.last = time.time()
        if self.n == 1:
            self.first = self.last
        if message.dup:
            self.dups += 1
        if not self.n & 1023:
            self.progress.value = self.n
        if self.n == self.expect:
            self.done.set()


def noop_main(
    url: str,
    client_id: str,
    mqtt5: bool,
    window: int,
    filters: list[str],
    expect: int,
    subscribe_only: bool,
    ready: Any,
    stop: Any,
    leave: Any,
    progress: Any,
    results: Any,
) -> None:
    """A paho subscriber on a persistent session that only counts and acknowledges (manual ack)."""
    import threading

    from core.mqtt_url import parse_broker_url

    die_with_parent()
    address = parse_broker_url(url)
    if mqtt5:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
    else:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
            manual_ack=True,
        )
    done = threading.Event()
    counter = _Counter(expect, done, progress)
    subscribed = threading.Event()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        c.subscribe([(f, 1) for f in filters])

    def on_subscribe(*_args: Any) -> None:
        subscribed.set()
        ready.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = counter.on_message
    if mqtt5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY
        props.ReceiveMaximum = window
        client.connect(address.host, address.port, clean_start=False, properties=props)
    else:
        client.connect(address.host, address.port)
    client.loop_start()
    if subscribe_only:
        subscribed.wait(10)
        client.disconnect()
        client.loop_stop()
        results.put(("noop", None))
        return
    while not done.wait(0.1):
        if stop.is_set():
            break
    results.put(
        (
            "noop",
            {
                "received": counter.n,
                "dups": counter.dups,
                "first": counter.first,
                "last": counter.last,
            },
        )
    )
    leave.wait()
    client.disconnect()
    client.loop_stop()


class NoopSubscriber:
    """Runs noop_main in a process."""

    def __init__(self, url: str, mqtt5: bool, window: int, shared: bool) -> None:
        self.url, self.mqtt5, self.window = url, mqtt5, window
        self.filters = consumer_filters(shared)
        self.client_id = f"bench-noop-{uuid.uuid4().hex[:6]}"
        ctx = spawn()
        self.ctx = ctx
        self.ready, self.stop, self.leave = ctx.Event(), ctx.Event(), ctx.Event()
        self.results = ctx.Queue()
        self.progress = ctx.RawValue("q", 0)  # messages received, updated every 1024
        self.process: Any = None

    def _run(self, expect: int, subscribe_only: bool) -> None:
        self.ready.clear()
        self.process = self.ctx.Process(
            target=noop_main,
            args=(
                self.url,
                self.client_id,
                self.mqtt5,
                self.window,
                self.filters,
                expect,
                subscribe_only,
                self.ready,
                self.stop,
                self.leave,
                self.progress,
                self.results,
            ),
            daemon=True,
            name="bench-noop",
        )
        self.process.start()

    def create_session(self) -> None:
        """Connect once and subscribe, so the broker queues messages for the session."""
        self._run(0, True)
        self.results.get(timeout=30)
        self.process.join(10)

    def start(self, expect: int, wait_ready: bool) -> None:
        """Consume until `expect` messages arrived."""
        self._run(expect, False)
        if wait_ready and not self.ready.wait(30):
            raise RuntimeError("the no-op subscriber did not subscribe")

    @property
    def pid(self) -> int | None:
        """Process id."""
        return self.process.pid if self.process is not None else None

    def poll(self) -> dict | None:
        """Its report, once it finished."""
        try:
            _, report = self.results.get_nowait()
        except queue.Empty:
            if self.process is not None and self.process.exitcode not in (None, 0):
                raise RuntimeError("the no-op subscriber failed") from None
            return None
        return report

    def close(self) -> None:
        """Stop and reap it."""
        self.stop.set()
        self.leave.set()
        if self.process is not None:
            stop_process(self.process)
        self.results.close()


# --- ingest replicas (`python -m ingest` subprocesses)


@dataclass
class IngestReplicas:
    """`count` ingest processes configured through IOTCARE_* variables."""

    count: int
    database_url: str
    mqtt_url: str
    mqtt5: bool
    window: int
    extra_env: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="iotcare-bench-")))
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    def env(self, index: int, port: int) -> dict[str, str]:
        """The replica's environment: the caller's, minus any IOTCARE_* it had, plus ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")}
        env.update(self.settings(index, port))
        return env

    def settings(self, index: int, port: int) -> dict[str, str]:
        """IOTCARE_* settings of one replica (printed with the results)."""
        values = {
            "IOTCARE_ENVIRONMENT": "development",
            "IOTCARE_DATA_DIR": str(self.workdir / f"data{index}"),
            "IOTCARE_DATABASE_URL": self.database_url,
            "IOTCARE_MQTT_URL": self.mqtt_url,
            "IOTCARE_MQTT_PROTOCOL": "5" if self.mqtt5 else "3.1.1",
            "IOTCARE_MQTT_CLIENT_ID": f"bench-ingest-{index}",
            "IOTCARE_MQTT_SHARED_GROUP": SHARED_GROUP,
            "IOTCARE_INGEST_INFLIGHT_WINDOW": str(self.window),
            "IOTCARE_METRICS_PORT": str(port),
            "IOTCARE_LOG_LEVEL": "WARNING",
        }
        values.update(self.extra_env)
        return values

    def start(self) -> None:
        """Start every replica (does not wait)."""
        self.processes, self.ports = [], []
        for index in range(self.count):
            port = free_port()
            log_file = (self.workdir / f"ingest{index}.log").open("ab")
            self.processes.append(
                subprocess.Popen(
                    with_parent_death_signal([sys.executable, "-m", "ingest"]),
                    cwd=self.workdir,
                    env=self.env(index, port),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=log_file,
                )
            )
            log_file.close()
            self.ports.append(port)

    @property
    def pids(self) -> list[int]:
        """Process ids (setpriv execs, so these are the Python processes)."""
        return [p.pid for p in self.processes]

    def log_tail(self, lines: int = 30) -> str:
        """The end of every replica's log."""
        out = []
        for index in range(self.count):
            path = self.workdir / f"ingest{index}.log"
            if path.exists():
                out.append(f"--- ingest{index}.log")
                out += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out)

    def check_alive(self) -> None:
        """Raise if a replica exited."""
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"ingest exited with {process.returncode}:\n{self.log_tail()}")

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Until every replica's /healthz says connected and flushing."""
        deadline = time.monotonic() + timeout
        pending = set(range(self.count))
        while pending:
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"ingest not healthy after {timeout}s:\n{self.log_tail()}")
            for index in list(pending):
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.ports[index]}/healthz", timeout=1
                    ) as response:
                        if response.status == 200:
                            pending.discard(index)
                except (OSError, urllib.error.URLError):
                    pass
            time.sleep(0.05)

    def totals(self) -> tuple[int, int] | None:
        """(messages received, readings written) summed over replicas; None if one is silent."""
        received = written = 0
        for port in self.ports:
            scraped = scrape(port)
            if scraped is None:
                return None
            received += scraped[0]
            written += scraped[1]
        return received, written

    def batch_stats(self) -> tuple[int, float]:
        """(batches written, seconds spent writing them) over every replica."""
        batches, seconds = 0, 0.0
        for port in self.ports:
            values = scrape_all(port)
            if values:
                batches += int(values["batches"])
                seconds += values["write_seconds"]
        return batches, seconds

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (flush and exit cleanly), then SIGKILL if needed."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def cleanup(self) -> None:
        """Stop every replica and remove the working directory (logs, data dirs)."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def create_sessions(self) -> None:
        """Start, let each replica subscribe on its persistent session, stop: the broker then
        queues messages for them even before they come back."""
        self.start()
        try:
            self.wait_healthy()
            time.sleep(0.5)  # the SUBACK follows the CONNACK
        finally:
            self.stop()


def scrape(port: int) -> tuple[int, int] | None:
    """(messages received, readings written) from one replica's /metrics."""
    values = scrape_all(port)
    if values is None:
        return None
    return int(values["received"]), int(values["written"])


def scrape_all(port: int) -> dict[str, float] | None:
    """Received, written readings, batches and seconds spent writing, from /metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            body = response.read().decode()
    except (OSError, urllib.error.URLError):
        return None
    names = {
        "iotcare_ingest_messages_received_total": "received",
        'iotcare_ingest_rows_written_total{kind="reading"}': "written",
        "iotcare_ingest_batch_write_seconds_count": "batches",
        "iotcare_ingest_batch_write_seconds_sum": "write_seconds",
    }
    values = dict.fromkeys(names.values(), 0.0)
    for line in body.splitlines():
        name, _, value = line.rpartition(" ")
        if name in names:
            values[names[name]] = float(value)
    return values


# --- /proc sampling


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads)."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in kB."""
    try:
        text_ = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text_.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            values[key] = int(value.split()[0])
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def peak_memory_kb(pids: Iterable[int]) -> int:
    """The largest VmHWM (peak RSS, kB) among `pids`; 0 when none can be read."""
    return max((mem[1] for pid in pids if (mem := memory_kb(pid))), default=0)


def postgres_pids() -> list[int]:
    """Every process named postgres (server and backends)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


@dataclass
class CpuSnapshot:
    """CPU seconds per named group of processes, plus the machine."""

    at: float
    groups: dict[str, dict[int, float]]
    machine: tuple[int, int]

    @classmethod
    def take(cls, groups: dict[str, Sequence[int]]) -> CpuSnapshot:
        """Read /proc now; postgres is added as a group of its own."""
        all_groups = {**groups, "postgres": postgres_pids(), "driver": [os.getpid()]}
        values = {
            name: {pid: s for pid in pids if (s := cpu_seconds(pid)) is not None}
            for name, pids in all_groups.items()
        }
        return cls(time.monotonic(), values, machine_ticks())


def cpu_split(start: CpuSnapshot, end: CpuSnapshot) -> dict[str, float]:
    """Cores used per group between two snapshots (1.0 = one core busy), and 'other'."""
    seconds = end.at - start.at
    if seconds <= 0:
        return {}
    out = {}
    for name, pids in end.groups.items():
        before = start.groups.get(name, {})
        used = sum(value - before.get(pid, 0.0) for pid, value in pids.items())
        out[name] = used / seconds
    busy = (end.machine[0] - start.machine[0]) / CLK_TCK / seconds
    out["machine"] = busy
    out["other"] = max(0.0, busy - sum(v for k, v in out.items() if k != "machine"))
    return out


def format_split(split: dict[str, float]) -> str:
    """'ingest 0.95, broker 0.30, ... of 2 cores'."""
    if not split:
        return "-"
    parts = [f"{k} {v:.2f}" for k, v in split.items() if k not in ("machine",)]
    return f"{', '.join(parts)}; machine {split.get('machine', 0):.2f} of {os.cpu_count()} cores"
