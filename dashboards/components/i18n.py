"""The signed-in person's language for everything the app shows."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.i18n import LANGUAGES, normalize_language, translate

LANGUAGE_KEY = "iotcare.language"
LANGUAGE_NAMES = {"en": "English", "ko": "한국어"}


def language() -> str:
    """The language chosen for this browser session (the user's own once signed in)."""
    return normalize_language(st.session_state.get(LANGUAGE_KEY))


def set_language(value: str) -> None:
    """Switch the session's language."""
    st.session_state[LANGUAGE_KEY] = normalize_language(value)


def t(key: str, **params: Any) -> str:
    """Message `key` in the session's language."""
    return translate(key, language(), **params)


def language_picker(key: str = "iotcare.language_picker") -> str | None:
    """A language selector; returns the newly chosen language when it changed, else None."""
    current = language()
    chosen = st.selectbox(
        t("app.common.language"),
        options=list(LANGUAGES),
        index=list(LANGUAGES).index(current),
        format_func=LANGUAGE_NAMES.__getitem__,
        key=key,
    )
    if chosen != current:
        set_language(chosen)
        return chosen
    return None
