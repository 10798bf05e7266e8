"""Prometheus metrics of one ingest replica, and the HTTP endpoint serving them and /healthz."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)


class IngestMetrics:
    """Counters and gauges; each replica has its own registry (tests run several in-process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "iotcare_ingest_messages_received", "MQTT messages received", registry=r
        )
        self.written = Counter(
            "iotcare_ingest_rows_written", "Rows durably written", ["kind"], registry=r
        )
        self.dead_letters = Counter(
            "iotcare_ingest_dead_letters",
            "Messages (or parts) that broke the contract",
            ["reason"],
            registry=r,
        )
        self.write_failures = Counter(
            "iotcare_ingest_write_failures", "Failed batch writes (retried)", ["sink"], registry=r
        )
        self.batch_seconds = Histogram(
            "iotcare_ingest_batch_write_seconds",
            "Time to write one batch to every sink",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.lag_seconds = Gauge(
            "iotcare_ingest_lag_seconds",
            "Arrival to acknowledgement of the oldest message of the last batch",
            registry=r,
        )
        self.spool_bytes = Gauge(
            "iotcare_ingest_spool_bytes", "Bytes waiting in the on-disk spool", registry=r
        )
        self.connected = Gauge(
            "iotcare_ingest_connected", "1 while connected to the broker", registry=r
        )
        self.pending = Gauge(
            "iotcare_ingest_pending_messages",
            "Messages received, not yet written and acknowledged",
            registry=r,
        )
        self.reconnects = Counter(
            "iotcare_ingest_reconnects", "Broker (re)connection attempts", registry=r
        )
        self.skipped = Counter(
            "iotcare_ingest_messages_skipped",
            "Messages acknowledged unread: the platform's own, or retained ones seen before",
            registry=r,
        )
        self.callback_errors = Counter(
            "iotcare_ingest_callback_errors",
            "Messages the pipeline failed to take (recorded as internal_error when possible)",
            registry=r,
        )
        self.loop_errors = Counter(
            "iotcare_ingest_network_loop_errors",
            "Unexpected errors in the MQTT network loop (the connection is dropped and renewed)",
            registry=r,
        )
        self.healthy = Gauge(
            "iotcare_ingest_healthy",
            "1 while /healthz reports healthy (connected, threads alive, batches written)",
            registry=r,
        )

    def total(self, counter: Counter) -> float:
        """Sum of a counter over all its labels."""
        return sum(
            s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total")
        )

    def render(self) -> bytes:
        """Prometheus text exposition."""
        return generate_latest(self.registry)


class HealthServer:
    """GET /metrics (Prometheus) and /healthz (JSON; 200 healthy, 503 not) on one port."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: IngestMetrics,
        health: Callable[[], tuple[bool, dict[str, Any]]],
    ) -> None:
        metrics_ref, health_ref = metrics, health

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/metrics"):
                    health_ref()  # refreshes the health and connected gauges
                    self._send(200, metrics_ref.render(), CONTENT_TYPE_LATEST)
                elif self.path.startswith("/healthz"):
                    ok, detail = health_ref()
                    self._send(200 if ok else 503, orjson.dumps(detail), "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: " + format, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="ingest-http", daemon=True
        )

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
