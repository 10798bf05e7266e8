"""Translations: English and Korean complete and consistent."""

from __future__ import annotations

import re
import string

import pytest

from core.i18n import LANGUAGES, catalogue, normalize_language, plural, translate, translator
from core.rules.describe import describe_finding


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


def _count(n: int, key: str) -> str:
    return plural(translator("en"), key, n)


_ONE = [
    "Simulating site 'demo': 1 resident, 1 device, speed",
    "Load test: 1 device at site 'demo'",
    "Published 1 message (1 reading) in 0.50 s",
    "1 of 1 suite failed its latest run: vitals. Its failing checks are below.",
    "Window a – b: 1 of 1 check failed.",
    "1 of 1 value unexpected",
    "1 of 1 resident has their alerts held.",
    "1 blocked device",
    "over the last 1 minute.",
    "in the last 1 minute, and",
    "Messages per minute (last 1 minute)",
    "Nothing was stored in the last 1 minute.",
    "Waiting to be written: 1 message,",
    "Showing the newest 1 notification matching the filters.",
    "Replayed 1 day (1 value stored)",
    "1 rollup row written",
    "Suite vitals: 1 of 1 check failed",
]
_TWO = [
    "Simulating site 'demo': 2 residents, 2 devices, speed",
    "Load test: 2 devices at site 'demo'",
    "Published 2 messages (2 readings) in 0.50 s",
    "2 of 2 suites failed their latest run: vitals. Their failing checks are below.",
    "Window a – b: 2 of 2 checks failed.",
    "2 of 2 values unexpected",
    "2 of 2 residents have their alerts held.",
    "2 blocked devices",
    "over the last 2 minutes.",
    "in the last 2 minutes, and",
    "Messages per minute (last 2 minutes)",
    "Nothing was stored in the last 2 minutes.",
    "Waiting to be written: 2 messages,",
    "Showing the newest 2 notifications matching the filters.",
    "Replayed 2 days (2 values stored)",
    "2 rollup rows written",
    "Suite vitals: 2 of 2 checks failed",
]


@pytest.mark.parametrize(("n", "expected"), [(1, _ONE), (2, _TWO)])
def test_counted_messages_agree_with_one_and_two(n: int, expected: list[str]) -> None:
    """Each message that counts something reads right for 1 and for 2, built as its caller does."""
    t = translator("en")
    minutes = _count(n, "count.minutes")
    rendered = [
        t(
            "cli.simulate.start",
            site="demo",
            residents=_count(n, "count.residents"),
            devices=_count(n, "count.devices"),
            speed="1",
            seed=1,
            start="s",
            broker="b",
            topics="x",
        ),
        t(
            "cli.simulate.load_start",
            devices=_count(n, "count.devices"),
            site="demo",
            rate="1",
            broker="b",
        ),
        t(
            "cli.simulate.load_summary",
            published=_count(n, "count.messages"),
            readings=_count(n, "count.readings"),
            seconds="0.50",
            rate="1",
            target="1",
        ),
        plural(t, "app.quality.some_failed", n, total=_count(n, "count.suites"), suites="vitals"),
        t(
            "app.quality.run_summary",
            window_start="a",
            window_end="b",
            failed=n,
            evaluated=_count(n, "count.checks"),
        ),
        t("app.quality.unexpected", n=n, total=_count(n, "count.values")),
        plural(t, "app.silences.overview_count", n, total=_count(n, "count.residents")),
        plural(t, "app.devices.blocked.title", n),
        t("app.ingest.rate_help", minutes=minutes),
        t("app.ingest.dead_rate_help", minutes=minutes),
        t("app.ingest.rates", minutes=minutes),
        t("app.ingest.no_traffic", minutes=minutes),
        t("app.ingest.backlog", pending=_count(n, "count.messages"), spool="0 B", lag="-"),
        t("app.notifications.shown", n=_count(n, "count.notifications")),
        t(
            "app.rules.backtest.runtime",
            days=_count(n, "count.days"),
            points=_count(n, "count.values"),
            seconds="1",
            step="s",
        ),
        t(
            "cli.rollups.backfilled",
            hours="h",
            days="d",
            start="s",
            end="e",
            rows=_count(n, "count.rollup_rows"),
            seconds="1",
        ),
        describe_finding("data_quality", {"suite": "vitals", "failed": n, "evaluated": n}),
    ]
    for text, part in zip(rendered, expected, strict=True):
        assert part in text


def test_large_counts_have_thousands_separators() -> None:
    assert _count(12345, "count.values") == "12,345 values"
    assert plural(translator("ko"), "count.values", 12345) == "값 12,345개"


# Not counts: a device type's name, and maxima fixed in code (30 days, 14 days) that are never 1.
_NAMES_AND_MAXIMA = {
    "app.rules.scope.device_type_text",
    "errors.readings.page_size",
    "errors.rules.days",
    "errors.silence.too_long",
}


def test_no_fixed_plural_after_a_number() -> None:
    """No message writes '{x} residents' itself: a count.* phrase picks the form for the number."""
    english = catalogue("en")
    nouns = {
        english[key].removeprefix("{n} ").removeprefix("{n:,} ")
        for key in english
        if key.startswith("count.") and key.endswith(".other")
    }
    fixed = [
        key
        for key, text in english.items()
        if not key.endswith((".one", ".other")) and key not in _NAMES_AND_MAXIMA
        for noun in nouns
        # "{rate} messages/s" is a unit, not a count
        if re.search(r"\} " + noun + r"\b(?!/)", text)
    ]
    assert fixed == []
