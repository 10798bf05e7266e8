"""The InfluxDB sink against a fake InfluxDB 2.x over real HTTP, through the real client.

No InfluxDB 2.x can be installed on this machine (see tests/support/fake_influx.py), so these
tests use the fake, which parses line protocol strictly: every point it stores proves our
output is valid.
"""

from __future__ import annotations

import dataclasses
import gzip
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from pydantic import SecretStr

from core.settings import Settings
from ingest.batch import Batch, ReadingRow
from ingest.sinks.base import SinkUnavailable
from ingest.sinks.influx import InfluxSink, InfluxSinkOptions, make_influx_sink
from ingest.spool import Spool, SpoolFull
from tests.support.fake_influx import FakeInfluxDB

TOKEN = "test-token"
ORG = "iotcare"
BUCKET = "telemetry"
T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
DEVICES = {"w1": ("wearable", 7), "w2": ("wearable", 8), "e1": ("env_sensor", None)}
FAST = InfluxSinkOptions(
    batch_size=50,
    flush_interval=0.02,
    timeout=2.0,
    backoff_min=0.05,
    backoff_max=0.2,
    poll_interval=0.1,
    close_timeout=1.0,
)


def lookup(device_id: str) -> tuple[str | None, int | None]:
    return DEVICES.get(device_id, (None, None))


def make_batch(start: int, count: int) -> Batch:
    """`count` readings from three devices, two metrics each, at distinct milliseconds."""
    readings = []
    for i in range(start, start + count):
        device = ("w1", "w2", "e1")[i % 3]
        ts = T0 + timedelta(milliseconds=i)
        readings.append(ReadingRow(device, "heart_rate", ts, 60.0 + i % 40, "site-1"))
        readings.append(ReadingRow(device, "battery_pct", ts, float(i % 100), "site-1"))
    return Batch(readings=readings)


