"""Request ids: accept a sane X-Request-ID or make one, return it, and log with it."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import server_error
from core.logging import log_context

log = logging.getLogger("api.access")

HEADER = "X-Request-ID"
# A caller's id is kept only when it cannot smuggle anything into logs or headers.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Every HTTP request gets an id: in `request.state.request_id`, in the X-Request-ID
    response header, and (through core.logging.log_context) in every log line it causes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside its log context, adding the header to the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER.lower().encode(), b"").decode("latin-1")
        request_id = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        status_sent = False
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = int(message["status"]), True
                headers = list(message.get("headers") or [])
                headers.append((HEADER.lower().encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with log_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                # Here, not in Starlette's outermost error handler, so the 500 still carries
                # the request id (header, body, log line) like every other answer.
                log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
                if status_sent:
                    raise
                response = server_error(Request(scope), request_id)
                await response(scope, receive, send_with_id)
            finally:
                log.info(
                    "%s %s %s %.1f ms",
                    scope.get("method"),
                    scope.get("path"),
                    status,
                    (time.perf_counter() - started) * 1000,
                )
