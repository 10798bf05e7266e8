"""A process's resources made on first use: what the CLI and the flows hold of core.bootstrap.

Light to import (the bootstrap, with its engine and channels, is imported when first needed), so
`iotcare --help` and a bad argument cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from core.bootstrap import Runtime
    from core.notify.channels import Channel
    from core.settings import Settings
    from models import Channel as ChannelKind


class LazyRuntime:
    """Settings, logging, engine, sessions and channels of one process, booted on first use."""

    process: ClassVar[str]

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    @cached_property
    def runtime(self) -> Runtime:
        """The process's Runtime (core.bootstrap.boot), made on first use."""
        from core.bootstrap import boot

        runtime = boot(self._settings, process=self.process)
        self._booted()
        return runtime

    def _booted(self) -> None:
        """What a kind of process adds once booted (nothing by default)."""

    @property
    def settings(self) -> Settings:
        """Validated settings (a bad one raises ConfigError naming it)."""
        return self.runtime.settings

    @property
    def engine(self) -> Engine:
        """The process's one engine."""
        return self.runtime.engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        """Session factory on the engine (its sessions carry the settings)."""
        return self.runtime.sessions

    @property
    def channels(self) -> Mapping[ChannelKind, Channel]:
        """The notification channels, configured from the settings."""
        return self.runtime.channels

    def close(self) -> None:
        """Release the engine if one was made."""
        if "runtime" in self.__dict__:
            self.runtime.close()
