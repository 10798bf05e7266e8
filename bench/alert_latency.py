"""Alert latency: critical events under background telemetry load, publish to alert and webhook.

    .venv/bin/python -m bench.alert_latency --events 100 --rate 2000

Each repetition starts from nothing: a private Mosquitto (queue limits off, max_inflight_messages
= --window), a throwaway PostgreSQL database (migrated, seeded with the demo site, dropped at the
end), a webhook receiver in this process and `python -m ingest` as a subprocess configured through
IOTCARE_* variables, exactly as deployed (notifications queued with the alert, delivered right after
the commit that queued them). Its metrics port is a free one rather than 0 (off): the benchmark
waits for /healthz and reads /metrics to check that ingest wrote every reading of the load.

Recipients: the demo site's tier-1 caregivers get a webhook ContactChannel pointing at the
receiver. They have no e-mail or Telegram contact (seed_demo creates only inbox contacts), so the
default route (inbox, e-mail, Telegram, webhook) queues an inbox row and a webhook row per alert,
and nothing that would fail for want of an SMTP server or a bot token (--unconfigured-channels
adds such contacts, to see whether their failing holds the webhook back).

Fresh alerts: each event comes from a different resident, so each opens a NEW alert (an event for
a resident with an unresolved fall alert only counts a repeat and notifies nobody). The demo site
has 20 residents; for more events the benchmark adds residents (sunrise-r21-fall, ...) with a
fall detector each and the same caregiver assignments as the demo's (tier 1 round-robin over the
on-duty caregivers, tier 2 the supervisor).

Load: a separate process runs simulator.load.run_load at --rate telemetry messages/s
(three readings each) over the demo site's devices, from --warmup seconds before the first
critical event until every alert and webhook arrived (or --settle ran out).

Critical events: --events fall_detected events, one every --interval seconds (plus up to 50 ms of
seeded jitter, so they do not fall in step with the load's 10 ms bursts), published QoS1 from a
client of their own in this process. Per event:

  publish     time.time() taken just before the PUBLISH is handed to paho.
  committed   when the alert row became visible to another session: a poller in this process
              reads the alerts table every --poll seconds (autocommit, so each query sees what
              was committed before it started); the time of the first query that returned the
              alert. An upper bound, late by at most one poll interval plus the query time.
  webhook     when the receiver had read the first POST whose JSON body names the alert
              (alert.alert_id); checked against its Idempotency-Key header.

Latency = committed - publish and webhook - publish, all on this machine's wall clock. Reported:
p50, p95, p99 (nearest rank: the smallest value with that share of the events at or below it),
max;
the median of each over repetitions; events without an alert or webhook (must be 0). A breakdown
of the webhook path uses the database's own timestamps (same clock): alerts.opened_at (the
event's received_at, which ingest takes inside the write transaction, once the batch's readings
are inserted: so publish -> opened_at covers the broker, the batching wait and the readings
insert), the webhook notification's created_at (rendered and queued in the alert's transaction)
and sent_at (recorded after the POST returned).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import random
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from bench._command_line import (
    add_database_url_option,
    add_ingest_env_option,
    append_json_line,
    benchmark_parser,
    check_ingest_env,
    ingest_settings,
    reproduce_command,
)
from bench._harness import (
    IngestReplicas,
    bench_broker,
    die_with_parent,
    exit_on_sigterm,
    median,
    migrated_database,
    scrape,
    spawn,
    stop_process,
)
from core import registry, seed, users
from core.contract.catalogue import DeviceType, EventType
from core.contract.topics import TopicKind, device_topic
from devkit.http_server import LocalHttpServer
from models import CaregiverAssignment, ContactChannel, Device, Site, User
from models import Channel as ChannelKind

TOPIC_ROOT = "care"
SITE = seed.DEMO_SITE_ID
TARGET_MS = 500.0
JITTER = 0.05  # seconds of seeded jitter added to each event's slot
PERCENTILES = (50, 95, 99)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = benchmark_parser("bench.alert_latency", __doc__)
    parser.add_argument("--events", type=int, default=100, help="critical events per run (K)")
    parser.add_argument(
        "--interval", type=float, default=0.3, help="seconds between critical events"
    )
    parser.add_argument(
        "--rate", type=float, default=2000, help="background telemetry, msg/s (0: no load)"
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of load before the first event"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        help="seconds to wait after the last event for missing alerts and webhooks",
    )
    parser.add_argument(
        "--poll", type=float, default=0.005, help="seconds between polls of the alerts table"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=1000,
        help="Mosquitto max_inflight_messages = IOTCARE_INGEST_INFLIGHT_WINDOW",
    )
    parser.add_argument("--repeat", type=int, default=1, help="repetitions; medians reported")
    parser.add_argument("--seed", type=int, default=1, help="seed of the events' jitter")
    add_ingest_env_option(parser)
    add_database_url_option(parser)
    parser.add_argument("--json", type=Path, help="append one JSON line per run to this file")
    parser.add_argument(
        "--unconfigured-channels",
        action="store_true",
        help="also give the tier-1 caregivers e-mail and Telegram contacts, which ingest cannot "
        "serve here (they fail at once, not retried): does that slow the webhook?",
    )
    parser.add_argument(
        "--per-event", action="store_true", help="print every event's timings as well"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 10 events, 1 s warm-up, 1 repeat"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.warmup, args.repeat = 10, 1.0, 1
    if args.events < 1 or args.interval <= 0 or args.rate < 0 or args.poll <= 0:
        parser.error("--events and --interval must be positive, --rate 0 or more")
    check_ingest_env(parser, args.ingest_env)
    return args


def command_options(args: argparse.Namespace) -> list[str]:
    """Every option spelled out, for the command that reproduces the run."""
    options = [
        f"--events={args.events}",
        f"--interval={args.interval:g}",
        f"--rate={args.rate:g}",
        f"--warmup={args.warmup:g}",
        f"--settle={args.settle:g}",
        f"--poll={args.poll:g}",
        f"--window={args.window}",
        f"--repeat={args.repeat}",
        f"--seed={args.seed}",
    ]
    if args.unconfigured_channels:
        options.append("--unconfigured-channels")
    return options + [f"--ingest-env={item}" for item in args.ingest_env]


# --- the database


def fall_detector(index: int) -> str:
    """Device id of resident `index`'s fall detector (sunrise-r07-fall)."""
    return seed.device_id(SITE, index, DeviceType.FALL_DETECTOR)


