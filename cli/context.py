"""Composition root of a CLI process: settings, logging, engine and sessions, made once."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory
from core.i18n import normalize_language, translator
from core.logging import configure_logging
from core.settings import Settings, get_settings


class CliContext:
    """Lazily built process resources, so `--help` and bad arguments cost nothing."""

    @cached_property
    def settings(self) -> Settings:
        """Settings, validated; a bad one raises ConfigError naming it."""
        settings = get_settings()
        # The CLI says what it does in its own words; INFO records would repeat them.
        quiet = settings.model_copy(update={"log_level": "WARNING"})
        configure_logging(quiet if settings.log_level == "INFO" else settings, "cli")
        return settings

    @cached_property
    def engine(self) -> Engine:
        """The process's one engine."""
        return make_engine(self.settings)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Session factory on the engine."""
        return make_session_factory(self.engine)

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
        if "engine" in self.__dict__:
            self.engine.dispose()


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
