"""Simulated time: a start instant and a speed-up, never ahead of the wall clock.

The platform dead-letters timestamps from the future, so a fast simulation starts in the past and
catches up: it runs `speed` times faster than real time until it reaches the wall clock, then
keeps pace with it.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.timeutil import utcnow
from simulator.errors import SimulatorError

# A fast run with no --duration and no --start replays the last day.
DEFAULT_REPLAY = timedelta(hours=24)


class SimClock:
    """Maps real (monotonic) time to simulated UTC time."""

    def __init__(
        self,
        start: datetime,
        speed: float,
        *,
        monotonic: Callable[[], float] = _time.monotonic,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        if speed <= 0:
            raise SimulatorError("bad_speed", "--speed must be greater than 0.", value=speed)
        self.start = start.astimezone(UTC)
        self.speed = speed
        self._monotonic = monotonic
        self._wall = wall
        self._real_start = monotonic()

    def now(self) -> datetime:
        """The simulated time now: start + elapsed × speed, capped at the wall clock."""
        elapsed = self._monotonic() - self._real_start
        simulated = self.start + timedelta(seconds=elapsed * self.speed)
        return min(simulated, self._wall())

    def real_elapsed(self) -> float:
        """Real seconds since the clock started."""
        return self._monotonic() - self._real_start


def default_start(speed: float, duration: float | None, now: datetime | None = None) -> datetime:
    """Where simulated time starts when --start is not given.

    Real time runs from now; a faster run ends at now when its duration is known, else replays
    the last day before catching up.
    """
    now = now or utcnow()
    if speed <= 1:
        return now
    if duration is not None:
        return now - timedelta(seconds=duration * speed)
    return now - DEFAULT_REPLAY


def parse_start(text: str, timezone: str, now: datetime | None = None) -> datetime:
    """--start: RFC 3339 (local to the site without an offset) or HH:MM, its latest past time."""
    now = now or utcnow()
    zone = ZoneInfo(timezone)
    try:
        clock = time.fromisoformat(text) if len(text) <= 8 and ":" in text else None
    except ValueError:
        clock = None
    if clock is not None:
        local_now = now.astimezone(zone)
        candidate = datetime.combine(local_now.date(), clock, tzinfo=zone)
        if candidate > local_now:
            candidate -= timedelta(days=1)
        return candidate.astimezone(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SimulatorError(
            "bad_start",
            f"--start '{text}' is neither HH:MM nor an RFC 3339 time.",
            value=text,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    moment = moment.astimezone(UTC)
    if moment > now + timedelta(minutes=1):
        raise SimulatorError(
            "start_in_future",
            f"--start {moment.isoformat()} is in the future; simulated time may not run ahead "
            "of the platform clock.",
            value=text,
        )
    return moment
