"""Safety scenarios: labelled incidents over simulated days and what the default rules make of them.

    .venv/bin/python -m bench.safety_scenarios --residents 8 --days 3

Two sites a care home would set up on day one: the demo site (core.seed.seed_demo, Asia/Seoul) and
a second one in America/New_York with the same devices per resident, staff and the same default
rules (core.seed.default_rules: DEFAULT_RULES and the per-type offline rules), untouched: the
benchmark measures what a care home gets out of the box. Every member of staff gets a webhook
contact pointing at a real HTTP receiver in this process.

Simulated part: the device simulator (simulator) lives through --days local days at both
sites (plus the hours between the two sites' midnights, and 3 h of warm-up before that in which
devices only report), normal life included (night bathroom trips in the en-suite, meals, naps,
devices reporting at their own intervals), with incidents and distractors placed at local
times. At each tick:

- the messages up to the tick go through ingest's parser (ingest.parse.apply_message) and SQL
  sink, as received at their simulated time; a message carrying an event is written at once, so
  critical events open their alert through ingest's instant rules (CriticalEventAlerts) at the
  event's time and are delivered right after that commit (deliver_now, as ingest does);
- staff act (the first gas leak's alert is acknowledged two minutes in);
- the live windowed rules engine ticks (core.rules.engine.evaluate_rules, now = the tick);
- the notification sweeper delivers what is due (core.notify.delivery.deliver_due).

Ticks come every simulated minute, as deployed, around each label (its first --watch minutes and
the --watch minutes before its deadline) and while each distractor lasts; elsewhere every
--quiet-tick minutes (1: every minute throughout), which only makes an unlabelled alert's time
coarser, so that days simulate in minutes on two cores.
A webhook POST is stamped with the simulated time of the step that sent it.

Live part (critical events in real time; skipped with --no-live): a private Mosquitto, a
throwaway PostgreSQL database seeded the same way and `python -m ingest` as a subprocess (the
pieces of bench.alert_latency); each critical label is published over MQTT and timed to the
first webhook POST about it, including the repeats (a panic press 21 s after a fall of the same
resident, a second gas leak once the first alert was acknowledged).

Labels: kind, subject (resident, or device for the kitchen and device incidents), start, end and
the deadline by which an alert must exist. An alert occurrence (alert_history "opened",
"repeated" or "reopened") detects a label when it is of the label's kind (for events: of a rule
covering the event type; for thresholds: of a rule on the metric and direction), about the same
subject, at a time in [start, deadline]. Occurrences in [start, end + grace] of a label are
explained by it; an alert opened that no label explains is a false alarm.

Reported per kind: recall (detected in time), recall with a webhook notification to a person
(sent after the detecting occurrence, by the deadline plus one sweep), false alarms per
resident-day, and event -> alert / event -> notification times (p50, p99, max). Targets: every
critical event notified within 1 s (live), every windowed incident detected by its deadline,
under 0.1 false alarms per resident-day. Exit status 1 when a target is missed (--no-fail: 0).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import secrets
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from bench._command_line import (
    add_database_url_option,
    append_json_line,
    benchmark_parser,
    reproduce_command,
)
from bench._harness import IngestReplicas, bench_broker, exit_on_sigterm, migrated_database
from bench.alert_latency import HookReceiver
from core import registry, schema, seed, users
from core.alerts import lifecycle
from core.contract.catalogue import DeviceType, EventType
from core.contract.payloads import event_payload
from core.contract.topics import TopicKind, device_topic
from core.db import make_engine, make_session_factory, session_scope
from core.notify.channels import make_channels
from core.notify.delivery import deliver_due, deliver_now
from core.rules.engine import evaluate_rules
from core.rules.instant import AfterCommit, CriticalEventAlerts, StoredEvent
from core.settings import Settings
from core.timeutil import ensure_utc
from devkit.databases import postgres_database
from ingest.batch import Batch
from ingest.parse import Limits, apply_message
from ingest.registry_cache import RegistryCache
from ingest.sinks.sql import SqlSink
from models import (
    Alert,
    AlertHistory,
    AlertRule,
    AlertStatus,
    ContactChannel,
    Device,
    Resident,
    Role,
    RuleKind,
    User,
)
from models import Channel as ChannelKind
from simulator.history import _backdate_registry, _HistoricalInstantRules
from simulator.scenarios import ScenarioSpec, resolve_scenario
from simulator.simulation import Simulation
from simulator.site_registry import SiteSpec, load_site

log = logging.getLogger("bench.safety_scenarios")

MODULE = "bench.safety_scenarios"
TOPIC_ROOT = "care"
SECOND_SITE = ("harbor", "Harbor House", "America/New_York")
STEP = timedelta(minutes=1)  # the engine's tick and the sweeper's period, as deployed
# A windowed rule is judged once a minute on data reported every minute: one tick and one report
# late at most is still on time.
SLACK = timedelta(minutes=2)
# Later occurrences of an incident (a repeat while it lasts, the door closing behind a wanderer)
# are explained by its label until its end plus this.
GRACE = timedelta(minutes=10)
CRITICAL_LIMIT = timedelta(seconds=1)
# Devices report for a while before the measured period, so its first ticks see a history (a
# resident's motion since the morning) rather than a care home switched on that minute.
WARMUP = timedelta(hours=3)
# Minutes ticked one by one after a label's start and before its deadline (--watch).
WATCH = 15
FALSE_ALARM_TARGET = 0.1  # per resident-day
# What a care home expects of each windowed kind: an alert within this of the incident's start.
LIMITS: dict[str, timedelta] = {
    "high_heart_rate": timedelta(minutes=5),
    "low_heart_rate": timedelta(minutes=2),
    "low_spo2": timedelta(minutes=5),
    "inactivity": timedelta(hours=3),
    "night_exit": timedelta(0),
    "device_offline": timedelta(minutes=30),
    "battery_low": timedelta(hours=1),
}
CRITICAL_KINDS = ("fall", "panic", "flame", "smoke", "gas_leak")
WINDOWED_KINDS = tuple(LIMITS)
# kind -> (rule kind, event type or (metric, op))
MATCH: dict[str, tuple[RuleKind, Any]] = {
    "fall": (RuleKind.EVENT, EventType.FALL_DETECTED.value),
    "panic": (RuleKind.EVENT, EventType.BUTTON_PRESSED.value),
    "flame": (RuleKind.EVENT, EventType.FLAME_DETECTED.value),
    "smoke": (RuleKind.EVENT, EventType.SMOKE_DETECTED.value),
    "gas_leak": (RuleKind.EVENT, EventType.GAS_LEAK.value),
    "high_heart_rate": (RuleKind.THRESHOLD, ("heart_rate", ">")),
    "low_heart_rate": (RuleKind.THRESHOLD, ("heart_rate", "<")),
    "low_spo2": (RuleKind.THRESHOLD, ("spo2", "<")),
    "inactivity": (RuleKind.INACTIVITY, None),
    "night_exit": (RuleKind.NIGHT_EXIT, None),
    "device_offline": (RuleKind.DEVICE_OFFLINE, None),
    "battery_low": (RuleKind.BATTERY_LOW, None),
}
NOT_ALERTS = frozenset({"escalation", "resolved", "report"})  # webhook purposes not about news


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = benchmark_parser(MODULE, __doc__)
    parser.add_argument(
        "--residents", type=int, default=8, help="residents, split over the two sites (6-40)"
    )
    parser.add_argument("--days", type=int, default=3, help="simulated days (1-7)")
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--interval", type=float, default=60, help="simulated seconds between wearable reports"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulation")
    parser.add_argument(
        "--quiet-tick",
        type=int,
        default=5,
        help="minutes between engine ticks away from any label or distractor (every minute "
        "around them; 1: every minute throughout, as deployed)",
    )
    parser.add_argument(
        "--watch",
        type=int,
        default=WATCH,
        help="minutes ticked one by one after each label's start and before its deadline",
    )
    parser.add_argument(
        "--no-live", action="store_true", help="skip the live part (MQTT, ingest process)"
    )
    parser.add_argument(
        "--no-fail", action="store_true", help="exit 0 even when a target is missed"
    )
    parser.add_argument(
        "--per-label", action="store_true", help="print every label with what matched it"
    )
    add_database_url_option(parser)
    parser.add_argument("--json", type=Path, help="append one JSON line with the figures")
    args = parser.parse_args(argv)
    if not 6 <= args.residents <= 40:
        parser.error("--residents must be between 6 and 40")
    if not 1 <= args.days <= 7:
        parser.error("--days must be between 1 and 7")
    if args.interval <= 0 or args.quiet_tick < 1 or args.watch < 1:
        parser.error("--interval, --quiet-tick and --watch must be positive")
    return args


def command_options(args: argparse.Namespace) -> list[str]:
    """Every option spelled out, for the command that reproduces the run."""
    options = [
        f"--backend={args.backend}",
        f"--residents={args.residents}",
        f"--days={args.days}",
        f"--interval={args.interval:g}",
        f"--seed={args.seed}",
        f"--quiet-tick={args.quiet_tick}",
        f"--watch={args.watch}",
    ]
    if args.no_live:
        options.append("--no-live")
    if args.backend == "postgresql" or not args.no_live:
        options.append(f"--database-url={args.database_url}")
    return options


# --- labels


@dataclass(frozen=True)
class Label:
    """One incident (or, with expect_alert False, a distractor) and when it must be alerted."""

    kind: str
    subject: tuple[str, str]  # ("resident", "<id>") or ("device", "<id>")
    site_id: str
    start: datetime
    end: datetime
    deadline: datetime
    note: str = ""
    live: bool = False  # timed on the live path (wall clock) rather than simulated

    @property
    def critical(self) -> bool:
        """Whether it is a critical event (notified at once)."""
        return self.kind in CRITICAL_KINDS


@dataclass(frozen=True)
class Occurrence:
    """An alert opened, repeated or reopened."""

    alert_id: str
    at: datetime
    action: str
    kind: RuleKind
    rule_id: int | None
    site_id: str | None
    resident_id: int | None
    device_id: str | None
    title: str


@dataclass(frozen=True)
class Notified:
    """A webhook POST about an alert, when it arrived (simulated or wall clock)."""

    alert_id: str
    at: datetime
    purpose: str | None


class ClockedReceiver(HookReceiver):
    """The alert-latency webhook receiver, each POST also stamped with `clock()` (the simulated
    time of the step that sent it; the wall clock by default)."""

    def __init__(self) -> None:
        super().__init__()
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.stamped: list[Notified] = []

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        """Record the POST as the alert-latency receiver does, with its time."""
        answer = super().handle(method, path, headers, raw)
        with self.lock:
            hit = self.hits[-1]
            if hit.alert_id:
                self.stamped.append(Notified(hit.alert_id, self.clock(), hit.purpose))
        return answer


# --- the sites


def _staff_webhooks(session: Session, hook_url: str) -> None:
    for user in session.scalars(select(User).where(User.active.is_(True))):
        session.add(
            ContactChannel(
                user_id=user.id,
                channel=ChannelKind.WEBHOOK,
                address=f"{hook_url}/hook/{user.username}",
                enabled=True,
            )
        )


def _second_site(session: Session, residents: int) -> None:
    """The second site as seed_demo makes the first: staff, residents, devices, default rules."""
    site_id, name, timezone = SECOND_SITE
    site = registry.create_site(session, site_id, name, timezone)
    staff = [
        users.create_user(
            session,
            username=f"{site_id}-caregiver{n}",
            password=secrets.token_urlsafe(18),
            role=Role.CAREGIVER,
            site_id=site_id,
        )
        for n in (1, 2, 3)
    ]
    users.create_user(
        session,
        username=f"{site_id}-operator",
        password=secrets.token_urlsafe(18),
        role=Role.OPERATOR,
        site_id=site_id,
    )
    for index in range(1, residents + 1):
        resident = registry.create_resident(
            session,
            site,
            f"Harbor resident {index}",
            room=str(200 + index),
            active_hours=(clock_time(7, 0), clock_time(21, 30)),
        )
        users.assign(session, staff[(index - 1) % 2], resident, tier=1)
        users.assign(session, staff[2], resident, tier=2)
        for kind in seed.RESIDENT_DEVICES:
            session.add(
                Device(
                    id=seed.device_id(site_id, index, kind),
                    site_id=site_id,
                    resident_id=resident.id,
                    type=kind.value,
                    room=resident.room,
                    name=f"{resident.room} {kind.value}",
                )
            )
    for kind, room in seed.SITE_DEVICES:
        session.add(
            Device(
                id=seed.device_id(site_id, None, kind),
                site_id=site_id,
                type=kind.value,
                room=room,
                name=f"{room} {kind.value}",
            )
        )
    session.add_all(seed.default_rules(site_id))


def prepare(engine: Engine, residents: int, hook_url: str, installed: datetime | None) -> None:
    """Seed the demo site (its residents beyond the first half have left), add the second site,
    give staff webhooks; with `installed`, everything was there from that time on."""
    first = residents // 2
    with session_scope(make_session_factory(engine)) as session:
        seed.seed_demo(session)
        for resident in session.scalars(
            select(Resident).where(Resident.site_id == seed.DEMO_SITE_ID).order_by(Resident.id)
        ).all()[first:]:
            resident.active = False  # moved out: their devices are not watched over
        _second_site(session, residents - first)
        session.flush()
        _staff_webhooks(session, hook_url)
        if installed is not None:
            for site_id in (seed.DEMO_SITE_ID, SECOND_SITE[0]):
                _backdate_registry(session, site_id, installed)


def site_spec(engine: Engine, site_id: str) -> SiteSpec:
    """The site as the simulator sees it, without the devices of residents who left."""
    with session_scope(make_session_factory(engine)) as session:
        spec = load_site(session, site_id)
        site_level = set(
            session.scalars(
                select(Device.id).where(Device.site_id == site_id, Device.resident_id.is_(None))
            )
        )
    spec.devices = [d for d in spec.devices if d.resident_id is not None or d.id in site_level]
    return spec


# --- the incidents


@dataclass
class Plan:
    """What the simulation is told to do, and the labels that say what should come of it."""

    labels: list[Label] = field(default_factory=list)
    scenarios: dict[str, list[ScenarioSpec]] = field(default_factory=lambda: defaultdict(list))
    timers: dict[str, list[tuple[datetime, Callable[[Simulation, float], None]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    actions: list[tuple[datetime, str, Callable[[Session, datetime], None]]] = field(
        default_factory=list
    )
    distractors: list[str] = field(default_factory=list)
    # Spans ticked every minute (labels up to their deadline, distractors); elsewhere the engine
    # ticks every --quiet-tick minutes.
    watch: list[tuple[datetime, datetime]] = field(default_factory=list)

    def tick_times(
        self, start: datetime, end: datetime, quiet: timedelta, watch: timedelta
    ) -> list[datetime]:
        """Every minute inside a watched span, every `quiet` elsewhere, in (start, end]."""
        # Around a label's start (an early alert) and up to its deadline (a late one): alerts
        # in between are on time whenever they come.
        spans = list(self.watch)
        for item in self.labels:
            spans.append((item.start - SLACK, min(item.deadline, item.start + watch) + SLACK))
            spans.append((item.deadline - watch, item.deadline + SLACK))
        times = set()
        t = start + STEP
        while t <= end:
            offset = t - start
            if offset % quiet == timedelta(0) or any(a <= t <= b for a, b in spans):
                times.add(t)
            t += STEP
        times.add(end)
        return sorted(times)


def period(days: int, now: datetime) -> tuple[datetime, datetime]:
    """(start, end, first local midnight): local day 0 begins at the first midnight of the
    eastern site and local day `days` ends at the last one of the western site, all in the past."""
    day = (now - timedelta(days=days + 2)).date()
    midnights = [
        datetime.combine(day, clock_time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)
        for tz in ("Asia/Seoul", SECOND_SITE[2])
    ]
    start = min(midnights)
    end = max(midnights) + timedelta(days=days)
    return start, end


def _local(site_tz: str, start: datetime, day: int, hour: float) -> datetime:
    """Local `hour` on local day `day` of the site (day 0: the local date of the period's start,
    moved on a day when that midnight is before the start)."""
    zone = ZoneInfo(site_tz)
    first = start.astimezone(zone).date()
    midnight = datetime.combine(first, clock_time(0), tzinfo=zone)
    if midnight < start:
        midnight += timedelta(days=1)
    return (midnight + timedelta(days=day)).astimezone(UTC) + timedelta(hours=hour)


def _heart(value: float | None, resident_id: int) -> Callable[[Simulation, float], None]:
    def action(sim: Simulation, _ts: float) -> None:
        sim.life(resident_id).heart_override = value

    return action


def _spo2(value: float | None, resident_id: int) -> Callable[[Simulation, float], None]:
    def action(sim: Simulation, _ts: float) -> None:
        sim.life(resident_id).spo2_override = value

    return action


def _battery(device_id: str, pct: float) -> Callable[[Simulation, float], None]:
    def action(sim: Simulation, _ts: float) -> None:
        sim.device(device_id).battery = pct

    return action


def _event(device_id: str, event_type: EventType) -> Callable[[Simulation, float], None]:
    def action(sim: Simulation, ts: float) -> None:
        sim.emit_event(device_id, ts, event_type, {"bench": True})

    return action


def acknowledge_open(device_id: str) -> Callable[[Session, datetime], None]:
    """A member of staff acknowledges the device's unresolved alert (as on the dashboard)."""

    def action(session: Session, at: datetime) -> None:
        alert = session.scalar(
            select(Alert)
            .where(Alert.device_id == device_id, Alert.status == AlertStatus.OPEN)
            .order_by(Alert.opened_at.desc())
        )
        if alert is None:
            log.warning("nothing to acknowledge for %s at %s", device_id, at)
            return
        person = session.scalar(select(User).where(User.role == Role.OPERATOR).order_by(User.id))
        assert person is not None
        lifecycle.acknowledge(session, alert.id, person, "On my way.", at=at)

    return action


