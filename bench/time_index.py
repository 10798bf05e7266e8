"""Reading one hour out of days of readings on PostgreSQL: the BRIN time index against a scan.

    .venv/bin/python -m bench.time_index --days 7 --devices 300

A throwaway PostgreSQL database is created and migrated; --days of readings of --devices devices
every --interval seconds are inserted in time order (as ingest writes them) with one INSERT ...
SELECT from generate_series. Then the rollup's access pattern, "every reading of one hour grouped
by device and metric", is timed for --hours different hours (each run --repeat times, median kept)
in three states:

- unsummarized: the index as a bulk insert leaves it when no vacuum has run (page ranges not
  yet summarized match every query, so the bitmap scan reads the whole table);
- summarized: after core.rollups.summarize_time_index (what the rollups flow runs first, and
  what autovacuum does with the index's autosummarize when autovacuum is on);
- scan: the same query with bitmap scans disabled, i.e. what it costs without the index.

The table is in the server's page cache in all three (each state is timed after a warm-up run),
so the figures are CPU and memory bandwidth, not disk: a cold table only widens the gap. The
database is dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.orm import Session

from bench._command_line import add_database_url_option, benchmark_parser, reproduce_command
from bench._harness import migrated_database
from core.rollups import summarize_time_index

START = datetime(2026, 11, 1, tzinfo=UTC)

_FILL = text(
    "INSERT INTO readings (device_id, metric, ts, value) "
    "SELECT 'dev-' || d, 'heart_rate', :start + s * make_interval(secs => :interval), 60 + d % 40 "
    "FROM generate_series(0, :steps - 1) AS s, generate_series(1, :devices) AS d "
    "ORDER BY s, d"
)
_HOUR = text(
    "SELECT count(*) FROM (SELECT device_id, metric, count(*), avg(value) FROM readings "
    "WHERE ts >= :start AND ts < :end GROUP BY device_id, metric) AS buckets"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = benchmark_parser("bench.time_index", __doc__)
    parser.add_argument("--days", type=int, default=7, help="days of readings in the table")
    parser.add_argument("--devices", type=int, default=300, help="devices reporting")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between reports")
    parser.add_argument("--hours", type=int, default=3, help="different hours read per state")
    parser.add_argument("--repeat", type=int, default=3, help="reads of each hour")
    add_database_url_option(parser)
    return parser.parse_args(argv)


def command_options(args: argparse.Namespace) -> list[str]:
    """Every option spelled out, for the command that reproduces the run."""
    return [
        f"--days={args.days}",
        f"--devices={args.devices}",
        f"--interval={args.interval:g}",
        f"--hours={args.hours}",
        f"--repeat={args.repeat}",
    ]


def hours_to_read(days: int, count: int) -> list[datetime]:
    """`count` whole hours spread over the table's days (last one the newest full hour)."""
    last = START + timedelta(days=days) - timedelta(hours=1)
    span = max(days * 24 - 1, 1)
    return [last - timedelta(hours=span * i // max(count, 1)) for i in range(count)]


def time_hours(conn: Connection, hours: list[datetime], repeat: int) -> tuple[float, int]:
    """Median seconds to read one hour (after a warm-up read), and the buckets of the last."""
    conn.execute(_HOUR, {"start": hours[0], "end": hours[0] + timedelta(hours=1)})
    timings: list[float] = []
    buckets = 0
    for hour in hours:
        for _ in range(repeat):
            started = time.perf_counter()
            buckets = conn.scalar(_HOUR, {"start": hour, "end": hour + timedelta(hours=1)}) or 0
            timings.append(time.perf_counter() - started)
    return statistics.median(timings), buckets


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 0 when the summarized index beat the scan."""
    args = parse_args(argv)
    steps = int(args.days * 86_400 / args.interval)
    rows = steps * args.devices
    print(f"time index: {rows:,} readings ({args.days} days x {args.devices} devices)", flush=True)
    hours = hours_to_read(args.days, args.hours)
    with migrated_database(args.database_url, "iotcare_bench_index") as url:
        engine = create_engine(url)
        try:
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(
                    _FILL,
                    {
                        "start": START,
                        "interval": args.interval,
                        "steps": steps,
                        "devices": args.devices,
                    },
                )
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE readings"))
                size = conn.scalar(text("SELECT pg_size_pretty(pg_relation_size('readings'))"))
            print(f"loaded in {time.perf_counter() - started:.1f} s; table {size}", flush=True)
            results: dict[str, float] = {}
            with engine.connect() as conn:
                results["unsummarized"], buckets = time_hours(conn, hours, args.repeat)
            with Session(engine) as session, session.begin():
                started = time.perf_counter()
                ranges = summarize_time_index(session)
                summarize_seconds = time.perf_counter() - started
            with engine.connect() as conn:
                results["summarized"], _ = time_hours(conn, hours, args.repeat)
                conn.execute(text("SET enable_bitmapscan = off"))
                results["scan"], _ = time_hours(conn, hours, args.repeat)
        finally:
            engine.dispose()
    print(f"summarized {ranges} page range(s) in {summarize_seconds:.2f} s")
    for state, seconds in results.items():
        print(f"{state:>13}: {seconds * 1000:8.1f} ms per hour read ({buckets} buckets)")
    faster = results["scan"] / results["summarized"]
    print(f"summarized index vs scan: {faster:.1f}x")
    print(f"reproduce: {reproduce_command('bench.time_index', command_options(args))}")
    return 0 if buckets == args.devices else 1


if __name__ == "__main__":
    raise SystemExit(main())
