"""Dashboard render: the overview for 1,000 residents / 6,000 devices; a resident with 7 days.

    .venv/bin/python -m bench.dashboard_render

A throwaway PostgreSQL database is created on --database-url, migrated and filled in SQL
(generate_series, one INSERT ... SELECT per device type and block of residents):

* --residents residents over --sites sites (Asia/Seoul, UTC, America/New_York), six devices
  each (wearable, bed, motion, door, environment, panic button); an operator;
* --days days of raw readings up to now, every --interval seconds for the wearable's heart rate,
  SpO2 and body temperature, the bed's occupancy and heart rate, and motion; every 1.5 x
  --interval for the room climate (temperature, humidity, CO2), every 3 x --interval for doors,
  every 6 h for batteries (the retention default keeps 30 days of raw readings);
* hourly rollups of all of it (count/min/max/mean, INSERT ... SELECT ... GROUP BY, no p95);
* 8 door openings a day per resident (events); unresolved alerts: 3 % of residents an open
  critical one, 2 % an acknowledged critical one, 10 % a warning; 2 % of devices offline, 1 %
  low on battery; a daily care report per resident and day.

Then, each --repeat times after one warm-up run, two kinds of timing:

1. "queries + figures": core.use_cases.overview.resident_overview as the operator (all
   residents); and for the resident page resident_choices, resident_profile, day_timeline (today),
   vitals_series (7 days: hourly rollups), daily_reports (14 days) plus building the three plotly
   figures and serialising them to JSON as st.plotly_chart does (plotly.io.to_json, no
   validation).
2. "page (AppTest)": the whole Streamlit script run server-side by streamlit.testing AppTest,
   signed in as the operator: the app shell (session check, navigation) and the page, rendering
   elements into protobuf messages; the overview (first 30 of the 1,000 cards) and the resident
   page (?resident=<id>, 7-day range). Browser rendering and the network are not included.

Figures are the median of the repeats. Targets: overview < 1 s, resident page < 0.5 s.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, insert, text
from sqlalchemy.orm import Session

from bench._care_homes import DEVICE_TYPES, device_id, site_rows
from bench._command_line import ROOT, add_database_url_option, benchmark_parser, reproduce_command
from core import schema, users
from core.access import Viewer
from devkit.databases import postgres_database
from models import (
    Alert,
    AlertStatus,
    Device,
    DeviceStatus,
    Resident,
    Role,
    RuleKind,
    Severity,
    Site,
)

log = logging.getLogger("bench.dashboard_render")

TARGETS = {"overview": 1.0, "resident": 0.5}
APP = ROOT / "dashboards" / "streamlit_app.py"
VIEWER_KEY = "iotcare.viewer"
SIGNED_IN_AT_KEY = "iotcare.signed_in_at"
BLOCK = 100  # residents per INSERT ... SELECT of readings

# (device type, metric, step as a multiple of --interval or, negative, in seconds, SQL value)
# The values follow a daily rhythm from the reading's hour (UTC) plus noise.
_HOUR = "extract(hour from g.ts)"
SCHEDULE: tuple[tuple[str, str, float, str], ...] = (
    ("wearable", "heart_rate", 1, f"68 + 8 * sin({_HOUR} / 3.8) + random() * 8"),
    ("wearable", "spo2", 1, "95 + random() * 4"),
    ("wearable", "body_temp_c", 1, f"36.3 + 0.3 * sin({_HOUR} / 3.8) + random() * 0.4"),
    ("wearable", "battery_pct", -21600, "40 + random() * 60"),
    ("bed_sensor", "bed_occupied", 1, f"CASE WHEN {_HOUR} BETWEEN 13 AND 21 THEN 1 ELSE 0 END"),
    ("bed_sensor", "heart_rate", 1, "58 + random() * 10"),
    ("bed_sensor", "battery_pct", -21600, "40 + random() * 60"),
    ("motion_sensor", "motion", 1, "CASE WHEN random() < 0.4 THEN 1 ELSE 0 END"),
    ("motion_sensor", "battery_pct", -21600, "40 + random() * 60"),
    ("door_sensor", "door_open", 3, "CASE WHEN random() < 0.05 THEN 1 ELSE 0 END"),
    ("door_sensor", "battery_pct", -21600, "40 + random() * 60"),
    ("env_sensor", "temperature_c", 1.5, "21 + random() * 4"),
    ("env_sensor", "humidity_pct", 1.5, "35 + random() * 20"),
    ("env_sensor", "co2_ppm", 1.5, "450 + random() * 600"),
    ("env_sensor", "battery_pct", -21600, "40 + random() * 60"),
    ("panic_button", "battery_pct", -21600, "40 + random() * 60"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = benchmark_parser("bench.dashboard_render", __doc__)
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--days", type=float, default=30.0, help="days of readings up to now")
    parser.add_argument(
        "--interval", type=int, default=600, help="seconds between vital-sign readings"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help="a small smoke run (20 residents, 1 day, 2 repeats)"
    )
    add_database_url_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.residents, args.sites, args.days, args.repeat = 20, 2, 1.0, 2
    return args


def command_options(args: argparse.Namespace) -> list[str]:
    """Every option spelled out, for the command that reproduces the run."""
    return [
        f"--residents={args.residents}",
        f"--sites={args.sites}",
        f"--days={args.days:g}",
        f"--interval={args.interval}",
        f"--repeat={args.repeat}",
        f"--seed={args.seed}",
        f"--database-url={args.database_url}",
    ]


# --- the data


def _step(multiple: float, interval: int) -> int:
    return int(-multiple) if multiple < 0 else max(1, int(multiple * interval))


def insert_readings(
    conn: Connection,
    start: datetime,
    now: datetime,
    first: int,
    last: int,
    steps: dict[tuple[str, str], int],
) -> int:
    """Readings of residents `first`..`last` (ids) in [start, now], every SCHEDULE metric of
    their devices each steps[(device type, metric)] seconds; returns how many."""
    readings = 0
    for kind, metric, _multiple, value in SCHEDULE:
        # Each device starts at its own offset in the first step, as real ones do.
        result = conn.execute(
            text(
                f"""
                INSERT INTO readings (device_id, metric, ts, value)
                SELECT d.id, :metric, g.ts, {value}
                FROM devices d
                CROSS JOIN LATERAL generate_series(
                    CAST(:start AS timestamptz)
                        + make_interval(secs => abs(hashtext(d.id)) % :step),
                    CAST(:now AS timestamptz), make_interval(secs => :step)) AS g(ts)
                WHERE d.type = :kind AND d.resident_id BETWEEN :first AND :last
                """
            ),
            {
                "start": start,
                "now": now,
                "metric": metric,
                "step": steps[(kind, metric)],
                "kind": kind,
                "first": first,
                "last": last,
            },
        )
        readings += result.rowcount
    return readings


def insert_hourly_rollups(
    conn: Connection, now: datetime, device_ids: list[str] | None = None
) -> int:
    """Hourly rollups of the readings before now's hour (of `device_ids`, None: all); how many."""
    only = "" if device_ids is None else "AND device_id = ANY(:devices)"
    result = conn.execute(
        text(
            f"""
            INSERT INTO rollups (device_id, metric, period, bucket, count, min, max, mean,
                                 updated_at)
            SELECT device_id, metric, 'hour', date_trunc('hour', ts, 'UTC'), count(*),
                   min(value), max(value), avg(value), :now
            FROM readings
            WHERE ts < date_trunc('hour', CAST(:now AS timestamptz), 'UTC') {only}
            GROUP BY device_id, metric, date_trunc('hour', ts, 'UTC')
            """
        ),
        {"now": now, "devices": device_ids},
    )
    return result.rowcount


