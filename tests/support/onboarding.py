"""A new care home's roster (with and without a deliberate mistake) and its first fall event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from core.contract.catalogue import EventType
from core.contract.payloads import event_payload
from core.contract.topics import TopicKind, device_topic
from core.rules.instant import CriticalEventAlerts
from core.settings import get_settings
from ingest.batch import Batch
from ingest.parse import Limits, apply_message
from ingest.registry_cache import RegistryCache
from ingest.sinks.sql import SqlSink

HEADER = "kind,site,id,name,timezone,type,room,active_start,active_end,resident,username,tier\n"
RESIDENT = "Choi Mal-soon"


def roster_csv(site: str, caregiver: str, *, mistakes: bool = False) -> bytes:
    """The roster of a new site: the site, a resident, her fall detector and her caregiver.

    With `mistakes`, two rows are wrong (a time of day of 25:00, a device type 'toaster').
    """
    start, kind = ("25:00", "toaster") if mistakes else ("07:00", "fall_detector")
    rows = [
        f"site,,{site},{site.title()} Care Home,Asia/Seoul,,,,,,,",
        f"resident,{site},,{RESIDENT},,,201,{start},22:00,,,",
        f"device,{site},{site}-fall-201,Fall detector 201,,{kind},,,,{RESIDENT},,",
        f"caregiver,{site},,,,,,,,{RESIDENT},{caregiver},1",
    ]
    return (HEADER + "\n".join(rows) + "\n").encode()


def fall_detector(site: str) -> str:
    """The id of the fall detector `roster_csv` registers for the site."""
    return f"{site}-fall-201"


def publish_fall(engine: Engine, site: str, at: datetime) -> None:
    """The site's fall detector reports a fall, through ingest's parse, SQL sink and alerting.

    The same objects IngestService wires (apply_message, SqlSink with CriticalEventAlerts),
    without a broker; nothing is delivered, so notifications wait in the outbox for the sweeper.
    """
    limits = Limits()
    cache = RegistryCache(refresh_seconds=0)
    with engine.connect() as connection:
        cache.load(connection)
    alerts = CriticalEventAlerts(deliver=lambda _ids: None, dispatch=lambda _ids: None)
    try:
        batch = Batch()
        topic = device_topic(limits.root, site, fall_detector(site), TopicKind.EVENT)
        payload = event_payload(at, EventType.FALL_DETECTED)
        apply_message(batch, topic, payload, at, limits, cache.blocked(), cache.site_of)
        assert not batch.dead_letters, batch.dead_letters
        # The app's settings: a session carrying them queues the fall's notifications.
        SqlSink(engine, cache, "Asia/Seoul", alerts, settings=get_settings()).write(batch)
    finally:
        alerts.close()