@dataclass(frozen=True)
class Prepared:
    """What the seeded database holds for the run."""

    residents: int  # residents with a fall detector; event i comes from resident i
    webhook_users: list[str]
    load_targets: list[tuple[str, str, str | None]]


def prepare(url: str, residents: int, hook_url: str, unconfigured: bool = False) -> Prepared:
    """Seed the demo site, add residents up to `residents`, give tier-1 caregivers a webhook
    (and with `unconfigured` an e-mail and a Telegram contact as well)."""
    from simulator.load import load_targets

    engine = create_engine(url)
    try:
        with Session(engine) as session, session.begin():
            seed.seed_demo(session)
            site = session.get(Site, SITE)
            assert site is not None
            staff = {u.username: u for u in session.scalars(select(User))}
            on_duty = [staff[f"caregiver{n}"] for n in range(1, seed.DEMO_CAREGIVERS)]
            supervisor = staff[f"caregiver{seed.DEMO_CAREGIVERS}"]
            # Extra residents: a fall detector each, assigned as seed_demo assigns its own.
            for index in range(seed.DEMO_RESIDENTS + 1, residents + 1):
                resident = registry.create_resident(
                    session, site, f"Bench resident {index}", room=str(100 + index)
                )
                users.assign(session, on_duty[(index - 1) % len(on_duty)], resident, tier=1)
                users.assign(session, supervisor, resident, tier=2)
                session.add(
                    Device(
                        id=fall_detector(index),
                        site_id=SITE,
                        resident_id=resident.id,
                        type=DeviceType.FALL_DETECTOR.value,
                        room=resident.room,
                        name=f"{resident.room} fall_detector",
                    )
                )
            session.flush()
            tier1 = session.scalars(
                select(User)
                .join(CaregiverAssignment, CaregiverAssignment.user_id == User.id)
                .where(CaregiverAssignment.tier == 1)
                .distinct()
                .order_by(User.username)
            ).all()
            for user in tier1:
                session.add(
                    ContactChannel(
                        user_id=user.id,
                        channel=ChannelKind.WEBHOOK,
                        address=f"{hook_url}/hook/{user.username}",
                        enabled=True,
                    )
                )
            if unconfigured:
                # E-mail and Telegram contacts, which ingest (no SMTP server, no bot token) fails
                # at once without retrying: to see whether they hold the webhook back.
                for user in tier1:
                    session.add_all(
                        [
                            ContactChannel(
                                user_id=user.id,
                                channel=ChannelKind.EMAIL,
                                address=f"{user.username}@example.invalid",
                            ),
                            ContactChannel(
                                user_id=user.id, channel=ChannelKind.TELEGRAM, address="10001"
                            ),
                        ]
                    )
            else:
                # Only what this benchmark can serve: the inbox and the webhook.
                other = session.scalars(
                    select(ContactChannel.channel).where(
                        ContactChannel.channel.not_in([ChannelKind.INBOX, ChannelKind.WEBHOOK])
                    )
                ).all()
                if other:
                    raise RuntimeError(f"unexpected contact channels {sorted(set(other))}")
            webhook_users = [u.username for u in tier1]
        with Session(engine) as session:
            targets = [
                (t.site_id, t.device_id, t.device_type.value if t.device_type else None)
                for t in load_targets(session, SITE)
            ]
    finally:
        engine.dispose()
    return Prepared(residents, webhook_users, targets)


