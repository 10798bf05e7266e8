"""The simulated kitchen gas valve: gas concentration, leaks, and the commands that close it."""

from __future__ import annotations

import logging
import math
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from core.contract.errors import ContractError
from core.contract.payloads import command_ack_payload, parse_timestamp

log = logging.getLogger(__name__)

ALARM_PPM = 100.0  # the valve's own gas alarm raises a gas_leak event above this
ALARM_REPEAT = 300.0  # seconds between repeated gas_leak events while the gas stays high
LEAK_PPM_PER_SECOND = 2.5
VENTILATION_SECONDS = 180.0  # time constant of the gas clearing once the source stops
_FAR_FUTURE = timedelta(days=366 * 100)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What the valve does with a command: the acknowledgement and whether its state changed."""

    command_id: uuid.UUID
    command: str
    ok: bool
    ack: bytes
    changed: bool


class GasValve:
    """A motorised valve on the kitchen gas line with a gas sensor, obeying close/open commands."""

    def __init__(self, device_id: str, rng: random.Random, start: float) -> None:
        self.device_id = device_id
        self.rng = rng
        self.open = True
        self.baseline = rng.uniform(0.5, 2.0)
        self.ppm = self.baseline
        self.leak_until: float | None = None
        self._last = start
        self._last_alarm: float | None = None

    @property
    def state(self) -> str:
        """'open' or 'closed', as reported in the valve's status."""
        return "open" if self.open else "closed"

    def start_leak(self, ts: float, until: float) -> None:
        """Gas starts escaping (a burner left on unlit) until the valve closes or `until`."""
        self.advance(ts)
        self.leak_until = until

    def leaking(self, ts: float) -> bool:
        """Whether gas is escaping now."""
        return self.open and self.leak_until is not None and ts < self.leak_until

    def advance(self, ts: float) -> None:
        """Move the gas concentration forward to a time."""
        dt = max(0.0, ts - self._last)
        if dt == 0:
            return
        if self.leak_until is not None and self.open:
            leak_end = min(ts, self.leak_until)
            leaking = max(0.0, leak_end - self._last)
            self.ppm += LEAK_PPM_PER_SECOND * leaking * self.rng.uniform(0.8, 1.2)
            dt -= leaking
        if dt > 0:
            excess = self.ppm - self.baseline
            self.ppm = self.baseline + excess * math.exp(-dt / VENTILATION_SECONDS)
        self.ppm = max(0.0, min(10_000.0, self.ppm))
        self._last = ts

    def reading(self, ts: float) -> dict[str, float | bool]:
        """The gas sensor's reading now."""
        self.advance(ts)
        noise = self.rng.gauss(0, 0.2)
        return {"gas_ppm": round(max(0.0, min(10_000.0, self.ppm + noise)), 1)}

    def alarm_due(self, ts: float) -> bool:
        """Whether the gas is high enough to (re)raise a gas_leak event now."""
        self.advance(ts)
        if self.ppm < ALARM_PPM:
            return False
        if self._last_alarm is not None and ts - self._last_alarm < ALARM_REPEAT:
            return False
        self._last_alarm = ts
        return True

    def handle_command(self, payload: bytes, now: datetime) -> CommandResult | None:
        """Act on a command; None when it cannot be answered (no usable id) or has expired."""
        try:
            data: Any = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("valve %s ignored a command that is not JSON", self.device_id)
            return None
        if not isinstance(data, dict):
            log.warning("valve %s ignored a command that is not a JSON object", self.device_id)
            return None
        try:
            command_id = uuid.UUID(str(data.get("id")))
        except ValueError:
            log.warning("valve %s ignored a command without a UUID id", self.device_id)
            return None
        command = data.get("command")

        def answer(ok: bool, detail: str, changed: bool = False) -> CommandResult:
            ack = command_ack_payload(command_id, ok, detail)
            return CommandResult(command_id, str(command), ok, ack, changed)

        try:
            expires_at = parse_timestamp(data.get("expires_at"), now, _FAR_FUTURE)
        except ContractError as error:
            return answer(False, f"bad expires_at: {error.detail}")
        if expires_at <= now:
            log.info("valve %s dropped expired command %s", self.device_id, command_id)
            return None
        params = data.get("params", {})
        if params is not None and not isinstance(params, dict):
            return answer(False, "params must be an object")
        if command == "close_valve":
            changed = self.open
            self.open = False
            return answer(True, "valve closed" if changed else "valve already closed", changed)
        if command == "open_valve":
            changed = not self.open
            self.open = True
            return answer(True, "valve opened" if changed else "valve already open", changed)
        return answer(False, f"unknown command '{str(command)[:64]}'")
