"""Analyst queries over weeks of data: alert response, false-alarm candidates, daily vitals and
data completeness, as pandas DataFrames for the notebooks.

Same access rules as the app: alert queries see what `alert_clause` lets the viewer see, resident
queries check the resident first (AccessDenied otherwise), data-quality queries need VIEW_QUALITY.
Times are UTC; `day` columns are UTC dates unless a timezone is given.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from core.access import Permission, Viewer, check_resident, require
from core.timeutil import ensure_utc
from core.use_cases.alerts import alert_clause
from core.use_cases.overview import VITALS
from models import (
    Alert,
    AlertRule,
    DeadLetter,
    Device,
    Resident,
    Rollup,
    RollupPeriod,
    RuleKind,
    User,
)

# Resolved this soon after opening, by a person, without anyone acknowledging: likely nothing.
QUICK_RESOLVE = timedelta(minutes=10)
# This many alerts of one rule about one subject in the period: the rule may be too eager.
REPEATED_ALERTS = 3
# Words in a resolution note that say the alert was not real (en, ko).
FALSE_ALARM_WORDS = ("false alarm", "by mistake", "오경보", "오작동", "실수")

RESPONSE_COLUMNS = [
    "id",
    "rule",
    "kind",
    "severity",
    "status",
    "subject",
    "resident_id",
    "resident",
    "device_id",
    "opened_at",
    "acknowledged_at",
    "resolved_at",
    "minutes_to_ack",
    "minutes_to_resolve",
    "occurrences",
    "acknowledged_by",
    "resolved_by",
    "resolve_note",
]
ACK_COLUMNS = [
    "period",
    "rule",
    "alerts",
    "acknowledged",
    "ack_rate",
    "median_minutes_to_ack",
    "p90_minutes_to_ack",
]
CANDIDATE_COLUMNS = [*RESPONSE_COLUMNS, "quick_resolve", "noted_false", "repeated", "reasons"]
SUMMARY_COLUMNS = ["rule", "alerts", "candidates", "share", "quick_resolve", "noted", "repeated"]
DAILY_VITALS_COLUMNS = ["day", "metric", "mean", "min", "max", "p95", "count"]
COMPLETENESS_COLUMNS = ["day", "device_type", "devices", "reporting", "readings", "per_device"]
DEAD_LETTER_COLUMNS = ["day", "reason", "count"]


def _minutes(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.total_seconds() / 60


def _utc(frame: pd.DataFrame, columns: list[str]) -> None:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column], utc=True)


def alert_responses(
    session: Session, viewer: Viewer, start: datetime, end: datetime
) -> pd.DataFrame:
    """Alerts the viewer sees opened in [start, end), with minutes to acknowledge and resolve."""
    acker, resolver = aliased(User), aliased(User)
    device_resident = aliased(Resident)
    rows = session.execute(
        select(
            Alert,
            AlertRule.name,
            func.coalesce(Resident.name, device_resident.name),
            func.coalesce(Alert.resident_id, Device.resident_id),
            acker.display_name,
            resolver.display_name,
        )
        .outerjoin(AlertRule, AlertRule.id == Alert.rule_id)
        .outerjoin(Resident, Resident.id == Alert.resident_id)
        .outerjoin(Device, Device.id == Alert.device_id)
        .outerjoin(device_resident, device_resident.id == Device.resident_id)
        .outerjoin(acker, acker.id == Alert.acknowledged_by)
        .outerjoin(resolver, resolver.id == Alert.resolved_by)
        .where(
            alert_clause(viewer),
            Alert.opened_at >= ensure_utc(start),
            Alert.opened_at < ensure_utc(end),
        )
        .order_by(Alert.opened_at, Alert.id)
    ).all()
    records = [
        {
            "id": str(alert.id),
            # Rule-less alerts (the instant safety net) are named by their kind.
            "rule": rule or f"({RuleKind(alert.kind).value})",
            "kind": RuleKind(alert.kind).value,
            "severity": str(alert.severity),
            "status": str(alert.status),
            "subject": f"{alert.subject_type}:{alert.subject_id}",
            "resident_id": about,
            "resident": resident,
            "device_id": alert.device_id,
            "opened_at": alert.opened_at,
            "acknowledged_at": alert.acknowledged_at,
            "resolved_at": alert.resolved_at,
            "occurrences": alert.occurrences,
            "acknowledged_by": ack_name,
            "resolved_by": resolve_name,
            "resolve_note": alert.resolve_note,
        }
        for alert, rule, resident, about, ack_name, resolve_name in rows
    ]
    frame = pd.DataFrame.from_records(records, columns=RESPONSE_COLUMNS)
    _utc(frame, ["opened_at", "acknowledged_at", "resolved_at"])
    frame["minutes_to_ack"] = _minutes(frame["acknowledged_at"], frame["opened_at"])
    frame["minutes_to_resolve"] = _minutes(frame["resolved_at"], frame["opened_at"])
    return frame[RESPONSE_COLUMNS]


def time_to_acknowledge(
    session: Session, viewer: Viewer, start: datetime, end: datetime, freq: str = "W-MON"
) -> pd.DataFrame:
    """Per rule and period (pandas freq, weeks by default): alerts, share acknowledged, median
    and 90th-percentile minutes to acknowledge."""
    frame = alert_responses(session, viewer, start, end)
    if frame.empty:
        return pd.DataFrame(columns=ACK_COLUMNS)
    opened = frame["opened_at"].dt.tz_convert(None)
    frame["period"] = opened.dt.to_period(freq).dt.start_time
    grouped = frame.groupby(["period", "rule"], sort=True)
    out = grouped.agg(
        alerts=("id", "size"),
        acknowledged=("acknowledged_at", "count"),
        median_minutes_to_ack=("minutes_to_ack", "median"),
        p90_minutes_to_ack=("minutes_to_ack", lambda s: s.quantile(0.9)),
    ).reset_index()
    out["ack_rate"] = out["acknowledged"] / out["alerts"]
    return out[ACK_COLUMNS]


def _noted_false(note: Any) -> bool:
    text = str(note or "").lower()
    return any(word in text for word in FALSE_ALARM_WORDS)


def false_alarm_candidates(
    session: Session,
    viewer: Viewer,
    start: datetime,
    end: datetime,
    *,
    quick: timedelta = QUICK_RESOLVE,
    repeated: int = REPEATED_ALERTS,
) -> pd.DataFrame:
    """Alerts that look like false alarms: resolved by a person within `quick` and never
    acknowledged, a resolution note saying so, or one of `repeated`+ alerts (or occurrences)
    of the same rule about the same subject in the period."""
    frame = alert_responses(session, viewer, start, end)
    if frame.empty:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    by_person = frame["resolved_by"].notna()
    frame["quick_resolve"] = (
        by_person
        & frame["acknowledged_at"].isna()
        & (frame["minutes_to_resolve"] <= quick.total_seconds() / 60)
    )
    frame["noted_false"] = frame["resolve_note"].map(_noted_false) & by_person
    per_subject = frame.groupby(["rule", "subject"])["occurrences"].transform("sum")
    frame["repeated"] = per_subject >= repeated
    flags = {"quick_resolve": "quick", "noted_false": "noted", "repeated": "repeated"}
    frame["reasons"] = frame.apply(
        lambda row: ", ".join(label for column, label in flags.items() if row[column]), axis=1
    )
    found = frame[frame["reasons"] != ""]
    return found[CANDIDATE_COLUMNS].reset_index(drop=True)


def false_alarm_summary(
    session: Session, viewer: Viewer, start: datetime, end: datetime
) -> pd.DataFrame:
    """Per rule: alerts, false-alarm candidates, their share, and how many for each reason."""
    alerts = alert_responses(session, viewer, start, end)
    if alerts.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    candidates = false_alarm_candidates(session, viewer, start, end)
    totals = alerts.groupby("rule").size().rename("alerts")
    flagged = candidates.groupby("rule").agg(
        candidates=("id", "size"),
        quick_resolve=("quick_resolve", "sum"),
        noted=("noted_false", "sum"),
        repeated=("repeated", "sum"),
    )
    out = pd.concat([totals, flagged], axis=1).fillna(0).reset_index(names="rule")
    for column in ("candidates", "quick_resolve", "noted", "repeated"):
        out[column] = out[column].astype(int)
    out["share"] = out["candidates"] / out["alerts"]
    return out.sort_values(["candidates", "alerts"], ascending=False)[SUMMARY_COLUMNS].reset_index(
        drop=True
    )


def daily_vitals(
    session: Session,
    viewer: Viewer,
    resident_id: int,
    start: datetime,
    end: datetime,
    metrics: tuple[str, ...] = VITALS,
) -> pd.DataFrame:
    """The resident's vital signs per UTC day (daily rollups): mean, min, max, p95, count."""
    check_resident(session, viewer, resident_id)
    devices = session.scalars(select(Device.id).where(Device.resident_id == resident_id)).all()
    if not devices:
        return pd.DataFrame(columns=DAILY_VITALS_COLUMNS)
    rows = session.execute(
        select(
            Rollup.bucket,
            Rollup.metric,
            Rollup.mean,
            Rollup.min,
            Rollup.max,
            Rollup.p95,
            Rollup.count,
        )
        .where(
            Rollup.period == RollupPeriod.DAY,
            Rollup.device_id.in_(list(devices)),
            Rollup.metric.in_(list(metrics)),
            Rollup.bucket >= ensure_utc(start),
            Rollup.bucket < ensure_utc(end),
        )
        .order_by(Rollup.bucket, Rollup.metric)
    ).all()
    frame = pd.DataFrame(rows, columns=["day", *DAILY_VITALS_COLUMNS[1:]])
    frame["day"] = pd.to_datetime(frame["day"], utc=True)
    # A metric two devices report (heart rate: wearable and bed) is weighted by readings.
    frame["weighted"] = frame["mean"] * frame["count"]
    out = (
        frame.groupby(["day", "metric"])
        .agg(
            weighted=("weighted", "sum"),
            min=("min", "min"),
            max=("max", "max"),
            p95=("p95", "max"),
            count=("count", "sum"),
        )
        .reset_index()
    )
    out["mean"] = out["weighted"] / out["count"]
    return out[DAILY_VITALS_COLUMNS]


