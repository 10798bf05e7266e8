"""The episode book: what a finding does to the alert of its rule and subject. Pure, no I/O.

The engine (alerts in the database), the backtest (a replayed week) and the seeded history keep
the same book, so the backtest predicts what the engine does:

- an alarm opens an alert when none is open for the key (rule and subject);
- an alarm of a new episode (it began after the open alert's latest episode) counts a repeat;
- an alarm of the same episode seen again (or with no known start while an alert is open)
  counts nothing;
- momentary kinds (night exit, data quality) judge each episode once, by the latest episode any
  alert was about (remembered even once that alert was resolved), not by open alerts;
- a silence holds an alarm (nothing opens or repeats); a clearing finding still resolves;
- a clearing finding resolves the open alert when the rule auto-resolves.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from core.rules import evaluate as ev


class Transition(StrEnum):
    """What one finding does to the key's alert."""

    OPEN = "open"  # a new alert
    REPEAT = "repeat"  # a new episode on the alert still open
    SAME = "same"  # the episode seen again: nothing
    CLEAR = "clear"  # the condition is over: the open alert resolves
    HELD = "held"  # an alarm a silence holds: nothing
    NONE = "none"  # nothing to do (a hold, or a clear with nothing to resolve)


FIRES = frozenset({Transition.OPEN, Transition.REPEAT})


@dataclass
class EpisodeBook:
    """Open alerts (key -> their latest episode start) and, for momentary kinds, the latest
    episode any alert was about."""

    open: dict[Hashable, datetime] = field(default_factory=dict)
    remembered: dict[Hashable, datetime] = field(default_factory=dict)

    def decide(
        self,
        key: Hashable,
        finding: ev.Finding,
        *,
        momentary: bool,
        auto_resolve: bool,
        held: bool = False,
    ) -> Transition:
        """The transition `finding` makes for `key`, without recording it."""
        if finding.state is ev.State.HOLD:
            return Transition.NONE
        if finding.state is ev.State.CLEAR:
            return Transition.CLEAR if auto_resolve and key in self.open else Transition.NONE
        if held:
            return Transition.HELD
        since = finding.since
        if momentary:
            seen = self.remembered.get(key)
            if seen is not None and since is not None and since <= seen:
                return Transition.SAME  # this opening or failed run was alerted already
        elif key in self.open and (since is None or since <= self.open[key]):
            return Transition.SAME
        return Transition.REPEAT if key in self.open else Transition.OPEN

    def record(
        self, key: Hashable, finding: ev.Finding, now: datetime, transition: Transition
    ) -> None:
        """Remember what `transition` did, at `now`."""
        if transition is Transition.CLEAR:
            self.open.pop(key, None)
        elif transition in FIRES:
            self.open[key] = finding.since or now
            if finding.since is not None:
                self.remembered[key] = finding.since

    def step(
        self,
        key: Hashable,
        finding: ev.Finding,
        now: datetime,
        *,
        momentary: bool,
        auto_resolve: bool,
        held: bool = False,
    ) -> Transition:
        """Decide and record: the transition `finding` makes for `key` at `now`."""
        transition = self.decide(
            key, finding, momentary=momentary, auto_resolve=auto_resolve, held=held
        )
        self.record(key, finding, now, transition)
        return transition
