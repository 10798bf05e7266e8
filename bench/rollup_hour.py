"""Rollup of one hour: 6,000 devices reporting every 10 s (~2.2 M readings) on PostgreSQL.

    .venv/bin/python -m bench.rollup_hour --devices 6000 --interval 10

A throwaway PostgreSQL database is created and migrated, the devices registered, and one hour
of readings loaded with COPY (device i reports metric i mod 11 of the catalogue, values inside
its valid range, every --interval seconds with a per-device phase). --extra-hours loads that
many hours before the measured one too, so the table is bigger than the window (the query must
not depend on what else the table holds). Then, as the rollups flow does first, the new page
ranges of readings' BRIN time index are summarized (timed apart), and
core.rollups.rollup_window aggregates the hour
(hourly rollup, the statement the hourly flow runs) --repeat times, each committed; the first
run inserts, later ones re-aggregate the same hour and change nothing (idempotent upsert).
Peak memory is this process's ru_maxrss: the data is generated and loaded by a child process,
so it is the rollup's own (client side; the database server's memory is not included).
The database is dropped at the end. Target: under 10 s.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from bench._command_line import add_database_url_option, benchmark_parser, reproduce_command
from bench._harness import bench_database
from core.contract.catalogue import METRICS
from core.rollups import Window, rollup_window, summarize_time_index
from models import RollupPeriod

TARGET_SECONDS = 10.0
METRIC_NAMES = list(METRICS)
# Values a healthy sensor reports: well inside the catalogue's valid range.
NORMAL = {
    "heart_rate": (55, 110),
    "spo2": (92, 100),
    "body_temp_c": (35.8, 37.6),
    "temperature_c": (18, 28),
    "humidity_pct": (30, 60),
    "co2_ppm": (400, 1500),
    "gas_ppm": (0, 50),
    "battery_pct": (20, 100),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = benchmark_parser("bench.rollup_hour", __doc__)
    add_data_options(parser)
    parser.add_argument("--repeat", type=int, default=3, help="rollups of the same hour")
    parser.add_argument("--work-mem", default="256MB", help="work_mem for the rollup statement")
    return parser.parse_args(argv)


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Options shared with bench.quality_hour: what data to generate, and where."""
    parser.add_argument("--devices", type=int, default=6000, help="devices reporting")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between reports")
    parser.add_argument(
        "--extra-hours", type=int, default=0, help="hours of readings loaded before the hour"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the values")
    add_database_url_option(parser)


def data_options(args: argparse.Namespace) -> list[str]:
    """The options add_data_options adds, spelled out (but the server), for the command that
    reproduces the run."""
    return [
        f"--devices={args.devices}",
        f"--interval={args.interval:g}",
        f"--extra-hours={args.extra_hours}",
        f"--seed={args.seed}",
    ]


def device_ids(count: int) -> list[str]:
    """The benchmark's device ids."""
    return [f"bench-{i:05d}" for i in range(count)]


def hour_frames(
    devices: list[str], start: datetime, interval: float, seed: int, slices: int = 12
) -> Iterator[pd.DataFrame]:
    """One hour of readings (device_id, metric, ts, value) in `slices` time-ordered frames."""
    rng = np.random.default_rng(seed + int(start.timestamp()))
    n = len(devices)
    ids = np.array(devices, dtype=object)
    metrics = np.array([METRIC_NAMES[i % len(METRIC_NAMES)] for i in range(n)], dtype=object)
    low = np.array([NORMAL.get(m, (0, 1))[0] for m in metrics], dtype=float)
    high = np.array([NORMAL.get(m, (0, 1))[1] for m in metrics], dtype=float)
    boolean = np.array([METRICS[m].boolean for m in metrics])
    # Each device has its own phase, so reports are spread over the interval (as in real life).
    phase_us = (np.arange(n) * 7919 % int(interval * 1000)) * 1000
    steps = int(3600 / interval)
    base = np.datetime64(start.replace(tzinfo=None), "us")
    for chunk in np.array_split(np.arange(steps), slices):
        k = np.repeat(chunk, n)
        device = np.tile(np.arange(n), len(chunk))
        ts = base + (k * int(interval * 1_000_000) + phase_us[device]).astype("timedelta64[us]")
        values = rng.uniform(low[device], high[device])
        values = np.where(boolean[device], np.round(values), np.round(values, 2))
        yield pd.DataFrame(
            {
                "device_id": ids[device],
                "metric": metrics[device],
                "ts": pd.to_datetime(ts).tz_localize(UTC),
                "value": values,
            }
        )


def copy_frame(engine: Engine, frame: pd.DataFrame, table: str = "readings") -> None:
    """Load a frame with COPY (the fast path ingest uses too)."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f+00")
    buffer.seek(0)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            columns = ", ".join(frame.columns)
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
        raw.commit()
    finally:
        raw.close()


def load_hours(
    engine: Engine, devices: list[str], hour: datetime, args: argparse.Namespace
) -> tuple[int, float]:
    """Load the measured hour (and --extra-hours before it); rows in the hour and seconds."""
    started = time.perf_counter()
    in_hour = 0
    for offset in range(args.extra_hours, -1, -1):
        start = hour - timedelta(hours=offset)
        for frame in hour_frames(devices, start, args.interval, args.seed):
            copy_frame(engine, frame)
            if offset == 0:
                in_hour += len(frame)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE readings"))
    return in_hour, time.perf_counter() - started


def _load_worker(
    url: str, devices: int, hour: datetime, args: argparse.Namespace
) -> tuple[int, float]:
    engine = create_engine(url)
    try:
        return load_hours(engine, device_ids(devices), hour, args)
    finally:
        engine.dispose()


def load_in_child(url: str, hour: datetime, args: argparse.Namespace) -> tuple[int, float]:
    """load_hours in a separate process, so this one's peak memory is the measured step's own."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_load_worker, (url, args.devices, hour, args))


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_report() -> str:
    """The report's line on this process's peak memory."""
    return (
        f"peak memory of the benchmark process (ru_maxrss; data generated in a child process, "
        f"the database server not included): {peak_rss_mb():.0f} MB"
    )


def command_options(args: argparse.Namespace) -> list[str]:
    """Every option spelled out, for the command that reproduces the run."""
    return [*data_options(args), f"--repeat={args.repeat}", f"--work-mem={args.work_mem}"]


def bench_hour() -> datetime:
    """A fixed, whole past hour, so runs are comparable."""
    return datetime(2026, 1, 5, 10, tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 0 when every run met the target."""
    args = parse_args(argv)
    devices = device_ids(args.devices)
    hour = bench_hour()
    print(
        f"rollup of one hour: {args.devices:,} devices every {args.interval:g} s, "
        f"{args.extra_hours} extra hour(s) in the table, {os.cpu_count()} cores",
        flush=True,
    )
    with bench_database(args.database_url, devices) as url:
        engine = create_engine(url)
        try:
            rows, load_seconds = load_in_child(url, hour, args)
            print(f"loaded {rows:,} readings in the hour in {load_seconds:.1f} s", flush=True)
            # What the rollups flow does first: summarize readings' BRIN index (new ranges only).
            started = time.perf_counter()
            with Session(engine) as session, session.begin():
                ranges = summarize_time_index(session)
            print(
                f"time index: {ranges} page range(s) summarized in "
                f"{time.perf_counter() - started:.2f} s",
                flush=True,
            )
            window = Window(RollupPeriod.HOUR, hour, hour + timedelta(hours=1))
            timings: list[float] = []
            written: list[int] = []
            for repetition in range(1, args.repeat + 1):
                started = time.perf_counter()
                with Session(engine) as session, session.begin():
                    written.append(rollup_window(session, window, work_mem=args.work_mem))
                timings.append(time.perf_counter() - started)
                print(
                    f"[{repetition}/{args.repeat}] {timings[-1]:.2f} s, "
                    f"{written[-1]:,} rollup rows written",
                    flush=True,
                )
            with engine.connect() as conn:
                stored = conn.execute(text("SELECT count(*), sum(count) FROM rollups")).one()
        finally:
            engine.dispose()
    first, median = timings[0], statistics.median(timings)
    ok = max(timings) < TARGET_SECONDS and stored[1] == rows
    print(
        f"rollup of {rows:,} readings into {stored[0]:,} hourly buckets: first run {first:.2f} s "
        f"({rows / first:,.0f} readings/s), median of {len(timings)} {median:.2f} s; "
        f"target < {TARGET_SECONDS:.0f} s: {'met' if ok else 'NOT met'}"
    )
    print(f"readings counted in rollups: {stored[1]:,} (must equal {rows:,})")
    print(peak_memory_report())
    print(f"reproduce: {reproduce_command('bench.rollup_hour', command_options(args))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
