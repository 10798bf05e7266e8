"""A faithful fake OpenAI-compatible chat completions endpoint, as a real local HTTP server.

It checks what a real one would reject (method, JSON, auth, messages) and records each request;
`mode` makes it answer, fail (500), stall past the client's timeout, or talk nonsense.
"""

from __future__ import annotations

import json
import time
from typing import Any

from devkit.http_server import LocalHttpServer

PATH = "/v1/chat/completions"


class FakeLlm(LocalHttpServer):
    """Answers `reply` as the assistant; `mode` in ok, error, slow, garbage."""

    def __init__(self, reply: str, api_key: str | None = None) -> None:
        super().__init__()
        self.reply = reply
        self.api_key = api_key
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []

    @property
    def endpoint(self) -> str:
        return f"{self.url}{PATH}"

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        if method != "POST" or path != PATH:
            return 404, {"error": {"message": "not found"}}
        if self.api_key and headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}}
        if not headers.get("Content-Type", "").startswith("application/json"):
            self.problems.append("content type")
            return 400, {"error": {"message": "JSON body expected"}}
        body = json.loads(raw)
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict)
                and m.get("role") in {"system", "user", "assistant"}
                and isinstance(m.get("content"), str)
                for m in messages
            )
        ):
            self.problems.append("messages")
            return 400, {"error": {"message": "messages must be a list of role/content"}}
        with self.lock:
            self.requests.append(body)
        if self.mode == "error":
            return 500, {"error": {"message": "model overloaded"}}
        if self.mode == "slow":
            time.sleep(2)
        if self.mode == "garbage":
            return 200, {"unexpected": True}
        return 200, {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.reply},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
