"""Delivery against real servers: an aiosmtpd SMTP server, a local HTTP webhook receiver and a
faithful fake of the Telegram Bot API. Retries while they are down, exactly once after they
return, dead after N attempts, two sweepers at once, crashed sweepers, and escalation."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core import schema, users
from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.db import make_engine, make_session_factory, session_scope
from core.notify import outbox
from core.notify.channels import make_channels
from core.notify.delivery import DeliveryStats, claim_due, deliver_due, deliver_now
from core.notify.escalation import escalate_due
from core.settings import Settings
from core.timeutil import utcnow
from models import (
    Alert,
    AlertRule,
    Channel,
    ContactChannel,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    Role,
    RuleKind,
    Severity,
    User,
)
from tests.conftest import make_test_settings
from tests.factories import Factory
from tests.support.fake_llm import FakeLlm
from tests.support.fake_telegram import FakeTelegram
from tests.support.smtp_server import LocalSmtpServer
from tests.support.webhook_receiver import WebhookReceiver

BOT_TOKEN = "123456789:AAtest-token_for-the-fake"
ROUTE = [
    {"tier": 1, "after_minutes": 0, "channels": ["inbox", "email", "webhook", "telegram"]},
    {"tier": 2, "after_minutes": 5, "channels": ["inbox", "email"]},
]


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "hash_password", lambda password: "not-a-real-hash")


@pytest.fixture
def smtp() -> Iterator[LocalSmtpServer]:
    server = LocalSmtpServer()
    yield server
    server.stop()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    server = FakeTelegram(BOT_TOKEN, chats=set())
    server.start()
    yield server
    server.stop()


@dataclass
class World:
    """A migrated database of its own, settings pointing at the local servers, and staff."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    caregivers: list[int]
    supervisor: int
    resident_ids: list[int]
    site_id: str
    rule_id: int

    @property
    def channels(self) -> dict[Channel, Any]:
        return make_channels(self.settings)

    def sweep(self, now: datetime, **kwargs: Any) -> DeliveryStats:
        return deliver_due(self.factory, self.channels, now, settings=self.settings, **kwargs)

    def raise_falls(self, count: int, severity: Severity = Severity.CRITICAL) -> list[Alert]:
        alerts = []
        with session_scope(self.factory) as session:
            rule = session.get(AlertRule, self.rule_id)
            for n in range(count):
                rid = self.resident_ids[n % len(self.resident_ids)]
                alerts.append(
                    lifecycle.raise_alert(
                        session,
                        kind=RuleKind.EVENT,
                        severity=severity,
                        subject=Subject("resident", f"{rid}-{n}", self.site_id, rid, f"d{n}"),
                        title="Fall detected",
                        details={"event_type": "fall_detected"},
                        rule=rule,
                    ).alert
                )
        return alerts

    def rows(self, **where: Any) -> list[Notification]:
        with self.factory() as session:
            query = select(Notification)
            for name, value in where.items():
                query = query.where(getattr(Notification, name) == value)
            return list(session.scalars(query.order_by(Notification.id)))


