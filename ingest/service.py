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
from core.contract.errors import Reason
from core.db import make_session_factory
from core.errors import ConfigError
from core.rules.instant import CriticalEventAlerts, Deliver, InstantRules
from core.settings import MqttProtocol, Settings
from core.timeutil import utcnow
from ingest.client import BrokerAddress, ClientConfig, IngestClient
from ingest.metrics import HealthServer, IngestMetrics
from ingest.parse import Limits
from ingest.pipeline import Delivery, Pipeline, PipelineConfig
from ingest.registry_cache import RegistryCache
from ingest.sinks.base import Sink
from ingest.sinks.influx import make_influx_sink
from ingest.sinks.sql import SqlSink
from models import DeadLetter, IngestReplica

log = logging.getLogger(__name__)

# Dead-letter reason of a message ingest itself failed on (not the device's fault).
INTERNAL_ERROR = Reason.INTERNAL_ERROR.value
# Failing writes, or a message waiting for its write, longer than this make a replica unhealthy
# (or 10 flush intervals, if longer).
STUCK_AFTER_SECONDS = 30.0


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
        stuck_after: float | None = None,
    ) -> None:
        url = mqtt_url or settings.mqtt_url
        if not url:
            raise ConfigError(
                "IOTCARE_MQTT_URL is not set: ingest needs a broker "
                "(`make demo` starts an embedded one)"
            )
        self.settings = settings
        self.engine = engine
        self.stuck_after = stuck_after or max(
            STUCK_AFTER_SECONDS, 10 * settings.ingest_flush_interval.total_seconds()
        )
        self.metrics = IngestMetrics()
        self.cache = RegistryCache()
        self.client_id = settings.mqtt_client_id or default_client_id()
        self.sessions = make_session_factory(engine, settings)
        self.instant = rules or CriticalEventAlerts(
            # Without a deliverer, notifications wait in the outbox for the sweeper flow.
            deliver=deliver or (lambda _ids: None),
            dispatch=lambda ids: dispatch(
                self.sessions, self.client, settings.mqtt_topic_root, command_ids=ids
            ),
        )
        self.sql = SqlSink(
            engine, self.cache, settings.default_timezone, self.instant, settings=settings
        )
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
            on_failure=self._record_failed_message,
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
        """Healthy when connected, every thread runs and batches get written; else the reasons."""
        now = time.monotonic()
        pipeline = self.pipeline
        failing_for = now - pipeline.failing_since if pipeline.failing_since is not None else 0.0
        oldest = pipeline.oldest_unwritten()
        waiting_for = now - oldest if oldest is not None else 0.0
        connected = self.client.is_connected()
        reasons: list[str] = []
        if self._stop.is_set():
            reasons.append("stopping")  # threads end on purpose now: nothing else to report
        elif not self.client.alive():
            reasons.append("MQTT network thread is not running")
        elif not connected:
            reasons.append(f"not connected to the broker ({self.client.state})")
        if not pipeline.alive() and not self._stop.is_set():
            reasons.append("flusher thread is not running")
        if failing_for >= self.stuck_after:
            reasons.append(f"writes failing for {failing_for:.0f} s: {pipeline.last_error}")
        elif waiting_for >= self.stuck_after:
            # Nothing fails, yet nothing gets written: a write that never returns.
            reasons.append(f"a message has waited {waiting_for:.0f} s for its batch to be written")
        heartbeat = self._heartbeat
        if heartbeat is not None and not heartbeat.is_alive() and not self._stop.is_set():
            reasons.append("heartbeat thread is not running")
        detail = {
            "client_id": self.client_id,
            "connected": connected,
            "state": self.client.state,
            "mqtt_thread": self.client.alive(),
            "flusher": pipeline.alive(),
            "pending": pipeline.pending(),
            "oldest_unwritten_seconds": round(waiting_for, 1),
            "failing_for_seconds": round(failing_for, 1),
            "last_error": pipeline.last_error,
            "reasons": reasons,
        }
        ok = not reasons
        self.metrics.connected.set(1 if connected else 0)
        self.metrics.healthy.set(1 if ok else 0)
        return ok, detail

    def _record_failed_message(
        self, topic: str, payload: bytes, _delivery: Delivery, error: Exception
    ) -> bool:
        """Dead-letter a message the pipeline failed on, at once; True once it is committed."""
        self.metrics.received.inc()
        limit = self.settings.ingest_dead_letter_payload_bytes
        detail = f"ingest failed on this message: {type(error).__name__}: {error}"
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    DeadLetter.__table__.insert().values(
                        topic=topic[:1024],
                        payload=bytes(payload[:limit]),
                        payload_size=len(payload),
                        reason=INTERNAL_ERROR,
                        detail=detail[:1000],
                        received_at=utcnow(),
                    )
                )
        except Exception as db_error:
            log.error(
                "message on %s not dead-lettered (%s); left unacknowledged for redelivery",
                topic[:200],
                db_error,
            )
            return False
        self.metrics.dead_letters.labels(reason=INTERNAL_ERROR).inc()
        return True

    def _heartbeat_loop(self) -> None:
        interval = self.settings.ingest_heartbeat_interval.total_seconds()
        while not self._stop.wait(interval if self._heartbeat_ok() else min(interval, 5)):
            try:
                self._record_state()
            except Exception:
                log.exception("replica state not recorded")

    def _heartbeat_ok(self) -> bool:
        return self.health()[0]

    def _record_state(self) -> None:
        """Upsert this replica's row; skipped quietly while the database is down."""
        metrics = self.metrics
        self.metrics.pending.set(self.pipeline.pending())
        _ok, detail = self.health()
        # The operator page shows a replica as connected only while it is healthy; the reasons
        # take the place of the last error (the table has no column of its own for them).
        reasons = [r for r in detail["reasons"] if r != "stopping"]
        values = {
            "client_id": self.client_id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self.started_at,
            "heartbeat_at": utcnow(),
            "connected": detail["connected"] and not reasons,
            "received": int(metrics.total(metrics.received)),
            "written": int(metrics.total(metrics.written)),
            "dead_lettered": int(metrics.total(metrics.dead_letters)),
            "pending": self.pipeline.pending(),
            "spool_bytes": sum(s.backlog_bytes() for s in self.sinks),
            "lag_seconds": metrics.lag_seconds._value.get(),
            "last_error": "; ".join(reasons)[:2000] if reasons else self.pipeline.last_error,
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