def plan_incidents(
    sites: Sequence[SiteSpec], start: datetime, end: datetime, days: int, origin: datetime
) -> Plan:
    """Every kind of incident and distractor at each site, on local days spread over the run
    (scenario offsets counted from `origin`, where the simulation starts)."""
    plan = Plan()

    def label(
        kind: str,
        subject: tuple[str, str],
        site: SiteSpec,
        at: datetime,
        lasts: timedelta,
        note: str,
        limit: timedelta | None = None,
    ) -> None:
        if limit is None:
            limit = CRITICAL_LIMIT if kind in CRITICAL_KINDS else LIMITS[kind] + SLACK
        plan.labels.append(Label(kind, subject, site.id, at, at + lasts, at + limit, note))

    def scenario(site: SiteSpec, name: str, target: str, at: datetime, lasts: timedelta) -> None:
        spec = ScenarioSpec(f"{name}:{target}", name, target, at - origin, None, lasts)
        resolve_scenario(spec, site)  # fails now rather than mid-run
        plan.scenarios[site.id].append(spec)

    def timer(site: SiteSpec, at: datetime, action: Callable[[Simulation, float], None]) -> None:
        plan.timers[site.id].append((at, action))

    def distractor(site: SiteSpec, text: str, at: datetime, lasts: timedelta) -> None:
        plan.distractors.append(f"{site.id}: {text}")
        # Watched minute by minute while it lasts: a rule too quick to fire would fire then.
        plan.watch.append((at, at + lasts + SLACK))

    for site in sites:
        r = site.residents
        if len(r) < 3:
            raise SystemExit(f"site {site.id} needs 3 residents, has {len(r)}")

        def when(day: int, hour: float, site: SiteSpec = site) -> datetime:
            return _local(site.timezone, start, day % days, hour)

        def res(n: int, r: Sequence[Any] = r) -> tuple[str, str]:
            return ("resident", str(r[n].id))

        def dev(n: int, kind: DeviceType, r: Sequence[Any] = r) -> str:
            return r[n].devices[kind].id

        kitchen_flame = site.first_of(DeviceType.FLAME_DETECTOR)
        kitchen_valve = site.first_of(DeviceType.GAS_VALVE)
        assert kitchen_flame is not None and kitchen_valve is not None
        # Critical events: a fall, the same resident's panic press 21 s later (a repeat), a
        # panic press of its own.
        at = when(0, 10)
        scenario(site, "fall", str(r[0].index), at, timedelta(minutes=15))
        label("fall", res(0), site, at, timedelta(minutes=15), "fall")
        at21 = at + timedelta(seconds=21)
        scenario(site, "panic", str(r[0].index), at21, timedelta(0))
        label("panic", res(0), site, at21, timedelta(0), "panic 21 s after the same fall")
        at = when(1, 10.25)
        scenario(site, "panic", str(r[1].index), at, timedelta(0))
        label("panic", res(1), site, at, timedelta(0), "panic")
        # Kitchen: flame at the first site, smoke at the second; a gas leak, acknowledged, and a
        # second leak of the same valve while that alert is acknowledged.
        at = when(1, 11)
        if site is sites[0]:
            scenario(site, "flame", kitchen_flame.id, at, timedelta(seconds=30))
            label("flame", ("device", kitchen_flame.id), site, at, timedelta(0), "kitchen flame")
        else:
            timer(site, at, _event(kitchen_flame.id, EventType.SMOKE_DETECTED))
            label("smoke", ("device", kitchen_flame.id), site, at, timedelta(0), "kitchen smoke")
        at = when(2, 11)
        timer(site, at, _event(kitchen_valve.id, EventType.GAS_LEAK))
        label("gas_leak", ("device", kitchen_valve.id), site, at, timedelta(0), "kitchen gas leak")
        plan.actions.append(
            (at + timedelta(minutes=2), site.id, acknowledge_open(kitchen_valve.id))
        )
        again = at + timedelta(minutes=10)
        timer(site, again, _event(kitchen_valve.id, EventType.GAS_LEAK))
        label(
            "gas_leak",
            ("device", kitchen_valve.id),
            site,
            again,
            timedelta(0),
            "kitchen gas leak again, the first alert acknowledged",
        )
        # Sustained vital signs past the default thresholds.
        at = when(0, 11)
        timer(site, at, _heart(132, r[1].id))
        timer(site, at + timedelta(minutes=12), _heart(None, r[1].id))
        label("high_heart_rate", res(1), site, at, timedelta(minutes=12), "132 bpm for 12 min")
        at = when(1, 15)
        timer(site, at, _heart(35, r[1].id))
        timer(site, at + timedelta(minutes=8), _heart(None, r[1].id))
        label("low_heart_rate", res(1), site, at, timedelta(minutes=8), "35 bpm for 8 min")
        at = when(1, 12)
        timer(site, at, _spo2(86, r[0].id))
        timer(site, at + timedelta(minutes=12), _spo2(None, r[0].id))
        label("low_spo2", res(0), site, at, timedelta(minutes=12), "SpO2 86 % for 12 min")
        # No movement for 4.5 h from 09:30 (active hours 07:00-21:30).
        at = when(1, 9.5)
        lasts = timedelta(hours=4.5)
        scenario(site, "long_inactivity", str(r[2].index), at, lasts)
        label("inactivity", res(2), site, at, lasts, "no movement 09:30-14:00")
        # Out of the room at 23:30 for 20 minutes.
        at = when(0, 23.5)
        lasts = timedelta(minutes=20)
        scenario(site, "night_exit", str(r[1].index), at, lasts)
        label("night_exit", res(1), site, at, lasts + SLACK, "out of the room 23:30-23:50")
        # A room sensor silent (and offline) for 2 h.
        env = dev(0, DeviceType.ENV_SENSOR)
        at = when(1, 13)
        scenario(site, "device_offline", env, at, timedelta(hours=2))
        label("device_offline", ("device", env), site, at, timedelta(hours=2), "offline 2 h")
        # A door sensor's battery at 12 % (the default rule: below 15 %) for good.
        door = dev(2, DeviceType.DOOR_SENSOR)
        at = when(0, 9)
        timer(site, at, _battery(door, 12.0))
        label("battery_low", ("device", door), site, at, end - at, "battery 12 %")

        # Distractors: none of these may alert.
        at = when(0, 14)
        timer(site, at, _heart(132, r[2].id))
        timer(site, at + timedelta(minutes=2), _heart(None, r[2].id))
        distractor(site, f"resident {r[2].index} 132 bpm for 2 min", at, timedelta(minutes=2))
        at = when(1, 16)
        timer(site, at, _spo2(87, r[2].id))
        timer(site, at + timedelta(minutes=2), _spo2(None, r[2].id))
        distractor(site, f"resident {r[2].index} SpO2 87 % for 2 min", at, timedelta(minutes=2))
        for name, device, at, lasts, text in (
            (
                "device_offline",
                dev(1, DeviceType.MOTION_SENSOR),
                when(1, 16),
                timedelta(minutes=10),
                "offline 10 min, back within the limit",
            ),
            (
                "flapping",
                dev(2, DeviceType.MOTION_SENSOR),
                when(0, 16.5),
                timedelta(minutes=10),
                "flapping online/offline for 10 min",
            ),
            (
                "duplicates",
                dev(1, DeviceType.WEARABLE),
                when(0, 10.5),
                timedelta(minutes=5),
                "sends every message twice for 5 min",
            ),
            (
                "out_of_order",
                dev(2, DeviceType.WEARABLE),
                when(0, 10.75),
                timedelta(minutes=5),
                "out of order for 5 min",
            ),
            (
                "malformed",
                dev(0, DeviceType.MOTION_SENSOR),
                when(0, 10.9),
                timedelta(0),
                "one malformed message of every contract-breaking kind",
            ),
        ):
            scenario(site, name, device, at, lasts)
            distractor(site, f"{device} {text}", at, lasts)
    plan.distractors.append("everyone: normal days, night bathroom trips, regular reports")
    for item in plan.labels:
        if not start < item.start < end:
            raise SystemExit(f"label {item} outside the simulated period")
    plan.labels.sort(key=lambda item: item.start)
    plan.actions.sort(key=lambda item: item[0])
    return plan


