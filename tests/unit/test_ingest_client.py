"""What the ingest client hands to the pipeline, skips, and acknowledges, one message at a time."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
import pytest

from ingest.client import BrokerAddress, ClientConfig, IngestClient
from ingest.metrics import IngestMetrics
from ingest.pipeline import Delivery

Handed = list[tuple[str, bytes]]


def make_client(
    handed: Handed,
    shared_group: str | None = None,
    fail_on: bytes | None = None,
    **options: Any,
) -> IngestClient:
    def on_message(topic: str, payload: bytes, _delivery: Delivery) -> None:
        if payload == fail_on:
            raise RuntimeError("a bug")
        handed.append((topic, payload))

    config = ClientConfig(
        BrokerAddress("127.0.0.1", 1, False, None, None),
        "test-ingest",
        topic_root="care",
        shared_group=shared_group,
    )
    return IngestClient(config, on_message, IngestMetrics(), **options)


def message(topic: str, payload: bytes, mid: int = 1, retain: bool = False) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
    msg.payload, msg.qos, msg.retain = payload, 1, retain
    return msg


def deliver(client: IngestClient, msg: mqtt.MQTTMessage) -> None:
    client._on_message(client.client, None, msg)


def acked(client: IngestClient) -> list[int]:
    return [d.mid for batch in client._to_ack for d in batch]


def test_one_filter_takes_everything_under_the_root() -> None:
    assert make_client([]).subscriptions == ["care/#"]
    assert make_client([], shared_group="g").subscriptions == ["$share/g/care/#"]
    superseded = make_client([])._superseded()
    assert "care/#" not in superseded
    assert {"care/v1/+/+/telemetry", "$share/ingest/care/#"} <= set(superseded)
    assert "care/#" in make_client([], shared_group="g")._superseded()


@pytest.mark.parametrize(
    ("topic", "platform"),
    [
        ("care/v1/home/wear1/cmd", True),
        ("care/ingest/iotcare-ingest-1/status", True),
        ("care/v1/home/wear1/cmd/ack", False),
        ("care/v1/home/wear1/cmd/extra", False),
        ("care/v1/home/cmd", False),
        ("care/ingest/a/b/status", False),
        ("care/ingest/a/other", False),
        ("other/v1/home/wear1/cmd", False),
        ("care/v1/home/wear1/telemetrics", False),
    ],
)
def test_only_the_platforms_own_topics_are_skipped(topic: str, platform: bool) -> None:
    handed: Handed = []
    client = make_client(handed)
    assert client.platform_topic(topic) is platform
    deliver(client, message(topic, b"{}", mid=7))
    assert handed == ([] if platform else [(topic, b"{}")])
    assert acked(client) == ([7] if platform else [])


def test_a_retained_message_is_handed_over_once() -> None:
    handed: Handed = []
    client = make_client(handed)
    garbage = message("care/v1/home/wear1/status", b"{garbage", mid=1, retain=True)
    deliver(client, garbage)
    deliver(client, message("care/v1/home/wear1/status", b"{garbage", mid=2, retain=True))
    deliver(client, message("care/v1/home/wear1/status", b"{other", mid=3, retain=True))
    # Live (not retained) copies are always handed over: only a resubscription repeats them.
    deliver(client, message("care/v1/home/wear1/status", b"{garbage", mid=4))
    assert handed == [
        ("care/v1/home/wear1/status", b"{garbage"),
        ("care/v1/home/wear1/status", b"{other"),
        ("care/v1/home/wear1/status", b"{garbage"),
    ]
    assert acked(client) == [2]  # the repeat, acknowledged unread


@pytest.mark.parametrize("recorded", [True, False])
def test_a_message_the_pipeline_fails_on_is_acknowledged_only_once_recorded(
    recorded: bool,
) -> None:
    failures: list[tuple[str, bytes, str]] = []

    def on_failure(topic: str, payload: bytes, _delivery: Delivery, error: Exception) -> bool:
        failures.append((topic, payload, str(error)))
        return recorded

    handed: Handed = []
    client = make_client(handed, fail_on=b"boom", on_failure=on_failure)
    deliver(client, message("care/v1/home/wear1/telemetry", b"boom", mid=5))
    deliver(client, message("care/v1/home/wear1/telemetry", b"{}", mid=6))
    assert failures == [("care/v1/home/wear1/telemetry", b"boom", "a bug")]
    assert handed == [("care/v1/home/wear1/telemetry", b"{}")]
    assert acked(client) == ([5] if recorded else [])
    assert client.metrics.total(client.metrics.callback_errors) == 1


def test_a_failing_failure_handler_is_contained() -> None:
    def on_failure(*_args: object) -> bool:
        raise OSError("database gone")

    client = make_client([], fail_on=b"boom", on_failure=on_failure)
    deliver(client, message("care/v1/home/wear1/telemetry", b"boom", mid=5))
    assert acked(client) == []
