"""The Ingest health page: replica states, rates, dead letters with readable reasons."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.timeutil import utcnow
from models import DeadLetter, IngestReplica
from tests.dashboards.conftest import empty_tables, no_exception, texts


def _seed(app_db) -> None:
    empty_tables(app_db, IngestReplica, DeadLetter)
    now = utcnow()
    with app_db.session() as session:
        session.add_all(
            [
                IngestReplica(
                    client_id="ingest-live",
                    hostname="h1",
                    pid=10,
                    started_at=now - timedelta(minutes=5),
                    heartbeat_at=now,
                    connected=True,
                    received=600,
                    written=590,
                    pending=3,
                    spool_bytes=4096,
                    lag_seconds=0.12,
                ),
                IngestReplica(
                    client_id="ingest-gone",
                    hostname="h2",
                    pid=11,
                    started_at=now - timedelta(hours=2),
                    heartbeat_at=now - timedelta(hours=1),
                    connected=True,
                ),
                DeadLetter(
                    topic="care/v1/sunrise/sunrise-r01-wear/telemetry",
                    payload=b'{"readings": {"spo2": 7}}',
                    payload_size=25,
                    reason="out_of_range",
                    detail="spo2=7",
                    received_at=now - timedelta(minutes=1),
                ),
                DeadLetter(
                    topic="care/v1/sunrise/x/bogus",
                    payload=b"hello",
                    payload_size=5,
                    reason="unknown_topic",
                    received_at=now - timedelta(minutes=2),
                ),
            ]
        )
        session.commit()


def test_caregiver_has_no_ingest_page(open_app) -> None:
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        open_app("caregiver3", page="ingest")


def test_empty_state_says_how_to_start(open_app, app_db) -> None:
    empty_tables(app_db, IngestReplica, DeadLetter)
    at = open_app("admin", page="ingest")
    no_exception(at)
    page = texts(at)
    assert "No ingest replica has reported yet." in page
    assert "No dead letters" in page


def test_replicas_rates_and_dead_letters(open_app, app_db) -> None:
    _seed(app_db)
    at = open_app("operator", page="ingest")
    no_exception(at)
    page = texts(at)
    assert "Replicas connected 1 of 2" in page
    assert "1 replica stopped reporting" in page
    assert "Dead letters 2 (100.0%)" in page  # nothing else stored in the window
    replicas = at.dataframe[0].value
    assert list(replicas["client_id"]) == ["ingest-live", "ingest-gone"]
    assert list(replicas["state"]) == ["Connected", "Down"]
    reasons = at.dataframe[1].value
    assert set(reasons["reason"]) == {
        "A value is outside the metric's valid range.",
        "The topic is not one of the contract's topics.",
    }
    recent = at.dataframe[2].value
    assert recent["topic"].iloc[0] == "care/v1/sunrise/sunrise-r01-wear/telemetry"
    assert "Asia/Seoul" in page

    at.selectbox[0].set_value("unknown_topic").run()
    no_exception(at)
    assert list(at.dataframe[2].value["payload"]) == ["hello"]
    at.selectbox[0].set_value("schema").run()
    assert "No dead letters for this reason." in texts(at)


def test_korean(open_app, app_db) -> None:
    _seed(app_db)
    at = open_app("operator", page="ingest")
    at.session_state["iotcare.language"] = "ko"
    at.run()
    no_exception(at)
    assert list(at.dataframe[0].value["state"]) == ["연결됨", "중단"]
    assert "값이 측정 항목의 유효 범위를 벗어났습니다." in set(at.dataframe[1].value["reason"])
