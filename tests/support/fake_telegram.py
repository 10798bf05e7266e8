"""A faithful fake of the Telegram Bot API (sendMessage, getMe), as a real local HTTP server.

Telegram cannot be reached from the tests; this answers like api.telegram.org does: 401 for a
wrong token, 400 "chat not found" for unknown chats, 400 for a bad parse_mode or an empty text,
and {"ok": true, "result": <Message>} otherwise.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from devkit.http_server import LocalHttpServer

_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)$")
_PARSE_MODES = {None, "HTML", "Markdown", "MarkdownV2"}


class FakeTelegram(LocalHttpServer):
    """Bot API for one bot token and a set of known chats; records sent messages."""

    def __init__(self, token: str, chats: set[int]) -> None:
        super().__init__()
        self.token = token
        self.chats = chats
        self.sent: list[dict[str, Any]] = []

    @staticmethod
    def _error(code: int, description: str) -> tuple[int, Any]:
        return code, {"ok": False, "error_code": code, "description": description}

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        match = _PATH.match(path.split("?")[0])
        if not match:
            return self._error(404, "Not Found")
        if match["token"] != self.token:
            return self._error(401, "Unauthorized")
        if match["method"] == "getMe":
            return 200, {"ok": True, "result": {"id": 1, "is_bot": True, "username": "care_bot"}}
        if match["method"] != "sendMessage":
            return self._error(404, "Not Found: method not found")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._error(400, "Bad Request: invalid JSON")
        try:
            chat_id = int(body.get("chat_id"))
        except (TypeError, ValueError):
            return self._error(400, "Bad Request: chat_id is empty")
        if chat_id not in self.chats:
            return self._error(400, "Bad Request: chat not found")
        if not str(body.get("text") or "").strip():
            return self._error(400, "Bad Request: message text is empty")
        if body.get("parse_mode") not in _PARSE_MODES:
            return self._error(400, "Bad Request: unsupported parse_mode")
        with self.lock:
            self.sent.append(body)
            message_id = len(self.sent)
        return 200, {
            "ok": True,
            "result": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "text": body["text"],
            },
        }
