"""Errors of the simulator: an English message plus a key the CLI can translate."""

from __future__ import annotations

from typing import Any

from core.errors import IotCareError


class SimulatorError(IotCareError):
    """A bad argument or an unreachable broker; `key` names a cli.simulate message."""

    def __init__(self, key: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params
