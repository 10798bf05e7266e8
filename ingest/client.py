"""paho-mqtt lifecycle for ingest: persistent session, QoS1, manual ack, backoff with jitter."""

from __future__ import annotations

import hashlib
import logging
import random
import ssl
import struct
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from core.contract.payloads import status_payload
from core.contract.topics import INBOUND, VERSION, subscription
from core.mqtt_url import BrokerAddress
from ingest.metrics import IngestMetrics
from ingest.pipeline import Delivery

log = logging.getLogger(__name__)

OnMessage = Callable[[str, bytes, Delivery], None]
# Called when handing a message over failed; True once the message is durably recorded (then
# it is acknowledged), False to leave it unacknowledged for redelivery on the next connection.
OnFailure = Callable[[str, bytes, Delivery, Exception], bool]
# Retained messages remembered per process, so a reconnect does not ingest them again.
RETAINED_MEMORY = 100_000
ACK_POLL_SECONDS = 0.02
# Longest stretch without reading the socket while the pipeline holds too many messages.
MAX_READ_PAUSE_SECONDS = 1.0
# Packets handled from the read buffer between checks for acks, publishes and the backlog.
DRAIN_PACKETS = 256
_PUBACK = struct.Struct("!BBH")  # fixed header, remaining length 2, message id


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Connection behaviour, from settings."""

    address: BrokerAddress
    client_id: str
    topic_root: str = "care"
    shared_group: str | None = None
    mqtt5: bool = True
    keepalive: int = 30
    session_expiry: int = 7 * 86400
    receive_maximum: int = 20
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    tls_ca_file: str | None = None
    tls_insecure: bool = False


@dataclass
class _Publish:
    """A publish handed to the network thread, and the caller's handle on its completion."""

    topic: str
    payload: bytes
    retain: bool
    info: mqtt.MQTTMessageInfo | None = None
    queued: threading.Event = field(default_factory=threading.Event)


class _BufferedClient(mqtt.Client):
    """paho's client reading the socket 64 KiB at a time.

    paho reads every packet with at least three recv() calls (the type byte, each remaining-length
    byte, the rest) and handles one packet per select(): at full load these system calls took
    about a third of the network thread. Here one recv() fills a buffer that later reads are served
    from; the network loop drains it with `loop_read()` before it selects again, since select()
    cannot see bytes already taken off the socket, a few hundred packets at a time.
    """

    READ_SIZE = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_buffer = b""
        self._read_pos = 0

    @property
    def buffered(self) -> int:
        """Bytes received from the socket and not yet handed to paho."""
        return len(self._read_buffer) - self._read_pos

    def _sock_recv(self, bufsize: int) -> bytes:
        pos = self._read_pos
        buffer = self._read_buffer
        if pos >= len(buffer):
            data = super()._sock_recv(self.READ_SIZE)  # BlockingIOError etc. as paho expects
            if len(data) <= bufsize:  # all of it (b"": connection closed)
                self._read_buffer, self._read_pos = b"", 0
                return data
            buffer, pos = data, 0
            self._read_buffer = buffer
        end = pos + bufsize
        self._read_pos = end
        return buffer[pos:end]

    def _sock_close(self) -> None:
        # Bytes of a closed connection must never be read as the next connection's.
        self._read_buffer, self._read_pos = b"", 0
        super()._sock_close()


def backoff_delay(attempt: int, minimum: float, maximum: float) -> float:
    """Exponential backoff (minimum doubling to maximum) with jitter in its upper half."""
    ceiling = min(maximum, minimum * (2 ** min(attempt, 30)))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


