"""Ingest throughput: the ingest service against a no-op subscriber, in the same run.

    .venv/bin/python -m bench.ingest_throughput --messages 300000 --window 1000

Each repetition runs two phases on a fresh private Mosquitto (queue limits off, so it never drops;
max_inflight_messages = --window) and a throwaway PostgreSQL database:

  noop    a paho subscriber in its own process: persistent session, manual ack, same protocol and
          filters as ingest; it counts each message and acknowledges it at once.
  ingest  `python -m ingest` replica(s), configured through IOTCARE_* variables, writing every
          reading to PostgreSQL and acknowledging only after the write committed.

Modes:
  live   publisher processes (paho, QoS1, MQTT 3.1.1) publish --messages while the consumer runs.
         The consumer's rate is capped by the publishers' (both share the 2 cores); the report
         says when the consumer merely kept pace.
  drain  the messages are queued in the broker for the consumer's persistent session first;
         then the consumer starts and drains them: its own throughput, without publishers.

The consumer's rate runs from its first message received to its last message durably written
(ingest: /metrics polled every 50 ms; no-op: its own clock), so process start-up is excluded.
Loss = published - stored (distinct device and timestamp; every message has its own), and must
be 0. Each message carries three readings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

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
    POLL_SECONDS,
    READINGS_PER_MESSAGE,
    CpuSnapshot,
    IngestReplicas,
    NoopSubscriber,
    Publishers,
    bench_broker,
    bench_database,
    cpu_split,
    device_names,
    exit_on_sigterm,
    format_split,
    median,
    peak_memory_kb,
    publish_summary,
    reset_database,
    stored,
)

STALL_SECONDS = 30.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    parser = benchmark_parser("bench.ingest_throughput", __doc__)
    parser.add_argument("--messages", type=int, default=300_000, help="messages per phase (N)")
    add_publisher_options(
        parser,
        publishers=3,
        window_help="Mosquitto max_inflight_messages = IOTCARE_INGEST_INFLIGHT_WINDOW (Mosquitto's "
        "and the setting's default is 20; the shipped broker config uses 1000)",
    )
    parser.add_argument("--replicas", type=int, default=1, help="ingest replicas (shared group)")
    parser.add_argument("--mode", choices=("live", "drain"), default="live")
    parser.add_argument(
        "--consumers", default="noop,ingest", help="phases to run: noop, ingest or both"
    )
    parser.add_argument(
        "--rate", type=float, default=0, help="total publish rate, msg/s (0: as fast as possible)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="repetitions; medians reported")
    add_ingest_env_option(parser)
    add_database_url_option(parser)
    parser.add_argument("--json", type=Path, help="append one JSON line per run to this file")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 3,000 messages, 2 publishers, 1 repeat"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.publishers, args.devices, args.repeat = 3000, 2, 100, 1
    args.consumers = [c.strip() for c in args.consumers.split(",") if c.strip()]
    if not set(args.consumers) <= {"noop", "ingest"} or not args.consumers:
        parser.error("--consumers takes noop, ingest or noop,ingest")
    check_ingest_env(parser, args.ingest_env)
    return args


def command_options(args: argparse.Namespace) -> list[str]:
    """Every option spelled out, for the command that reproduces the run."""
    options = [
        f"--mode={args.mode}",
        f"--messages={args.messages}",
        f"--publishers={args.publishers}",
        f"--devices={args.devices}",
        f"--window={args.window}",
        f"--protocol={args.protocol}",
        f"--publisher={args.publisher}",
        f"--replicas={args.replicas}",
        f"--consumers={','.join(args.consumers)}",
        f"--rate={args.rate:g}",
        f"--repeat={args.repeat}",
    ]
    return options + [f"--ingest-env={item}" for item in args.ingest_env]


# --- one phase


def _publish(args: argparse.Namespace, url: str, devices: list[list[str]]) -> Publishers:
    base_ms = int(time.time() * 1000) - 3_600_000
    publishers = Publishers(url, devices, args.messages, args.rate, base_ms, args.publisher)
    publishers.start()
    return publishers


def _prequeue(publishers: Publishers) -> None:
    """Drain mode: publish every message into the consumer's session before it starts."""
    publishers.release()
    if publishers.collect(timeout=600) is None:
        raise RuntimeError("pre-queueing did not finish")


def _finish_record(
    record: dict[str, Any],
    publishers: Publishers,
    consumer_done: float | None,
    args: argparse.Namespace,
) -> None:
    results = publishers.collect(timeout=600)
    assert results is not None, "publishers did not finish"
    published, acked, _started, finished, pub_rate = publish_summary(results)
    record.update(published=published, broker_acked=acked)
    if args.mode == "live":
        record["publish_rate"] = pub_rate
        # The consumer finished within 0.5 s (or 5 %) of the last publish: it kept pace, so its
        # rate is the publishers' rate and its own capacity may be higher.
        seconds = record.get("seconds") or 0
        record["publisher_bound"] = bool(
            consumer_done is not None
            and consumer_done - finished <= max(0.5, 0.05 * seconds)
            and record.get("loss") == 0
        )
    else:
        record["prequeue_rate"] = pub_rate


