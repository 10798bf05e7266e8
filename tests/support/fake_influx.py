"""A faithful fake of the InfluxDB 2.x write API, for tests: a real HTTP server on 127.0.0.1.

No real InfluxDB 2.x can be installed here: Debian's `influxdb` package is 1.6
(`apt-cache policy influxdb influxdb2` shows no influxdb2), which lacks /api/v2/write, and
nothing else may be downloaded. So the tests talk HTTP to this server instead, through the
real influxdb-client. It does what the real server does at the wire:

- POST /api/v2/write?org=&bucket=&precision= with `Authorization: Token <token>`; 401, 404
  (unknown org or bucket) and 400 (bad precision) with the real JSON error bodies;
- bodies gzip-decoded when `Content-Encoding: gzip`; chunked or Content-Length; HTTP/1.1
  keep-alive, as the client pools connections;
- strict line protocol: measurement, escaped tag set, field set with float / int (i) /
  uint (u) / bool / string values, optional integer timestamp at the request's precision;
  a malformed line fails the whole request with 400 `{"code": "invalid", "message":
  "unable to parse '<line>': <reason>"}` and stores nothing. Stricter than the real parser
  where it accepts sloppy input (only single spaces between sections, duplicate keys refused),
  so passing here means the output is clean line protocol;
- a field whose type differs from the type already stored for that measurement and field is
  dropped with 422 "partial write: field type conflict", the others kept (like the real one);
- GET /health (JSON) and GET/HEAD /ping (204 with X-Influxdb-Version).

Test controls: `fail_next(n, status, retry_after)` answers the next n writes with 503/429 (and
Retry-After); `go_down()` stops the listener and drops open connections (connection refused),
`come_up()` listens again on the same port; `points`, `lines`, `requests` and
`wait_for_points()` for assertions.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

VERSION = "v2.7.11"
PRECISIONS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT_RE = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_INT_RE = re.compile(r"^-?\d+i$")
_UINT_RE = re.compile(r"^\d+u$")
_TIMESTAMP_RE = re.compile(r"^-?\d+$")
_TRUE = {"t", "T", "true", "True", "TRUE"}
_FALSE = {"f", "F", "false", "False", "FALSE"}

FieldValue = float | int | bool | str


class LineProtocolError(ValueError):
    """A line the real server would refuse."""


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """One point as the server stored it (timestamp in nanoseconds)."""

    org: str
    bucket: str
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    time_ns: int


@dataclass(slots=True)
class RequestRecord:
    """One write request the server answered."""

    status: int
    gzip: bool
    lines: int
    precision: str | None


@dataclass(slots=True)
class _Failure:
    status: int
    retry_after: str | None


# --------------------------------------------------------------------------- parser


def _scan_name(line: str, pos: int, stops: str, escapable: str) -> tuple[str, int]:
    """Read an identifier up to an unescaped stop character; backslash escapes `escapable`."""
    out: list[str] = []
    while pos < len(line):
        char = line[pos]
        # As in the real parser, a backslash before any other character is a literal backslash.
        if char == "\\" and pos + 1 < len(line) and line[pos + 1] in escapable:
            out.append(line[pos + 1])
            pos += 2
            continue
        if char in stops:
            break
        out.append(char)
        pos += 1
    return "".join(out), pos


def _scan_string(line: str, pos: int) -> tuple[str, int]:
    """Read a double-quoted string field value starting at the opening quote."""
    out: list[str] = []
    pos += 1
    while pos < len(line):
        char = line[pos]
        if char == "\\" and pos + 1 < len(line) and line[pos + 1] in '"\\':
            out.append(line[pos + 1])
            pos += 2
            continue
        if char == '"':
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    raise LineProtocolError("unbalanced quotes")


def _field_value(text: str) -> FieldValue:
    if not text:
        raise LineProtocolError("missing field value")
    if _INT_RE.match(text):
        value = int(text[:-1])
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise LineProtocolError(f"unable to parse integer {text}: value out of range")
        return value
    if _UINT_RE.match(text):
        value = int(text[:-1])
        if value > 2**64 - 1:
            raise LineProtocolError(f"unable to parse unsigned {text}: value out of range")
        return value
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _FLOAT_RE.match(text):
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise LineProtocolError(f"invalid number {text}: value out of range")
        return value
    raise LineProtocolError(f"invalid field format: {text!r}")


def parse_line(line: str, precision: str, now_ns: int) -> tuple[str, dict, dict, int]:
    """Parse one non-empty, non-comment line: (measurement, tags, fields, time in ns)."""
    measurement, pos = _scan_name(line, 0, ", ", ", ")
    if not measurement:
        raise LineProtocolError("missing measurement")
    tags: dict[str, str] = {}
    while pos < len(line) and line[pos] == ",":
        key, pos = _scan_name(line, pos + 1, ",= ", ",= ")
        if pos >= len(line) or line[pos] != "=":
            raise LineProtocolError("missing tag value")
        value, pos = _scan_name(line, pos + 1, ",= ", ",= ")
        if pos < len(line) and line[pos] == "=":
            raise LineProtocolError("invalid tag format")
        if not key:
            raise LineProtocolError("missing tag key")
        if not value:
            raise LineProtocolError("missing tag value")
        if key in tags:
            raise LineProtocolError(f"duplicate tags: {key}")
        tags[key] = value
    if pos >= len(line) or line[pos] != " ":
        raise LineProtocolError("missing fields")
    pos += 1
    fields: dict[str, FieldValue] = {}
    while True:
        if pos >= len(line) or line[pos] == " ":
            raise LineProtocolError("missing fields")
        key, pos = _scan_name(line, pos, ",= ", ",= ")
        if not key:
            raise LineProtocolError("missing field key")
        if pos >= len(line) or line[pos] != "=":
            raise LineProtocolError("missing field value")
        pos += 1
        if pos < len(line) and line[pos] == '"':
            value: FieldValue
            value, pos = _scan_string(line, pos)
        else:
            end = pos
            while end < len(line) and line[end] not in ", ":
                end += 1
            value = _field_value(line[pos:end])
            pos = end
        if key in fields:
            raise LineProtocolError(f"duplicate field: {key}")
        fields[key] = value
        if pos < len(line) and line[pos] == ",":
            pos += 1
            continue
        break
    if pos == len(line):
        return measurement, tags, fields, now_ns
    if line[pos] != " ":
        raise LineProtocolError("invalid field format")
    stamp = line[pos + 1 :]
    if not _TIMESTAMP_RE.match(stamp):
        raise LineProtocolError(f"bad timestamp: {stamp!r}")
    time_ns = int(stamp) * PRECISIONS[precision]
    if not _INT64_MIN <= time_ns <= _INT64_MAX:
        raise LineProtocolError("time outside range")
    return measurement, tags, fields, time_ns


def parse_body(body: str, precision: str) -> list[tuple[str, dict, dict, int]]:
    """Parse a whole write body; raise LineProtocolError naming the first bad line."""
    now_ns = time.time_ns()
    points = []
    for raw in body.split("\n"):
        line = raw.lstrip(" \t")
        if not line or line.startswith("#"):
            continue
        try:
            points.append(parse_line(line, precision, now_ns))
        except LineProtocolError as error:
            raise LineProtocolError(f"unable to parse '{line}': {error}") from None
    return points


# --------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeInfluxDB


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real server and the client's pool
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake influx: " + format, *args)

    def _reply(
        self, status: int, payload: dict | None = None, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("X-Influxdb-Build", "OSS")
        self.send_header("X-Influxdb-Version", VERSION)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/health":
            self._reply(
                200,
                {
                    "name": "influxdb",
                    "message": "ready for queries and writes",
                    "status": "pass",
                    "checks": [],
                    "version": VERSION,
                    "commit": "fake",
                },
            )
        elif path == "/ping":
            self._reply(204)
        else:
            self._reply(404, {"code": "not found", "message": "path not found"})

    def do_HEAD(self) -> None:
        if urlsplit(self.path).path == "/ping":
            self._reply(204)
        else:
            self._reply(404)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        body = self._read_body()
        if parts.path != "/api/v2/write":
            self._reply(404, {"code": "not found", "message": "path not found"})
            return
        status, payload, headers = self.server.fake._write(
            parse_qs(parts.query), self.headers, body
        )
        self._reply(status, payload, headers)


class FakeInfluxDB:
    """A fake InfluxDB 2.x server on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        token: str = "test-token",
        org: str = "iotcare",
        buckets: tuple[str, ...] = ("telemetry",),
        port: int = 0,
    ) -> None:
        """Prepare the fake; `start()` (or `with`) listens on `port` (0: a free one)."""
        self.token = token
        self.org = org
        self.buckets = set(buckets)
        self.port = port
        self._lock = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._failures: deque[_Failure] = deque()
        self._field_types: dict[tuple[str, str, str], type] = {}
        self._points: list[StoredPoint] = []
        self._lines: list[str] = []
        self._requests: list[RequestRecord] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Base URL the client should use."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        """Whether the listener is accepting connections."""
        return self._server is not None

    def start(self) -> FakeInfluxDB:
        """Listen (on the same port as before after a `go_down`)."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.fake = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop every open connection (clients see connection refused)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    go_down = stop
    come_up = start

    def __enter__(self) -> FakeInfluxDB:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # ------------------------------------------------------------------ controls

    def fail_next(
        self, count: int, status: int = 503, retry_after: float | str | None = None
    ) -> None:
        """Answer the next `count` writes with `status` (and Retry-After), storing nothing."""
        header = None if retry_after is None else str(retry_after)
        with self._lock:
            self._failures.extend(_Failure(status, header) for _ in range(count))

    @property
    def points(self) -> list[StoredPoint]:
        """Every point stored, in arrival order (duplicates included, to count deliveries)."""
        with self._lock:
            return list(self._points)

    @property
    def lines(self) -> list[str]:
        """The raw accepted lines, in arrival order."""
        with self._lock:
            return list(self._lines)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every write request answered, in order."""
        with self._lock:
            return list(self._requests)

    def wait_for_points(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` points are stored; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: len(self._points) >= count, timeout)

    # ------------------------------------------------------------------ the write endpoint

    def _write(
        self, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict | None, dict[str, str] | None]:
        gzipped = headers.get("Content-Encoding", "").lower() == "gzip"
        precision = (query.get("precision") or ["ns"])[0]
        status, payload, extra, lines = self._handle_write(query, headers, body, gzipped, precision)
        with self._lock:
            self._requests.append(RequestRecord(status, gzipped, lines, precision))
        return status, payload, extra

    def _handle_write(
        self, query: dict[str, list[str]], headers: Any, body: bytes, gzipped: bool, precision: str
    ) -> tuple[int, dict | None, dict[str, str] | None, int]:
        auth = headers.get("Authorization", "")
        if auth not in (f"Token {self.token}", f"Bearer {self.token}"):
            return 401, {"code": "unauthorized", "message": "unauthorized access"}, None, 0
        org = (query.get("org") or query.get("orgID") or [""])[0]
        if not org:
            return (
                400,
                {"code": "invalid", "message": "Please provide either orgID or org"},
                None,
                0,
            )
        if org != self.org:
            message = f'organization name "{org}" not found'
            return 404, {"code": "not found", "message": message}, None, 0
        bucket = (query.get("bucket") or [""])[0]
        if bucket not in self.buckets:
            message = f'bucket "{bucket}" not found'
            return 404, {"code": "not found", "message": message}, None, 0
        if precision not in PRECISIONS:
            message = "invalid precision; valid precision units are ns, us, ms, and s"
            return 400, {"code": "invalid", "message": message}, None, 0
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            extra = {"Retry-After": failure.retry_after} if failure.retry_after else None
            code = "too many requests" if failure.status == 429 else "unavailable"
            return failure.status, {"code": code, "message": "try again later"}, extra, 0
        try:
            data = gzip.decompress(body) if gzipped else body
            text = data.decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as error:
            return 400, {"code": "invalid", "message": f"unable to read body: {error}"}, None, 0
        try:
            parsed = parse_body(text, precision)
        except LineProtocolError as error:
            return 400, {"code": "invalid", "message": str(error)}, None, 0
        return (*self._store(org, bucket, text, parsed), len(parsed))

    def _store(
        self, org: str, bucket: str, text: str, parsed: list[tuple[str, dict, dict, int]]
    ) -> tuple[int, dict | None, None]:
        dropped = 0
        conflict = ""
        raw_lines = [ln.lstrip(" \t") for ln in text.split("\n")]
        raw_lines = [ln for ln in raw_lines if ln and not ln.startswith("#")]
        with self._lock:
            for (measurement, tags, fields, time_ns), raw in zip(parsed, raw_lines, strict=True):
                clash = self._type_clash(bucket, measurement, fields)
                if clash:
                    dropped += 1
                    conflict = clash
                    continue
                for key, value in fields.items():
                    self._field_types[(bucket, measurement, key)] = _kind(value)
                self._points.append(StoredPoint(org, bucket, measurement, tags, fields, time_ns))
                self._lines.append(raw)
            self._lock.notify_all()
        if dropped:
            message = (
                f"failure writing points to database: partial write: {conflict} dropped={dropped}"
            )
            return 422, {"code": "unprocessable entity", "message": message}, None
        return 204, None, None

    def _type_clash(self, bucket: str, measurement: str, fields: dict) -> str:
        for key, value in fields.items():
            known = self._field_types.get((bucket, measurement, key))
            if known is not None and known is not _kind(value):
                return (
                    f'field type conflict: input field "{key}" on measurement "{measurement}" '
                    f"is type {_kind(value).__name__}, already exists as type {known.__name__}"
                )
        return ""


def _kind(value: FieldValue) -> type:
    # bool is a subclass of int in Python, but a separate type in InfluxDB.
    return bool if isinstance(value, bool) else type(value)


__all__ = ["FakeInfluxDB", "LineProtocolError", "StoredPoint", "parse_body", "parse_line"]
