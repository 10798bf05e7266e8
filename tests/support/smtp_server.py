"""A real SMTP server (aiosmtpd) on a fixed local port, stoppable, that records every message."""

from __future__ import annotations

import email
import email.policy
import threading
from collections import Counter
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from devkit.http_server import free_port

KEY_HEADER = "X-IotCare-Idempotency-Key"


class _Recorder:
    def __init__(self, owner: LocalSmtpServer) -> None:
        self.owner = owner

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.owner.lock:
            self.owner.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class LocalSmtpServer:
    """aiosmtpd Controller that can be stopped (connections refused) and started again."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self._controller: Controller | None = None

    def start(self) -> LocalSmtpServer:
        self._controller = Controller(_Recorder(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def keys(self) -> Counter[str]:
        """How many messages arrived per idempotency key."""
        with self.lock:
            return Counter(str(m[KEY_HEADER]) for _, m in self.messages)