class IngestClient:
    """One broker connection; messages go to `on_message` and are acknowledged via `ack`."""

    def __init__(
        self,
        config: ClientConfig,
        on_message: OnMessage,
        metrics: IngestMetrics,
        backlog_full: Callable[[], bool] | None = None,
        on_failure: OnFailure | None = None,
    ) -> None:
        self.config = config
        self.on_message = on_message
        self.on_failure = on_failure or (lambda _topic, _payload, _delivery, _error: False)
        self.metrics = metrics
        # While this says so, the socket is not read (up to MAX_READ_PAUSE_SECONDS at a time):
        # memory stays bounded even when the broker sends more than its in-flight window (Mosquitto
        # 2.0.11 does, after acknowledgements).
        self.backlog_full = backlog_full or (lambda: False)
        self.connected = threading.Event()
        self.state = "starting"
        self._stopping = threading.Event()
        self._generation = 0
        self._connack_seen = False
        # Written batches' deliveries, acknowledged by the network thread itself: paho calls from
        # another thread would contend for the GIL on every PUBACK and stall both threads.
        self._to_ack: deque[Sequence[Delivery]] = deque()
        self._to_publish: deque[_Publish] = deque()
        self._thread: threading.Thread | None = None
        # (topic, payload digest) of retained messages already handed over by this process.
        self._retained_seen: OrderedDict[bytes, None] = OrderedDict()
        root = config.topic_root
        self._ingest_prefix = f"{root}/ingest/"
        self._device_prefix = f"{root}/{VERSION}/"
        self.client = self._make_client()

    @property
    def subscriptions(self) -> list[str]:
        """The one filter ingest subscribes to: everything under the topic root.

        One filter, so no message matches twice (Mosquitto sends a copy per matching
        subscription). Topics of the contract, and those breaking it (unknown kinds, extra
        levels), all arrive; the platform's own publishes are skipped on arrival (`platform_topic`).
        """
        pattern = f"{self.config.topic_root}/#"
        group = self.config.shared_group
        return [f"$share/{group}/{pattern}" if group else pattern]

    def _superseded(self) -> list[str]:
        """Filters earlier versions or settings may have left in a persistent session."""
        root, group = self.config.topic_root, self.config.shared_group
        groups = {None, "ingest", group}
        old = [subscription(root, kind, g) for kind in INBOUND for g in groups]
        old += [f"$share/{g}/{root}/#" if g else f"{root}/#" for g in groups]
        current = set(self.subscriptions)
        return sorted({f for f in old if f not in current})

    def platform_topic(self, topic: str) -> bool:
        """Whether the platform itself publishes on `topic` (commands, replica status)."""
        if topic.startswith(self._ingest_prefix):
            rest = topic[len(self._ingest_prefix) :].split("/")
            return len(rest) == 2 and rest[1] == "status"
        if topic.endswith("/cmd") and topic.startswith(self._device_prefix):
            return topic.count("/") == 4
        return False

    def alive(self) -> bool:
        """Whether the network thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def is_connected(self) -> bool:
        """Connected and the network thread alive (a dead thread leaves the flag behind)."""
        return self.connected.is_set() and self.alive()

    @property
    def status_topic(self) -> str:
        """This replica's own retained status topic (also its last will)."""
        return f"{self.config.topic_root}/ingest/{self.config.client_id}/status"

    def _make_client(self) -> _BufferedClient:
        config = self.config
        if config.mqtt5:
            client = _BufferedClient(
                mqtt.CallbackAPIVersion.VERSION2,
                client_id=config.client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=True,
            )
        else:
            client = _BufferedClient(
                mqtt.CallbackAPIVersion.VERSION2,
                client_id=config.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
        if config.address.username:
            client.username_pw_set(config.address.username, config.address.password)
        if config.address.tls:
            client.tls_set(ca_certs=config.tls_ca_file, cert_reqs=ssl.CERT_REQUIRED)
            client.tls_insecure_set(config.tls_insecure)
        client.will_set(self.status_topic, status_payload(False), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        # Our own publishes (status) are few; never let paho's outgoing queue grow unbounded.
        client.max_queued_messages_set(1000)
        return client

    # --- paho callbacks (run on the network thread)

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            self.state = f"refused: {reason_code}"
            log.error("broker refused the connection: %s", reason_code)
            return
        session_present = bool(getattr(_flags, "session_present", False))
        self._connack_seen = True
        self.connected.set()
        self.state = "connected"
        self.metrics.connected.set(1)
        log.info(
            "connected to broker %s:%d (session present: %s)",
            self.config.address.host,
            self.config.address.port,
            session_present,
        )
        # Retained messages only for a new subscription (MQTT 5): reconnecting to a persistent
        # session does not send them again. Under 3.1.1 `_on_message` skips the repeats.
        options: Any = (
            SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
            if self.config.mqtt5
            else 1
        )
        # Always subscribe: Mosquitto 2.0 does not restore shared subscriptions after a restart.
        client.subscribe([(pattern, options) for pattern in self.subscriptions])
        if session_present:
            # Subscribed first, so nothing falls between; duplicates meanwhile are idempotent.
            client.unsubscribe(self._superseded())
        client.publish(self.status_topic, status_payload(True), qos=1, retain=True)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any
    ) -> None:
        # Acks for messages of the old connection must not be sent on the next one: the broker
        # redelivers them (same session) and idempotent writes absorb the duplicates.
        self._generation += 1
        self.connected.clear()
        self.metrics.connected.set(0)
        if not self._stopping.is_set():
            self.state = "disconnected"
            log.warning("disconnected from broker: %s", reason_code)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        delivery = Delivery(message.mid, message.qos, self._generation)
        try:
            topic = message.topic
            if (message.retain and self._retained_again(topic, message.payload)) or (
                self.platform_topic(topic)
            ):
                self.metrics.skipped.inc()
                if delivery.qos:
                    self.ack([delivery])
                return
            self.on_message(topic, message.payload, delivery)
        except Exception as error:
            # Never let one message stop the network thread (paho re-raises out of loop()).
            self._message_failed(message, delivery, error)

    def _retained_again(self, topic: str, payload: bytes) -> bool:
        """Whether this retained message was handed over before (and remember it if not)."""
        # Topics never hold U+0000, so the separator keeps topic and payload apart.
        key = hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=16).digest()
        seen = self._retained_seen
        if key in seen:
            seen.move_to_end(key)
            return True
        seen[key] = None
        if len(seen) > RETAINED_MEMORY:
            seen.popitem(last=False)
        return False

    def _message_failed(
        self, message: mqtt.MQTTMessage, delivery: Delivery, error: Exception
    ) -> None:
        """Record a message the pipeline could not take; acknowledge it once it is recorded."""
        self.metrics.callback_errors.inc()
        topic = bytes(message._topic).decode("utf-8", "replace")  # .topic itself may fail
        log.error(
            "message on %s could not be handled: %s: %s",
            topic[:200],
            type(error).__name__,
            error,
            exc_info=error,
        )
        try:
            recorded = self.on_failure(topic, message.payload, delivery, error)
        except Exception:
            log.exception("message on %s not recorded; left for redelivery", topic[:200])
            recorded = False
        if recorded and delivery.qos:
            self.ack([delivery])

    # --- acknowledgement (called from the flusher thread)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Queue written messages for acknowledgement by the network thread (thread-safe)."""
        if deliveries:
            self._to_ack.append(deliveries)

    def _send_acks(self) -> None:
        """Acknowledge queued deliveries that arrived on the current connection."""
        generation = self._generation
        client = self.client
        queue = self._to_ack
        mids: list[int] = []
        while queue:
            for delivery in queue.popleft():
                if delivery.generation != generation:
                    continue
                if delivery.qos == 1:
                    mids.append(delivery.mid)
                else:
                    client.ack(delivery.mid, delivery.qos)
        if mids:
            self._send_pubacks(mids)

    def _send_pubacks(self, mids: list[int]) -> None:
        """PUBACK each message id, all in one write (the same bytes paho's ack() sends one by one).

        paho's ack() queues a packet and makes two system calls per message, about a tenth of
        ingest's CPU at full load; this uses paho's internal packet queue (pinned paho 2.2) and
        falls back to ack() if that ever changes.
        """
        client = self.client
        queue_packet = getattr(client, "_packet_queue", None)
        if queue_packet is not None:
            packet = b"".join([_PUBACK.pack(mqtt.PUBACK, 2, mid) for mid in mids])
            try:
                queue_packet(mqtt.PUBACK, packet, 0, 0)
                return
            except TypeError:
                log.debug("paho's packet queue changed; acknowledging one by one")
        for mid in mids:
            client.ack(mid, 1)

    # --- publishing (commands to devices)

    def send(self, topic: str, payload: bytes, timeout: float = 5.0, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's acknowledgement (a CommandSender)."""
        if not self.is_connected():
            raise ConnectionError("not connected to the broker")
        request = _Publish(topic, payload, retain)
        self._to_publish.append(request)
        if not request.queued.wait(timeout) or request.info is None:
            raise TimeoutError(f"could not queue {topic} within {timeout:.0f} s")
        request.info.wait_for_publish(timeout)
        if not request.info.is_published():
            raise TimeoutError(f"broker did not acknowledge {topic} within {timeout:.0f} s")

    def _send_publishes(self) -> None:
        """Publish queued requests from the network thread (paho's writes are not thread-safe)."""
        while self._to_publish:
            request = self._to_publish.popleft()
            request.info = self.client.publish(
                request.topic, request.payload, qos=1, retain=request.retain
            )
            request.queued.set()

    # --- lifecycle

    def start(self) -> None:
        """Connect and run the network loop in a thread, reconnecting until stopped."""
        self._thread = threading.Thread(target=self._run, name="ingest-mqtt", daemon=True)
        self._thread.start()

    def _connect_properties(self) -> Properties | None:
        if not self.config.mqtt5:
            return None
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry
        # The broker sends at most this many unacknowledged messages: our in-flight window.
        props.ReceiveMaximum = self.config.receive_maximum
        return props

    def _run(self) -> None:
        try:
            self._connect_loop()
        finally:
            # Whatever ended the thread, nobody is reading the broker any more.
            self.connected.clear()
            self.metrics.connected.set(0)
            if not self._stopping.is_set():
                self.state = "network thread stopped"
                log.critical("the MQTT network thread stopped; ingest receives nothing")

    def _connect_loop(self) -> None:
        attempt = 0
        first = True
        client = self.client
        address = self.config.address
        while not self._stopping.is_set():
            self.metrics.reconnects.inc()
            try:
                if first:
                    kwargs: dict[str, Any] = {"keepalive": self.config.keepalive}
                    if self.config.mqtt5:
                        kwargs.update(clean_start=False, properties=self._connect_properties())
                    client.connect(address.host, address.port, **kwargs)
                    first = False
                else:
                    client.reconnect()
            except (OSError, ssl.SSLError) as error:
                delay = backoff_delay(attempt, self.config.reconnect_min, self.config.reconnect_max)
                attempt += 1
                self.state = f"unreachable: {error}"
                log.warning(
                    "broker %s:%d unreachable (%s); retrying in %.1f s",
                    address.host,
                    address.port,
                    error,
                    delay,
                )
                self._stopping.wait(delay)
                continue
            self._connack_seen = False
            try:
                rc = self._serve()
            except Exception:
                # A bug in a callback or in paho: drop this connection (the broker redelivers
                # what was not acknowledged) and reconnect, rather than let the thread die.
                log.exception("MQTT network loop failed; reconnecting")
                self.metrics.loop_errors.inc()
                self._generation += 1
                self.connected.clear()
                self.metrics.connected.set(0)
                self.state = "disconnected"
                rc = mqtt.MQTT_ERR_UNKNOWN
            if self._connack_seen:
                attempt = 0  # this connection worked: start the backoff over
            if self._stopping.is_set():
                return
            delay = backoff_delay(attempt, self.config.reconnect_min, self.config.reconnect_max)
            attempt += 1
            log.warning(
                "connection lost (%s); reconnecting in %.1f s", mqtt.error_string(rc), delay
            )
            self._stopping.wait(delay)

    def _serve(self) -> mqtt.MQTTErrorCode:
        """Run one connection's network loop until it fails or ingest stops; paho's last rc."""
        client = self.client
        rc = mqtt.MQTT_ERR_SUCCESS
        backlog_full = self.backlog_full
        paused_since: float | None = None
        while not self._stopping.is_set() and rc == mqtt.MQTT_ERR_SUCCESS:
            if backlog_full():
                now = time.monotonic()
                if paused_since is None:
                    paused_since = now
                if now - paused_since < MAX_READ_PAUSE_SECONDS:
                    # Leave the rest in the socket (TCP holds the broker back); keep acking.
                    if self._to_ack:
                        self._send_acks()
                    if self._to_publish:
                        self._send_publishes()
                    self._stopping.wait(0.001)
                    continue
            paused_since = None
            # select() cannot see what is already in our buffer: handle that first. Otherwise a
            # short timeout bounds how long a written batch waits for its acks when idle.
            rc = client.loop_misc() if client.buffered else client.loop(timeout=ACK_POLL_SECONDS)
            drained = 0
            while rc == mqtt.MQTT_ERR_SUCCESS and client.buffered and drained < DRAIN_PACKETS:
                rc = client.loop_read()
                drained += 1
            if self._to_ack:
                self._send_acks()
            if self._to_publish:
                self._send_publishes()
        return rc

    def stop(self, timeout: float = 10.0) -> None:
        """Send pending acks, publish offline status, disconnect and stop the network thread."""
        deadline = time.monotonic() + timeout / 2
        while self._to_ack and self.connected.is_set() and time.monotonic() < deadline:
            time.sleep(ACK_POLL_SECONDS)
        if self.connected.is_set():
            try:
                self.send(self.status_topic, status_payload(False), timeout=2, retain=True)
            except (RuntimeError, ValueError, TimeoutError, ConnectionError) as error:
                log.debug("offline status not published: %s", error)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.client.disconnect()
        self.connected.clear()
        self.metrics.connected.set(0)
        self.state = "stopped"
