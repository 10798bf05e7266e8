"""Composition root of a CLI process: settings, logging, engine and sessions (core.bootstrap)."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from core.i18n import normalize_language, translator

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from core.bootstrap import Runtime
    from core.settings import Settings


class CliContext:
    """Lazily built process resources, so `--help` and bad arguments cost nothing."""

    @cached_property
    def runtime(self) -> Runtime:
        """The process's settings, logging, engine, sessions and channels, made on first use."""
        # Imported here: the bootstrap (engine, channels) is the heavy part of a CLI start.
        from core.bootstrap import boot

        return boot(process="cli")

    @property
    def settings(self) -> Settings:
        """Settings, validated; a bad one raises ConfigError naming it."""
        return self.runtime.settings

    @property
    def engine(self) -> Engine:
        """The process's one engine."""
        return self.runtime.engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        """Session factory on the engine (its sessions carry the settings)."""
        return self.runtime.sessions

    @cached_property
    def language(self) -> str:
        """The operator's language (IOTCARE_LANGUAGE, else LANG)."""
        return normalize_language(os.environ.get("IOTCARE_LANGUAGE") or os.environ.get("LANG"))

    @cached_property
    def t(self) -> Callable[..., str]:
        """Translator for the operator's language."""
        return translator(self.language)

    def close(self) -> None:
        """Release the engine if one was made."""
        if "runtime" in self.__dict__:
            self.runtime.close()


_context: CliContext | None = None


def ctx() -> CliContext:
    """The CLI process's context."""
    global _context
    if _context is None:
        _context = CliContext()
    return _context


def reset(**_: Any) -> None:
    """Forget the context (tests run several commands in one process)."""
    global _context
    if _context is not None:
        _context.close()
    _context = None