@pytest.fixture
def world(
    migrated_database_url: str,
    tmp_path: Path,
    smtp: LocalSmtpServer,
    webhook: WebhookReceiver,
    telegram: FakeTelegram,
) -> Iterator[Callable[..., World]]:
    engines: list[Engine] = []

    def build(caregivers: int = 1, residents: int = 1, **overrides: Any) -> World:
        values: dict[str, Any] = {
            "database_url": migrated_database_url,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_security": "none",
            "smtp_from": "alerts@care.test",
            "telegram_bot_token": BOT_TOKEN,
            "telegram_api_url": telegram.url,
            "notify_max_attempts": 4,
            "notify_retry_initial": "1s",
            "notify_retry_max": "2s",
        }
        values.update(overrides)
        settings = make_test_settings(tmp_path, **values)
        engine = make_engine(settings)
        engines.append(engine)
        schema.upgrade(engine)
        factory = make_session_factory(engine, settings)
        with session_scope(factory) as session:
            make = Factory(session)
            site = make.site()
            people = [make.resident(site, room=str(100 + n)) for n in range(residents)]
            staff = []
            for n in range(caregivers):
                user = make.user(residents=tuple(people))
                staff.append(user.id)
                for channel, address in (
                    (Channel.EMAIL, f"carer{n}@care.test"),
                    (Channel.WEBHOOK, f"{webhook.url}/hooks/{n}?team=night"),
                    (Channel.TELEGRAM, str(5000 + n)),
                ):
                    session.add(ContactChannel(user_id=user.id, channel=channel, address=address))
                telegram.chats.add(5000 + n)
            boss = make.user(Role.CAREGIVER)
            for resident in people:
                users.assign(session, boss, resident, tier=2)
            session.add(
                ContactChannel(user_id=boss.id, channel=Channel.EMAIL, address="boss@care.test")
            )
            rule = AlertRule(
                name="Fall",
                kind=RuleKind.EVENT,
                params={"event_types": ["fall_detected"]},
                severity=Severity.CRITICAL,
                route=ROUTE,
            )
            session.add(rule)
            session.flush()
            made = World(
                settings, engine, factory, staff, boss.id, [p.id for p in people], site.id, rule.id
            )
        return made

    yield build
    for engine in engines:
        engine.dispose()


def test_retries_while_down_then_each_delivered_exactly_once(
    world: Callable[..., World], smtp: LocalSmtpServer, webhook: WebhookReceiver
) -> None:
    w = world()
    w.raise_falls(3)
    now = utcnow()
    # SMTP and webhook receiver are down: connection refused.
    first = w.sweep(now)
    assert first.claimed == 12  # 3 alerts x (inbox, e-mail, webhook, Telegram)
    assert first.sent == 6  # inbox and Telegram
    assert first.retried == 6
    waiting = w.rows(status=NotificationStatus.PENDING)
    assert {n.channel for n in waiting} == {Channel.EMAIL, Channel.WEBHOOK}
    assert all(n.attempts == 1 and n.last_error for n in waiting)
    assert all(
        now + timedelta(seconds=0.5) <= n.next_attempt_at <= now + timedelta(seconds=1)
        for n in waiting
    )
    # Backing off: nothing is due yet.
    assert w.sweep(now).claimed == 0

    # The receiver is up but failing (503); SMTP still down.
    webhook.fail_with = 503
    webhook.start()
    second = w.sweep(now + timedelta(seconds=3))
    assert (second.claimed, second.retried) == (6, 6)
    assert "503" in " ".join(second.errors) or "error" in " ".join(second.errors).lower()

    webhook.fail_with = None
    smtp.start()
    third = w.sweep(now + timedelta(seconds=10))
    assert (third.claimed, third.sent) == (6, 6)
    email_keys = {n.idempotency_key for n in w.rows(channel=Channel.EMAIL)}
    hook_keys = {n.idempotency_key for n in w.rows(channel=Channel.WEBHOOK)}
    assert smtp.keys() == dict.fromkeys(email_keys, 1)
    assert webhook.keys() == dict.fromkeys(hook_keys, 1)
    assert {n.status for n in w.rows()} == {NotificationStatus.SENT}
    # Nothing is ever sent again.
    assert w.sweep(now + timedelta(hours=2)).claimed == 0
    assert sum(smtp.keys().values()) == 3 and sum(webhook.keys().values()) == 3


