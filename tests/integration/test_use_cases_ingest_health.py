"""core.use_cases.ingest_health: replica states from heartbeats, rates per minute, dead letters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.access import AccessDenied, Viewer
from core.contract.catalogue import DeviceType
from core.use_cases import ingest_health as q
from models import DeadLetter, Event, IngestReplica, Reading, Role

NOW = datetime(2030, 3, 4, 5, 30, 20, tzinfo=UTC)  # away from data other tests keep
STALE = timedelta(seconds=30)


@pytest.fixture
def ingest_world(factory, db_session):
    """Replicas connected, disconnected and silent; traffic over a few minutes; dead letters."""
    db_session.execute(IngestReplica.__table__.delete())
    db_session.execute(DeadLetter.__table__.delete())
    site = factory.site(timezone="Asia/Seoul")
    device = factory.device(DeviceType.ENV_SENSOR, site=site)
    start = NOW - timedelta(hours=1)
    db_session.add_all(
        [
            IngestReplica(
                client_id="ingest-a",
                hostname="h1",
                pid=1,
                started_at=start,
                heartbeat_at=NOW - timedelta(seconds=5),
                connected=True,
                received=3600,
                written=3500,
                dead_lettered=4,
                pending=7,
                spool_bytes=2048,
                lag_seconds=0.25,
            ),
            IngestReplica(
                client_id="ingest-b",
                hostname="h2",
                pid=2,
                started_at=start,
                heartbeat_at=NOW - timedelta(seconds=8),
                connected=False,
                last_error="connection refused",
            ),
            IngestReplica(
                client_id="ingest-c",
                hostname="h3",
                pid=3,
                started_at=start,
                heartbeat_at=NOW - timedelta(minutes=10),
                connected=True,
                pending=100,
            ),
        ]
    )
    for minutes_ago, count in ((0, 3), (2, 2)):
        ts = NOW.replace(second=0) - timedelta(minutes=minutes_ago)
        db_session.add_all(
            Reading(device_id=device.id, metric=f"m{i}", ts=ts + timedelta(seconds=i), value=1.0)
            for i in range(count)
        )
    db_session.add(
        Event(
            device_id=device.id,
            site_id=site.id,
            type="motion",
            ts=NOW.replace(second=0) - timedelta(minutes=1),
            data={},
            received_at=NOW,
        )
    )
    for minutes_ago, reason in ((0, "invalid_json"), (1, "out_of_range"), (3, "invalid_json")):
        db_session.add(
            DeadLetter(
                topic=f"care/v1/{site.id}/{device.id}/telemetry",
                payload=b'{"ts": 1, "readings": {"spo2": 3}}',
                payload_size=35,
                reason=reason,
                detail="spo2=3" if reason == "out_of_range" else None,
                received_at=NOW - timedelta(minutes=minutes_ago, seconds=1),
            )
        )
    db_session.flush()
    return {
        "operator": Viewer.of(factory.user(Role.OPERATOR)),
        "caregiver": Viewer.of(factory.user(Role.CAREGIVER)),
        "site": site,
    }


def test_caregiver_is_denied(db_session, ingest_world) -> None:
    caregiver = ingest_world["caregiver"]
    calls = [
        lambda: q.replicas(db_session, caregiver, stale=STALE, now=NOW),
        lambda: q.message_rates(db_session, caregiver, now=NOW),
        lambda: q.dead_letter_reasons(db_session, caregiver, since=NOW),
        lambda: q.recent_dead_letters(db_session, caregiver),
        lambda: q.summary(db_session, caregiver, stale=STALE, now=NOW),
        lambda: q.display_timezone(db_session, caregiver, "UTC"),
    ]
    for call in calls:
        with pytest.raises(AccessDenied):
            call()


def test_stale_heartbeat_is_down_whatever_it_last_said(db_session, ingest_world) -> None:
    table = q.replicas(db_session, ingest_world["operator"], stale=STALE, now=NOW)
    assert list(table["client_id"]) == ["ingest-a", "ingest-b", "ingest-c"]
    assert list(table["state"]) == ["connected", "disconnected", "down"]
    assert table.iloc[0]["rate_per_second"] == pytest.approx(3600 / (3600 - 5))
    assert table.iloc[1]["last_error"] == "connection refused"
    assert q.stale_after(timedelta(seconds=10)) == STALE


def test_rates_per_minute_on_both_backends(db_session, ingest_world) -> None:
    rates = q.message_rates(db_session, ingest_world["operator"], minutes=5, now=NOW)
    assert len(rates) == 5
    assert rates["minute"].iloc[-1] == NOW.replace(second=0)
    assert list(rates["readings"]) == [0, 0, 2, 0, 3]
    assert list(rates["events"]) == [0, 0, 0, 1, 0]
    assert list(rates["dead_letters"]) == [0, 1, 0, 1, 1]


def test_summary_counts_live_replicas_and_the_dead_letter_share(db_session, ingest_world) -> None:
    summary = q.summary(
        db_session, ingest_world["operator"], stale=STALE, window_minutes=5, now=NOW
    )
    assert (summary.replicas, summary.connected, summary.down) == (3, 1, 1)
    assert summary.messages_per_minute == pytest.approx(6 / 5)
    assert summary.dead_letters_window == 3
    assert summary.dead_letter_rate == pytest.approx(3 / 9)
    assert summary.pending == 7  # the down replica's backlog is not counted as live
    assert summary.spool_bytes == 2048 and summary.max_lag_seconds == 0.25


def test_dead_letters_by_reason_and_latest(db_session, ingest_world) -> None:
    operator = ingest_world["operator"]
    reasons = q.dead_letter_reasons(db_session, operator, since=NOW - timedelta(hours=1))
    assert list(zip(reasons["reason"], reasons["count"], strict=True)) == [
        ("invalid_json", 2),
        ("out_of_range", 1),
    ]
    latest = q.recent_dead_letters(db_session, operator, limit=2)
    assert list(latest["reason"]) == ["invalid_json", "out_of_range"]
    assert latest.iloc[0]["payload"].startswith('{"ts": 1')
    only = q.recent_dead_letters(db_session, operator, reason="out_of_range")
    assert list(only["detail"]) == ["spo2=3"]


def test_display_timezone(db_session, ingest_world, factory) -> None:
    assert q.display_timezone(db_session, ingest_world["operator"], "UTC")
    site = factory.site(timezone="Europe/Berlin")
    viewer = Viewer.of(factory.user(Role.OPERATOR, site_id=site.id))
    assert q.display_timezone(db_session, viewer, "UTC") == "Europe/Berlin"
