"""core.use_cases.readings: range reads paged by key, access as in the app, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from core.access import AccessDenied, Viewer
from core.use_cases.readings import (
    RangeError,
    page_csv,
    readings_page,
    rollups_page,
)
from models import Reading, Role, Rollup, RollupPeriod

START = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


@pytest.fixture
def home(db_session, factory):
    site = factory.site()
    mine = factory.resident(site, name="Mine")
    other = factory.resident(site, name="Other")
    wearable = factory.device("wearable", resident=mine)
    bed = factory.device("bed_sensor", resident=mine)
    theirs = factory.device("wearable", resident=other)
    hallway = factory.device("env_sensor", site=site)
    caregiver = Viewer.of(factory.user(Role.CAREGIVER, residents=(mine,)))
    operator = Viewer.of(factory.user(Role.OPERATOR))
    rows = []
    for minute in range(0, 70, 2):  # the last 5 fall after END
        at = START + timedelta(minutes=minute)
        rows += [
            Reading(device_id=wearable.id, metric="heart_rate", ts=at, value=60 + minute),
            Reading(device_id=wearable.id, metric="spo2", ts=at, value=97),
            Reading(device_id=bed.id, metric="bed_occupied", ts=at, value=1),
            Reading(device_id=theirs.id, metric="heart_rate", ts=at, value=80),
            Reading(device_id=hallway.id, metric="co2_ppm", ts=at, value=600),
        ]
    db_session.add_all(rows)
    db_session.flush()
    return mine, other, wearable, bed, theirs, hallway, caregiver, operator


def _walk(call, **kwargs):
    """Every row of every page, and the number of pages."""
    rows, cursor, pages = [], None, 0
    while True:
        page = call(cursor=cursor, **kwargs)
        rows += page.rows
        pages += 1
        if page.next_cursor is None:
            return rows, pages
        cursor = page.next_cursor


def test_pages_cover_the_range_once_in_key_order(db_session, home) -> None:
    mine, _other, wearable, bed, *_rest, caregiver, _operator = home
    whole = readings_page(
        db_session, caregiver, resident_id=mine.id, start=START, end=END, limit=1000
    )
    assert len(whole.rows) == 30 * 3 and whole.next_cursor is None
    keys = [(r["device_id"], r["ts"], r["metric"]) for r in whole.rows]
    assert keys == sorted(keys)
    assert {r["device_id"] for r in whole.rows} == {wearable.id, bed.id}
    assert all(START <= r["ts"] < END and r["ts"].tzinfo is not None for r in whole.rows)
    for limit in (1, 7, 30, 89, 90):
        rows, pages = _walk(
            lambda **kw: readings_page(db_session, caregiver, resident_id=mine.id, **kw),
            start=START,
            end=END,
            limit=limit,
        )
        assert rows == whole.rows, limit
        assert pages == -(-90 // limit), limit


def test_a_range_ending_before_it_starts_is_empty(db_session, home) -> None:
    mine, *_rest, operator = home
    for end in (START, START - timedelta(days=1)):
        page = readings_page(db_session, operator, resident_id=mine.id, start=START, end=end)
        assert page.rows == [] and page.next_cursor is None


def test_metrics_and_one_device(db_session, home) -> None:
    _mine, _other, wearable, *_rest, caregiver, _operator = home
    page = readings_page(
        db_session, caregiver, device_id=wearable.id, start=START, end=END, metrics=["spo2"]
    )
    assert {(r["device_id"], r["metric"]) for r in page.rows} == {(wearable.id, "spo2")}
    assert len(page.rows) == 30


def test_a_caregiver_reads_only_their_residents_and_sites(db_session, factory, home) -> None:
    _mine, other, _wearable, _bed, theirs, hallway, caregiver, operator = home
    assert readings_page(db_session, caregiver, device_id=hallway.id, start=START, end=END).rows
    elsewhere = factory.device("env_sensor", site=factory.site())
    for kwargs in (
        {"resident_id": other.id},
        {"device_id": theirs.id},
        {"device_id": elsewhere.id},
        {"device_id": "no-such-device"},
        {"resident_id": 987654},
    ):
        with pytest.raises(AccessDenied):
            readings_page(db_session, caregiver, start=START, end=END, **kwargs)
        with pytest.raises(AccessDenied):
            rollups_page(db_session, caregiver, start=START, end=END, **kwargs)
    assert readings_page(db_session, operator, device_id=theirs.id, start=START, end=END).rows


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"limit": 0}, "errors.readings.page_size"),
        ({"limit": 10_001}, "errors.readings.page_size"),
        ({"cursor": "not-a-cursor"}, "errors.readings.bad_cursor"),
        ({"cursor": "WzEsMiwzXQ"}, "errors.readings.bad_cursor"),  # [1, 2, 3]
        ({"device_id": "x"}, "errors.readings.one_subject"),
    ],
)
def test_bad_requests_are_refused(db_session, home, kwargs, key) -> None:
    mine, *_rest, operator = home
    call = {"start": START, "end": END, "resident_id": mine.id, **kwargs}
    with pytest.raises(RangeError) as caught:
        readings_page(db_session, operator, **call)
    assert caught.value.key == key
    assert caught.value.localized("ko") != caught.value.localized("en")


def test_rollups_by_device_metric_and_bucket(db_session, home) -> None:
    mine, _other, wearable, bed, *_rest, caregiver, _operator = home
    rows = []
    for hour in range(30):
        bucket = START + timedelta(hours=hour)
        for device, metric in ((wearable.id, "heart_rate"), (wearable.id, "spo2"), (bed.id, "x")):
            rows.append(
                Rollup(
                    device_id=device,
                    metric=metric,
                    period=RollupPeriod.HOUR,
                    bucket=bucket,
                    count=60,
                    min=1.0,
                    max=3.0,
                    mean=2.0,
                    p95=None if metric == "x" else 2.9,
                )
            )
    rows.append(
        Rollup(
            device_id=wearable.id,
            metric="heart_rate",
            period=RollupPeriod.DAY,
            bucket=START,
            count=1440,
            min=1.0,
            max=3.0,
            mean=2.0,
            p95=None,
        )
    )
    db_session.add_all(rows)
    db_session.flush()
    end = START + timedelta(hours=24)
    whole = rollups_page(db_session, caregiver, resident_id=mine.id, start=START, end=end)
    assert len(whole.rows) == 24 * 3 and whole.next_cursor is None
    keys = [(r["device_id"], r["metric"], r["bucket"]) for r in whole.rows]
    assert keys == sorted(keys)
    assert {r["period"] for r in whole.rows} == {"hour"}
    paged, pages = _walk(
        lambda **kw: rollups_page(db_session, caregiver, resident_id=mine.id, **kw),
        start=START,
        end=end,
        limit=10,
    )
    assert paged == whole.rows and pages == 8
    daily = rollups_page(
        db_session, caregiver, device_id=wearable.id, start=START, end=end, period="day"
    )
    assert [(r["metric"], r["count"]) for r in daily.rows] == [("heart_rate", 1440)]


def test_csv_has_a_header_and_utc_times(db_session, home) -> None:
    _mine, _other, wearable, *_rest, operator = home
    page = readings_page(db_session, operator, device_id=wearable.id, start=START, end=END, limit=2)
    rows = list(csv.reader(io.StringIO(page_csv(page))))
    assert rows == [
        ["device_id", "metric", "ts", "value"],
        [wearable.id, "heart_rate", "2026-03-09T00:00:00+00:00", "60.0"],
        [wearable.id, "spo2", "2026-03-09T00:00:00+00:00", "97.0"],
    ]