def test_what_receivers_get(
    world: Callable[..., World],
    smtp: LocalSmtpServer,
    webhook: WebhookReceiver,
    telegram: FakeTelegram,
) -> None:
    w = world()
    smtp.start()
    webhook.start()
    (alert,) = w.raise_falls(1)
    assert w.sweep(utcnow()).sent == 4
    receipt = webhook.receipts[0]
    key = receipt.headers["Idempotency-Key"]
    assert receipt.body["idempotency_key"] == key
    assert receipt.path == "/hooks/0?team=night"
    assert receipt.body["alert"]["alert_id"] == str(alert.id)
    assert receipt.body["alert"]["severity"] == "critical"
    assert receipt.body["purpose"] == "new"
    assert receipt.body["ack_url"].startswith("http://localhost:8501/?ack=")
    assert receipt.body["title"].startswith("[CRITICAL] Fall detected")
    rcpt, message = smtp.messages[0]
    assert rcpt == ["carer0@care.test"]
    assert str(message["Subject"]).startswith("[CRITICAL] Fall detected")
    assert "Acknowledge with one click" in message.get_content()
    (sent,) = telegram.sent
    assert sent["chat_id"] == 5000
    assert "Fall detected" in sent["text"] and "ack=" in sent["text"]


def test_dead_after_max_attempts_and_misconfiguration_is_dead_at_once(
    world: Callable[..., World], webhook: WebhookReceiver, telegram: FakeTelegram
) -> None:
    w = world(smtp_host=None, notify_max_attempts=3)
    telegram.chats.clear()  # "chat not found" every time
    w.raise_falls(1)
    now = utcnow()
    first = w.sweep(now)
    assert first.dead == 1  # e-mail: not configured, no point retrying
    (email,) = w.rows(channel=Channel.EMAIL)
    assert email.status is NotificationStatus.DEAD
    assert "IOTCARE_SMTP_HOST" in (email.last_error or "")
    for step in range(1, 4):
        w.sweep(now + timedelta(seconds=10 * step))
    for channel in (Channel.WEBHOOK, Channel.TELEGRAM):
        (row,) = w.rows(channel=channel)
        assert row.status is NotificationStatus.DEAD, channel
        assert row.attempts == 3
    (tg,) = w.rows(channel=Channel.TELEGRAM)
    assert "chat not found" in (tg.last_error or "")
    with w.factory() as session:
        dead = {n.channel for n in outbox.dead_notifications(session)}
    assert dead == {Channel.EMAIL, Channel.WEBHOOK, Channel.TELEGRAM}
    assert webhook.receipts == []