# --- the simulated days


class _Recorder:
    """A simulation's sink: messages parsed as ingest parses them, received at simulated time; a
    batch with an event is written at once (instant alerts at the event's time)."""

    def __init__(self, sql: SqlSink, current: list[float]) -> None:
        self.sql = sql
        self.limits = Limits(root=TOPIC_ROOT)
        self.current = current  # the simulated time the webhook receiver stamps POSTs with
        self.sim: Simulation | None = None
        self.batch = Batch()
        self.messages = 0

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Parse one message as received now (simulated)."""
        assert self.sim is not None
        self.messages += 1
        received = datetime.fromtimestamp(self.sim.now_ts, UTC)
        apply_message(self.batch, topic, payload, received, self.limits)
        if self.batch.events:
            self.current[0] = self.sim.now_ts
            self.flush()

    def flush(self) -> None:
        """Write the batch through ingest's SQL sink (one transaction)."""
        batch, self.batch = self.batch, Batch()
        if not batch.is_empty():
            self.sql.write(batch)


class _SyncInstant:
    """Ingest's instant rules, their deliveries waited for: the simulation goes on only once a
    critical alert's notifications went out, so they are stamped with the event's time."""

    def __init__(self, deliver: Callable[[list[uuid.UUID]], object]) -> None:
        self._deliver = deliver
        self._done = threading.Condition()
        self._pending = 0
        self.inner = CriticalEventAlerts(deliver=self._delivered, dispatch=lambda _ids: None)

    def _delivered(self, ids: list[uuid.UUID]) -> None:
        try:
            self._deliver(ids)
        finally:
            with self._done:
                self._pending -= 1
                self._done.notify_all()

    def on_events(self, session: Session, events: list[StoredEvent]) -> AfterCommit | None:
        """Ingest's instant rules with each event received at its own (simulated) time, as the
        history seeds them; count the deliveries that follow the commit."""
        captured: list[AfterCommit | None] = [None]

        class Capture:
            @staticmethod
            def on_events(session: Session, events: list[StoredEvent]) -> AfterCommit | None:
                captured[0] = self.inner.on_events(session, events)
                return captured[0]

        _HistoricalInstantRules(Capture()).on_events(session, events)  # type: ignore[arg-type]
        after = captured[0]
        if after is None:
            return None

        def then() -> None:
            with self._done:
                self._pending += 1
            after()
            with self._done:
                if not self._done.wait_for(lambda: self._pending <= 0, timeout=30):
                    log.error("instant delivery did not finish within 30 s")

        return then

    def close(self) -> None:
        """Finish the follow-ups."""
        self.inner.close()