# --- the webhook receiver


@dataclass(frozen=True)
class Hit:
    """One POST as the receiver saw it."""

    at: float  # time.time() once the body was read
    path: str
    key: str  # Idempotency-Key header
    alert_id: str | None
    body_key: str | None
    purpose: str | None


class HookReceiver(LocalHttpServer):
    """Answers 200 at once and records arrival time, idempotency key and alert id."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: list[Hit] = []

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        at = time.time()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        alert = body.get("alert") if isinstance(body, dict) else None
        hit = Hit(
            at=at,
            path=path,
            key=headers.get("Idempotency-Key", ""),
            alert_id=str(alert.get("alert_id")) if isinstance(alert, dict) else None,
            body_key=body.get("idempotency_key") if isinstance(body, dict) else None,
            purpose=body.get("purpose") if isinstance(body, dict) else None,
        )
        with self.lock:
            self.hits.append(hit)
        return 200, {"ok": True}

    def first_by_alert(self) -> dict[str, Hit]:
        """The first POST per alert id."""
        with self.lock:
            hits = sorted(self.hits, key=lambda h: h.at)
        first: dict[str, Hit] = {}
        for hit in hits:
            if hit.alert_id and hit.alert_id not in first:
                first[hit.alert_id] = hit
        return first


# --- the alerts poller


class CommitPoller:
    """Polls the alerts table; records when each benchmark event's alert first became visible."""

    QUERY = text(
        "SELECT id, details -> 'data' ->> 'bench_event' AS event, opened_at "
        "FROM alerts WHERE details -> 'data' ->> 'bench_event' IS NOT NULL"
    )

    def __init__(self, url: str, interval: float) -> None:
        self.engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
        self.interval = interval
        self.seen: dict[int, tuple[float, str, datetime]] = {}  # event -> (at, alert id, opened)
        self.polls = 0
        self.max_query = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commit-poller", daemon=True)
        self.error: str | None = None

    def start(self) -> CommitPoller:
        """Start polling."""
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with self.engine.connect() as conn:
                while not self._stop.is_set():
                    asked = time.time()
                    rows = conn.execute(self.QUERY).all()
                    self.max_query = max(self.max_query, time.time() - asked)
                    self.polls += 1
                    for alert_id, event, opened_at in rows:
                        index = int(event)
                        if index not in self.seen:
                            self.seen[index] = (asked, str(alert_id), opened_at)
                    self._stop.wait(self.interval)
        except Exception as error:  # reported with the results
            self.error = repr(error)

    def stop(self) -> None:
        """Stop polling and close the connection."""
        self._stop.set()
        self._thread.join(5)
        self.engine.dispose()


