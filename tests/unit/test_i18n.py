"""Translations: English and Korean complete and consistent."""

from __future__ import annotations

import string

import pytest

from core.i18n import LANGUAGES, catalogue, normalize_language, plural, translate, translator


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


def test_counted_phrases_have_both_forms() -> None:
    english = catalogue("en")
    ones = {key.removesuffix(".one") for key in english if key.endswith(".one")}
    others = {key.removesuffix(".other") for key in english if key.endswith(".other")}
    assert ones == others


# A count written "(s)" reads wrong whatever the number; these are a unit and "http(s)".
_NOT_COUNTS = {"app.ingest.column.lag", "app.admin.address_help"}


def test_english_counts_no_things_with_s_in_brackets() -> None:
    vague = [
        key for key, text in catalogue("en").items() if "(s)" in text and key not in _NOT_COUNTS
    ]
    assert vague == []


@pytest.mark.parametrize(
    ("key", "n", "params", "expected"),
    [
        ("app.time.days_ago", 1, {}, "1 day ago"),
        ("app.commands.open_count", 1, {}, "1 command is still waiting for an acknowledgement."),
        ("app.devices.quarantine.title", 2, {}, "Quarantine: 2 devices waiting"),
        ("app.overview.no_vitals", 1, {"hours": 1}, "No vital signs in the last 1 hour"),
        ("rules.duration.minutes", 1, {}, "1 minute"),
        ("rules.duration.hours", 4, {}, "4 hours"),
    ],
)
def test_app_counts_agree_with_the_number(
    key: str, n: int, params: dict[str, int], expected: str
) -> None:
    assert plural(translator("en"), key, n, **params) == expected


@pytest.mark.parametrize(
    ("n", "en", "ko"),
    [
        (0, "up 0 times", "일어난 횟수 0회"),
        (1, "up 1 time", "일어난 횟수 1회"),
        (2, "up 2 times", "일어난 횟수 2회"),
    ],
)
def test_plural_picks_the_form(n: int, en: str, ko: str) -> None:
    assert plural(translator("en"), "report.times_up", n) == en
    assert plural(translator("ko"), "report.times_up", n) == ko
