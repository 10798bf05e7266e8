"""The interface every sink implements."""

from __future__ import annotations

from typing import Protocol

from ingest.batch import Batch


class SinkUnavailable(Exception):
    """The store cannot take writes now; the batch is kept and retried (back-pressure)."""


class Sink(Protocol):
    """A destination for batches. `write` returns only once the batch is durable."""

    name: str

    def write(self, batch: Batch) -> None:
        """Persist the batch durably (or raise SinkUnavailable / any error to retry)."""
        ...

    def backlog_bytes(self) -> int:
        """Bytes waiting to reach the real store (a spool); 0 for sinks that write directly."""
        ...

    def close(self) -> None:
        """Flush what can be flushed and release resources."""
        ...