def app_settings(url: str) -> Settings:
    """Settings as a deployed process has them (ack links need a base URL and a key)."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="development",
        database_url=url,
        secret_key=secrets.token_urlsafe(32),
        app_base_url="http://127.0.0.1:8501",
    )


@contextlib.contextmanager
def throwaway(backend: str, admin_url: str) -> Iterator[str]:
    """A migrated database of the backend, dropped (or deleted) afterwards."""
    if backend == "sqlite":
        # In memory when the machine has a tmpfs: the figures are about detection, not fsync.
        where = "/dev/shm" if Path("/dev/shm").is_dir() else None
        with tempfile.TemporaryDirectory(prefix="iotcare-safety-", dir=where) as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            yield url
        return
    with postgres_database(admin_url, "iotcare_bench_safety") as url:
        yield url


def simulate(args: argparse.Namespace, receiver: ClockedReceiver) -> dict[str, Any]:
    """The simulated part: labels, occurrences and notifications in simulated time."""
    now = datetime.now(UTC)
    start, end = period(args.days, now)
    with throwaway(args.backend, args.database_url) as url:
        settings = app_settings(url)
        engine = make_engine(settings)
        try:
            schema.upgrade(engine)
            origin = start - WARMUP
            prepare(engine, args.residents, receiver.url, installed=origin - timedelta(hours=1))
            sites = [site_spec(engine, seed.DEMO_SITE_ID), site_spec(engine, SECOND_SITE[0])]
            plan = plan_incidents(sites, start, end, args.days, origin)
            return _run_days(args, engine, settings, receiver, sites, plan, start, end)
        finally:
            engine.dispose()


def _run_days(
    args: argparse.Namespace,
    engine: Engine,
    settings: Settings,
    receiver: ClockedReceiver,
    sites: list[SiteSpec],
    plan: Plan,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    # Sessions carrying the settings: alert changes queue their notifications, as deployed.
    sessions = make_session_factory(engine, settings)
    channels = make_channels(settings)
    sim_now = [start.timestamp()]  # shared with the recorders
    receiver.clock = lambda: datetime.fromtimestamp(sim_now[0], UTC)

    def deliver(ids: list[uuid.UUID]) -> None:
        deliver_now(sessions, channels, ids, settings=settings, now=receiver.clock())

    instant = _SyncInstant(deliver)
    cache = RegistryCache(refresh_seconds=3600)
    with engine.connect() as connection:
        cache.load(connection)
    sql = SqlSink(engine, cache, "UTC", instant, settings=settings)
    sims: list[tuple[Simulation, _Recorder]] = []
    for site in sites:
        recorder = _Recorder(sql, sim_now)
        scenarios = [resolve_scenario(spec, site) for spec in plan.scenarios[site.id]]
        sim = Simulation(
            site, TOPIC_ROOT, recorder, start=start - WARMUP, seed=args.seed, interval=args.interval
        )
        recorder.sim = sim
        sim.scenarios = scenarios
        for at, action in plan.timers[site.id]:
            sim.at(at.timestamp(), lambda ts, a=action, s=sim: a(s, ts))
        sims.append((sim, recorder))
    # Every opened alert is logged as a warning live; over simulated days that is noise.
    quiet = [logging.getLogger(name) for name in ("core.rules.instant", "core.rules.engine")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    actions = list(plan.actions)
    began = time.perf_counter()
    ticks = 0
    seconds: Counter[str] = Counter()
    try:
        for sim, _ in sims:
            sim.start()
        # The warm-up: devices report, nothing judges yet (no incident is placed in it).
        for hour in range(1, int(WARMUP / timedelta(hours=1)) + 1):
            for sim, recorder in sims:
                sim.advance_to(start - WARMUP + timedelta(hours=hour) - timedelta(seconds=1))
                recorder.flush()
        every, watch = timedelta(minutes=args.quiet_tick), timedelta(minutes=args.watch)
        for t in plan.tick_times(start, end, every, watch):
            # Each site up to the tick (critical events are written, alerted and delivered as
            # they come), then staff actions, the engine's tick and the sweeper at that minute.
            phase = time.perf_counter()
            for sim, recorder in sims:
                sim.advance_to(t)
                recorder.flush()
            seconds["simulate+ingest"] += time.perf_counter() - phase
            sim_now[0] = t.timestamp()
            while actions and actions[0][0] <= t:
                at, _site, action = actions.pop(0)
                with session_scope(sessions) as session:
                    action(session, at)
            phase = time.perf_counter()
            with session_scope(sessions) as session:
                evaluate_rules(session, t)
            seconds["engine ticks"] += time.perf_counter() - phase
            ticks += 1
            phase = time.perf_counter()
            deliver_due(sessions, channels, now=t, settings=settings)
            seconds["sweeper"] += time.perf_counter() - phase
        messages = sum(recorder.messages for _, recorder in sims)
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
        instant.close()
    wall = time.perf_counter() - began
    occurrences = read_occurrences(sessions)
    rules = read_rules(sessions)
    with receiver.lock:
        notified = list(receiver.stamped)
    resident_days = sum(len(s.residents) for s in sites) * (end - start) / timedelta(days=1)
    return {
        "start": start,
        "end": end,
        "plan": plan,
        "occurrences": occurrences,
        "rules": rules,
        "notified": notified,
        "resident_days": resident_days,
        "messages": messages,
        "ticks": ticks,
        "tick_ms": 1000 * seconds["engine ticks"] / max(1, ticks),
        "phase_seconds": dict(seconds),
        "wall_seconds": wall,
    }


def read_occurrences(sessions: Any) -> list[Occurrence]:
    """Every alert opened, repeated or reopened, with its alert's subject."""
    with session_scope(sessions) as session:
        rows = session.execute(
            select(AlertHistory.at, AlertHistory.action, Alert)
            .join(Alert, Alert.id == AlertHistory.alert_id)
            .where(AlertHistory.action.in_(["opened", "repeated", "reopened"]))
            .order_by(AlertHistory.at)
        ).all()
        return [
            Occurrence(
                str(alert.id),
                ensure_utc(at),
                action,
                RuleKind(alert.kind),
                alert.rule_id,
                alert.site_id,
                alert.resident_id,
                alert.device_id,
                alert.title,
            )
            for at, action, alert in rows
        ]


