"""The signed-in person's language for everything the app shows."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.i18n import LANGUAGES, normalize_language, translate

LANGUAGE_KEY = "iotcare.language"
LANGUAGE_NAMES = {"en": "English", "ko": "한국어"}


def language() -> str:
    """The language chosen for this browser session (the user's own once signed in).

    Before anyone chose one, the browser's: a Korean browser gets a Korean sign-in page.
    """
    chosen = st.session_state.get(LANGUAGE_KEY)
    if chosen is None:
        chosen = browser_language()
        if chosen is not None:
            st.session_state[LANGUAGE_KEY] = chosen  # the picker then shows it chosen
    return normalize_language(chosen)


def preferred_language(*tags: str | None) -> str | None:
    """The first supported language in browser language tags ('ko-KR', 'fr,ko;q=0.8'), or None.

    Accept-Language lists languages most wanted first, so the order is the preference.
    """
    for tag in tags:
        for part in (tag or "").split(","):
            code = part.split(";")[0].strip().replace("-", "_").split("_")[0].lower()
            if code in LANGUAGES:
                return code
    return None


def browser_language() -> str | None:
    """The browser's language (navigator.language, else Accept-Language) if we speak it."""
    locale = st.context.locale  # None without a browser connection
    accept = st.context.headers.get("Accept-Language")
    return preferred_language(
        locale if isinstance(locale, str) else None,
        accept if isinstance(accept, str) else None,
    )


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
