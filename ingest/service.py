"""The ingest service assembled: client, pipeline, sinks, heartbeat and health endpoint."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from core.commands import dispatch
from core.db import make_session_factory
from core.errors import ConfigError
from core.settings import MqttProtocol, Settings
from core.timeutil import utcnow
from ingest.client import BrokerAddress, ClientConfig, IngestClient
from ingest.instant_alerts import CriticalEventAlerts, Deliver
from ingest.instant_rules import InstantRules
from ingest.metrics import HealthServer, IngestMetrics
from ingest.parse import Limits
from ingest.pipeline import Pipeline, PipelineConfig
from ingest.registry_cache import RegistryCache
from ingest.sinks.base import Sink
from ingest.sinks.influx import make_influx_sink
from ingest.sinks.sql import SqlSink
from models import IngestReplica

log = logging.getLogger(__name__)


def default_client_id() -> str:
    """Stable per host, so a restarted replica gets its broker session back."""
    return f"iotcare-ingest-{socket.gethostname()}"[:128]


class IngestService:
    """One ingest replica."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        extra_sinks: list[Sink] | None = None,
        rules: InstantRules | None = None,
        deliver: Deliver | None = None,
        mqtt_url: str | None = None,
    ) -> None:
        url = mqtt_url or settings.mqtt_url
        if not url:
            raise ConfigError(
                "IOTCARE_MQTT_URL is not set: ingest needs a broker "
                "(`make demo` starts an embedded one)"
            )
        self.settings = settings
        self.engine = engine
        self.metrics = IngestMetrics()
        self.cache = RegistryCache()
        self.client_id = settings.mqtt_client_id or default_client_id()
        self.sessions = make_session_factory(engine)
        self.instant = rules or CriticalEventAlerts(
            # Without a deliverer, notifications wait in the outbox for the sweeper flow.
            deliver=deliver or (lambda _ids: None),
            dispatch=lambda ids: dispatch(
                self.sessions, self.client, settings.mqtt_topic_root, command_ids=ids
            ),
        )
        self.sql = SqlSink(engine, self.cache, settings.default_timezone, self.instant)
        self.sinks: list[Sink] = [self.sql, *(extra_sinks or [])]
        influx = make_influx_sink(settings, self.cache.lookup)
        if influx is not None:
            self.sinks.append(influx)
        read_limit = max(2 * settings.ingest_inflight_window, settings.ingest_batch_size)
        self.client = IngestClient(
            ClientConfig(
                address=BrokerAddress.from_url(url),
                client_id=self.client_id,
                topic_root=settings.mqtt_topic_root,
                shared_group=settings.mqtt_shared_group,
                mqtt5=settings.mqtt_protocol == MqttProtocol.V5,
                keepalive=settings.mqtt_keepalive,
                session_expiry=int(settings.mqtt_session_expiry.total_seconds()),
                receive_maximum=settings.ingest_inflight_window,
                reconnect_min=settings.mqtt_reconnect_min.total_seconds(),
                reconnect_max=settings.mqtt_reconnect_max.total_seconds(),
                tls_ca_file=str(settings.mqtt_tls_ca_file) if settings.mqtt_tls_ca_file else None,
                tls_insecure=settings.mqtt_tls_insecure,
            ),
            on_message=lambda topic, payload, delivery: self.pipeline.submit(
                topic, payload, delivery
            ),
            metrics=self.metrics,
            # Stop reading when the next batch already holds this many messages (normally the
            # broker's window stops it far earlier).
            backlog_full=lambda: self.pipeline.pending() >= read_limit,
        )
        self.pipeline = Pipeline(
            self.sinks,
            self.client.ack,
            PipelineConfig(
                batch_size=settings.ingest_batch_size,
                flush_interval=settings.ingest_flush_interval.total_seconds(),
                idle_flush=settings.ingest_idle_flush.total_seconds(),
                inflight_window=settings.ingest_inflight_window,
                retry_max=settings.ingest_retry_max.total_seconds(),
                limits=Limits(
                    root=settings.mqtt_topic_root,
                    max_payload_bytes=settings.ingest_max_payload_bytes,
                    dead_letter_payload_bytes=settings.ingest_dead_letter_payload_bytes,
                    max_future_skew=settings.ingest_max_future_skew,
                ),
            ),
            self.metrics,
            blocked=self.cache.blocked,
            site_of=self.cache.site_of,
        )
        self.http: HealthServer | None = None
        if settings.metrics_port:
            self.http = HealthServer(
                settings.metrics_host, settings.metrics_port, self.metrics, self.health
            )
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.started_at = utcnow()

    def start(self) -> None:
        """Load the registry, then start writing, listening and reporting."""
        with self.engine.connect() as connection:
            self.cache.load(connection)
        self.pipeline.start()
        self.client.start()
        if self.http:
            self.http.start()
            log.info(
                "metrics and health on http://%s:%d/metrics and /healthz",
                self.settings.metrics_host,
                self.http.port,
            )
        self._heartbeat = threading.Thread(
            target=self._heartbeat_loop, name="ingest-heartbeat", daemon=True
        )
        self._heartbeat.start()
        log.info("ingest replica %s started", self.client_id)

    def stop(self) -> None:
        """Flush and acknowledge what was received, then disconnect (SIGTERM path)."""
        log.info("stopping: flushing the current batch")
        self._stop.set()
        self.pipeline.stop()
        self.client.stop()
        for sink in self.sinks[1:]:
            sink.close()
        if isinstance(self.instant, CriticalEventAlerts):
            self.instant.close()
        if self.http:
            self.http.stop()
        self._record_state()
        log.info("ingest replica %s stopped", self.client_id)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when connected, the flusher runs and writes are not failing."""
        failing_for = (
            time.monotonic() - self.pipeline.failing_since
            if self.pipeline.failing_since is not None
            else 0.0
        )
        detail = {
            "client_id": self.client_id,
            "connected": self.client.connected.is_set(),
            "state": self.client.state,
            "flusher": self.pipeline.alive(),
            "pending": self.pipeline.pending(),
            "failing_for_seconds": round(failing_for, 1),
            "last_error": self.pipeline.last_error,
        }
        ok = detail["connected"] and detail["flusher"] and failing_for < 30
        return ok, detail

    def _heartbeat_loop(self) -> None:
        interval = self.settings.ingest_heartbeat_interval.total_seconds()
        while not self._stop.wait(interval if self._heartbeat_ok() else min(interval, 5)):
            self._record_state()

    def _heartbeat_ok(self) -> bool:
        return self.pipeline.failing_since is None

    def _record_state(self) -> None:
        """Upsert this replica's row; skipped quietly while the database is down."""
        metrics = self.metrics
        self.metrics.pending.set(self.pipeline.pending())
        values = {
            "client_id": self.client_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self.started_at,
            "heartbeat_at": utcnow(),
            "connected": self.client.connected.is_set(),
            "received": int(metrics.total(metrics.received)),
            "written": int(metrics.total(metrics.written)),
            "dead_lettered": int(metrics.total(metrics.dead_letters)),
            "pending": self.pipeline.pending(),
            "spool_bytes": sum(s.backlog_bytes() for s in self.sinks),
            "lag_seconds": metrics.lag_seconds._value.get(),
            "last_error": self.pipeline.last_error,
        }
        dialect_insert = (
            postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        )
        statement = dialect_insert(IngestReplica).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["client_id"],
            set_={k: statement.excluded[k] for k in values if k != "client_id"},
        )
        try:
            with self.engine.begin() as connection:
                connection.execute(statement)
        except Exception as error:
            log.debug("replica state not recorded: %s", error)
