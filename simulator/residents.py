"""The daily life of a resident: sleep, meals, naps, the lounge, night-time bathroom trips, vitals.

Each day's plan is drawn from a random generator seeded by (seed, resident, date), so a resident's
day does not depend on how long the simulator has run or on the other residents.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from simulator.site_registry import ResidentSpec

DEFAULT_ACTIVE = (time(7, 0), time(22, 0))


class Activity(StrEnum):
    """What a resident is doing; decides where they are, their movement and heart rate."""

    SLEEPING = "sleeping"
    BATHROOM = "bathroom"  # night-time trip to the en-suite bathroom
    GETTING_READY = "getting_ready"
    RESTING = "resting"
    ACTIVE = "active"
    NAP = "nap"
    MEAL = "meal"
    LOUNGE = "lounge"
    WALK = "walk"
    # Scenario states.
    FALLEN = "fallen"
    INACTIVE = "inactive"
    WANDERING = "wandering"


@dataclass(frozen=True, slots=True)
class Traits:
    """Where an activity happens and how it shows in the sensors."""

    in_room: bool
    in_bed: bool
    motion: float  # chance per minute that the room's motion sensor fires
    heart: float  # heart-rate offset, bpm


TRAITS: dict[Activity, Traits] = {
    Activity.SLEEPING: Traits(True, True, 0.03, -8),
    Activity.BATHROOM: Traits(True, False, 0.95, 4),
    Activity.GETTING_READY: Traits(True, False, 0.95, 6),
    Activity.RESTING: Traits(True, False, 0.35, 0),
    Activity.ACTIVE: Traits(True, False, 0.9, 6),
    Activity.NAP: Traits(True, True, 0.05, -5),
    Activity.MEAL: Traits(False, False, 0.0, 4),
    Activity.LOUNGE: Traits(False, False, 0.0, 2),
    Activity.WALK: Traits(False, False, 0.0, 15),
    Activity.FALLEN: Traits(True, False, 0.0, 20),
    Activity.INACTIVE: Traits(True, False, 0.0, -2),
    Activity.WANDERING: Traits(False, False, 0.0, 12),
}


@dataclass(slots=True)
class DayPlan:
    """One local calendar day: when the resident wakes and sleeps, and what fills the day."""

    day: date
    wake: datetime
    sleep: datetime
    blocks: list[tuple[datetime, datetime, Activity]] = field(default_factory=list)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


class ResidentLife:
    """One resident living day after day, stepped once per simulated minute."""

    def __init__(self, spec: ResidentSpec, site_timezone: str, seed: int) -> None:
        self.spec = spec
        self.zone = ZoneInfo(spec.timezone or site_timezone)
        self.seed = seed
        self.rng = random.Random(f"{seed}:resident:{spec.id}")  # noqa: S311 - reproducible
        self.heart_base = self.rng.uniform(66, 76)
        self.spo2_base = self.rng.uniform(96.6, 98.0)
        self.temp_base = self.rng.uniform(36.55, 36.8)
        start, end = spec.active_start, spec.active_end
        self.active_hours = (start, end) if start < end else DEFAULT_ACTIVE
        self.activity = Activity.SLEEPING
        self.in_room = True
        self.moved = False  # since the motion sensor last reported
        self.heart_override: float | None = None
        self.spo2_override: float | None = None  # a desaturation, set by benchmarks and tests
        self._override: tuple[Activity, float] | None = None
        self._heart = self.heart_base
        self._plans: dict[date, DayPlan] = {}

    # --- the plan of a day

    def plan(self, day: date) -> DayPlan:
        """The (cached) plan of a local calendar day."""
        plan = self._plans.get(day)
        if plan is None:
            if len(self._plans) > 4:
                self._plans.clear()
            plan = self._plans[day] = self._make_plan(day)
        return plan

    def _make_plan(self, day: date) -> DayPlan:
        rng = random.Random(f"{self.seed}:plan:{self.spec.id}:{day}")  # noqa: S311 - reproducible
        zone = self.zone

        def at(hour: int, minute: int, jitter: float) -> datetime:
            base = datetime.combine(day, time(hour, minute), tzinfo=zone)
            return base + timedelta(minutes=rng.uniform(-jitter, jitter))

        start, end = self.active_hours
        wake = at(start.hour, start.minute, 20) - timedelta(minutes=30)
        sleep = at(end.hour, end.minute, 20) - timedelta(minutes=30)
        if sleep - wake < timedelta(hours=8):
            sleep = wake + timedelta(hours=14)
        plan = DayPlan(day, wake, sleep)

        wanted: list[tuple[datetime, float, Activity]] = [
            (wake, rng.uniform(15, 25), Activity.GETTING_READY),
            (at(7, 30, 10), rng.uniform(35, 45), Activity.MEAL),
        ]
        if rng.random() < 0.6:
            wanted.append((at(9, 30, 15), rng.uniform(60, 90), Activity.LOUNGE))
        wanted.append((at(12, 0, 10), rng.uniform(40, 50), Activity.MEAL))
        if rng.random() < 0.5:
            wanted.append((at(13, 15, 10), rng.uniform(30, 50), Activity.NAP))
        if rng.random() < 0.5:
            wanted.append((at(15, 0, 15), rng.uniform(45, 75), Activity.LOUNGE))
        if rng.random() < 0.3:
            wanted.append((at(16, 20, 10), rng.uniform(20, 30), Activity.WALK))
        wanted.append((at(17, 30, 10), rng.uniform(40, 50), Activity.MEAL))
        if rng.random() < 0.4:
            wanted.append((at(18, 45, 15), rng.uniform(40, 60), Activity.LOUNGE))

        # Daytime blocks in order, never overlapping, all while awake.
        cursor = wake
        for begin, minutes, activity in sorted(wanted, key=lambda item: item[0]):
            begin = max(begin, cursor)
            finish = min(begin + timedelta(minutes=minutes), sleep - timedelta(minutes=10))
            if finish - begin >= timedelta(minutes=5):
                plan.blocks.append((begin, finish, activity))
                cursor = finish + timedelta(minutes=5)

        # Night-time bathroom trips: before waking and after going to bed.
        midnight = datetime.combine(day, time(0, 0), tzinfo=zone)
        windows = [
            (midnight + timedelta(minutes=30), wake - timedelta(minutes=40), (0, 0, 1, 1, 2)),
            (sleep + timedelta(minutes=60), midnight + timedelta(hours=23, minutes=45), (0, 1)),
        ]
        for low, high, choices in windows:
            span = (high - low).total_seconds()
            if span <= 0:
                continue
            for _ in range(rng.choice(choices)):
                begin = low + timedelta(seconds=rng.uniform(0, span))
                finish = begin + timedelta(minutes=rng.uniform(4, 10))
                plan.blocks.append((begin, finish, Activity.BATHROOM))
        plan.blocks.sort(key=lambda block: block[0])
        return plan

    def scheduled(self, local: datetime) -> Activity:
        """What the plan says the resident does at a local time (RESTING for free time)."""
        plan = self.plan(local.date())
        for begin, finish, activity in plan.blocks:
            if begin <= local < finish:
                return activity
        if local < plan.wake or local >= plan.sleep:
            return Activity.SLEEPING
        return Activity.RESTING

    # --- stepping

    def override(self, activity: Activity | None, until: float | None = None) -> None:
        """Force an activity until a time (scenarios); None returns to the plan."""
        self._override = None if activity is None or until is None else (activity, until)

    @property
    def overriding(self) -> tuple[Activity, float] | None:
        """The scenario activity in force and when it ends, if any."""
        return self._override

    def step(self, ts: float) -> bool:
        """Advance to a minute; True when the resident went through their room's door."""
        local = datetime.fromtimestamp(ts, self.zone)
        if self._override is not None and ts >= self._override[1]:
            self._override = None
        if self._override is not None:
            activity = self._override[0]
        else:
            activity = self.scheduled(local)
            if activity is Activity.RESTING:
                # Free time in the room: sticky spells of resting and pottering about.
                if (
                    self.activity in (Activity.RESTING, Activity.ACTIVE)
                    and self.rng.random() > 0.12
                ):
                    activity = self.activity
                elif self.rng.random() < 0.35:
                    activity = Activity.ACTIVE
        traits = TRAITS[activity]
        crossed = traits.in_room != self.in_room
        if crossed or self.rng.random() < traits.motion:
            self.moved = True
        self.activity = activity
        self.in_room = traits.in_room
        return crossed

    @property
    def in_bed(self) -> bool:
        """Whether the bed sensor feels the resident."""
        return TRAITS[self.activity].in_bed

    def take_motion(self) -> bool:
        """Whether the room's motion sensor fired since it last reported (and reset it)."""
        moved, self.moved = self.moved, False
        return moved

    # --- vitals

    def vitals(self, ts: float) -> dict[str, float]:
        """Heart rate, SpO2 and skin temperature with noise and a circadian rhythm."""
        local = datetime.fromtimestamp(ts, self.zone)
        hour = local.hour + local.minute / 60
        traits = TRAITS[self.activity]
        circadian = 3 * math.cos(2 * math.pi * (hour - 15) / 24)  # highest mid-afternoon
        target = self.heart_base + circadian + traits.heart
        self._heart += (target - self._heart) * 0.5 + self.rng.gauss(0, 1.5)
        if self.heart_override is not None:
            heart = self.heart_override
        else:
            heart = _clamp(round(self._heart), 50, 125)
        asleep = 0.8 if traits.in_bed else 0.0
        spo2 = _clamp(round(self.spo2_base - asleep + self.rng.gauss(0, 0.6)), 94, 99)
        if self.spo2_override is not None:
            spo2 = self.spo2_override
        temp = self.temp_base + 0.3 * math.sin(2 * math.pi * (hour - 12) / 24)
        temp = _clamp(round(temp + self.rng.gauss(0, 0.05), 1), 36.2, 37.2)
        return {"heart_rate": heart, "spo2": spo2, "body_temp_c": temp}

    def bed_heart_rate(self) -> float:
        """Heart rate as the bed sensor's ballistocardiograph sees it."""
        if self.heart_override is not None:
            return self.heart_override
        return _clamp(round(self._heart + self.rng.gauss(0, 1.0)), 45, 125)
