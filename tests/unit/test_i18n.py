"""Translations: English and Korean complete and consistent."""

from __future__ import annotations

import string

import pytest

from core.i18n import LANGUAGES, catalogue, normalize_language, translate


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_language_has_every_key() -> None:
    keys = {lang: set(catalogue(lang)) for lang in LANGUAGES}
    assert keys["en"] == keys["ko"]


def test_placeholders_match_across_languages() -> None:
    english = catalogue("en")
    for key, template in catalogue("ko").items():
        assert placeholders(template) == placeholders(english[key]), key


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ko_KR.UTF-8", "ko"),
        ("ko-KR", "ko"),
        ("KO", "ko"),
        ("en_US", "en"),
        ("fr", "en"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_normalize_language(given: str | None, expected: str) -> None:
    assert normalize_language(given) == expected


def test_translate_fills_parameters() -> None:
    assert translate("cli.db.outcome.upgraded", "ko", revision="0001") == (
        "데이터베이스를 리비전 0001(으)로 업그레이드했습니다."
    )


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(KeyError):
        translate("no.such.key", "en")