def _in_service_on(fleet: pd.DataFrame, device_type: str, day: pd.Timestamp) -> int:
    """Registered devices of a type still in service when the UTC day began."""
    kind = fleet[fleet["device_type"] == device_type]
    retired = pd.to_datetime(kind["decommissioned_at"], utc=True)
    return int((retired.isna() | (retired > day)).sum())


def reading_completeness(
    session: Session, viewer: Viewer, start: datetime, end: datetime
) -> pd.DataFrame:
    """Per UTC day and device type: registered devices, how many reported, readings and readings
    per reporting device (from daily rollups, so it stays cheap over months)."""
    require(viewer, Permission.VIEW_QUALITY)
    per_device = (
        select(
            Rollup.bucket.label("day"),
            Rollup.device_id,
            func.sum(Rollup.count).label("readings"),
        )
        .where(
            Rollup.period == RollupPeriod.DAY,
            Rollup.bucket >= ensure_utc(start),
            Rollup.bucket < ensure_utc(end),
        )
        .group_by(Rollup.bucket, Rollup.device_id)
        .subquery()
    )
    rows = session.execute(
        select(per_device.c.day, Device.type, per_device.c.device_id, per_device.c.readings).join(
            Device, Device.id == per_device.c.device_id
        )
    ).all()
    fleet = pd.DataFrame(
        session.execute(
            select(Device.type, Device.decommissioned_at).where(Device.quarantined.is_(False))
        ).all(),
        columns=["device_type", "decommissioned_at"],
    )
    frame = pd.DataFrame(rows, columns=["day", "device_type", "device_id", "readings"])
    if frame.empty:
        return pd.DataFrame(columns=COMPLETENESS_COLUMNS)
    frame["day"] = pd.to_datetime(frame["day"], utc=True)
    out = (
        frame.groupby(["day", "device_type"])
        .agg(reporting=("device_id", "nunique"), readings=("readings", "sum"))
        .reset_index()
    )
    out["devices"] = [
        _in_service_on(fleet, kind, day)
        for kind, day in zip(out["device_type"], out["day"], strict=True)
    ]
    out["per_device"] = out["readings"] / out["reporting"]
    return out[COMPLETENESS_COLUMNS]


def dead_letters_daily(
    session: Session, viewer: Viewer, start: datetime, end: datetime
) -> pd.DataFrame:
    """Messages that broke the contract, per UTC day (of receipt) and reason."""
    require(viewer, Permission.VIEW_QUALITY)
    rows = session.execute(
        select(DeadLetter.received_at, DeadLetter.reason).where(
            DeadLetter.received_at >= ensure_utc(start), DeadLetter.received_at < ensure_utc(end)
        )
    ).all()
    frame = pd.DataFrame(rows, columns=["received_at", "reason"])
    if frame.empty:
        return pd.DataFrame(columns=DEAD_LETTER_COLUMNS)
    frame["day"] = pd.to_datetime(frame["received_at"], utc=True).dt.floor("D")
    out = frame.groupby(["day", "reason"]).size().rename("count").reset_index()
    return out[DEAD_LETTER_COLUMNS]
