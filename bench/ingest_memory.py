"""Ingest memory under load and through a database outage, and the time to catch up.

    .venv/bin/python -m bench.ingest_memory --rate 5000 --outage 60

One `python -m ingest` replica writes to a throwaway PostgreSQL database through a TCP proxy while
publisher processes publish QoS1 telemetry (three readings per message) at a steady --rate.
After --warmup seconds the proxy is cut (every connection reset, new ones refused) for --outage
seconds, then restored; publishing goes on throughout. Ingest stops acknowledging while it cannot
write, so the broker (queue limits off) keeps the backlog; afterwards ingest catches up.

Reported: ingest RSS (VmRSS sampled every 100 ms; VmHWM at the end) before, during and after the
outage, the broker's RSS, the backlog at restore, the time from restore until ingest is back to
live, and loss (published - stored distinct messages), which must be 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench._command_line import (
    add_database_url_option,
    add_ingest_env_option,
    add_publisher_options,
    append_json_line,
    benchmark_parser,
    check_ingest_env,
    ingest_settings,
    reproduce_command,
)
from bench._harness import (
    READINGS_PER_MESSAGE,
    IngestReplicas,
    Publishers,
    bench_broker,
    bench_database,
    device_names,
    exit_on_sigterm,
    memory_kb,
    publish_summary,
    scrape_all,
    stored,
)
from devkit.tcp_proxy import TcpProxy, proxied_url

SAMPLE_SECONDS = 0.1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = benchmark_parser("bench.ingest_memory", __doc__)
    parser.add_argument("--rate", type=float, default=5000, help="total publish rate, msg/s")
    add_publisher_options(
        parser, publishers=2, window_help="max_inflight_messages = IOTCARE_INGEST_INFLIGHT_WINDOW"
    )
    parser.add_argument("--warmup", type=float, default=20, help="seconds of load before the cut")
    parser.add_argument("--outage", type=float, default=60, help="seconds the database is cut")
    parser.add_argument(
        "--tail", type=float, default=10, help="seconds of load after ingest caught up"
    )
    parser.add_argument(
        "--max-catch-up", type=float, default=600, help="give up catching up after this long"
    )
    parser.add_argument(
        "--retry-max",
        default="30s",
        help="IOTCARE_INGEST_RETRY_MAX: longest wait between write retries (default: the "
        "product's 30s)",
    )
    add_ingest_env_option(parser)
    add_database_url_option(parser)
    parser.add_argument("--json", type=Path, help="append the result as one JSON line")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1,000 msg/s, 3 s outage, retry max 1s"
    )
    args = parser.parse_args(argv)
    check_ingest_env(parser, args.ingest_env)
    if args.quick:
        args.rate, args.publishers, args.devices = 1000, 2, 100
        args.warmup, args.outage, args.tail, args.retry_max = 3, 3, 2, "1s"
        args.max_catch_up = 120
    return args


def command_options(args: argparse.Namespace) -> list[str]:
    """Every option spelled out, for the command that reproduces the run."""
    options = [
        f"--rate={args.rate:g}",
        f"--publishers={args.publishers}",
        f"--devices={args.devices}",
        f"--window={args.window}",
        f"--protocol={args.protocol}",
        f"--publisher={args.publisher}",
        f"--warmup={args.warmup:g}",
        f"--outage={args.outage:g}",
        f"--tail={args.tail:g}",
        f"--max-catch-up={args.max_catch_up:g}",
        f"--retry-max={args.retry_max}",
    ]
    return options + [f"--ingest-env={item}" for item in args.ingest_env]


class Phases:
    """Peak RSS per phase of the run."""

    def __init__(self) -> None:
        self.peak: dict[str, int] = {}

    def note(self, phase: str, kb: int) -> None:
        self.peak[phase] = max(self.peak.get(phase, 0), kb)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """One run; returns the figures."""
    devices = device_names(args.publishers, args.devices)
    flat = [d for group in devices for d in group]
    extra = ingest_settings(args.ingest_env)
    extra["IOTCARE_INGEST_RETRY_MAX"] = args.retry_max
    record: dict[str, Any] = {"rate_target": args.rate, "outage_seconds": args.outage}
    with bench_database(args.database_url, flat) as db_url:
        target = make_url(db_url)
        proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
        broker = bench_broker(args.window)
        replicas = IngestReplicas(
            1,
            proxied_url(db_url, proxy),
            broker.url,
            args.protocol == "5",
            args.window,
            extra_env=extra,
        )
        publishers = None
        try:
            replicas.create_sessions()
            replicas.start()
            replicas.wait_healthy()
            pid = replicas.pids[0]
            base_ms = int(time.time() * 1000) - 3_600_000
            publishers = Publishers(broker.url, devices, None, args.rate, base_ms, args.publisher)
            publishers.start()
            rss, broker_rss = Phases(), Phases()
            t0 = time.monotonic()
            publishers.release()
            cut_at = args.warmup
            restore_at = args.warmup + args.outage
            phase = "load"
            backlog_at_restore = 0
            caught_up_at: float | None = None
            threshold = max(2 * args.window, args.rate * 0.5)
            received = written = 0
            peak_backlog = 0
            stopped_at: float | None = None
            while True:
                now = time.monotonic() - t0
                if phase == "load" and now >= cut_at:
                    proxy.cut()
                    phase = "outage"
                    print(f"{now:6.1f} s  database cut", flush=True)
                elif phase == "outage" and now >= restore_at:
                    proxy.restore()
                    phase = "catch-up"
                    backlog_at_restore = publishers.progress.value - written // 3
                    print(
                        f"{now:6.1f} s  database restored; backlog {backlog_at_restore:,} messages",
                        flush=True,
                    )
                replicas.check_alive()
                mem = memory_kb(pid)
                if mem:
                    rss.note(phase, mem[0])
                bmem = memory_kb(broker.pid or 0)
                if bmem:
                    broker_rss.note(phase, bmem[0])
                values = scrape_all(replicas.ports[0])
                if values:
                    received, written = int(values["received"]), int(values["written"])
                acked = publishers.progress.value
                backlog = acked - written // READINGS_PER_MESSAGE
                peak_backlog = max(peak_backlog, backlog)
                if phase == "catch-up" and backlog <= threshold:
                    caught_up_at = now
                    phase = "after"
                    print(f"{now:6.1f} s  caught up", flush=True)
                elif phase == "catch-up" and now - restore_at > args.max_catch_up:
                    print(f"{now:6.1f} s  did not catch up; stopping", flush=True)
                    phase = "after"
                if (
                    phase == "after"
                    and stopped_at is None
                    and (caught_up_at is None or now - caught_up_at >= args.tail)
                ):
                    publishers.stop.set()
                    stopped_at = now
                if stopped_at is not None:
                    results = publishers.collect(timeout=0)
                    if results is not None:
                        published = sum(r.published for r in results)
                        # The written-rows counter also counts rows written twice (a batch whose
                        # commit went through just as the proxy cut the connection is retried),
                        # so it may reach the total early: confirm with the table itself.
                        if (
                            written >= published * READINGS_PER_MESSAGE
                            and stored(db_url).messages >= published
                        ):
                            break
                        if now - stopped_at > 120:
                            break
                time.sleep(SAMPLE_SECONDS)
            end_mem = memory_kb(pid)
            replicas.stop()
            results = publishers.collect(timeout=60)
            assert results is not None
            published, acked_total, _started, _finished, pub_rate = publish_summary(results)
            counted = stored(db_url)
            record.update(
                published=published,
                broker_acked=acked_total,
                publish_rate=pub_rate,
                received=received,
                redelivered=max(0, received - published),
                stored_messages=counted.messages,
                stored_readings=counted.readings,
                loss=published - counted.messages,
                extra_rows=counted.readings - published * READINGS_PER_MESSAGE,
                rows_written_twice=max(0, written - counted.readings),
                backlog_at_restore=backlog_at_restore,
                peak_backlog=peak_backlog,
                catch_up_seconds=(caught_up_at - restore_at) if caught_up_at else None,
                rss_mb={k: v / 1024 for k, v in rss.peak.items()},
                hwm_mb=(end_mem[1] / 1024) if end_mem else None,
                broker_rss_mb={k: v / 1024 for k, v in broker_rss.peak.items()},
            )
        finally:
            replicas.cleanup()
            if publishers is not None:
                publishers.close()
            broker.close()
            proxy.close()
    return record


def main(argv: list[str] | None = None) -> int:
    """Run; exit status 0 only when nothing was lost."""
    args = parse_args(argv)
    exit_on_sigterm()
    print(
        f"ingest memory: {args.rate:,.0f} msg/s x {READINGS_PER_MESSAGE} readings, "
        f"{args.publishers} publishers, window {args.window}, MQTT {args.protocol}, "
        f"database cut for {args.outage:g} s after {args.warmup:g} s, "
        f"retry max {args.retry_max}, {os.cpu_count()} cores",
        flush=True,
    )
    record = run(args)
    record.update(
        window=args.window,
        protocol=args.protocol,
        retry_max=args.retry_max,
        at=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    rss = record["rss_mb"]
    print(
        "ingest RSS peak: "
        + ", ".join(f"{phase} {mb:.0f} MB" for phase, mb in rss.items())
        + f"; VmHWM {record['hwm_mb']:.0f} MB"
    )
    print(
        "broker RSS peak: "
        + ", ".join(f"{phase} {mb:.0f} MB" for phase, mb in record["broker_rss_mb"].items())
    )
    catch_up = record["catch_up_seconds"]
    print(
        f"published {record['published']:,} at {record['publish_rate']:,.0f} msg/s; "
        f"backlog at restore {record['backlog_at_restore']:,} messages; caught up "
        + (f"{catch_up:.1f} s after restore" if catch_up is not None else "NEVER")
    )
    print(
        f"loss {record['loss']}  extra rows {record['extra_rows']}  "
        f"redelivered {record['redelivered']}  rows written twice {record['rows_written_twice']}"
    )
    ok = record["loss"] == 0 and record["extra_rows"] == 0 and catch_up is not None
    print(f"zero loss, caught up: {'yes' if ok else 'NO'}")
    print(f"reproduce: {reproduce_command('bench.ingest_memory', command_options(args))}")
    append_json_line(args.json, record)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
