"""Delivering the outbox: claim due rows atomically, send outside any transaction, record results.

Claiming is one UPDATE ... WHERE id IN (SELECT due rows ... FOR UPDATE SKIP LOCKED) RETURNING,
committed at once: on PostgreSQL concurrent sweepers skip each other's rows, on SQLite the single
writer makes the statement a compare-and-set. A claimed row is `sending` with a lease
(next_attempt_at); a sweeper that crashed mid-send leaves it to be taken again when the lease
runs out. The result is written only if the row is still ours (same status and attempt number).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.notify.channels import Channel, DeliveryError
from core.notify.render import AlertFacts, render_message, summarize
from core.settings import Settings
from core.timeutil import ensure_utc, utcnow
from models import Channel as ChannelKind
from models import Notification, NotificationPurpose, NotificationStatus

log = logging.getLogger(__name__)

# Longest a claimed row may stay `sending` before another sweeper may take it (crashed sweeper).
DEFAULT_LEASE = timedelta(minutes=5)
# Rows claimed per round: small, so the last of a round is sent well within its lease.
_WORKERS = 4
_ROUND = _WORKERS * 4
DUE = (NotificationStatus.PENDING, NotificationStatus.HELD, NotificationStatus.SENDING)

SessionFactory = sessionmaker[Session]


@dataclass
class DeliveryStats:
    """What one sweep did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    # Rows whose lease another sweeper took over before we finished (delivered, not recorded).
    lost: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DeliveryStats) -> None:
        """Accumulate another round's counts."""
        self.claimed += other.claimed
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.lost += other.lost
        self.errors.extend(other.errors)


