"""Composition root of a CLI process: settings, logging, engine and sessions (core.bootstrap)."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property
from typing import Any

from core.i18n import normalize_language, translator
from core.process import LazyRuntime


class CliContext(LazyRuntime):
    """The CLI process's resources (booted on first use) and the operator's language."""

    process = "cli"

    @cached_property
    def language(self) -> str:
        """The operator's language (IOTCARE_LANGUAGE, else LANG)."""
        return normalize_language(os.environ.get("IOTCARE_LANGUAGE") or os.environ.get("LANG"))

    @cached_property
    def t(self) -> Callable[..., str]:
        """Translator for the operator's language."""
        return translator(self.language)


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
