"""Logging set-up: console or JSON records, rotating files, and per-run context in every record."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from core.settings import LogFormat, Settings

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "iotcare_log_context", default=None
)

# Attributes every LogRecord has; anything else on a record is structured extra data.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "context",
}


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (device, site, flow_run, ...) to every record logged inside the block."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current log context onto each record as `record.context`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the context; never drops a record."""
        record.context = dict(_context.get() or {})
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(getattr(record, "context", {}) or {})
    fields.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context and extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as a JSON line."""
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """Human-readable line with context appended as key=value pairs."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """UTC ISO time, like everything else in IoT Care."""
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        """Render the record and its context."""
        line = super().format(record)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{key}={value}" for key, value in extras.items())
        return line


def configure_logging(settings: Settings, process: str) -> None:
    """Configure the root logger for a process once, from settings."""
    formatter: logging.Formatter = (
        JsonFormatter() if settings.log_format == LogFormat.JSON else ConsoleFormatter()
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if settings.log_dir is not None:
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                settings.log_dir / f"{process}.log",
                maxBytes=settings.log_max_bytes,
                backupCount=settings.log_backup_count,
                encoding="utf-8",
            )
        )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_iotcare", False):
            root.removeHandler(handler)
            handler.close()
    context_filter = ContextFilter()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(context_filter)
        handler._iotcare = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(settings.log_level)
    # Chatty libraries stay at WARNING unless we are debugging.
    if settings.log_level != "DEBUG":
        for name in (
            "sqlalchemy.engine",
            "alembic.runtime.migration",
            "httpx",
            "amqtt",
            "transitions",
        ):
            logging.getLogger(name).setLevel(logging.WARNING)