def expected_points(batches: list[Batch]) -> set[tuple]:
    points = set()
    for batch in batches:
        grouped: dict[tuple, dict[str, float]] = {}
        for r in batch.readings:
            key = (r.device_id, r.site_id, (r.ts - T0) // timedelta(milliseconds=1))
            grouped.setdefault(key, {})[r.metric] = r.value
        for (device, site, offset), fields in grouped.items():
            kind, resident = lookup(device)
            tags = {"device": device, "site": site}
            if resident is not None:
                tags["resident"] = str(resident)
            time_ns = (int(T0.timestamp() * 1000) + offset) * 1_000_000
            points.add(
                (kind or "unknown", frozenset(tags.items()), frozenset(fields.items()), time_ns)
            )
    return points


def stored(fake: FakeInfluxDB) -> list[tuple]:
    return [
        (p.measurement, frozenset(p.tags.items()), frozenset(p.fields.items()), p.time_ns)
        for p in fake.points
    ]


def wait_until(condition: Callable[[], bool], timeout: float = 4.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture
def fake() -> Iterator[FakeInfluxDB]:
    with FakeInfluxDB(token=TOKEN, org=ORG, buckets=(BUCKET,)) as server:
        yield server


@pytest.fixture
def make_sink(tmp_path: Path) -> Iterator[Callable[..., InfluxSink]]:
    sinks: list[InfluxSink] = []

    def build(
        fake: FakeInfluxDB,
        *,
        token: str = TOKEN,
        max_bytes: int = 50_000_000,
        options: InfluxSinkOptions = FAST,
    ) -> InfluxSink:
        sink = InfluxSink(
            url=fake.url,
            token=token,
            org=ORG,
            bucket=BUCKET,
            spool=Spool(tmp_path / "spool" / "influx", max_bytes),
            lookup=lookup,
            options=options,
        )
        sinks.append(sink)
        return sink

    yield build
    for sink in sinks:
        sink.close()


def drained(sink: InfluxSink, fake: FakeInfluxDB, count: int, timeout: float = 4.0) -> bool:
    return wait_until(lambda: len(fake.points) >= count and sink.backlog_bytes() == 0, timeout)


def test_delivers_every_point_gzipped_at_ms_precision(
    fake: FakeInfluxDB, make_sink: Callable[..., InfluxSink]
) -> None:
    sink = make_sink(fake)
    batches = [make_batch(0, 120), make_batch(120, 90), make_batch(210, 1)]
    for batch in batches:
        sink.write(batch)
    want = expected_points(batches)
    assert drained(sink, fake, len(want))
    got = stored(fake)
    assert len(got) == len(want)  # each point exactly once
    assert set(got) == want
    assert sink.delivered_lines == len(want)
    assert all(r.gzip and r.precision == "ms" and r.status == 204 for r in fake.requests)
    assert max(r.lines for r in fake.requests) <= FAST.batch_size  # the client batches


def test_write_returns_once_durable_before_delivery(
    fake: FakeInfluxDB, make_sink: Callable[..., InfluxSink]
) -> None:
    fake.go_down()
    sink = make_sink(fake)
    sink.write(make_batch(0, 10))
    # Back on disk, whatever InfluxDB does: the pipeline may acknowledge now.
    assert sink.backlog_bytes() > 0
    assert list((Path(sink.rejected_dir).parent / "influx").glob("*.seg"))


@pytest.mark.parametrize("status", [503, 429])
def test_retries_with_backoff_then_delivers_exactly_once(
    status: int, fake: FakeInfluxDB, make_sink: Callable[..., InfluxSink]
) -> None:
    fake.fail_next(3, status=status)
    sink = make_sink(fake)
    batch = make_batch(0, 60)
    sink.write(batch)
    want = expected_points([batch])
    assert drained(sink, fake, len(want))
    got = stored(fake)
    assert len(got) == len(want) and set(got) == want  # failed attempts stored nothing
    statuses = [r.status for r in fake.requests]
    assert statuses[:3] == [status] * 3
    assert statuses[3:] and set(statuses[3:]) == {204}


def test_retry_after_is_honoured(fake: FakeInfluxDB, make_sink: Callable[..., InfluxSink]) -> None:
    fake.fail_next(1, status=503, retry_after=1)  # longer than the whole back-off schedule
    sink = make_sink(fake)
    started = time.monotonic()
    sink.write(make_batch(0, 5))
    assert drained(sink, fake, 5)
    assert time.monotonic() - started >= 1.0
    statuses = [r.status for r in fake.requests]
    # The client may split the lines over two requests; only the first was refused.
    assert statuses[0] == 503 and set(statuses[1:]) == {204}
    assert len(fake.points) == 5


def test_outage_loses_nothing_and_the_spool_drains_after(
    fake: FakeInfluxDB, make_sink: Callable[..., InfluxSink]
) -> None:
    sink = make_sink(fake)
    first = make_batch(0, 30)
    sink.write(first)
    assert drained(sink, fake, 30)

    fake.go_down()
    during = [make_batch(1000 + 50 * n, 50) for n in range(6)]
    for batch in during:
        sink.write(batch)
    assert wait_until(lambda: sink.consecutive_failures >= 2)
    assert sink.backlog_bytes() > 0
    assert sink.last_error is not None

    fake.come_up()
    want = expected_points([first, *during])
    assert drained(sink, fake, len(want))
    got = stored(fake)
    assert len(got) == len(want) and set(got) == want
    assert wait_until(lambda: sink.consecutive_failures == 0)


def test_spool_is_replayed_by_the_next_process(
    fake: FakeInfluxDB, make_sink: Callable[..., InfluxSink]
) -> None:
    fake.go_down()
    sink = make_sink(fake)
    batch = make_batch(0, 40)
    sink.write(batch)
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < FAST.close_timeout + 1.5  # bounded final attempt
    assert sink.backlog_bytes() > 0
    with pytest.raises(SinkUnavailable):
        sink.write(batch)

    fake.come_up()
    restarted = make_sink(fake)
    assert drained(restarted, fake, 40)
    assert set(stored(fake)) == expected_points([batch])


def test_close_drains_what_it_can(fake: FakeInfluxDB, make_sink: Callable[..., InfluxSink]) -> None:
    slow = dataclasses.replace(FAST, poll_interval=30.0, flush_interval=0.05)
    sink = make_sink(fake, options=slow)
    sink.write(make_batch(0, 20))
    sink.close()
    assert len(fake.points) == 20
    assert sink.backlog_bytes() == 0


def test_full_spool_is_back_pressure(
    fake: FakeInfluxDB, make_sink: Callable[..., InfluxSink]
) -> None:
    fake.go_down()
    sink = make_sink(fake, max_bytes=20_000)
    with pytest.raises(SinkUnavailable) as raised:
        for n in range(100):
            sink.write(make_batch(100 * n, 100))
    assert isinstance(raised.value.__cause__, SpoolFull)
    held = sink.backlog_bytes()
    assert 0 < held <= 20_000

    fake.come_up()
    assert wait_until(lambda: sink.backlog_bytes() == 0)
    sink.write(make_batch(50_000, 10))  # accepted again once drained
    assert drained(sink, fake, len(fake.points))


def test_refused_lines_are_set_aside_not_retried_forever(
    fake: FakeInfluxDB, make_sink: Callable[..., InfluxSink]
) -> None:
    # Someone wrote heart_rate as an integer first: our floats now conflict (422).
    with InfluxDBClient(url=fake.url, token=TOKEN, org=ORG) as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            BUCKET, ORG, "wearable,device=x,site=s heart_rate=1i 1"
        )
    sink = make_sink(fake)
    sink.write(Batch(readings=[ReadingRow("w1", "heart_rate", T0, 70.0, "site-1")]))
    sink.write(Batch(readings=[ReadingRow("e1", "humidity_pct", T0, 40.0, "site-1")]))
    assert wait_until(lambda: sink.backlog_bytes() == 0)
    assert sink.rejected_lines == 1
    [kept] = list(Path(sink.rejected_dir).glob("*.lp"))
    text = kept.read_text()
    assert "field type conflict" in text and "heart_rate=70.0" in text
    assert [p.measurement for p in fake.points] == ["wearable", "env_sensor"]


def test_bad_token_keeps_everything_spooled(
    fake: FakeInfluxDB, make_sink: Callable[..., InfluxSink]
) -> None:
    sink = make_sink(fake, token="wrong-token")
    sink.write(make_batch(0, 5))
    assert wait_until(lambda: sink.consecutive_failures >= 2)
    assert sink.last_error is not None and "401" in sink.last_error
    assert sink.backlog_bytes() > 0 and not fake.points


def test_make_influx_sink_follows_settings(settings: Settings, fake: FakeInfluxDB) -> None:
    assert make_influx_sink(settings, lookup) is None
    configured = settings.model_copy(
        update={"influx_url": fake.url, "influx_token": SecretStr(TOKEN), "spool_max_bytes": 2**20}
    )
    sink = make_influx_sink(configured, lookup, FAST)
    assert sink is not None
    try:
        assert sink.name == "influx"
        sink.write(make_batch(0, 3))
        assert drained(sink, fake, 3)
        assert (settings.data_dir / "spool" / "influx").is_dir()
    finally:
        sink.close()


# --------------------------------------------------------------------------- the fake itself


def post(fake: FakeInfluxDB, body: bytes, token: str = TOKEN, **headers: str) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{fake.url}/api/v2/write?org={ORG}&bucket={BUCKET}&precision=ms",
        data=body,
        method="POST",
        headers={"Authorization": f"Token {token}", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_fake_rejects_malformed_line_protocol_like_the_real_server(fake: FakeInfluxDB) -> None:
    status, body = post(fake, b"good f=1 1\nbad,tag=a b f=1 2")
    assert status == 400
    assert '"code": "invalid"' in body and "unable to parse 'bad,tag=a b f=1 2'" in body
    assert not fake.points  # all or nothing

    with (
        InfluxDBClient(url=fake.url, token=TOKEN, org=ORG, enable_gzip=True) as client,
        pytest.raises(ApiException) as raised,
    ):
        client.write_api(write_options=SYNCHRONOUS).write(BUCKET, ORG, "m f=1,g 1")
    assert raised.value.status == 400


def test_fake_checks_token_org_bucket_and_decodes_gzip(fake: FakeInfluxDB) -> None:
    assert post(fake, b"m f=1 1", token="nope")[0] == 401
    assert post(fake, gzip.compress(b"m f=1 1"), **{"Content-Encoding": "gzip"})[0] == 204
    assert fake.points[0].time_ns == 1_000_000
    assert fake.requests[-1].gzip
    with urllib.request.urlopen(f"{fake.url}/health", timeout=5) as response:
        assert b'"status": "pass"' in response.read()
    with urllib.request.urlopen(f"{fake.url}/ping", timeout=5) as response:
        assert response.status == 204 and response.headers["X-Influxdb-Version"]


def test_fake_goes_down_and_comes_back_on_the_same_port(fake: FakeInfluxDB) -> None:
    port = fake.port
    fake.go_down()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{fake.url}/ping", timeout=2)
    fake.come_up()
    assert fake.port == port
    assert post(fake, b"m f=1 1")[0] == 204
