"""The episode book: open, repeat, same, clear and held, for lasting and momentary kinds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.rules import evaluate as ev
from core.rules.episodes import EpisodeBook, Transition

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
KEY = ("resident", 1)


def alarm(since: datetime | None) -> ev.Finding:
    return ev.Finding(KEY, ev.State.ALARM, since)


CLEAR = ev.Finding(KEY, ev.State.CLEAR)
HOLD = ev.Finding(KEY, ev.State.HOLD)


def test_a_lasting_episode_opens_once_then_repeats_only_when_a_new_one_begins() -> None:
    book = EpisodeBook()
    steps = [
        (alarm(T0), T0 + timedelta(minutes=5)),
        (alarm(T0), T0 + timedelta(minutes=6)),  # the same episode, seen again
        (HOLD, T0 + timedelta(minutes=7)),
        (alarm(None), T0 + timedelta(minutes=8)),  # began before the data: the same
        (alarm(T0 + timedelta(minutes=9)), T0 + timedelta(minutes=10)),  # a new episode
    ]
    found = [book.step(KEY, f, now, momentary=False, auto_resolve=False) for f, now in steps]
    assert found == [
        Transition.OPEN,
        Transition.SAME,
        Transition.NONE,
        Transition.SAME,
        Transition.REPEAT,
    ]
    assert book.open == {KEY: T0 + timedelta(minutes=9)}


def test_clearing_resolves_only_with_auto_resolve_and_an_open_alert() -> None:
    book = EpisodeBook()
    assert book.step(KEY, CLEAR, T0, momentary=False, auto_resolve=True) is Transition.NONE
    book.step(KEY, alarm(T0), T0, momentary=False, auto_resolve=True)
    assert book.decide(KEY, CLEAR, momentary=False, auto_resolve=False) is Transition.NONE
    assert book.step(KEY, CLEAR, T0, momentary=False, auto_resolve=True) is Transition.CLEAR
    assert KEY not in book.open
    later = T0 + timedelta(hours=1)
    assert book.step(KEY, alarm(later), later, momentary=False, auto_resolve=True) is (
        Transition.OPEN
    )


def test_an_alarm_with_no_start_opens_and_is_booked_at_its_tick() -> None:
    book = EpisodeBook()
    assert book.step(KEY, alarm(None), T0, momentary=False, auto_resolve=False) is Transition.OPEN
    assert book.open == {KEY: T0}
    assert book.remembered == {}


def test_momentary_episodes_are_judged_once_even_after_their_alert_resolved() -> None:
    book = EpisodeBook()
    opened = T0 + timedelta(minutes=1)
    now = T0 + timedelta(minutes=2)
    assert book.step(KEY, alarm(opened), now, momentary=True, auto_resolve=True) is Transition.OPEN
    assert book.step(KEY, CLEAR, now, momentary=True, auto_resolve=True) is Transition.CLEAR
    assert book.step(KEY, alarm(opened), now, momentary=True, auto_resolve=True) is Transition.SAME
    again = T0 + timedelta(minutes=30)
    assert book.step(KEY, alarm(again), again, momentary=True, auto_resolve=False) is (
        Transition.OPEN
    )
    third = T0 + timedelta(minutes=40)
    assert book.step(KEY, alarm(third), third, momentary=True, auto_resolve=False) is (
        Transition.REPEAT
    )


def test_a_silence_holds_alarms_but_not_clearing() -> None:
    book = EpisodeBook()
    held = book.step(KEY, alarm(T0), T0, momentary=False, auto_resolve=True, held=True)
    assert held is Transition.HELD
    assert book.open == {}
    book.step(KEY, alarm(T0), T0, momentary=False, auto_resolve=True)
    assert book.step(KEY, CLEAR, T0, momentary=False, auto_resolve=True, held=True) is (
        Transition.CLEAR
    )