def test_two_sweepers_at_once_deliver_nothing_twice(
    world: Callable[..., World], smtp: LocalSmtpServer, webhook: WebhookReceiver
) -> None:
    w = world(caregivers=3, residents=2)
    smtp.start()
    webhook.start()
    w.raise_falls(8)
    total = len(w.rows())
    assert total == 8 * 3 * 4
    # A second process: its own engine and pool.
    other_engine = make_engine(w.settings)
    other = make_session_factory(other_engine)
    now = utcnow()
    barrier = threading.Barrier(2)
    results: list[DeliveryStats] = []
    errors: list[BaseException] = []

    def sweeper(factory: sessionmaker[Session], name: str) -> None:
        try:
            barrier.wait()
            while True:
                stats = deliver_due(
                    factory, w.channels, now, limit=10, worker_id=name, settings=w.settings
                )
                results.append(stats)
                if not stats.claimed:
                    return
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [
        threading.Thread(target=sweeper, args=(w.factory, "a")),
        threading.Thread(target=sweeper, args=(other, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    other_engine.dispose()
    assert errors == []
    assert sum(r.claimed for r in results) == total
    assert sum(r.sent for r in results) == total
    assert sum(r.lost for r in results) == 0
    assert set(smtp.keys().values()) == {1} and len(smtp.keys()) == 8 * 3
    assert set(webhook.keys().values()) == {1} and len(webhook.keys()) == 8 * 3
    assert {n.status for n in w.rows()} == {NotificationStatus.SENT}


def test_a_crashed_sweepers_rows_are_taken_again_after_the_lease(
    world: Callable[..., World], smtp: LocalSmtpServer, webhook: WebhookReceiver
) -> None:
    w = world()
    smtp.start()
    webhook.start()
    w.raise_falls(1)
    now = utcnow()
    crashed = claim_due(w.factory, now, 100)  # claimed, then the process died
    assert len(crashed) == 4
    assert w.sweep(now + timedelta(minutes=1)).claimed == 0
    later = w.sweep(now + timedelta(minutes=6))
    assert (later.claimed, later.sent) == (4, 4)
    assert {n.attempts for n in w.rows()} == {2}
    assert set(smtp.keys().values()) == {1} and set(webhook.keys().values()) == {1}


def test_deliver_now_sends_one_alert_at_once_and_the_sweeper_not_again(
    world: Callable[..., World], smtp: LocalSmtpServer, webhook: WebhookReceiver
) -> None:
    w = world()
    smtp.start()
    webhook.start()
    first, second = w.raise_falls(2)
    stats = deliver_now(w.factory, w.channels, [first.id], settings=w.settings)
    # Sent within the call (no sweep has run yet), not merely queued for the sweeper.
    assert (stats.claimed, stats.sent) == (4, 4)
    assert {n.status for n in w.rows(alert_id=first.id)} == {NotificationStatus.SENT}
    assert {n.status for n in w.rows(alert_id=second.id)} == {NotificationStatus.PENDING}
    sweep = w.sweep(utcnow())
    assert (sweep.claimed, sweep.sent) == (4, 4)
    assert set(smtp.keys().values()) == {1} and len(smtp.keys()) == 2


def test_escalation_fires_when_nobody_acknowledges_and_not_when_someone_does(
    world: Callable[..., World], smtp: LocalSmtpServer, webhook: WebhookReceiver
) -> None:
    w = world()
    smtp.start()
    webhook.start()
    ignored, taken = w.raise_falls(2)
    now = utcnow()
    w.sweep(now)
    with session_scope(w.factory) as session:
        carer = session.get(User, w.caregivers[0])
        lifecycle.acknowledge(session, taken.id, carer)
    assert [r for r, _ in smtp.messages if r == ["boss@care.test"]] == []

    # Two escalation sweepers at once, five minutes later: one escalation, not two.
    later = now + timedelta(minutes=5, seconds=1)
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def escalator() -> None:
        barrier.wait()
        with session_scope(w.factory) as session:
            counts.append(escalate_due(session, later, settings=w.settings))

    threads = [threading.Thread(target=escalator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(counts) == [0, 1]
    w.sweep(later)
    to_boss = [m for r, m in smtp.messages if r == ["boss@care.test"]]
    assert len(to_boss) == 1
    assert "nobody has acknowledged" in to_boss[0].get_content()
    escalated = w.rows(purpose=NotificationPurpose.ESCALATION)
    assert {n.alert_id for n in escalated} == {ignored.id}
    assert {n.recipient_id for n in escalated} == {w.supervisor}
    with w.factory() as session:
        assert session.get(Alert, ignored.id).escalation_level == 2
        assert session.get(Alert, taken.id).escalation_level == 1
        # Route exhausted: no further escalation.
        assert session.get(Alert, ignored.id).next_escalation_at is None


def test_llm_summary_tops_the_delivered_message(
    world: Callable[..., World], smtp: LocalSmtpServer, webhook: WebhookReceiver
) -> None:
    llm = FakeLlm("Someone fell in room 100; go there first.")
    llm.start()
    try:
        w = world(llm_url=llm.endpoint, llm_api_key=SecretStr("k"), llm_timeout="1s")
        smtp.start()
        webhook.start()
        w.raise_falls(1)
        assert w.sweep(utcnow()).sent == 4
    finally:
        llm.stop()
    assert len(llm.requests) == 1  # one summary per alert, purpose and language
    _, message = smtp.messages[0]
    assert message.get_content().startswith("Someone fell in room 100; go there first.")
    (inbox,) = w.rows(channel=Channel.INBOX)
    assert (inbox.body or "").startswith("Someone fell in room 100")
    # Instant delivery never waits for an LLM.
    assert deliver_now(w.factory, w.channels, [], settings=w.settings).claimed == 0