def run_noop(args: argparse.Namespace, devices: list[list[str]]) -> dict[str, Any]:
    """The no-op subscriber phase."""
    record: dict[str, Any] = {"consumer": "noop"}
    broker = bench_broker(args.window)
    noop = NoopSubscriber(broker.url, args.protocol == "5", args.window, shared=True)
    publishers = None
    try:
        noop.create_session()
        publishers = _publish(args, broker.url, devices)
        if args.mode == "drain":
            _prequeue(publishers)
            noop.start(args.messages, wait_ready=False)
            pub_pids: list[int] = []
        else:
            noop.start(args.messages, wait_ready=True)
            pub_pids = publishers.pids
            publishers.release()
        groups = {"noop": [noop.pid or 0], "broker": [broker.pid or 0], "publishers": pub_pids}
        start = CpuSnapshot.take(groups)
        report = None
        peak_rss = 0
        last_progress, last_count = time.monotonic(), -1
        while report is None:
            report = noop.poll()
            if report is None:
                time.sleep(POLL_SECONDS)
                peak_rss = max(peak_rss, peak_memory_kb([noop.pid or 0]))
                count = noop.progress.value
                if count != last_count:
                    last_count, last_progress = count, time.monotonic()
                elif time.monotonic() - last_progress > STALL_SECONDS and (
                    args.mode == "drain" or publishers.collect(timeout=0) is not None
                ):
                    noop.stop.set()  # it reports what it got
        end = CpuSnapshot.take(groups)
        seconds = report["last"] - report["first"] if report["received"] else 0.0
        received = report["received"]
        record.update(
            received=received,
            seconds=seconds,
            rate=received / seconds if seconds > 0 else 0.0,
            loss=args.messages - min(received, args.messages),
            duplicates=max(0, received - args.messages),
            peak_rss_mb=peak_rss / 1024,
            cpu=cpu_split(start, end),
        )
        _finish_record(record, publishers, report["last"], args)
        # Stopped on its own when all messages arrived: only a stall stops it earlier.
    finally:
        noop.close()
        if publishers is not None:
            publishers.close()
        broker.close()
    return record


def run_ingest(args: argparse.Namespace, devices: list[list[str]], db_url: str) -> dict[str, Any]:
    """The ingest phase."""
    record: dict[str, Any] = {"consumer": "ingest"}
    reset_database(db_url)
    broker = bench_broker(args.window)
    replicas = IngestReplicas(
        args.replicas,
        db_url,
        broker.url,
        args.protocol == "5",
        args.window,
        extra_env=ingest_settings(args.ingest_env),
    )
    publishers = None
    expected = args.messages * READINGS_PER_MESSAGE
    try:
        replicas.create_sessions()
        publishers = _publish(args, broker.url, devices)
        if args.mode == "drain":
            _prequeue(publishers)
            replicas.start()
        else:
            replicas.start()
            replicas.wait_healthy()
            publishers.release()
        groups = {
            "ingest": replicas.pids,
            "broker": [broker.pid or 0],
            "publishers": publishers.pids if args.mode == "live" else [],
        }
        first_at: float | None = None
        first_written = 0
        last_zero: float | None = None
        done_at: float | None = None
        start = end = None
        last_progress, last_written = time.monotonic(), -1
        peak_rss = 0
        received = written = 0
        while True:
            replicas.check_alive()
            totals = replicas.totals()
            now = time.time()
            peak_rss = max(peak_rss, peak_memory_kb(replicas.pids))
            if totals is None:  # still starting
                time.sleep(POLL_SECONDS)
                continue
            received, written = totals
            if first_at is None:
                if received == 0:
                    last_zero = now
                else:
                    # The last poll that saw nothing, if there was one: never shortens the run.
                    first_at = last_zero if last_zero is not None else now
                    first_written = 0 if last_zero is not None else written
                    start = CpuSnapshot.take(groups)
            if written >= expected:
                done_at = now
                end = CpuSnapshot.take(groups)
                break
            if written != last_written:
                last_written, last_progress = written, time.monotonic()
            elif time.monotonic() - last_progress > STALL_SECONDS and (
                args.mode == "drain" or publishers.collect(timeout=0) is not None
            ):
                end = CpuSnapshot.take(groups)
                break
            time.sleep(POLL_SECONDS)
        peak_rss = max(peak_rss, peak_memory_kb(replicas.pids))
        batches, write_seconds = replicas.batch_stats()
        replicas.stop()
        seconds = (done_at or time.time()) - (first_at or time.time())
        counted = stored(db_url)
        record.update(
            received=received,
            written_readings=written,
            seconds=seconds,
            rate=(written - first_written) / READINGS_PER_MESSAGE / seconds if seconds > 0 else 0,
            stored_readings=counted.readings,
            stored_messages=counted.messages,
            loss=args.messages - counted.messages,
            extra_rows=counted.readings - expected,
            redelivered=max(0, received - args.messages),
            dead_letters=counted.dead_letters,
            quarantined=counted.quarantined,
            peak_rss_mb=peak_rss / 1024,
            batches=batches,
            messages_per_batch=counted.messages / batches if batches else 0.0,
            write_seconds=write_seconds,
            cpu=cpu_split(start, end) if start and end else {},
        )
        _finish_record(record, publishers, done_at, args)
    finally:
        replicas.cleanup()
        if publishers is not None:
            publishers.close()
        broker.close()
    return record