def read_rules(sessions: Any) -> dict[int, tuple[RuleKind, dict[str, Any]]]:
    """Rule id -> (kind, params)."""
    with session_scope(sessions) as session:
        return {
            rule.id: (RuleKind(rule.kind), dict(rule.params or {}))
            for rule in session.scalars(select(AlertRule))
        }


# --- matching


def fits(
    label: Label, occurrence: Occurrence, rules: dict[int, tuple[RuleKind, dict[str, Any]]]
) -> bool:
    """Whether an occurrence is of the label's kind and about its subject (time aside)."""
    kind, what = MATCH[label.kind]
    if occurrence.kind is not kind:
        return False
    subject_type, subject_id = label.subject
    if subject_type == "resident" and str(occurrence.resident_id) != subject_id:
        return False
    if subject_type == "device" and occurrence.device_id != subject_id:
        return False
    params = rules.get(occurrence.rule_id or -1, (kind, {}))[1]
    if kind is RuleKind.EVENT:
        if occurrence.rule_id is None:
            return True  # ingest's safety net: a critical event no enabled rule matched
        return what in (params.get("event_types") or [])
    if kind is RuleKind.THRESHOLD:
        return (params.get("metric"), params.get("op")) == what
    return True


@dataclass
class Outcome:
    """What became of one label."""

    label: Label
    occurrence: Occurrence | None = None
    notified: Notified | None = None
    late: Occurrence | None = None  # the first fitting occurrence after the deadline, if missed

    @property
    def alert_seconds(self) -> float | None:
        """Event -> alert occurrence."""
        if self.occurrence is None:
            return None
        return (self.occurrence.at - self.label.start).total_seconds()

    @property
    def notify_seconds(self) -> float | None:
        """Event -> webhook received."""
        if self.notified is None:
            return None
        return (self.notified.at - self.label.start).total_seconds()


