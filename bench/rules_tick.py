"""Rule engine tick: 1,000 residents / 6,000 devices, the last hours of readings, every rule kind.

    .venv/bin/python -m bench.rules_tick --backend postgresql
    .venv/bin/python -m bench.rules_tick --backend sqlite

A throwaway database is created (PostgreSQL: a uniquely named database on --database-url;
SQLite: a file in a temporary directory), migrated, and filled like a busy deployment:
--residents residents spread over --sites sites in three timezones (Asia/Seoul, UTC,
America/New_York), each with six devices (wearable, bed, motion, door, environment, panic
button), the demo's default rules per site (core.seed.default_rules) plus per-resident overrides
for one resident in 20, learned routines for half of the residents, and --hours of readings up
to now at the simulator's report rates (wearable every 10 s: heart rate, SpO2, body temperature;
bed and motion every 60 s; environment every 5 min; door every 10 min; battery every 10 min to
1 h). About 2 % of residents have a sustained high heart rate, 1 % low SpO2, 2 % no movement,
1 % a door opening in the last 10 minutes, 1 % of devices are silent and 1 % low on battery;
some devices are quarantined; one data-quality run failed.

Then --ticks ticks of core.rules.engine.evaluate_rules run one minute of simulated time apart,
each in its own committed transaction. The first tick opens the alerts; the following ones are
the steady state (idempotent: nothing new to open). The database is dropped at the end.
Target: under 5 s per tick.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session

from bench._care_homes import DEVICE_TYPES, device_id, site_rows
from bench._command_line import add_database_url_option, benchmark_parser, reproduce_command
from core import schema
from core.rules.engine import evaluate_rules
from core.seed import default_rules
from devkit.databases import postgres_database
from models import (
    Alert,
    AlertRule,
    Device,
    DeviceStatus,
    Event,
    QualityRun,
    Resident,
    ResidentRoutine,
    RuleOverride,
    Site,
)

TARGET_SECONDS = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = benchmark_parser("bench.rules_tick", __doc__)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--hours", type=float, default=2.0, help="hours of readings up to now")
    parser.add_argument("--ticks", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    add_database_url_option(parser)
    return parser.parse_args(argv)


def command_options(args: argparse.Namespace) -> list[str]:
    """Every option spelled out, for the command that reproduces the run."""
    options = [
        f"--backend={args.backend}",
        f"--residents={args.residents}",
        f"--sites={args.sites}",
        f"--hours={args.hours:g}",
        f"--ticks={args.ticks}",
        f"--seed={args.seed}",
    ]
    if args.backend == "postgresql":
        options.append(f"--database-url={args.database_url}")
    return options


# --- the database


@contextlib.contextmanager
def throwaway(args: argparse.Namespace) -> Iterator[str]:
    """A new database of the chosen backend, dropped (or deleted) afterwards."""
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="iotcare-rules-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    with postgres_database(args.database_url, "iotcare_bench_rules") as url:
        yield url


def make_engine(url: str) -> Engine:
    """The engine the app would use: for SQLite, WAL and SQLAlchemy-managed transactions."""
    from core.db import make_engine as app_engine
    from core.settings import Settings

    settings = Settings(_env_file=None, environment="development", database_url=url)  # type: ignore[call-arg]
    return app_engine(settings)


# --- the data


class Data:
    """What the benchmark generated, to report alongside the timings."""

    def __init__(self) -> None:
        self.readings = 0
        self.devices = 0
        self.rules = 0


def _ts_strings(ts_us: np.ndarray, postgres: bool) -> np.ndarray:
    # SQLite stores naive UTC text as SQLAlchemy writes it (microseconds always); PostgreSQL
    # reads an explicit +00 offset.
    text_ts = np.char.replace(
        np.datetime_as_string(ts_us.astype("datetime64[us]"), unit="us"), "T", " "
    )
    return np.char.add(text_ts, "+00") if postgres else text_ts


def generate_readings(
    devices: list[tuple[str, str, int]], now: datetime, args: argparse.Namespace
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Batches of (device_id, metric, ts as datetime64[us], value), per device type and metric."""
    rng = np.random.default_rng(args.seed)
    end = np.datetime64(now.replace(tzinfo=None), "us")
    span = int(args.hours * 3600)
    by_type: dict[str, list[tuple[str, int]]] = {}
    for device, kind, index in devices:
        by_type.setdefault(kind, []).append((device, index))
    schedule = {
        "wearable": [("heart_rate", 10), ("spo2", 10), ("body_temp_c", 10), ("battery_pct", 600)],
        "bed_sensor": [("bed_occupied", 60), ("heart_rate", 60), ("battery_pct", 3600)],
        "motion_sensor": [("motion", 60), ("battery_pct", 3600)],
        "door_sensor": [("door_open", 600), ("battery_pct", 3600)],
        "env_sensor": [("temperature_c", 300), ("humidity_pct", 300), ("co2_ppm", 300)],
        "panic_button": [("battery_pct", 3600)],
    }
    normal = {
        "heart_rate": (60, 100),
        "spo2": (94, 99),
        "body_temp_c": (36.0, 37.2),
        "battery_pct": (40, 100),
        "temperature_c": (19, 26),
        "humidity_pct": (30, 60),
        "co2_ppm": (400, 1200),
    }
    for kind, members in by_type.items():
        ids = np.array([m[0] for m in members], dtype=object)
        index = np.array([m[1] for m in members])
        for metric, every in schedule[kind]:
            steps = max(1, span // every)
            n = len(ids)
            phase = rng.integers(0, every * 1_000_000, n)
            k = np.arange(steps)
            offsets = (
                np.repeat(k, n) * every * 1_000_000 + np.tile(phase, steps)
            ) - steps * every * 1_000_000
            ts = end + offsets.astype("timedelta64[us]")
            device = np.tile(np.arange(n), steps)
            if metric in ("motion", "door_open", "bed_occupied"):
                value = (rng.random(len(ts)) < (0.25 if metric == "motion" else 0.0)).astype(float)
            else:
                low, high = normal[metric]
                value = np.round(rng.uniform(low, high, len(ts)), 1)
            age_s = (end - ts).astype("timedelta64[s]").astype(int)
            who = index[device]
            # Prime moduli spread each kind of trouble over every site and timezone.
            if metric == "heart_rate" and kind == "wearable":
                value = np.where((who % 47 == 3) & (age_s < 12 * 60), 135.0, value)  # ~2 % high
            if metric == "spo2":
                value = np.where((who % 97 == 7) & (age_s < 10 * 60), 86.0, value)  # ~1 % low
            if metric == "motion":
                value = np.where(who % 43 == 11, 0.0, value)  # ~2 % not moving at all
            if metric == "door_open":
                # 1 %: the door opened in the last 10 minutes (closed before: a rising edge).
                value = np.where((who % 89 == 13) & (age_s < 10 * 60), 1.0, value)
            if metric == "battery_pct":
                value = np.where(who % 101 == 17, 9.0, value)  # ~1 % low battery
            yield ids[device], np.full(len(ts), metric, dtype=object), ts, value


def load(engine: Engine, url: str, now: datetime, args: argparse.Namespace) -> Data:
    """Registry, rules, routines, events, quality runs and readings."""
    data = Data()
    postgres = engine.dialect.name == "postgresql"
    sites = site_rows(args.sites)
    residents = [
        {
            "id": r + 1,
            "site_id": sites[r % args.sites]["id"],
            "name": f"Resident {r + 1}",
            "active": True,
        }
        for r in range(args.residents)
    ]
    devices: list[dict[str, Any]] = []
    generated: list[tuple[str, str, int]] = []
    for r, resident in enumerate(residents):
        for kind in DEVICE_TYPES:
            device = device_id(r, kind)
            silent = r % 103 == 19 and kind == "env_sensor"  # ~1 % of residents: a dead sensor
            devices.append(
                {
                    "id": device,
                    "site_id": resident["site_id"],
                    "resident_id": resident["id"],
                    "type": kind,
                    "status": DeviceStatus.ONLINE,
                    "last_seen": now - (timedelta(hours=3) if silent else timedelta(seconds=30)),
                    "battery": 80,
                    "quarantined": r % 200 == 23,
                }
            )
            if not silent:
                generated.append((device, kind, r))
    data.devices = len(devices)
    with Session(engine) as session, session.begin():
        session.execute(insert(Site), sites)
        session.execute(insert(Resident), residents)
        session.execute(insert(Device), devices)
        for site in sites:
            for rule in default_rules(site["id"]):
                rule.route = []
                session.add(rule)
                data.rules += 1
        session.flush()
        rules = session.query(AlertRule).all()
        by_site = {(r.site_id, r.name): r.id for r in rules}
        session.execute(
            insert(RuleOverride),
            [
                {
                    "rule_id": by_site[(resident["site_id"], name)],
                    "resident_id": resident["id"],
                    "params": params,
                }
                for resident in residents[::20]
                for name, params in (
                    ("High heart rate", {"value": 140}),
                    ("No movement during the day", {"use_routine": True}),
                )
            ],
        )
        session.execute(
            insert(ResidentRoutine),
            [
                {
                    "resident_id": resident["id"],
                    "hour": hour,
                    "usual_gap_minutes": 45.0 + hour,
                    "days": 14,
                    "computed_at": now,
                }
                for resident in residents[::2]
                for hour in range(24)
            ],
        )
        door_events = [
            {
                "device_id": device_id(r, "door_sensor"),
                "site_id": residents[r]["site_id"],
                "resident_id": residents[r]["id"],
                "type": "door_opened",
                "ts": now - timedelta(minutes=9),
                "data": {},
                "received_at": now - timedelta(minutes=9),
            }
            for r in range(13, args.residents, 89)
        ]
        if door_events:  # none with fewer than 14 residents; an empty insert is an error
            session.execute(insert(Event), door_events)
        session.execute(
            insert(QualityRun),
            [
                {
                    "suite": suite,
                    "window_start": now - timedelta(hours=1),
                    "window_end": now,
                    "started_at": now - timedelta(minutes=5),
                    "finished_at": now - timedelta(minutes=4),
                    "success": suite != "readings",
                    "evaluated": 12,
                    "failed": 2 if suite == "readings" else 0,
                }
                for suite in ("readings", "events", "devices")
            ],
        )
    raw = engine.raw_connection()
    try:
        for ids, metrics, ts, values in generate_readings(generated, now, args):
            stamps = _ts_strings(ts, postgres)
            data.readings += len(ids)
            if postgres:
                buffer = io.StringIO()
                buffer.writelines(
                    f"{d},{m},{t},{v}\n"
                    for d, m, t, v in zip(ids, metrics, stamps, values, strict=True)
                )
                buffer.seek(0)
                with raw.cursor() as cursor:
                    cursor.copy_expert(
                        "COPY readings (device_id, metric, ts, value) FROM STDIN WITH (FORMAT csv)",
                        buffer,
                    )
            else:
                cursor = raw.cursor()
                cursor.execute("BEGIN")
                cursor.executemany(
                    "INSERT OR IGNORE INTO readings (device_id, metric, ts, value) "
                    "VALUES (?, ?, ?, ?)",
                    zip(
                        ids.tolist(),
                        metrics.tolist(),
                        stamps.tolist(),
                        values.tolist(),
                        strict=True,
                    ),
                )
                cursor.execute("COMMIT")
                cursor.close()
        if postgres:
            raw.commit()
    finally:
        raw.close()
    # Statistics as a running database would have them (autovacuum / a periodic ANALYZE).
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return data


# --- the run


def run(args: argparse.Namespace) -> tuple[list[float], list[str]]:
    """Build the data, run the ticks; per-tick seconds and a line per tick."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    lines: list[str] = []
    with throwaway(args) as url:
        engine = make_engine(url)
        try:
            schema.upgrade(engine)
            started = time.perf_counter()
            data = load(engine, url, now, args)
            print(
                f"loaded {data.devices} devices, {data.rules} rules, {data.readings:,} readings "
                f"({args.hours:g} h up to {now:%Y-%m-%d %H:%M} UTC) in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            seconds: list[float] = []
            for tick in range(args.ticks):
                at = now + timedelta(minutes=tick)
                with Session(engine) as session:
                    started = time.perf_counter()
                    result = evaluate_rules(session, at)
                    session.commit()
                    elapsed = time.perf_counter() - started
                seconds.append(elapsed)
                line = (
                    f"tick {tick + 1} at {at:%H:%M} UTC: {elapsed:.3f} s, {result.rules} rules, "
                    f"findings {dict(sorted(result.findings.items()))}, opened "
                    f"{len(result.opened)}, repeated {len(result.repeated)}, resolved "
                    f"{len(result.resolved)}"
                )
                lines.append(line)
                print(line, flush=True)
            with Session(engine) as session:
                by_kind = dict(
                    session.execute(
                        select(Alert.kind, func.count()).group_by(Alert.kind).order_by(Alert.kind)
                    )
                    .tuples()
                    .all()
                )
            print("open alerts by kind:", {str(k): n for k, n in by_kind.items()}, flush=True)
        finally:
            engine.dispose()
    return seconds, lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures; exit 1 when over the target."""
    args = parse_args(argv)
    seconds, _lines = run(args)
    low, mid, high = min(seconds), statistics.median(seconds), max(seconds)
    ok = high < TARGET_SECONDS
    print(
        f"\n{args.backend}: {args.residents} residents, {args.residents * len(DEVICE_TYPES)} "
        f"devices, {args.ticks} ticks: min {low:.3f} s, median {mid:.3f} s, max {high:.3f} s "
        f"per tick (target < {TARGET_SECONDS:g} s: {'met' if ok else 'MISSED'})"
    )
    print(f"reproduce: {reproduce_command('bench.rules_tick', command_options(args))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