def default_worker_id() -> str:
    """host:pid, to tell sweepers apart in logs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def backoff(attempts: int, initial: timedelta, longest: timedelta) -> timedelta:
    """Exponential backoff with jitter: about initial·2^(attempts-1), capped, 50-100 % of it."""
    base = min(longest, initial * (2 ** max(0, min(attempts - 1, 30))))
    # Jitter spreads retries of many rows failing together (an SMTP outage) over time.
    return base * random.uniform(0.5, 1.0)  # noqa: S311  (not cryptographic)


def claim_due(
    session_factory: SessionFactory,
    now: datetime,
    limit: int,
    lease: timedelta = DEFAULT_LEASE,
    alert_ids: Iterable[uuid.UUID] | None = None,
) -> list[Notification]:
    """Atomically take up to `limit` due rows (status -> sending, attempts + 1) and commit."""
    due = select(Notification.id).where(
        Notification.status.in_(DUE), Notification.next_attempt_at <= now
    )
    if alert_ids is not None:
        due = due.where(Notification.alert_id.in_(list(alert_ids)))
    due = (
        due.order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claim = (
        update(Notification)
        # Conditions repeated outside the subquery: PostgreSQL re-checks them on the newest row.
        .where(
            Notification.id.in_(due.scalar_subquery()),
            Notification.status.in_(DUE),
            Notification.next_attempt_at <= now,
        )
        .values(
            status=NotificationStatus.SENDING,
            attempts=Notification.attempts + 1,
            next_attempt_at=now + lease,
        )
        .returning(Notification)
        .execution_options(synchronize_session=False)
    )
    with session_scope(session_factory) as session:
        rows = list(session.scalars(claim))
        for row in rows:
            # Detached with their loaded state, so channels can read them after the commit.
            session.expunge(row)
    return sorted(rows, key=lambda row: (row.next_attempt_at, row.id))


def _finish(session_factory: SessionFactory, row: Notification, values: Mapping[str, Any]) -> bool:
    """Record a result if the row is still ours; False when another sweeper took it over."""
    with session_scope(session_factory) as session:
        result = session.execute(
            update(Notification)
            .where(
                Notification.id == row.id,
                Notification.status == NotificationStatus.SENDING,
                Notification.attempts == row.attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


@dataclass
class _Sweep:
    session_factory: SessionFactory
    channels: Mapping[ChannelKind, Channel]
    settings: Settings
    now: datetime
    worker_id: str
    summaries: bool
    _cache: dict[tuple[str, str, str], str | None] = field(default_factory=dict)
    _locks: dict[tuple[str, str, str], threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def _summary(
        self, facts_data: dict[str, Any], purpose: NotificationPurpose, language: str
    ) -> str | None:
        key = (str(facts_data.get("alert_id", "")), purpose.value, language)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        # One LLM call per alert, purpose and language, however many recipients and threads.
        with lock:
            if key not in self._cache:
                self._cache[key] = summarize(
                    self.settings, AlertFacts.from_payload(facts_data), purpose, language
                )
            return self._cache[key]

    def summary_body(self, row: Notification) -> str | None:
        """The body with an LLM summary on top, or None to keep the stored one."""
        payload = row.payload or {}
        facts_data = payload.get("facts")
        if not self.summaries or not facts_data or not self.settings.llm_url:
            return None
        purpose = NotificationPurpose(row.purpose)
        language = str(payload.get("language") or "en")
        summary = self._summary(facts_data, purpose, language)
        if not summary:
            return None
        recipient = (payload.get("recipient") or {}).get("name") or ""
        message = render_message(
            AlertFacts.from_payload(facts_data),
            purpose,
            language,
            recipient,
            payload.get("ack_url"),
            summary=summary,
        )
        return message.body

    def deliver(self, row: Notification) -> DeliveryStats:
        """Send one claimed row and record sent, retry or dead."""
        stats = DeliveryStats()
        channel = self.channels.get(ChannelKind(row.channel))
        new_body = None
        try:
            if channel is None:
                raise DeliveryError(f"no {row.channel} channel in this process", retryable=False)
            new_body = self.summary_body(row)
            if new_body is not None:
                row.body = new_body
            channel.deliver(row)
        except DeliveryError as error:
            return self._failed(row, error.reason, error.retryable)
        except Exception as error:  # a channel bug must not stop the sweep; retry, visibly
            log.exception("notification %s: unexpected error from %s", row.id, row.channel)
            return self._failed(row, f"unexpected error: {error!r}", True)
        values: dict[str, Any] = {
            "status": NotificationStatus.SENT,
            "sent_at": utcnow(),
            "last_error": None,
        }
        if new_body is not None:
            values["body"] = new_body
        if _finish(self.session_factory, row, values):
            stats.sent += 1
            log.info("notification %s sent by %s (%s)", row.id, row.channel, self.worker_id)
        else:
            stats.lost += 1
            log.warning("notification %s was sent after its lease ran out", row.id)
        return stats

    def _failed(self, row: Notification, reason: str, retryable: bool) -> DeliveryStats:
        stats = DeliveryStats(errors=[f"{row.id}: {reason}"])
        reason = reason[:2000]
        if retryable and row.attempts < self.settings.notify_max_attempts:
            wait = backoff(
                row.attempts, self.settings.notify_retry_initial, self.settings.notify_retry_max
            )
            values = {
                "status": NotificationStatus.PENDING,
                "next_attempt_at": self.now + wait,
                "last_error": reason,
            }
            outcome = "retried"
            log.warning(
                "notification %s attempt %d failed (%s); retry in %.0f s",
                row.id,
                row.attempts,
                reason,
                wait.total_seconds(),
            )
        else:
            values = {"status": NotificationStatus.DEAD, "last_error": reason}
            outcome = "dead"
            log.error(
                "notification %s is dead after %d attempt(s): %s", row.id, row.attempts, reason
            )
        if not _finish(self.session_factory, row, values):
            stats.lost += 1
        elif outcome == "retried":
            stats.retried += 1
        else:
            stats.dead += 1
        return stats


def _run(
    sweep: _Sweep, limit: int, lease: timedelta, alert_ids: list[uuid.UUID] | None
) -> DeliveryStats:
    total = DeliveryStats()
    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="notify") as pool:
        while total.claimed < limit:
            rows = claim_due(
                sweep.session_factory,
                sweep.now,
                min(_ROUND, limit - total.claimed),
                lease,
                alert_ids,
            )
            if not rows:
                break
            total.claimed += len(rows)
            # Parallel: one slow SMTP server must not hold back a Telegram message.
            for stats in pool.map(sweep.deliver, rows):
                total.add(stats)
    return total


def deliver_due(
    session_factory: SessionFactory,
    channels: Mapping[ChannelKind, Channel],
    now: datetime | None = None,
    limit: int = 100,
    worker_id: str | None = None,
    *,
    settings: Settings,
    lease: timedelta = DEFAULT_LEASE,
) -> DeliveryStats:
    """Deliver up to `limit` due notifications (pending, held until now, or with a lapsed lease)."""
    sweep = _Sweep(
        session_factory=session_factory,
        channels=channels,
        settings=settings,
        now=ensure_utc(now or utcnow()),
        worker_id=worker_id or default_worker_id(),
        summaries=True,
    )
    stats = _run(sweep, limit, lease, None)
    if stats.claimed:
        log.info(
            "delivery sweep %s: %d claimed, %d sent, %d retried, %d dead, %d lost",
            sweep.worker_id,
            stats.claimed,
            stats.sent,
            stats.retried,
            stats.dead,
            stats.lost,
        )
    return stats


def deliver_now(
    session_factory: SessionFactory,
    channels: Mapping[ChannelKind, Channel],
    alert_ids: Iterable[uuid.UUID],
    *,
    settings: Settings,
    now: datetime | None = None,
) -> DeliveryStats:
    """Deliver these alerts' due notifications at once (after the commit that queued them).

    Same claim as the sweeper, so neither ever sends what the other took. No LLM summary here:
    a critical alert must not wait for one.
    """
    ids = list(alert_ids)
    if not ids:
        return DeliveryStats()
    sweep = _Sweep(
        session_factory=session_factory,
        channels=channels,
        settings=settings,
        now=ensure_utc(now or utcnow()),
        worker_id=default_worker_id(),
        summaries=False,
    )
    return _run(sweep, 1000, DEFAULT_LEASE, ids)