def match(
    labels: Sequence[Label],
    occurrences: Sequence[Occurrence],
    notified: Sequence[Notified],
    rules: dict[int, tuple[RuleKind, dict[str, Any]]],
) -> tuple[list[Outcome], list[Occurrence], int]:
    """Each label's first occurrence in [start, deadline] and first news webhook after it; the
    alerts opened that no label explains; repeats no label explains."""
    outcomes: list[Outcome] = []
    for label in labels:
        outcome = Outcome(label)
        for occurrence in occurrences:
            if label.start <= occurrence.at <= label.deadline and fits(label, occurrence, rules):
                outcome.occurrence = occurrence
                break
        if outcome.occurrence is None:
            outcome.late = next(
                (
                    o
                    for o in occurrences
                    if label.deadline < o.at <= label.end + GRACE and fits(label, o, rules)
                ),
                None,
            )
        if outcome.occurrence is not None:
            window_end = label.deadline + (CRITICAL_LIMIT if label.critical else STEP)
            for hit in sorted(notified, key=lambda n: n.at):
                if (
                    hit.alert_id == outcome.occurrence.alert_id
                    and hit.purpose not in NOT_ALERTS
                    and outcome.occurrence.at <= hit.at <= window_end
                ):
                    outcome.notified = hit
                    break
        outcomes.append(outcome)
    unexplained: list[Occurrence] = []
    repeats = 0
    for occurrence in occurrences:
        explained = any(
            label.start <= occurrence.at <= label.end + GRACE and fits(label, occurrence, rules)
            for label in labels
        )
        if not explained:
            if occurrence.action == "opened":
                unexplained.append(occurrence)
            else:
                repeats += 1
    return outcomes, unexplained, repeats