# --- the background load (a separate process)


def load_main(
    url: str,
    targets: list[tuple[str, str, str | None]],
    rate: float,
    duration: float,
    stop: Any,
    results: Any,
) -> None:
    """Run simulator.load.run_load until `stop` is set (or `duration` ran out)."""
    die_with_parent()
    from simulator.load import run_load

    try:
        stats = run_load(
            url,
            TOPIC_ROOT,
            targets,
            rate,
            duration=duration,
            progress=False,
            stop=stop,
            client_id=f"bench-load-{uuid.uuid4().hex[:6]}",
        )
        results.put(
            {
                "published": stats.published,
                "acknowledged": stats.acknowledged,
                "readings": stats.readings,
                "seconds": stats.seconds,
                "rate": stats.rate,
            }
        )
    except Exception as error:
        results.put({"error": repr(error)})


class Load:
    """The load process: started before the events, stopped once they are all measured."""

    def __init__(
        self, url: str, targets: list[tuple[str, str, str | None]], rate: float, cap: float
    ) -> None:
        ctx = spawn()
        self.stop_event = ctx.Event()
        self.results = ctx.Queue()
        self.process = ctx.Process(
            target=load_main,
            args=(url, targets, rate, cap, self.stop_event, self.results),
            daemon=True,
            name="bench-load",
        )

    def start(self) -> float:
        """Start the process; returns the wall-clock time."""
        self.process.start()
        return time.time()

    def finish(self, timeout: float = 60.0) -> dict[str, Any]:
        """Stop publishing; the stats once the broker acknowledged everything."""
        self.stop_event.set()
        try:
            return self.results.get(timeout=timeout)
        except queue.Empty:
            return {"error": "the load process did not report"}

    def close(self) -> None:
        """Reap the process."""
        self.stop_event.set()
        stop_process(self.process)
        self.results.close()


# --- measuring


@dataclass
class EventTiming:
    """One critical event and what came of it (wall-clock seconds)."""

    index: int
    device_id: str
    published: float
    alert_id: str | None = None
    committed: float | None = None
    opened_at: float | None = None  # alerts.opened_at = events.received_at (in the transaction)
    queued: float | None = None  # the webhook notification's created_at (in the transaction)
    hook: float | None = None  # receiver: first POST for the alert
    sent_at: float | None = None  # the webhook notification's sent_at
    hook_status: str | None = None
    hook_attempts: int | None = None
    key_ok: bool | None = None

    def ms(self, end: float | None, start: float | None = None) -> float | None:
        """Milliseconds from `start` (default: publish) to `end`."""
        begin = self.published if start is None else start
        return None if end is None or begin is None else (end - begin) * 1000


def nearest_rank(values: Sequence[float], pct: float) -> float:
    """The smallest value with at least pct % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def distribution(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """p50, p95, p99, max and count of the known values."""
    known = [v for v in values if v is not None]
    out: dict[str, float | int | None] = {"count": len(known)}
    for pct in PERCENTILES:
        out[f"p{pct}"] = nearest_rank(known, pct) if known else None
    out["max"] = max(known) if known else None
    return out


def _fmt(dist: dict[str, Any]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:7.1f}"

    return (
        f"p50 {ms(dist.get('p50'))}  p95 {ms(dist.get('p95'))}  p99 {ms(dist.get('p99'))}  "
        f"max {ms(dist.get('max'))} ms  (n={dist.get('count')})"
    )


def _notification_times(url: str) -> dict[str, dict[str, Any]]:
    """Per alert: the webhook notification's created_at, sent_at, status, attempts; counts."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT alert_id, channel, status, attempts, created_at, sent_at "
                    "FROM notifications ORDER BY id"
                )
            ).all()
    finally:
        engine.dispose()
    out: dict[str, dict[str, Any]] = {}
    for alert_id, channel, status, attempts, created, sent in rows:
        entry = out.setdefault(str(alert_id), {"channels": {}})
        entry["channels"][f"{channel}:{status}"] = entry["channels"].get(f"{channel}:{status}", 0)
        entry["channels"][f"{channel}:{status}"] += 1
        if channel == ChannelKind.WEBHOOK.value and "queued" not in entry:
            entry.update(
                queued=created.timestamp(),
                sent_at=sent.timestamp() if sent else None,
                status=status,
                attempts=attempts,
            )
    return out


