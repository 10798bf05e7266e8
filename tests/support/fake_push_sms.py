"""Real local HTTP fakes of an ntfy server and of a JSON SMS gateway, checking what they get.

The ntfy fake answers as ntfy does to a JSON publish (POST / with {"topic", "title", "message"}
and X-Priority / X-Click / X-Tags headers): 200 with the message, 401/403 with ntfy's JSON error
when a protected topic is published to without the right Bearer token. The SMS gateway takes
POST /send {"to": "+E.164", "text": "..."} with HTTP Basic auth, as small self-hosted gateways do.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any

from devkit.http_server import LocalHttpServer


@dataclass
class Request:
    """One request as a fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeNtfy(LocalHttpServer):
    """An ntfy server: `protected` topics need `Authorization: Bearer <token>`."""

    def __init__(self, token: str | None = None, protected: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.token = token
        self.protected = protected
        self.published: list[Request] = []
        self.refused: list[Request] = []

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        if method != "POST" or path != "/" or headers.get("Content-Type") != "application/json":
            return 400, {"code": 40001, "http": 400, "error": "JSON publish expected at /"}
        body = json.loads(raw)
        seen = Request(method, path, headers, body)
        topic = body.get("topic", "")
        auth = headers.get("Authorization")
        if topic in self.protected:
            if auth is None:
                with self.lock:
                    self.refused.append(seen)
                return 401, {"code": 40101, "http": 401, "error": "unauthorized"}
            if auth != f"Bearer {self.token}":
                with self.lock:
                    self.refused.append(seen)
                return 403, {"code": 40301, "http": 403, "error": "forbidden"}
        with self.lock:
            self.published.append(seen)
        return 200, {
            "id": secrets.token_hex(6),
            "event": "message",
            "topic": topic,
            "title": body.get("title"),
            "message": body.get("message"),
        }


class FakeSmsGateway(LocalHttpServer):
    """A JSON SMS gateway with Basic auth; `fail_with` makes it answer that status."""

    def __init__(self, user: str, password: str) -> None:
        super().__init__()
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.sent: list[Request] = []
        self.fail_with: int | None = None

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        if method != "POST" or path != "/send":
            return 404, {"error": "POST /send expected"}
        if headers.get("Authorization") != self.expected:
            return 401, {"error": "bad credentials"}
        if self.fail_with:
            return self.fail_with, {"error": "gateway busy"}
        body = json.loads(raw)
        if set(body) != {"to", "text"}:
            return 422, {"error": f"fields to and text expected, got {sorted(body)}"}
        with self.lock:
            self.sent.append(Request(method, path, headers, body))
        return 200, {"id": secrets.token_hex(6), "status": "queued"}
