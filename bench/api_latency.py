"""HTTP API latency: the alert list of 1,000 residents; 7 days of one resident's readings.

    cd /work/main && .venv/bin/python -m bench.api_latency

A throwaway PostgreSQL database is created on --database-url, migrated and filled as
bench.dashboard_render fills it (--residents residents over --sites sites, six devices each,
--days days of readings every --interval seconds, hourly rollups, door events, daily reports,
unresolved alerts for 15 % of residents), and then:

* resident 1's readings are replaced by --days days at the simulator's real report periods
  (simulator.simulation.REPORT_EVERY: the wearable's heart rate, SpO2 and body
  temperature every 10 s, bed and motion every minute, the room climate every 5 minutes, the door
  every 10 minutes, batteries every 10 minutes to an hour), and its hourly rollups rebuilt;
* one resolved alert a day per resident over the --days, so the alert list reads a table of
  history as a running home's, not only the open ones;
* an operator and a caregiver (assigned to --caregiver-residents residents of the first site),
  each with an API token (read scope).

The API is then served by `iotcare api` (uvicorn, one worker, as deployed) on a free local port,
and a client on one keep-alive HTTP connection times whole requests as a client sees them
(request sent to body read), --repeat times each after --warmup untimed ones:

1. the alert list (first page, default filter) as the operator (all 1,000 residents) and as the
   caregiver;
2. resident 1's raw readings over the last 7 days: the first page, and every page of the range
   walked by cursor (page size --page); hourly rollups of the 7 days (one page); the first page
   as CSV.

Targets: alert list p99 < 100 ms; a 7-day readings page p99 < 300 ms. The server's per-token rate
limit is raised for the run (IOTCARE_API_RATE_LIMIT), since the benchmark is one busy client.
It exits 1 when a target is missed (--no-fail only reports).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.orm import Session

from bench import dashboard_render
from bench._care_homes import DEVICE_TYPES, device_id
from bench._command_line import (
    ROOT,
    add_database_url_option,
    append_json_line,
    benchmark_parser,
    reproduce_command,
)
from core import schema, users
from core.access import Viewer
from core.api_tokens import issue_token
from core.settings import Settings
from devkit.databases import postgres_database
from devkit.mosquitto import with_parent_death_signal
from devkit.tcp_proxy import free_port
from models import CaregiverAssignment, Role, User
from simulator.simulation import _BATTERY_DEFAULT, BATTERY_EVERY, REPORT_EVERY

log = logging.getLogger("bench.api_latency")

TARGETS_MS = {"alerts": 100.0, "readings": 300.0}
DENSE_RESIDENT = 1
RATE_LIMIT = 1_000_000  # requests a minute: the run must measure the API, not its limiter
# Signs the tokens; made per run, given to the server and to the code issuing the tokens.
SECRET_KEY = secrets.token_urlsafe(48)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = benchmark_parser("bench.api_latency", __doc__)
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--days", type=float, default=7.0, help="days of readings up to now")
    parser.add_argument(
        "--interval",
        type=int,
        default=600,
        help="seconds between the vital-sign readings of every resident but resident 1",
    )
    parser.add_argument("--caregiver-residents", type=int, default=25)
    parser.add_argument("--page", type=int, default=500, help="page size of the readings walk")
    parser.add_argument("--repeat", type=int, default=200, help="timed requests per kind")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per kind first")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-fail", action="store_true", help="exit 0 even when a target is missed"
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="PATH", help="append the figures as a line"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small smoke run (20 residents, 1 day, 20 repeats)",
    )
    add_database_url_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.residents, args.sites, args.days, args.caregiver_residents = 20, 2, 1.0, 5
        args.repeat, args.warmup = 20, 3
    return args


def command_options(args: argparse.Namespace) -> list[str]:
    """Every option spelled out, for the command that reproduces the run."""
    return [
        f"--residents={args.residents}",
        f"--sites={args.sites}",
        f"--days={args.days:g}",
        f"--interval={args.interval}",
        f"--caregiver-residents={args.caregiver_residents}",
        f"--page={args.page}",
        f"--repeat={args.repeat}",
        f"--warmup={args.warmup}",
        f"--seed={args.seed}",
        f"--database-url={args.database_url}",
    ]


# --- the data


def real_steps() -> dict[tuple[str, str], int]:
    """Seconds between readings per (device type, metric), as the simulator reports them."""
    steps = {}
    for kind, metric, _multiple, _value in dashboard_render.SCHEDULE:
        if metric == "battery_pct":
            every = BATTERY_EVERY.get(kind, _BATTERY_DEFAULT)  # type: ignore[call-overload]
        else:
            every = REPORT_EVERY[kind]  # type: ignore[index]
        steps[(kind, metric)] = int(every)
    return steps


def load(engine: Engine, now: datetime, args: argparse.Namespace) -> dict[str, int]:
    """The dashboard benchmark's homes, a dense resident, alert history, two users; row counts."""
    counts = dashboard_render.load(engine, now, args)
    start = now - timedelta(days=args.days)
    dense = [device_id(DENSE_RESIDENT - 1, kind) for kind in DEVICE_TYPES]
    with engine.connect() as conn:
        conn.execute(text("DELETE FROM readings WHERE device_id = ANY(:d)"), {"d": dense})
        conn.execute(text("DELETE FROM rollups WHERE device_id = ANY(:d)"), {"d": dense})
        counts["readings of resident 1"] = dashboard_render.insert_readings(
            conn, start, now, DENSE_RESIDENT, DENSE_RESIDENT, real_steps()
        )
        dashboard_render.insert_hourly_rollups(conn, now, dense)
        result = conn.execute(
            text(
                """
                INSERT INTO alerts (id, kind, severity, status, subject_type, subject_id,
                                    dedupe_key, site_id, resident_id, device_id, title, details,
                                    occurrences, escalation_level, opened_at, last_seen_at,
                                    acknowledged_at, resolved_at)
                SELECT gen_random_uuid(), 'night_exit', 'warning', 'resolved', 'resident',
                       r.id::text, 'history:' || r.id || ':' || g.n, r.site_id, r.id,
                       'r' || lpad(r.id::text, 5, '0') || '-door_sensor',
                       'Door opened at night', '{"local_time": "02:10"}', 1, 0,
                       g.at, g.at, g.at + interval '3 minutes', g.at + interval '20 minutes'
                FROM residents r
                CROSS JOIN LATERAL (
                    SELECT n, CAST(:start AS timestamptz) + n * interval '1 day'
                               + make_interval(secs => (r.id * 7919) % 86400) AS at
                    FROM generate_series(0, :days - 1) AS n) AS g
                WHERE g.at < CAST(:now AS timestamptz)
                """
            ),
            {"start": start, "now": now, "days": max(1, int(args.days))},
        )
        counts["resolved alerts"] = result.rowcount
        conn.commit()
    with Session(engine) as session, session.begin():
        caregiver = users.create_user(
            session,
            username="caregiver",
            password=secrets.token_urlsafe(16),
            role=Role.CAREGIVER,
            display_name="Caregiver",
        )
        session.execute(
            insert(CaregiverAssignment),
            [
                {"user_id": caregiver.id, "resident_id": r}
                for r in range(1, args.residents + 1, args.sites)[: args.caregiver_residents]
            ],
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return counts


def issue_tokens(engine: Engine, settings: Settings) -> dict[str, str]:
    """A read token for the operator and for the caregiver, by username."""
    tokens = {}
    with Session(engine) as session, session.begin():
        for username in ("operator", "caregiver"):
            user = session.scalars(select(User).where(User.username == username)).one()
            viewer = Viewer.of(user)
            issued = issue_token(
                session, settings, viewer, user_id=user.id, name="bench", scopes=["read"]
            )
            tokens[username] = issued.secret
    return tokens


# --- the server


@contextmanager
def api_server(url: str, workdir: str) -> Iterator[str]:
    """`iotcare api` on a free local port against the database at `url`; yields its base URL.

    Its log goes to a file in `workdir` (shown when it fails to start); stopped at the end.
    """
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")},
        "IOTCARE_ENVIRONMENT": "test",
        "IOTCARE_DATABASE_URL": url,
        "IOTCARE_SECRET_KEY": SECRET_KEY,
        "IOTCARE_DATA_DIR": workdir,
        "IOTCARE_API_RATE_LIMIT": str(RATE_LIMIT),
        "PYTHONPATH": str(ROOT),
    }
    log_path = os.path.join(workdir, "api.log")
    with open(log_path, "wb") as log_file:
        command = [sys.executable, "-m", "cli", "api", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(
            with_parent_death_signal(command),
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"iotcare api exited: {Path(log_path).read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/api/openapi.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"iotcare api did not start: {Path(log_path).read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# --- timing


def timed(
    request: Callable[[], httpx.Response], repeat: int, warmup: int
) -> tuple[list[float], httpx.Response]:
    """Milliseconds of each of `repeat` requests (sent to body read) after `warmup` untimed."""
    response = None
    for _ in range(warmup):
        response = request()
        response.raise_for_status()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = request()  # httpx reads the whole body before returning
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    assert response is not None
    return times, response


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of the values (nearest rank), and how many."""
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]

    return {
        "count": len(ordered),
        "p50": rank(0.50),
        "p95": rank(0.95),
        "p99": rank(0.99),
        "max": ordered[-1],
    }


def walk(
    client: httpx.Client, url: str, params: dict[str, Any], headers: dict[str, str]
) -> tuple[list[float], int]:
    """Every page of a range by cursor: each page's milliseconds, and the rows read."""
    times, rows, cursor = [], 0, None
    while True:
        started = time.perf_counter()
        response = client.get(
            url, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers
        )
        body = response.json()
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        rows += len(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return times, rows


def measure(
    base: str, tokens: dict[str, str], now: datetime, args: argparse.Namespace
) -> dict[str, Any]:
    """Every timing of the run, by name."""
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    caregiver = {"Authorization": f"Bearer {tokens['caregiver']}"}
    # The last 7 days up to the load's `now`, which the readings include (the end is exclusive).
    week = {
        "start": (now - timedelta(days=7)).isoformat(),
        "end": (now + timedelta(seconds=1)).isoformat(),
    }
    readings = f"{base}/api/v1/residents/{DENSE_RESIDENT}/readings"
    rollups = f"{base}/api/v1/residents/{DENSE_RESIDENT}/rollups"
    alerts = f"{base}/api/v1/alerts"
    results: dict[str, Any] = {}
    with httpx.Client(timeout=30) as client:

        def run(name: str, url: str, headers: dict[str, str], **params: Any) -> httpx.Response:
            times, response = timed(
                lambda: client.get(url, params=params, headers=headers), args.repeat, args.warmup
            )
            results[name] = percentiles(times)
            return response

        first = run("alerts, operator", alerts, operator)
        results["alerts, operator"]["items"] = len(first.json()["items"])
        unresolved = run(
            "alerts, operator, unresolved", alerts, operator, status=["open", "acknowledged"]
        )
        results["alerts, operator, unresolved"]["items"] = len(unresolved.json()["items"])
        mine = run("alerts, caregiver", alerts, caregiver)
        results["alerts, caregiver"]["items"] = len(mine.json()["items"])
        page = run("readings 7 d, first page", readings, operator, limit=args.page, **week)
        results["readings 7 d, first page"]["items"] = len(page.json()["items"])
        csv_name = "readings 7 d, first page as CSV"
        csv_page = run(csv_name, readings, operator, limit=args.page, format="csv", **week)
        results[csv_name]["bytes"] = len(csv_page.content)
        hourly = run("rollups 7 d, hourly", rollups, operator, limit=args.page, **week)
        results["rollups 7 d, hourly"]["items"] = len(hourly.json()["items"])
        started = time.perf_counter()
        times, rows = walk(client, readings, {"limit": args.page, **week}, operator)
        results["readings 7 d, every page"] = {
            **percentiles(times),
            "rows": rows,
            "total_ms": (time.perf_counter() - started) * 1000,
        }
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the data, serve the API on it, time the requests; the figures."""
    now = datetime.now(UTC).replace(microsecond=0)
    with (
        postgres_database(args.database_url, "iotcare_bench_api") as url,
        tempfile.TemporaryDirectory(prefix="iotcare-bench-api-") as workdir,
    ):
        engine = create_engine(url)
        try:
            schema.upgrade(engine)
            started = time.perf_counter()
            counts = load(engine, now, args)
            print(
                "loaded "
                + ", ".join(f"{n:,} {what}" for what, n in counts.items())
                + f" ({args.days:g} days up to {now:%Y-%m-%d %H:%M} UTC) in "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                environment="test",
                database_url=url,
                secret_key=SECRET_KEY,
                data_dir=workdir,
            )
            tokens = issue_tokens(engine, settings)
        finally:
            engine.dispose()
        with api_server(url, workdir) as base:
            timings = measure(base, tokens, now, args)
    return {"counts": counts, "timings": timings}


def line(name: str, figures: dict[str, Any]) -> str:
    """One result: percentiles and what the response held."""
    extra = ", ".join(
        f"{figures[key]:,} {key}" for key in ("items", "rows", "bytes") if key in figures
    )
    return (
        f"  {name + ':':36} p50 {figures['p50']:6.1f} ms  p95 {figures['p95']:6.1f} ms  "
        f"p99 {figures['p99']:6.1f} ms  max {figures['max']:6.1f} ms  "
        f"({figures['count']} requests{', ' + extra if extra else ''})"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures; exit 1 when a target is missed."""
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    figures = run(args)
    timings = figures["timings"]
    print(f"\nHTTP API on uvicorn, one keep-alive connection, {args.residents} residents:")
    for name, values in timings.items():
        print(line(name, values))
    walk_figures = timings["readings 7 d, every page"]
    print(
        f"  the whole 7 days of resident 1: {walk_figures['rows']:,} readings in "
        f"{walk_figures['count']} pages of {args.page}, {walk_figures['total_ms'] / 1000:.1f} s"
    )
    alerts_p99 = max(timings[n]["p99"] for n in timings if n.startswith("alerts"))
    readings_p99 = max(
        timings[n]["p99"] for n in ("readings 7 d, first page", "readings 7 d, every page")
    )
    ok = alerts_p99 < TARGETS_MS["alerts"] and readings_p99 < TARGETS_MS["readings"]
    print(
        f"targets: alert list p99 < {TARGETS_MS['alerts']:g} ms ({alerts_p99:.1f}), 7-day "
        f"readings page p99 < {TARGETS_MS['readings']:g} ms ({readings_p99:.1f}): "
        f"{'met' if ok else 'MISSED'}"
    )
    if args.json is not None:
        append_json_line(
            args.json,
            {"options": command_options(args), "now": datetime.now(UTC).isoformat(), **figures},
        )
    print(f"reproduce: {reproduce_command('bench.api_latency', command_options(args))}")
    return 0 if ok or args.no_fail else 1


if __name__ == "__main__":
    sys.exit(main())
