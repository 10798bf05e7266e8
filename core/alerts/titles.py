"""Alert titles and rule names in the reader's language.

Alerts store their title in English ("Fall detected", "High heart rate: Kim Young-ja") and the
default rules are seeded with English names; operators name their own rules in any language. A
known English text (an event's name, a default rule's name, the setup notice) is shown in the
reader's language; anything else, such as an operator's own rule name, is shown as stored.
"""

from __future__ import annotations

from functools import cache

from core.i18n import DEFAULT_LANGUAGE, catalogue, normalize_language, translate

# Catalogue sections whose English texts are stored as titles or rule names.
_SECTIONS = ("notify.event.", "rules.default_names.")
_SETUP = "rules.setup.inactivity_title"
_OFFLINE = "rules.default_names.device_offline"
_DEVICE_TYPES = "app.rules.device_types."


@cache
def _known() -> dict[str, tuple[str, dict[str, str]]]:
    """English text -> (catalogue key, parameters that are themselves keys to translate)."""
    english = catalogue(DEFAULT_LANGUAGE)
    known: dict[str, tuple[str, dict[str, str]]] = {}
    for key, text in english.items():
        if key.startswith(_SECTIONS) and "{" not in text:
            known.setdefault(text, (key, {}))
    known[english[_SETUP]] = (_SETUP, {})
    # "Device offline: wearable", as core/seed.py names the per-type offline rules.
    for key, text in english.items():
        if key.startswith(_DEVICE_TYPES):
            name = translate(_OFFLINE, DEFAULT_LANGUAGE, device=text.lower())
            known[name] = (_OFFLINE, {"device": key})
    return known


def _whole(text: str, language: str) -> str | None:
    found = _known().get(text)
    if found is None:
        return None
    key, params = found
    return translate(key, language, **{p: translate(k, language) for p, k in params.items()})


def title_text(text: str | None, language: str | None) -> str:
    """`text` (an alert title or rule name) in `language` when it is a known English text.

    Rule alerts are titled "<rule name>: <label>", so a known rule name before ": " is
    translated and the rest (a resident's or device's name) kept.
    """
    language = normalize_language(language)
    if not text or language == DEFAULT_LANGUAGE:
        return text or ""  # stored in English already, exactly as written
    whole = _whole(text, language)
    if whole is not None:
        return whole
    # Longest known prefix first: "Device offline: wearable: Kim" before "Device offline".
    for known in sorted(_known(), key=len, reverse=True):
        if text.startswith(known + ": "):
            head = _whole(known, language)
            return f"{head}{text[len(known) :]}"
    return text