# --- reporting


def describe(record: dict[str, Any]) -> str:
    """One run in a line."""
    rate = record.get("rate", 0.0)
    text = (
        f"{record['consumer']:6} {rate:9,.0f} msg/s {rate * READINGS_PER_MESSAGE:10,.0f} "
        f"readings/s  {record.get('seconds', 0):6.2f} s  loss {record.get('loss')}"
    )
    if record["consumer"] == "ingest":
        text += (
            f"  extra rows {record.get('extra_rows')}  redelivered {record.get('redelivered')}"
            f"  dead letters {record.get('dead_letters')}  quarantined {record.get('quarantined')}"
        )
    else:
        text += f"  duplicates {record.get('duplicates')}"
    text += f"  peak RSS {record.get('peak_rss_mb', 0):.0f} MB"
    if record.get("batches"):
        text += (
            f"\n         {record['batches']} batches of "
            f"{record['messages_per_batch']:.0f} messages on average, "
            f"{record['write_seconds']:.1f} s writing "
            f"({record['write_seconds'] / record['batches'] * 1000:.1f} ms each)"
        )
    if "publish_rate" in record:
        text += f"  publishers {record['publish_rate']:,.0f} msg/s"
        if record.get("publisher_bound"):
            text += " (PUBLISHER-BOUND: consumer kept pace)"
    elif "prequeue_rate" in record:
        text += f"  (pre-queued at {record['prequeue_rate']:,.0f} msg/s)"
    text += f"\n         CPU (cores): {format_split(record.get('cpu', {}))}"
    return text


def summary(args: argparse.Namespace, runs: list[dict[str, Any]]) -> tuple[str, bool]:
    """Medians over repetitions, the ratio, and whether every run was lossless."""
    lines = []
    ok = True
    medians: dict[str, float | None] = {}
    for consumer in args.consumers:
        mine = [r for r in runs if r["consumer"] == consumer]
        rate = median([r["rate"] for r in mine])
        medians[consumer] = rate
        losses = [r["loss"] for r in mine]
        dup = [r.get("duplicates", 0) + r.get("extra_rows", 0) for r in mine]
        ok = ok and all(x == 0 for x in losses) and all(x == 0 for x in dup)
        rss = median([r.get("peak_rss_mb") for r in mine])
        pub = median([r.get("publish_rate") for r in mine])
        bound = sum(1 for r in mine if r.get("publisher_bound"))
        line = (
            f"{consumer:6} median {rate or 0:9,.0f} msg/s  {(rate or 0) * 3:10,.0f} readings/s  "
            f"runs {len(mine)}  loss {losses}  duplicates/extra rows {dup}  "
            f"peak RSS {rss or 0:.0f} MB"
        )
        if pub is not None:
            line += f"  publishers {pub:,.0f} msg/s"
            if bound:
                line += f"  publisher-bound in {bound}/{len(mine)} runs"
        lines.append(line)
    if medians.get("noop") and medians.get("ingest") is not None:
        ratio = (medians["ingest"] or 0) / medians["noop"]  # type: ignore[operator]
        lines.append(f"ratio ingest/no-op: {ratio:.2f}")
    lines.append(f"zero loss, no duplicates: {'yes' if ok else 'NO'}")
    return "\n".join(lines), ok


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit status 0 only when nothing was lost or duplicated."""
    args = parse_args(argv)
    exit_on_sigterm()
    devices = device_names(args.publishers, args.devices)
    flat = [d for group in devices for d in group]
    print(
        f"ingest throughput: mode {args.mode}, {args.messages:,} messages x "
        f"{READINGS_PER_MESSAGE} readings, {args.publishers} publishers, {len(flat)} devices, "
        f"window {args.window}, MQTT {args.protocol}, {args.replicas} replica(s), "
        f"{os.cpu_count()} cores",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    with bench_database(args.database_url, flat) as db_url:
        for repetition in range(1, args.repeat + 1):
            for consumer in args.consumers:
                if consumer == "noop":
                    record = run_noop(args, devices)
                else:
                    record = run_ingest(args, devices, db_url)
                record.update(
                    repetition=repetition,
                    mode=args.mode,
                    messages=args.messages,
                    window=args.window,
                    protocol=args.protocol,
                    replicas=args.replicas if consumer == "ingest" else 1,
                    publishers=args.publishers,
                    rate_limit=args.rate,
                    ingest_env=args.ingest_env,
                    at=time.strftime("%Y-%m-%dT%H:%M:%S"),
                )
                runs.append(record)
                print(f"[{repetition}/{args.repeat}] {describe(record)}", flush=True)
                append_json_line(args.json, record)
    text, ok = summary(args, runs)
    print(text)
    print(f"reproduce: {reproduce_command('bench.ingest_throughput', command_options(args))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