def run_once(args: argparse.Namespace, repetition: int) -> dict[str, Any]:
    """One repetition from nothing: broker, database, receiver, ingest, load, events."""
    from simulator.publisher import MqttPublisher

    record: dict[str, Any] = {"repetition": repetition}
    receiver = HookReceiver().start()
    broker = bench_broker(args.window)
    replicas: IngestReplicas | None = None
    load: Load | None = None
    poller: CommitPoller | None = None
    critical: MqttPublisher | None = None
    try:
        with migrated_database(args.database_url, "iotcare_bench_alert") as db_url:
            prepared = prepare(
                db_url,
                max(args.events, seed.DEMO_RESIDENTS),
                receiver.url,
                unconfigured=args.unconfigured_channels,
            )
            extra = {
                "IOTCARE_ENVIRONMENT": "test",
                "IOTCARE_SECRET_KEY": secrets.token_urlsafe(32),
                "IOTCARE_APP_BASE_URL": "http://127.0.0.1:8501",
                **ingest_settings(args.ingest_env),
            }
            replicas = IngestReplicas(1, db_url, broker.url, False, args.window, extra_env=extra)
            replicas.start()
            replicas.wait_healthy()
            poller = CommitPoller(db_url, args.poll).start()
            critical = MqttPublisher(
                broker.url, client_id=f"bench-critical-{uuid.uuid4().hex[:6]}", inflight=100
            )
            critical.connect()

            # Load from `warmup` before the first event to the end of the settle time at most.
            cap = args.warmup + args.events * (args.interval + JITTER) + args.settle + 30
            load_started = None
            if args.rate > 0:
                load = Load(broker.url, prepared.load_targets, args.rate, cap)
                load_started = load.start()
            time.sleep(args.warmup)

            rng = random.Random(args.seed)  # reproducible jitter
            timings: list[EventTiming] = []
            start = time.monotonic()
            for n in range(args.events):
                index = n + 1
                slot = start + n * args.interval + rng.uniform(0, JITTER)
                while (wait := slot - time.monotonic()) > 0:
                    time.sleep(min(wait, 0.05))
                topic = device_topic(TOPIC_ROOT, SITE, fall_detector(index), TopicKind.EVENT)
                published = time.time()
                payload = orjson.dumps(
                    {
                        "ts": int(published * 1000),
                        "type": EventType.FALL_DETECTED.value,
                        "data": {"bench_event": index},
                    }
                )
                critical.publish(topic, payload)
                timings.append(EventTiming(index, fall_detector(index), published))
                replicas.check_alive()
            last_published = time.time()

            # Until every event has an alert and a webhook, or the settle time ran out.
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline:
                hooks = receiver.first_by_alert()
                seen = dict(poller.seen)
                if len(seen) >= args.events and all(
                    seen[t.index][1] in hooks for t in timings if t.index in seen
                ):
                    break
                replicas.check_alive()
                time.sleep(0.05)
            measured_at = time.time()
            poller.stop()
            load_stats = load.finish() if load is not None else {}
            # Did ingest keep pace with the load? It should have written every reading.
            expected = load_stats.get("readings", 0)
            caught_up = False
            written = 0
            catch_up_deadline = time.monotonic() + 30
            while time.monotonic() < catch_up_deadline:
                totals = scrape(replicas.ports[0])
                written = totals[1] if totals else 0
                if written >= expected:
                    caught_up = True
                    break
                time.sleep(0.1)
            caught_up_at = time.time()
            replicas.stop()
            ingest_log = replicas.log_tail(40)

            hooks = receiver.first_by_alert()
            notes = _notification_times(db_url)
            for timing in timings:
                found = poller.seen.get(timing.index)
                if found is None:
                    continue
                timing.committed, timing.alert_id, opened = found
                timing.opened_at = opened.timestamp()
                hit = hooks.get(timing.alert_id)
                if hit is not None:
                    timing.hook = hit.at
                    timing.key_ok = hit.key == hit.body_key and hit.key.startswith(timing.alert_id)
                note = notes.get(timing.alert_id, {})
                timing.queued = note.get("queued")
                timing.sent_at = note.get("sent_at")
                timing.hook_status = note.get("status")
                timing.hook_attempts = note.get("attempts")
            with receiver.lock:
                all_hits = list(receiver.hits)
            keys = [h.key for h in all_hits]
            channel_counts: dict[str, int] = {}
            for note in notes.values():
                for name, count in note["channels"].items():
                    channel_counts[name] = channel_counts.get(name, 0) + count

        record.update(
            events=args.events,
            alerts=sum(1 for t in timings if t.committed is not None),
            webhooks=sum(1 for t in timings if t.hook is not None),
            missing_alert=[t.index for t in timings if t.committed is None],
            missing_webhook=[t.index for t in timings if t.hook is None],
            bad_keys=[t.index for t in timings if t.key_ok is False],
            webhook_posts=len(all_hits),
            duplicate_posts=len(keys) - len(set(keys)),
            notifications=channel_counts,
            webhook_users=prepared.webhook_users,
            commit=distribution([t.ms(t.committed) for t in timings]),
            webhook=distribution([t.ms(t.hook) for t in timings]),
            stages={
                "publish->event stored (opened_at)": distribution(
                    [t.ms(t.opened_at) for t in timings]
                ),
                "event stored->webhook row queued": distribution(
                    [t.ms(t.queued, t.opened_at) for t in timings if t.opened_at]
                ),
                "webhook row queued->commit visible": distribution(
                    [t.ms(t.committed, t.queued) for t in timings if t.queued]
                ),
                "commit visible->webhook received": distribution(
                    [t.ms(t.hook, t.committed) for t in timings if t.committed]
                ),
                "webhook received->sent_at recorded": distribution(
                    [t.ms(t.sent_at, t.hook) for t in timings if t.hook]
                ),
            },
            load=load_stats,
            load_seconds=(measured_at - load_started) if load_started else 0.0,
            events_seconds=last_published - timings[0].published,
            ingest_written_readings=written,
            ingest_caught_up=caught_up,
            ingest_catch_up_seconds=caught_up_at - measured_at,
            polls=poller.polls,
            poll_max_query_ms=poller.max_query * 1000,
            poll_error=poller.error,
            per_event=[
                {
                    "index": t.index,
                    "alert_id": t.alert_id,
                    "commit_ms": t.ms(t.committed),
                    "webhook_ms": t.ms(t.hook),
                    "opened_ms": t.ms(t.opened_at),
                    "queued_ms": t.ms(t.queued),
                    "sent_ms": t.ms(t.sent_at),
                    "status": t.hook_status,
                    "attempts": t.hook_attempts,
                }
                for t in timings
            ],
        )
        if record["missing_alert"] or record["missing_webhook"]:
            record["ingest_log"] = ingest_log
    finally:
        if poller is not None:
            poller.stop()
        if critical is not None:
            critical.close()
        if load is not None:
            load.close()
        if replicas is not None:
            replicas.cleanup()
        broker.close()
        receiver.stop()
    return record