def load(engine: Engine, now: datetime, args: argparse.Namespace) -> dict[str, int]:
    """Registry, readings, rollups, events, alerts, reports; returns row counts."""
    sites = site_rows(args.sites)
    residents = [
        {
            "id": r + 1,
            "site_id": sites[r % args.sites]["id"],
            "name": f"Resident {r + 1:04d}",
            "room": str(100 + r),
            "active": True,
        }
        for r in range(args.residents)
    ]
    devices = []
    for r, resident in enumerate(residents):
        for k, kind in enumerate(DEVICE_TYPES):
            n = r * len(DEVICE_TYPES) + k
            devices.append(
                {
                    "id": device_id(r, kind),
                    "site_id": resident["site_id"],
                    "resident_id": resident["id"],
                    "type": kind,
                    "room": resident["room"],
                    "status": DeviceStatus.OFFLINE if n % 50 == 7 else DeviceStatus.ONLINE,
                    "last_seen": now - timedelta(seconds=30),
                    "battery": 9 if n % 100 == 3 else 80,
                    "quarantined": False,
                }
            )
    alerts = []
    for r, resident in enumerate(residents):
        kind = r % 100
        if kind < 3:
            severity, status = Severity.CRITICAL, AlertStatus.OPEN
        elif kind < 5:
            severity, status = Severity.CRITICAL, AlertStatus.ACKNOWLEDGED
        elif kind < 15:
            severity, status = Severity.WARNING, AlertStatus.OPEN
        else:
            continue
        opened = now - timedelta(minutes=5 + r % 50)
        alerts.append(
            {
                "id": uuid.uuid4(),
                "kind": RuleKind.EVENT if severity is Severity.CRITICAL else RuleKind.NIGHT_EXIT,
                "severity": severity,
                "status": status,
                "subject_type": "resident",
                "subject_id": str(resident["id"]),
                "dedupe_key": f"bench:{resident['id']}",
                "site_id": resident["site_id"],
                "resident_id": resident["id"],
                "device_id": device_id(r, "door_sensor"),
                "title": "Fall" if severity is Severity.CRITICAL else "Door opened at night",
                "details": {"event_type": "fall_detected"}
                if severity is Severity.CRITICAL
                else {"local_time": "02:10"},
                "opened_at": opened,
                "last_seen_at": opened,
                "acknowledged_at": opened if status is AlertStatus.ACKNOWLEDGED else None,
            }
        )
    counts: dict[str, int] = {}
    start = now - timedelta(days=args.days)
    with Session(engine) as session, session.begin():
        session.execute(insert(Site), sites)
        session.execute(insert(Resident), residents)
        session.execute(insert(Device), devices)
        session.execute(insert(Alert), alerts)
        users.create_user(
            session,
            username="operator",
            password=secrets.token_urlsafe(16),
            role=Role.OPERATOR,
            display_name="Operator",
            site_id=sites[0]["id"],
        )
    counts.update(residents=len(residents), devices=len(devices), alerts=len(alerts))
    params = {"start": start, "now": now}
    readings = 0
    with engine.connect() as conn:
        conn.execute(text("SELECT setseed(:s)"), {"s": (args.seed % 1000) / 1000})
        for first in range(1, args.residents + 1, BLOCK):
            last = min(args.residents, first + BLOCK - 1)
            steps = {
                (kind, metric): _step(multiple, args.interval)
                for kind, metric, multiple, _ in SCHEDULE
            }
            readings += insert_readings(conn, start, now, first, last, steps)
            conn.commit()
            print(f"  readings of residents {first}-{last}: {readings:,} so far", flush=True)
        counts["readings"] = readings
        counts["hourly rollups"] = insert_hourly_rollups(conn, now)
        result = conn.execute(
            text(
                """
                INSERT INTO events (device_id, site_id, resident_id, type, ts, data, received_at)
                SELECT d.id, d.site_id, d.resident_id, 'door_opened', g.ts, '{}', g.ts
                FROM devices d
                CROSS JOIN LATERAL generate_series(
                    CAST(:start AS timestamptz)
                        + make_interval(secs => abs(hashtext(d.id)) % 10800),
                    CAST(:now AS timestamptz), interval '3 hours') AS g(ts)
                WHERE d.type = 'door_sensor'
                """
            ),
            params,
        )
        counts["events"] = result.rowcount
        result = conn.execute(
            text(
                """
                INSERT INTO care_reports (resident_id, day, data, generated_at)
                SELECT r.id, g.day::date, jsonb_build_object(
                    'sleep', jsonb_build_object(
                        'in_bed_minutes', round((380 + random() * 120)::numeric, 1),
                        'times_up', floor(random() * 4)),
                    'activity', jsonb_build_object('motion_total', floor(200 + random() * 300),
                                                   'active_hours', floor(8 + random() * 6)),
                    'night_doors', jsonb_build_object('count', floor(random() * 3)),
                    'alerts', jsonb_build_object('count', floor(random() * 2)),
                    'vitals', jsonb_build_object('heart_rate', jsonb_build_object('mean', 70))),
                    CAST(:now AS timestamptz)
                FROM residents r
                CROSS JOIN generate_series(CAST(:start AS timestamptz), CAST(:now AS timestamptz)
                                           - interval '1 day', interval '1 day') AS g(day)
                """
            ),
            params,
        )
        counts["care reports"] = result.rowcount
        conn.commit()
    # Statistics as a running database would have them (autovacuum / a periodic ANALYZE).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return counts


