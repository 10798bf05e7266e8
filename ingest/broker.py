"""The embedded MQTT broker for `make demo` and `iotcare broker`: amqtt in a background thread.

For the demo only, so that IoT Care runs on one machine with no servers. A real deployment uses
Mosquitto (deploy/mosquitto/mosquitto.conf) or another MQTT 3.1.1/5 broker with shared
subscriptions. What amqtt 0.12.1 offers, read from its source:

- MQTT 3.1.1 only. A CONNECT with protocol level 5 is refused (CONNACK "unacceptable protocol
  version"), so clients of the embedded broker must use MQTT 3.1.1 (IOTCARE_MQTT_PROTOCOL=3.1.1).
- No shared subscriptions. `$share/<group>/<filter>` is accepted as a subscription but taken
  literally, so it never matches a topic and such a subscriber receives nothing: run one ingest
  replica without a shared group (IOTCARE_MQTT_SHARED_GROUP empty).
- QoS 0, 1 and 2, retained messages, last wills: yes.
- No persistence here: sessions, queued messages and retained messages live in memory and are
  lost when the broker stops (amqtt's SessionDBPlugin could keep them; the demo does not need it).
- No offline queue for anonymous clients: amqtt discards the session of an anonymous client when it
  disconnects, even with clean_session false, so messages published while it is away are not kept,
  and unacknowledged QoS 1 messages are not redelivered. Ingest's at-least-once guarantee therefore
  holds only against a real broker.
- Configuration (amqtt 0.12 `BrokerConfig`, not the old hbmqtt format): `listeners` maps names to
  `{"type": "tcp", "bind": "host:port"}` (a `default` listener is required) and `plugins` maps the
  dotted path of each plugin class to its options; we load only `AnonymousAuthPlugin`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from concurrent.futures import Future
from types import FrameType, TracebackType
from typing import Any

from amqtt.broker import Broker

logger = logging.getLogger(__name__)

_ANONYMOUS_AUTH = "amqtt.plugins.authentication.AnonymousAuthPlugin"


def _quiet_state_machine_logs() -> None:
    """amqtt's state machines (the `transitions` library) log every transition at INFO."""
    transitions_logger = logging.getLogger("transitions")
    if transitions_logger.level == logging.NOTSET:
        transitions_logger.setLevel(logging.WARNING)


def broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt 0.12 configuration: one TCP listener on host:port, anonymous clients allowed."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        # Listing plugins explicitly keeps amqtt's defaults out: no $SYS publisher, no packet log.
        "plugins": {_ANONYMOUS_AUTH: {"allow_anonymous": True}},
    }


class EmbeddedBroker:
    """amqtt's Broker on its own asyncio loop in a daemon thread, driven synchronously."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        """Configure (but do not start) a broker on host:port; port 0 picks a free one."""
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        """Broker URL for clients and settings: mqtt://host:port."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker thread is serving."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        """Start listening; returns once clients can connect, raises if the broker cannot start."""
        if self.running:
            return self
        _quiet_state_machine_logs()
        started: Future[int] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="iotcare-embedded-broker", daemon=True
        )
        self._thread.start()
        try:
            self.port = started.result(timeout)
        except BaseException:
            self._join(timeout)
            raise
        logger.info("Embedded MQTT broker listening on %s", self.url)
        return self

    def _run(self, started: Future[int]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._start_broker())
        except BaseException as error:
            started.set_exception(error)
            self._close_loop(loop)
            return
        started.set_result(self._bound_port())
        try:
            loop.run_forever()
        finally:
            self._close_loop(loop)

    async def _start_broker(self) -> None:
        # amqtt's Broker binds itself to the running loop, so it is built inside it.
        self._broker = Broker(broker_config(self.host, self.port))
        await self._broker.start()

    def _bound_port(self) -> int:
        """The port actually bound (differs from the configured one when that was 0)."""
        assert self._broker is not None
        server = self._broker._servers.get("default")
        sockets = getattr(getattr(server, "instance", None), "sockets", None) or ()
        for sock in sockets:
            return int(sock.getsockname()[1])
        return self.port

    @staticmethod
    def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect every client, close the listener and end the thread."""
        loop, broker = self._loop, self._broker
        if loop is None or not self.running:
            self._join(timeout)
            return
        if broker is not None:
            shutdown = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
            try:
                shutdown.result(timeout)
            except Exception:
                logger.exception("Embedded MQTT broker did not shut down cleanly")
        loop.call_soon_threadsafe(loop.stop)
        self._join(timeout)
        logger.info("Embedded MQTT broker on %s stopped", self.url)

    def _join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self._loop = None
        self._broker = None

    def __enter__(self) -> EmbeddedBroker:
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop on exit."""
        self.stop()


def run_broker_forever(
    host: str = "127.0.0.1", port: int = 1883, stop: threading.Event | None = None
) -> None:
    """Serve until SIGINT/SIGTERM (or until `stop` is set), then shut down cleanly."""
    stop = stop or threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            logger.info(
                "Received %s, stopping the embedded MQTT broker", signal.Signals(signum).name
            )
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request_stop)
    broker = EmbeddedBroker(host, port)
    try:
        broker.start()
        # A timed wait, so that signal handlers get to run promptly in the main thread.
        while not stop.wait(0.5):
            pass
    finally:
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