# --- reporting


def describe(record: dict[str, Any], per_event: bool) -> str:
    """One run, a few lines."""
    load = record.get("load") or {}
    lines = [
        f"publish -> alert committed : {_fmt(record['commit'])}",
        f"publish -> webhook received: {_fmt(record['webhook'])}",
        f"  alerts {record['alerts']}/{record['events']}, webhooks {record['webhooks']}/"
        f"{record['events']}, missing alert {record['missing_alert']}, missing webhook "
        f"{record['missing_webhook']}, bad idempotency keys {record['bad_keys']}, "
        f"webhook POSTs {record['webhook_posts']} (repeated keys {record['duplicate_posts']})",
        f"  notifications: {record['notifications']}",
    ]
    if load:
        if "error" in load:
            lines.append(f"  background load FAILED: {load['error']}")
        else:
            lines.append(
                f"  background load: {load['acknowledged']:,} msg ({load['readings']:,} readings) "
                f"in {load['seconds']:.1f} s = {load['rate']:,.0f} msg/s acknowledged; ingest "
                f"wrote {record['ingest_written_readings']:,} readings, "
                + (
                    f"caught up {record['ingest_catch_up_seconds']:.1f} s after the last event "
                    "was measured"
                    if record["ingest_caught_up"]
                    else "did NOT catch up within 30 s"
                )
            )
    else:
        lines.append("  no background load")
    lines.append(
        f"  {record['polls']} polls of the alerts table (slowest {record['poll_max_query_ms']:.1f}"
        f" ms){'; poll error ' + record['poll_error'] if record['poll_error'] else ''}"
    )
    lines.append("  webhook path by stage (database timestamps, same clock):")
    for name, dist in record["stages"].items():
        lines.append(f"    {name:40} {_fmt(dist)}")
    if per_event:
        lines.append("  per event (ms): index commit webhook | opened_at queued sent status")
        for e in record["per_event"]:
            values = [e[k] for k in ("commit_ms", "webhook_ms", "opened_ms", "queued_ms")]
            values.append(e["sent_ms"])
            shown = " ".join("-" if v is None else f"{v:7.1f}" for v in values)
            lines.append(f"    {e['index']:4} {shown} {e['status']} x{e['attempts']}")
    if record.get("ingest_log"):
        lines.append(record["ingest_log"])
    return "\n".join(lines)


