"""A real local webhook receiver: records every POST and counts receipts by idempotency key."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from devkit.http_server import LocalHttpServer


@dataclass
class Receipt:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class WebhookReceiver(LocalHttpServer):
    """Answers 200 (or `fail_with`), keeps receipts; deduplicates as a careful receiver would."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.receipts: list[Receipt] = []
        self.fail_with: int | None = None

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        if method != "POST" or headers.get("Content-Type") != "application/json":
            return 415, {"error": "JSON POST expected"}
        if self.fail_with:
            return self.fail_with, {"error": "down for maintenance"}
        with self.lock:
            self.receipts.append(Receipt(path, headers, json.loads(raw)))
        return 200, {"ok": True}

    def keys(self) -> Counter[str]:
        """How many times each Idempotency-Key arrived."""
        with self.lock:
            return Counter(r.headers.get("Idempotency-Key", "") for r in self.receipts)
