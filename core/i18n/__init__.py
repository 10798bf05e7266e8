"""Translations of everything a person reads, English and Korean, from TOML catalogues.

Each language has a folder (core/i18n/en/, core/i18n/ko/) with one file per area (cli.toml,
alerts.toml, app.toml, ...); the files of a language are merged, and a key may be defined once.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("en", "ko")
DEFAULT_LANGUAGE = "en"
_DIR = Path(__file__).resolve().parent


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(name, value, out)
        else:
            out[name] = str(value)


@cache
def catalogue(language: str) -> dict[str, str]:
    """All messages of one language, keyed by dotted name, from every <language>/*.toml file."""
    messages: dict[str, str] = {}
    for path in sorted((_DIR / language).glob("*.toml")):
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        found: dict[str, str] = {}
        _flatten("", data, found)
        clash = set(found) & set(messages)
        if clash:
            raise ValueError(f"{path}: keys defined twice: {sorted(clash)[:5]}")
        messages.update(found)
    return messages


def normalize_language(language: str | None) -> str:
    """Map 'ko_KR.UTF-8', 'ko-KR', 'KO' to 'ko'; anything unknown to English."""
    if not language:
        return DEFAULT_LANGUAGE
    code = language.replace("-", "_").split("_")[0].split(".")[0].lower()
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def translate(key: str, language: str | None = None, **params: Any) -> str:
    """The message `key` in `language` (English when missing), with {params} filled in."""
    lang = normalize_language(language)
    template = catalogue(lang).get(key) or catalogue(DEFAULT_LANGUAGE).get(key)
    if template is None:
        raise KeyError(f"no message '{key}' in the catalogue")
    return template.format(**params) if params else template


def translator(language: str | None) -> Callable[..., str]:
    """A `t(key, **params)` bound to one language."""

    def t(key: str, **params: Any) -> str:
        return translate(key, language, **params)

    return t


def plural(t: Callable[..., str], key: str, n: int, **params: Any) -> str:
    """A counted phrase: `key.one` when n is 1, else `key.other`, with {n} and params filled in.

    English has the two forms; Korean has one, so its catalogue gives both keys the same text.
    """
    return t(f"{key}.{'one' if n == 1 else 'other'}", n=n, **params)