def summary(runs: list[dict[str, Any]]) -> tuple[str, bool]:
    """Medians over repetitions; whether every event produced an alert and a webhook."""
    complete = all(not r["missing_alert"] and not r["missing_webhook"] for r in runs)
    lines = [f"median of {len(runs)} run(s):"]
    for what, label in (
        ("commit", "publish -> alert committed "),
        ("webhook", "publish -> webhook"),
    ):
        dist = {
            key: median([r[what].get(key) for r in runs]) for key in ("p50", "p95", "p99", "max")
        }
        dist["count"] = sum(int(r[what]["count"]) for r in runs)
        lines.append(f"  {label:28} {_fmt(dist)}")
    webhook_p99 = median([r["webhook"].get("p99") for r in runs])
    missing = sum(len(r["missing_alert"]) + len(r["missing_webhook"]) for r in runs)
    lines.append(
        f"events without an alert or webhook: {missing}  "
        f"(every event alerted and notified: {'yes' if complete else 'NO'})"
    )
    if webhook_p99 is not None:
        verdict = "met" if webhook_p99 < TARGET_MS else "MISSED"
        lines.append(f"target p99 < {TARGET_MS:.0f} ms to the webhook: {verdict}")
    return "\n".join(lines), complete


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 0 only when every event produced an alert and a webhook."""
    args = parse_args(argv)
    exit_on_sigterm()
    print(
        f"alert latency: {args.events} fall_detected events every {args.interval:g} s "
        f"(+0-{JITTER * 1000:.0f} ms jitter) under {args.rate:,.0f} msg/s of telemetry, "
        f"window {args.window}, {args.repeat} run(s), {os.cpu_count()} cores",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    for repetition in range(1, args.repeat + 1):
        record = run_once(args, repetition)
        record.update(
            interval=args.interval,
            rate_target=args.rate,
            window=args.window,
            ingest_env=args.ingest_env,
            at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        runs.append(record)
        print(f"[{repetition}/{args.repeat}]\n{describe(record, args.per_event)}", flush=True)
        append_json_line(args.json, record, default=str)
    text_, complete = summary(runs)
    print(text_)
    print(f"reproduce: {reproduce_command('bench.alert_latency', command_options(args))}")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
