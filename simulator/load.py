"""Load generator for benchmarks: telemetry of three readings per message at a target rate.

from simulator.load import run_load, load_targets
stats = run_load("mqtt://127.0.0.1:1883", "care", targets, rate=5000, count=100_000)
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from core.contract.catalogue import DEVICE_METRICS, METRICS, DeviceType
from core.contract.topics import TopicKind, device_topic
from core.settings import MqttProtocol
from models import Device
from simulator.errors import SimulatorError
from simulator.publisher import DEFAULT_INFLIGHT, MqttPublisher
from simulator.stopping import stop_on_signals

log = logging.getLogger(__name__)

READINGS_PER_MESSAGE = 3
VARIANTS = 32  # pre-built readings per device, cycled
PROGRESS_AFTER = 3.0  # seconds before the progress bar shows
_FALLBACK = ("heart_rate", "spo2", "body_temp_c")
# Plausible ranges for load values (inside the catalogue's valid ranges).
_VALUES: dict[str, tuple[float, float]] = {
    "heart_rate": (55, 95),
    "spo2": (94, 99),
    "body_temp_c": (36.2, 37.2),
    "temperature_c": (20, 25),
    "humidity_pct": (35, 60),
    "co2_ppm": (420, 1200),
    "gas_ppm": (0, 5),
    "battery_pct": (20, 100),
}


@dataclass(frozen=True, slots=True)
class LoadTarget:
    """A device the load generator publishes as."""

    site_id: str
    device_id: str
    device_type: DeviceType | None = None


@dataclass(frozen=True, slots=True)
class LoadStats:
    """What a load run achieved."""

    published: int
    acknowledged: int
    readings: int
    devices: int
    seconds: float  # from the first publish until the broker acknowledged the last
    target_rate: float  # messages/s asked for; 0 = as fast as possible

    @property
    def rate(self) -> float:
        """Acknowledged messages per second."""
        return self.acknowledged / self.seconds if self.seconds > 0 else 0.0

    @property
    def unacknowledged(self) -> int:
        """Messages the broker never acknowledged (lost if we stop now)."""
        return self.published - self.acknowledged


def load_targets(session: Session, site_id: str | None = None) -> list[LoadTarget]:
    """Registered devices that report at least three metrics (all typed devices if none do)."""
    query = select(Device).where(Device.quarantined.is_(False)).order_by(Device.site_id, Device.id)
    if site_id is not None:
        query = query.where(Device.site_id == site_id)
    known = {t.value: t for t in DeviceType}
    typed = [
        LoadTarget(d.site_id, d.id, known[d.type])
        for d in session.scalars(query)
        if d.type in known
    ]
    rich = [t for t in typed if t.device_type and len(DEVICE_METRICS[t.device_type]) >= 3]
    return rich or typed


def _metrics(target: LoadTarget) -> tuple[str, ...]:
    if target.device_type is None:
        return _FALLBACK
    return DEVICE_METRICS[target.device_type][:READINGS_PER_MESSAGE]


def _variants(metrics: tuple[str, ...], rng: random.Random) -> list[dict[str, float | bool]]:
    out = []
    for _ in range(VARIANTS):
        readings: dict[str, float | bool] = {}
        for metric in metrics:
            if METRICS[metric].boolean:
                readings[metric] = rng.random() < 0.5
            else:
                low, high = _VALUES.get(metric, (METRICS[metric].minimum, METRICS[metric].maximum))
                readings[metric] = round(rng.uniform(low or 0, high or 0), 1)
        out.append(readings)
    return out


def _normalise(
    site_devices: Sequence[LoadTarget | tuple[str, str] | tuple[str, str, str | None]],
) -> list[LoadTarget]:
    targets = []
    for item in site_devices:
        if isinstance(item, LoadTarget):
            targets.append(item)
            continue
        site, device, *rest = item
        kind = rest[0] if rest else None
        targets.append(LoadTarget(site, device, DeviceType(kind) if kind else None))
    return targets


def run_load(
    url: str,
    root: str,
    site_devices: Sequence[LoadTarget | tuple[str, str] | tuple[str, str, str | None]],
    rate: float,
    count: int | None = None,
    duration: float | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
    stop: threading.Event | None = None,
    client_id: str | None = None,
    protocol: MqttProtocol = MqttProtocol.V311,
    inflight: int = DEFAULT_INFLIGHT,
    tls_ca_file: Path | None = None,
    tls_insecure: bool = False,
    flush_timeout: float = 60.0,
) -> LoadStats:
    """Publish telemetry round-robin across devices at `rate` msg/s (0: flat out).

    Stops after `count` messages, `duration` seconds, `stop` being set or Ctrl-C, then waits
    for the broker to acknowledge every message.
    """
    targets = _normalise(site_devices)
    if not targets:
        raise SimulatorError("no_load_devices", "No devices to publish as.", site="-")
    if rate < 0:
        raise SimulatorError("bad_rate", "--rate must be 0 (flat out) or more.", value=rate)
    publisher = MqttPublisher(
        url,
        client_id=client_id or f"iotcare-load-{uuid.uuid4().hex[:8]}",
        protocol=protocol,
        inflight=inflight,
        tls_ca_file=tls_ca_file,
        tls_insecure=tls_insecure,
    )
    publisher.connect()
    try:
        return _run(
            publisher, root, targets, rate, count, duration, seed, progress, stop, flush_timeout
        )
    finally:
        publisher.close()


def _run(
    publisher: MqttPublisher,
    root: str,
    targets: list[LoadTarget],
    rate: float,
    count: int | None,
    duration: float | None,
    seed: int,
    progress: bool,
    stop: threading.Event | None,
    flush_timeout: float,
) -> LoadStats:
    rng = random.Random(seed)  # noqa: S311 - reproducible, not security
    topics = [device_topic(root, t.site_id, t.device_id, TopicKind.TELEMETRY) for t in targets]
    variants = [_variants(_metrics(t), rng) for t in targets]
    per_message = [len(_metrics(t)) for t in targets]
    seqs = [0] * len(targets)
    n_devices = len(targets)
    stop = stop or threading.Event()
    total = count if count is not None else (int(rate * duration) if rate and duration else None)
    burst = max(1, int(rate / 100)) if rate > 0 else 500
    publish = publisher.publish
    dumps = orjson.dumps
    sent = readings = 0
    bar = tqdm(
        total=total,
        unit="msg",
        file=sys.stderr,
        delay=PROGRESS_AFTER,
        disable=not progress,
        dynamic_ncols=True,
        mininterval=0.5,
    )
    start = time.perf_counter()
    shown = 0
    next_show = start + 0.25
    with stop_on_signals(stop), bar:
        while not stop.is_set():
            now = time.perf_counter()
            elapsed = now - start
            if duration is not None and elapsed >= duration:
                break
            if count is not None and sent >= count:
                break
            n = burst
            if rate > 0:
                due = int(elapsed * rate) + 1 - sent
                if due <= 0:
                    time.sleep(min(0.005, (sent + 1) / rate - elapsed))
                    continue
                n = min(due, burst)
            if count is not None:
                n = min(n, count - sent)
            ms = int(time.time() * 1000)
            for _ in range(n):
                i = sent % n_devices
                seq = seqs[i] = seqs[i] + 1
                body = {"ts": ms, "seq": seq, "readings": variants[i][seq % VARIANTS]}
                publish(topics[i], dumps(body))
                readings += per_message[i]
                sent += 1
            if now >= next_show:
                bar.update(sent - shown)
                shown = sent
                next_show = now + 0.25
        bar.update(sent - shown)
        publisher.flush(flush_timeout)
    seconds = time.perf_counter() - start
    stats = LoadStats(
        published=sent,
        acknowledged=min(sent, publisher.acknowledged),
        readings=readings,
        devices=n_devices,
        seconds=seconds,
        target_rate=rate,
    )
    log.info(
        "load run: %d messages, %d readings in %.2f s (%.0f msg/s, target %s)",
        stats.published,
        stats.readings,
        stats.seconds,
        stats.rate,
        rate or "max",
    )
    return stats
