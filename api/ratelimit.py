"""In-process token buckets: a steady rate per key (an API token, a client address) with bursts."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

# Past this many keys, full buckets (clients quiet for a minute) are forgotten: a flood of
# addresses must not grow the process without bound.
MAX_KEYS = 10_000


class TokenBuckets:
    """`per_minute` requests a minute per key, refilled evenly, up to `per_minute` in a burst.

    In-process: each API process counts for itself (several replicas each allow the rate).
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float | None:
        """Spend one request for `key`: None when allowed, else the seconds until one is."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_KEYS:
                self._forget_full(now)
            return None

    def _forget_full(self, now: float) -> None:
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.capacity:
                del self._buckets[key]


def retry_after_header(seconds: float) -> str:
    """Retry-After in whole seconds, never 0 (a client retrying at once would be refused)."""
    return str(max(1, math.ceil(seconds)))
