"""A small threaded TCP proxy a test can cut and restore, to make a server unreachable mid-stream.

Put it in front of the system PostgreSQL (or any TCP server) and point the code under test at
the proxy. `cut()` resets every open connection and refuses new ones, as when a database host
goes away; `restore()` accepts connections again on the same port.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

_BUFFER = 65536


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _reset(sock: socket.socket) -> None:
    """Close with an RST (linger 0), as a crashed or unplugged peer would look."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # A pump thread may be blocked in recv() on this socket, and that call keeps the kernel
    # socket alive after close(): no RST goes out, and a client waiting for an answer waits
    # forever. shutdown(SHUT_RD) wakes the reader without sending anything; the RST then goes
    # out when the last reference is dropped.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One proxied connection: the client socket, the upstream socket and their pump threads."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def start(self, on_done: Callable[[_Link], None]) -> None:
        for source, sink in ((self.client, self.upstream), (self.upstream, self.client)):
            threading.Thread(
                target=self._pump, args=(source, sink, on_done), daemon=True, name="tcp-proxy-pump"
            ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, on_done: Callable[[_Link], None]
    ) -> None:
        try:
            while not self._closed.is_set():
                data = source.recv(_BUFFER)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self.close(reset=False)
            on_done(self)

    def close(self, *, reset: bool) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        for sock in (self.client, self.upstream):
            if reset:
                _reset(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


class TcpProxy:
    """Forward 127.0.0.1:<port> to target_host:target_port, with cut() and restore()."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        """Configure (but do not start) a proxy; port defaults to a free one."""
        self.target = (target_host, target_port)
        self.host = host
        self.port = port or free_port(host)
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._cut = False
        self.accepted = 0

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) clients connect to."""
        return self.host, self.port

    @property
    def is_cut(self) -> bool:
        """Whether the proxy currently refuses and drops connections."""
        return self._cut

    @property
    def active_connections(self) -> int:
        """Connections currently being forwarded."""
        with self._lock:
            return len(self._links)

    def start(self) -> TcpProxy:
        """Listen and start forwarding in a background thread."""
        if self._thread is not None:
            return self
        self._stopping.clear()
        self._open_listener()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="tcp-proxy-accept")
        self._thread.start()
        return self

    def _open_listener(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        listener.settimeout(0.05)  # so the accept loop notices cut() and close() promptly
        with self._lock:
            self._listener = listener

    def _close_listener(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:
                self._stopping.wait(0.05)
                continue
            try:
                client, _ = listener.accept()
            except OSError:
                continue  # timeout, or the listener was closed by cut() or close() under us
            self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        client.setblocking(True)
        if self._cut:
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
        except OSError as error:
            logger.debug("tcp proxy: upstream %s:%s unreachable: %s", *self.target, error)
            _reset(client)
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, upstream)
        with self._lock:
            if self._cut:
                link.close(reset=True)
                return
            self._links.add(link)
            self.accepted += 1
        link.start(self._forget)

    def _forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def cut(self) -> None:
        """Reset every forwarded connection and refuse new ones until restore()."""
        self._cut = True
        self._close_listener()
        with self._lock:
            links, self._links = list(self._links), set()
        for link in links:
            link.close(reset=True)

    def restore(self) -> None:
        """Accept and forward connections again, on the same port."""
        if not self._cut:
            return
        self._open_listener()
        self._cut = False

    def close(self) -> None:
        """Stop the proxy: close the listener and every connection."""
        self._stopping.set()
        self.cut()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> TcpProxy:
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close on exit."""
        self.close()


def proxied_url(url: str, proxy: TcpProxy) -> str:
    """The same SQLAlchemy database URL, pointed at the proxy instead of the server."""
    return make_url(url).set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)


@dataclass(frozen=True)
class ProxiedDatabase:
    """A database reached through a TcpProxy: connect to `url`, cut `proxy` for an outage."""

    proxy: TcpProxy
    url: str
