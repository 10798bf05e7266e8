"""Data-quality validation of one hour: 6,000 devices every 10 s (~2.2 M readings) on PostgreSQL.

    .venv/bin/python -m bench.quality_hour --devices 6000 --interval 10

The same throwaway database and data as bench.rollup_hour (registered devices, one hour of
readings loaded with COPY, --extra-hours before it), then expectations.runner.validate_window
runs the three suites (readings pushed down to PostgreSQL as SQL; device freshness and
dead-letter rate on small frames) over the hour and builds Data Docs into a temporary
directory, --repeat times. The data is clean, so every suite must pass. Peak memory is this
process's ru_maxrss (data generated in a child process; database server not included). The
database is dropped at the end. Target: under 30 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench._command_line import benchmark_parser, reproduce_command
from bench._harness import bench_database
from bench.rollup_hour import (
    add_data_options,
    bench_hour,
    data_options,
    device_ids,
    load_in_child,
    peak_memory_report,
)
from expectations.runner import QualityParams, validate_window

TARGET_SECONDS = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = benchmark_parser("bench.quality_hour", __doc__)
    add_data_options(parser)
    parser.add_argument("--repeat", type=int, default=2, help="validations of the same hour")
    return parser.parse_args(argv)


def command_options(args: argparse.Namespace) -> list[str]:
    """Every option spelled out, for the command that reproduces the run."""
    return [*data_options(args), f"--repeat={args.repeat}"]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 0 when every run met the target and every suite passed."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    devices = device_ids(args.devices)
    hour = bench_hour()
    print(
        f"data-quality validation of one hour: {args.devices:,} devices every "
        f"{args.interval:g} s, {args.extra_hours} extra hour(s) in the table, "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    timings: list[float] = []
    passed = True
    with bench_database(args.database_url, devices) as url, tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(url)
        try:
            rows, load_seconds = load_in_child(url, hour, args)
            print(f"loaded {rows:,} readings in the hour in {load_seconds:.1f} s", flush=True)
            # Validated just after the hour, so every device is fresh and nothing is "future".
            now = hour + timedelta(hours=1, minutes=5)
            for repetition in range(1, args.repeat + 1):
                started = time.perf_counter()
                with Session(engine) as session:
                    results = validate_window(
                        session,
                        url,
                        hour,
                        hour + timedelta(hours=1),
                        params=QualityParams(),
                        docs=Path(tmp) / "data-docs",
                        now=now,
                    )
                timings.append(time.perf_counter() - started)
                suites = ", ".join(
                    f"{r.suite} {'passed' if r.success else 'FAILED'} "
                    f"({(r.finished_at - r.started_at).total_seconds():.1f} s)"
                    for r in results
                )
                passed = passed and all(r.success for r in results)
                print(f"[{repetition}/{args.repeat}] {timings[-1]:.2f} s: {suites}", flush=True)
                for result in results:
                    for check in result.failed_checks:
                        print(f"    failed {result.suite}/{check.check}: {check.sample[:3]}")
        finally:
            engine.dispose()
    ok = max(timings) < TARGET_SECONDS and passed
    print(
        f"validation of {rows:,} readings (3 suites, Data Docs built): first run "
        f"{timings[0]:.2f} s, median of {len(timings)} {statistics.median(timings):.2f} s; "
        f"target < {TARGET_SECONDS:.0f} s: {'met' if ok else 'NOT met'}"
    )
    print(peak_memory_report())
    print(f"reproduce: {reproduce_command('bench.quality_hour', command_options(args))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