def nearest_rank(values: Sequence[float], pct: float) -> float:
    """The smallest value with `pct` % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def distribution(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """count, p50, p99, max of the known values (seconds)."""
    known = [v for v in values if v is not None]
    if not known:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    return {
        "count": len(known),
        "p50": nearest_rank(known, 50),
        "p99": nearest_rank(known, 99),
        "max": max(known),
    }


def per_kind(outcomes: Sequence[Outcome]) -> dict[str, dict[str, Any]]:
    """Recall, recall with a notification and times per kind."""
    grouped: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        grouped[outcome.label.kind].append(outcome)
    table = {}
    for kind in (*CRITICAL_KINDS, *WINDOWED_KINDS):
        items = grouped.get(kind, [])
        if not items:
            continue
        table[kind] = {
            "labels": len(items),
            "detected": sum(o.occurrence is not None for o in items),
            "notified": sum(o.notified is not None for o in items),
            "alert_s": distribution([o.alert_seconds for o in items]),
            "notify_s": distribution([o.notify_seconds for o in items]),
        }
    return table


# --- the live part


def run_live(args: argparse.Namespace, receiver: ClockedReceiver) -> dict[str, Any]:
    """Critical labels over MQTT to a real ingest process; webhook times on the wall clock."""
    from simulator.publisher import MqttPublisher

    receiver.clock = lambda: datetime.now(UTC)
    broker = bench_broker(100)
    replicas: IngestReplicas | None = None
    publisher: MqttPublisher | None = None
    labels: list[Label] = []
    try:
        with migrated_database(args.database_url, "iotcare_bench_safety_live") as url:
            engine = create_engine(url)
            sessions = make_session_factory(engine)
            try:
                prepare(engine, args.residents, receiver.url, installed=None)
                sites = [site_spec(engine, seed.DEMO_SITE_ID), site_spec(engine, SECOND_SITE[0])]
                replicas = IngestReplicas(
                    1,
                    url,
                    broker.url,
                    False,
                    100,
                    extra_env={
                        "IOTCARE_SECRET_KEY": secrets.token_urlsafe(32),
                        "IOTCARE_APP_BASE_URL": "http://127.0.0.1:8501",
                    },
                )
                replicas.start()
                replicas.wait_healthy()
                publisher = MqttPublisher(
                    broker.url, client_id=f"bench-safety-{uuid.uuid4().hex[:6]}", inflight=100
                )
                publisher.connect()

                def publish(
                    kind: str, site: SiteSpec, device_id: str, subject: tuple[str, str], note: str
                ) -> Label:
                    event = MATCH[kind][1]
                    topic = device_topic(TOPIC_ROOT, site.id, device_id, TopicKind.EVENT)
                    at = datetime.now(UTC)
                    assert publisher is not None
                    publisher.publish(topic, event_payload(at, EventType(event), {"bench": True}))
                    time.sleep(0.2)  # one at a time, not one ingest batch
                    made = Label(kind, subject, site.id, at, at, at + CRITICAL_LIMIT, note, True)
                    labels.append(made)
                    return made

                def wait_notified(made: Label, timeout: float = 10.0) -> None:
                    deadline = time.monotonic() + timeout
                    while time.monotonic() < deadline:
                        occurrences = read_occurrences(sessions)
                        rules = read_rules(sessions)
                        outcome = match([made], occurrences, list(receiver.stamped), rules)[0][0]
                        if outcome.notified is not None:
                            return
                        assert replicas is not None
                        replicas.check_alive()
                        time.sleep(0.05)

                first, second = sites
                a = first.residents[0]
                fall = publish(
                    "fall",
                    first,
                    a.devices[DeviceType.FALL_DETECTOR].id,
                    ("resident", str(a.id)),
                    "fall",
                )
                wait_notified(fall)
                time.sleep(max(0.0, 21 - (datetime.now(UTC) - fall.start).total_seconds()))
                panic = publish(
                    "panic",
                    first,
                    a.devices[DeviceType.PANIC_BUTTON].id,
                    ("resident", str(a.id)),
                    "panic 21 s after the same fall",
                )
                b = second.residents[1]
                other = publish(
                    "panic",
                    second,
                    b.devices[DeviceType.PANIC_BUTTON].id,
                    ("resident", str(b.id)),
                    "panic",
                )
                flame_device = first.first_of(DeviceType.FLAME_DETECTOR)
                smoke_device = second.first_of(DeviceType.FLAME_DETECTOR)
                valve = first.first_of(DeviceType.GAS_VALVE)
                valve2 = second.first_of(DeviceType.GAS_VALVE)
                assert flame_device and smoke_device and valve and valve2
                flame = publish(
                    "flame", first, flame_device.id, ("device", flame_device.id), "kitchen flame"
                )
                smoke = publish(
                    "smoke", second, smoke_device.id, ("device", smoke_device.id), "kitchen smoke"
                )
                leak = publish(
                    "gas_leak", first, valve.id, ("device", valve.id), "kitchen gas leak"
                )
                for made in (panic, other, flame, smoke, leak):
                    wait_notified(made, 3.0)
                with session_scope(sessions) as session:
                    acknowledge_open(valve.id)(session, datetime.now(UTC))
                again = publish(
                    "gas_leak",
                    first,
                    valve.id,
                    ("device", valve.id),
                    "kitchen gas leak again, the first alert acknowledged",
                )
                site_leak = publish(
                    "gas_leak",
                    second,
                    valve2.id,
                    ("device", valve2.id),
                    "kitchen gas leak at the second site",
                )
                for made in (again, site_leak):
                    wait_notified(made, 3.0)
                occurrences = read_occurrences(sessions)
                rules = read_rules(sessions)
                with receiver.lock:
                    notified = list(receiver.stamped)
                replicas.check_alive()
            finally:
                if replicas is not None:
                    replicas.stop()
                engine.dispose()
    finally:
        if publisher is not None:
            publisher.close()
        if replicas is not None:
            replicas.cleanup()
        broker.close()
    return {"labels": labels, "occurrences": occurrences, "rules": rules, "notified": notified}


# --- reporting


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) < 10:
        return f"{value:.3f}s"
    if abs(value) < 3600:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.2f}h"


def _dist(dist: dict[str, Any]) -> str:
    if not dist["count"]:
        return "-"
    return f"{_secs(dist['p50'])}/{_secs(dist['p99'])}/{_secs(dist['max'])}"


def table(title: str, kinds: dict[str, dict[str, Any]]) -> list[str]:
    """The per-kind table."""
    lines = [
        title,
        f"  {'kind':16} {'labels':>6} {'recall':>8} {'notified':>9}  "
        f"{'event->alert p50/p99/max':28} {'event->notified p50/p99/max':28}",
    ]
    for kind, row in kinds.items():
        lines.append(
            f"  {kind:16} {row['labels']:6d} {row['detected']:4d}/{row['labels']:<3d} "
            f"{row['notified']:5d}/{row['labels']:<3d}  {_dist(row['alert_s']):28} "
            f"{_dist(row['notify_s']):28}"
        )
    return lines


def describe_outcome(outcome: Outcome) -> str:
    """One label, what matched it."""
    label = outcome.label
    where = f"{label.subject[0]} {label.subject[1]}@{label.site_id}"
    found = "MISSED"
    if outcome.late is not None:
        late = (outcome.late.at - label.start).total_seconds()
        found = f"MISSED (late: {outcome.late.action} after {_secs(late)})"
    if outcome.occurrence is not None:
        found = f"{outcome.occurrence.action} after {_secs(outcome.alert_seconds)}"
        found += (
            f", notified after {_secs(outcome.notify_seconds)}"
            if outcome.notified
            else ", NOT notified"
        )
    return f"    {label.start:%Y-%m-%d %H:%M:%S} {label.kind:16} {where:28} {label.note}: {found}"


def verdicts(
    sim_kinds: dict[str, dict[str, Any]],
    live_kinds: dict[str, dict[str, Any]] | None,
    false_rate: float,
) -> dict[str, bool]:
    """Whether each target was met."""
    critical = live_kinds if live_kinds is not None else sim_kinds
    every_critical = all(
        row["notified"] == row["labels"]
        and row["notify_s"]["max"] is not None
        and row["notify_s"]["max"] <= CRITICAL_LIMIT.total_seconds()
        for kind, row in critical.items()
        if kind in CRITICAL_KINDS
    )
    every_windowed = all(
        row["detected"] == row["labels"] for kind, row in sim_kinds.items() if kind in LIMITS
    )
    return {
        "critical_notified_within_1s": every_critical,
        "windowed_detected_in_time": every_windowed,
        "false_alarms_below_target": false_rate < FALSE_ALARM_TARGET,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when a target is missed (0 with --no-fail)."""
    args = parse_args(argv)
    exit_on_sigterm()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("IOTCARE_ENVIRONMENT", "development")
    print(
        f"safety scenarios: {args.residents} residents at 2 sites (Asia/Seoul, "
        f"{SECOND_SITE[2]}), {args.days} simulated day(s) on {args.backend}, default rules, "
        f"live critical path {'off' if args.no_live else 'on'}, {os.cpu_count()} cores",
        flush=True,
    )
    receiver = ClockedReceiver().start()
    try:
        sim = simulate(args, receiver)
        plan: Plan = sim["plan"]
        outcomes, unexplained, repeats = match(
            plan.labels, sim["occurrences"], sim["notified"], sim["rules"]
        )
        live: dict[str, Any] | None = None
        live_outcomes: list[Outcome] = []
        if not args.no_live:
            receiver.stamped.clear()
            live = run_live(args, receiver)
            live_outcomes = match(
                live["labels"], live["occurrences"], live["notified"], live["rules"]
            )[0]
    finally:
        receiver.stop()
    sim_kinds = per_kind(outcomes)
    live_kinds = per_kind(live_outcomes) if live is not None else None
    false_rate = len(unexplained) / sim["resident_days"]
    met = verdicts(sim_kinds, live_kinds, false_rate)

    lines = [
        f"simulated {sim['start']:%Y-%m-%d %H:%M} - {sim['end']:%Y-%m-%d %H:%M} UTC: "
        f"{sim['messages']:,} messages, {sim['ticks']:,} engine ticks "
        f"({sim['tick_ms']:.1f} ms each), {sim['wall_seconds']:.1f} s wall ("
        + ", ".join(f"{k} {v:.1f} s" for k, v in sim["phase_seconds"].items())
        + ")",
        f"  {len(plan.labels)} labels; distractors (must not alert): "
        + "; ".join(plan.distractors),
    ]
    lines += table("simulated days (simulated clock; limit per kind + 2 min):", sim_kinds)
    if args.per_label:
        lines += [describe_outcome(o) for o in outcomes]
    else:
        lines += [describe_outcome(o) for o in outcomes if o.notified is None]
    by_kind = Counter(f"{o.kind.value}:{o.title.split(':')[0]}" for o in unexplained).most_common()
    lines.append(
        f"false alarms: {len(unexplained)} alert(s) opened that no label explains over "
        f"{sim['resident_days']:.1f} resident-days = {false_rate:.3f} per resident-day "
        f"(target < {FALSE_ALARM_TARGET}); unexplained repeats {repeats}"
    )
    for name, count in by_kind:
        lines.append(f"    {count} x {name}")
    for occurrence in unexplained[:20]:
        lines.append(
            f"      {occurrence.at:%Y-%m-%d %H:%M} {occurrence.title} "
            f"(resident {occurrence.resident_id}, device {occurrence.device_id})"
        )
    if live_kinds is not None:
        lines += table("live critical path (MQTT -> ingest -> webhook, wall clock):", live_kinds)
        lines += [describe_outcome(o) for o in live_outcomes]
    for name, ok in met.items():
        lines.append(f"target {name}: {'met' if ok else 'MISSED'}")
    print("\n".join(lines))
    record = {
        "benchmark": MODULE,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "options": command_options(args),
        "residents": args.residents,
        "days": args.days,
        "backend": args.backend,
        "labels": len(plan.labels),
        "simulated": sim_kinds,
        "live": live_kinds,
        "false_alarms": len(unexplained),
        "false_alarm_kinds": dict(by_kind),
        "unexplained_repeats": repeats,
        "resident_days": sim["resident_days"],
        "false_alarms_per_resident_day": false_rate,
        "messages": sim["messages"],
        "tick_ms": sim["tick_ms"],
        "wall_seconds": sim["wall_seconds"],
        "phase_seconds": sim["phase_seconds"],
        "targets": met,
    }
    append_json_line(args.json, record, default=str)
    print(f"reproduce: {reproduce_command(MODULE, command_options(args))}")
    if all(met.values()) or args.no_fail:
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
