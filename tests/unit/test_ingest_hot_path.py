"""The fast paths of ingest write and acknowledge exactly what the straightforward ones did."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt

from ingest.batch import ReadingRow
from ingest.client import BrokerAddress, ClientConfig, IngestClient
from ingest.metrics import IngestMetrics
from ingest.pipeline import Delivery
from ingest.sinks.sql import _epoch_microseconds, _pg_number_array, _pg_text_array


def test_text_arrays_quote_every_element() -> None:
    assert _pg_text_array([]) == "{}"
    assert _pg_text_array(["d1", "NULL"]) == '{"d1","NULL"}'
    assert _pg_text_array(['a"b', "c\\d", "e,f"]) == '{"a\\"b","c\\\\d","e,f"}'


def test_number_arrays_keep_full_precision() -> None:
    assert _pg_number_array([70.0, 0.1, 1e-05, 36.6]) == "{70.0,0.1,1e-05,36.6}"
    assert _pg_number_array([1_763_800_000_123_456, 0]) == "{1763800000123456,0}"


def test_timestamps_become_exact_microseconds() -> None:
    rng = random.Random(7)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    stamps = [
        datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**15))
        for _ in range(1000)
    ]
    rows = [ReadingRow("d1", "heart_rate", ts, 60.0, "s1") for ts in stamps for _ in range(3)]
    micros = _epoch_microseconds(rows)
    assert [epoch + timedelta(microseconds=m) for m in micros] == [r.ts for r in rows]


def _client() -> IngestClient:
    config = ClientConfig(BrokerAddress("127.0.0.1", 1, False, None, None), "test-ingest")
    return IngestClient(config, lambda *_: None, IngestMetrics())


def _queued_bytes(client: mqtt.Client) -> bytes:
    # Not connected, so paho keeps what it would send in its outgoing queue.
    return b"".join(bytes(p["packet"]) for p in client._out_packet)


def test_acknowledgements_are_the_bytes_paho_sends_one_by_one() -> None:
    ours = _client()
    mids = [1, 2, 300, 65535]
    ours.ack([Delivery(m, 1, 0) for m in mids])
    ours.ack([Delivery(9, 1, 1)])  # from a later connection: not acknowledged on this one
    ours._send_acks()

    reference = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, manual_ack=True)
    for mid in mids:
        reference.ack(mid, 1)

    assert _queued_bytes(ours.client) == _queued_bytes(reference)
    assert len(ours.client._out_packet) == 1  # one write for the whole batch