# --- timing


def timed(function: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Seconds of each of `repeat` calls after one warm-up call, and the last result."""
    result = function()
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def query_timings(engine: Engine, viewer: Viewer, resident_id: int, repeat: int) -> dict[str, Any]:
    """The core query functions and the page's figures, without Streamlit."""
    import plotly.io

    from core.i18n import translator
    from core.rules.describe import metric_name
    from core.use_cases.overview import resident_overview
    from core.use_cases.resident import (
        daily_reports,
        day_timeline,
        local_today,
        resident_choices,
        resident_profile,
        vitals_series,
    )
    from dashboards.components.charts import reports_figure, timeline_figure, vitals_figure

    t = translator("en")

    def overview() -> Any:
        with Session(engine) as session:
            return resident_overview(session, viewer)

    def resident() -> tuple[int, int]:
        with Session(engine) as session:
            resident_choices(session, viewer)
            profile = resident_profile(session, viewer, resident_id)
            timeline = day_timeline(session, viewer, resident_id, local_today(profile.timezone))
            end = datetime.now(UTC)
            series = vitals_series(session, viewer, resident_id, end - timedelta(days=7), end)
            reports = daily_reports(session, viewer, resident_id, limit=14)
        figures = [
            timeline_figure(timeline, t, lambda row: str(row["code"])),
            vitals_figure(series, profile.timezone, t, lambda m: metric_name(m, "en")),
            reports_figure(reports, t),
        ]
        # As st.plotly_chart serialises them.
        size = sum(len(plotly.io.to_json(figure, validate=False)) for figure in figures)
        return len(series.frame), size

    overview_seconds, result = timed(overview, repeat)
    resident_seconds, (points, size) = timed(resident, repeat)
    return {
        "overview": overview_seconds,
        "resident": resident_seconds,
        "cards": len(result.cards),
        "counts": {str(k): v for k, v in result.counts.items()},
        "points": points,
        "json_bytes": size,
    }


def page_timings(url: str, viewer: Viewer, resident_id: int, repeat: int) -> dict[str, Any]:
    """The whole app script through AppTest, signed in as the operator."""
    from streamlit.testing.v1 import AppTest

    from core.settings import get_settings

    with tempfile.TemporaryDirectory(prefix="iotcare-render-bench-") as tmp:
        os.environ.update(
            {
                "IOTCARE_ENVIRONMENT": "test",
                "IOTCARE_DATABASE_URL": url,
                "IOTCARE_SECRET_KEY": secrets.token_urlsafe(48),
                "IOTCARE_DATA_DIR": tmp,
                "IOTCARE_LOG_LEVEL": "WARNING",
            }
        )
        get_settings.cache_clear()

        def session_for(page: str | None, query: dict[str, str]) -> AppTest:
            at = AppTest.from_file(str(APP), default_timeout=120)
            for key, value in query.items():
                at.query_params[key] = value
            at.session_state[VIEWER_KEY] = viewer
            at.session_state[SIGNED_IN_AT_KEY] = datetime.now(UTC)
            at.session_state["resident.range"] = "7d"
            at.run()
            if page is not None:
                at.switch_page(page).run()
            if at.exception:
                raise RuntimeError("\n".join(str(e.value) for e in at.exception))
            return at

        overview = session_for(None, {})
        cards = sum(1 for m in overview.markdown if m.value.startswith("**"))
        overview_seconds, _ = timed(lambda: overview.run(), repeat)
        resident = session_for("app_pages/resident.py", {"resident": str(resident_id)})
        resident_seconds, _ = timed(lambda: resident.run(), repeat)
        if resident.exception or not resident.header:
            raise RuntimeError("the resident page did not render")
        hourly = any("Hourly averages" in c.value for c in resident.caption)
        from dashboards.context import app_context

        app_context().engine.dispose()
    return {
        "overview": overview_seconds,
        "resident": resident_seconds,
        "cards_drawn": cards,
        "hourly": hourly,
    }


def summary(seconds: list[float]) -> str:
    """'median 0.123 s (min 0.120, max 0.130)'."""
    return (
        f"median {statistics.median(seconds):.3f} s "
        f"(min {min(seconds):.3f}, max {max(seconds):.3f})"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the data, time both pages both ways; the figures."""
    now = datetime.now(UTC).replace(microsecond=0)
    with postgres_database(args.database_url, "iotcare_bench_render") as url:
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
            with Session(engine) as session:
                from models import User

                operator = session.query(User).filter_by(username="operator").one()
                viewer = Viewer.of(operator)
            queries = query_timings(engine, viewer, 1, args.repeat)
        finally:
            engine.dispose()
        pages = page_timings(url, viewer, 1, args.repeat)
    return {"counts": counts, "queries": queries, "pages": pages}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the figures; exit 1 when a page misses its target."""
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    figures = run(args)
    queries, pages = figures["queries"], figures["pages"]
    print(
        f"\noverview, {queries['cards']} cards {queries['counts']} "
        f"({pages['cards_drawn']} drawn on the first page):"
    )
    print(f"  queries + cards data:  {summary(queries['overview'])}")
    print(f"  page (AppTest):        {summary(pages['overview'])}")
    print(
        f"resident page, 7 days ({queries['points']} hourly points, "
        f"{queries['json_bytes']:,} bytes of figure JSON, hourly: {pages['hourly']}):"
    )
    print(f"  queries + figures:     {summary(queries['resident'])}")
    print(f"  page (AppTest):        {summary(pages['resident'])}")
    ok = all(statistics.median(pages[page]) < target for page, target in TARGETS.items())
    print(
        f"targets (page medians): overview < {TARGETS['overview']:g} s, resident < "
        f"{TARGETS['resident']:g} s: {'met' if ok else 'MISSED'}"
    )
    print(f"reproduce: {reproduce_command('bench.dashboard_render', command_options(args))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
