"""ntfy push and SMS delivered through Apprise to real local HTTP fakes of an ntfy server and of
an SMS gateway: what they receive (method, path, headers, body, priority, length), what happens
when they are not configured or refuse, and that no secret reaches a log or a stored error."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core import schema, users
from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.db import make_engine, make_session_factory, session_scope
from core.notify.channels import make_channels, sms_encoding, sms_length, sms_segments
from core.notify.delivery import DeliveryStats, deliver_due
from core.settings import Settings
from core.timeutil import utcnow
from models import (
    Alert,
    AlertRule,
    Channel,
    ContactChannel,
    Notification,
    NotificationStatus,
    RuleKind,
    Severity,
)
from tests.conftest import make_test_settings
from tests.factories import Factory
from tests.support.fake_push_sms import FakeNtfy, FakeSmsGateway

NTFY_TOKEN = "tk_fake0ntfy0access0token0abcdef"
GATEWAY_USER = "care-gw"
GATEWAY_PASSWORD = "gw-very-secret-pass-1234"
ROUTE = [{"tier": 1, "after_minutes": 0, "channels": ["inbox", "ntfy", "sms"]}]


@pytest.fixture(autouse=True)
def _cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "hash_password", lambda password: "not-a-real-hash")


@pytest.fixture
def ntfy() -> Iterator[FakeNtfy]:
    server = FakeNtfy(NTFY_TOKEN, protected=frozenset({"care-night"}))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def other_ntfy() -> Iterator[FakeNtfy]:
    server = FakeNtfy()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def gateway() -> Iterator[FakeSmsGateway]:
    server = FakeSmsGateway(GATEWAY_USER, GATEWAY_PASSWORD)
    server.start()
    yield server
    server.stop()


def gateway_url(gateway: FakeSmsGateway) -> str:
    # Apprise's JSON plugin: ':to=' adds a field, ':message=text' renames one, an empty value
    # drops one; the gateway gets exactly {"to", "text"}.
    return (
        f"json://{GATEWAY_USER}:{GATEWAY_PASSWORD}@127.0.0.1:{gateway.port}/send"
        "?:to={phone}&:message=text&:title=&:version=&:attachments=&:type="
    )


@dataclass
class World:
    """A migrated database, settings pointing at the fakes, one caregiver with ntfy and SMS."""

    settings: Settings
    factory: sessionmaker[Session]
    rule_id: int
    resident_id: int
    site_id: str

    def sweep(self, now: datetime | None = None) -> DeliveryStats:
        return deliver_due(
            self.factory, make_channels(self.settings), now or utcnow(), settings=self.settings
        )

    def raise_alert(self, severity: Severity = Severity.CRITICAL, n: int = 0) -> Alert:
        with session_scope(self.factory) as session:
            rule = session.get(AlertRule, self.rule_id)
            return lifecycle.raise_alert(
                session,
                kind=RuleKind.EVENT,
                severity=severity,
                subject=Subject("resident", f"r{n}", self.site_id, self.resident_id, f"d{n}"),
                title="Fall detected",
                details={"event_type": "fall_detected"},
                rule=rule,
            ).alert

    def rows(self, channel: Channel) -> list[Notification]:
        with self.factory() as session:
            query = select(Notification).where(Notification.channel == channel)
            return list(session.scalars(query.order_by(Notification.id)))


@pytest.fixture
def world(
    migrated_database_url: str,
    tmp_path: Path,
    ntfy: FakeNtfy,
    gateway: FakeSmsGateway,
) -> Iterator[Callable[..., World]]:
    engines: list[Engine] = []

    def build(
        contacts: tuple[tuple[Channel, str], ...], language: str = "en", **overrides: Any
    ) -> World:
        values: dict[str, Any] = {
            "database_url": migrated_database_url,
            "ntfy_url": ntfy.url,
            "ntfy_token": NTFY_TOKEN,
            "sms_gateway_url": gateway_url(gateway),
            "notify_max_attempts": 3,
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
            resident = make.resident(site, room="101")
            carer = make.user(residents=(resident,), language=language)
            for channel, address in contacts:
                session.add(ContactChannel(user_id=carer.id, channel=channel, address=address))
            rule = AlertRule(
                name="Fall",
                kind=RuleKind.EVENT,
                params={"event_types": ["fall_detected"]},
                severity=Severity.CRITICAL,
                route=ROUTE,
            )
            session.add(rule)
            session.flush()
            made = World(settings, factory, rule.id, resident.id, site.id)
        return made

    yield build
    for engine in engines:
        engine.dispose()


def test_ntfy_gets_title_body_priority_click_and_tags_with_the_token_on_its_server_only(
    world: Callable[..., World], ntfy: FakeNtfy, other_ntfy: FakeNtfy
) -> None:
    w = world(
        (
            (Channel.NTFY, "care-night"),  # bare topic: the configured, protected server
            (Channel.NTFY, f"{other_ntfy.url}/kim-phone"),  # full URL: another server
        )
    )
    critical = w.raise_alert(Severity.CRITICAL, 0)
    assert w.sweep().sent == 3  # inbox + two ntfy
    (push,) = ntfy.published
    assert (push.method, push.path) == ("POST", "/")
    assert push.headers["Authorization"] == f"Bearer {NTFY_TOKEN}"
    assert push.body["topic"] == "care-night"
    assert push.body["title"].startswith("[CRITICAL] Fall detected")
    assert "Fall detected" in push.body["message"]
    assert push.headers["X-Priority"] == "max"
    assert push.headers["X-Click"].startswith("http://localhost:8501/?ack=")
    assert push.headers["X-Click"] in push.body["message"]  # the same one-click link
    assert set(push.headers["X-Tags"].split(",")) == {"rotating_light", "event"}
    assert "X-Icon" not in push.headers  # no image fetched from elsewhere
    (elsewhere,) = other_ntfy.published
    assert elsewhere.body["topic"] == "kim-phone"
    # The token belongs to IOTCARE_NTFY_URL's server: another server never sees it.
    assert "Authorization" not in elsewhere.headers
    assert {n.status for n in w.rows(Channel.NTFY)} == {NotificationStatus.SENT}
    assert {n.alert_id for n in w.rows(Channel.NTFY)} == {critical.id}

    w.raise_alert(Severity.WARNING, 1)
    w.raise_alert(Severity.INFO, 2)
    assert w.sweep().sent == 6
    by_title = {p.body["title"].split("]")[0]: p for p in ntfy.published[1:]}
    assert by_title["[Warning"].headers["X-Priority"] == "high"
    assert set(by_title["[Warning"].headers["X-Tags"].split(",")) == {"warning", "event"}
    # ntfy's default priority is sent as no header at all.
    assert "X-Priority" not in by_title["[Info"].headers


def test_ntfy_without_the_token_is_refused_and_retried_and_the_token_never_logged(
    world: Callable[..., World], ntfy: FakeNtfy, caplog: pytest.LogCaptureFixture
) -> None:
    ntfy.token = "tk_the-server-wants-another-token"
    w = world(((Channel.NTFY, "care-night"),))
    w.raise_alert()
    with caplog.at_level(logging.DEBUG):
        stats = w.sweep()
    assert (stats.sent, stats.retried) == (1, 1)
    (row,) = w.rows(Channel.NTFY)
    assert row.status is NotificationStatus.PENDING
    assert "forbidden" in (row.last_error or "")
    assert ntfy.refused and ntfy.refused[0].headers["Authorization"] == f"Bearer {NTFY_TOKEN}"
    assert NTFY_TOKEN not in caplog.text
    assert NTFY_TOKEN not in (row.last_error or "")


def test_sms_gets_the_number_and_a_korean_message_within_three_segments_with_the_link(
    world: Callable[..., World], gateway: FakeSmsGateway
) -> None:
    w = world(((Channel.SMS, "+821012345678"),), language="ko")
    w.raise_alert()
    assert w.sweep().sent == 2
    (sms,) = gateway.sent
    assert (sms.method, sms.path) == ("POST", "/send")
    assert sms.headers["Content-Type"] == "application/json"
    assert sms.body["to"] == "+821012345678"
    text = sms.body["text"]
    assert sms_encoding(text) == "ucs2"  # Korean
    assert sms_segments(text) <= 3 and sms_length(text) <= 3 * 67
    (row,) = w.rows(Channel.SMS)
    link = row.payload["ack_url"]
    assert text.endswith(f"확인: {link}")  # the link whole, last
    assert text.startswith(row.subject or "-")
    # The stored full message was longer: this one was cut to fit.
    assert len(row.body or "") > len(text) - len(link)


def test_sms_in_english_fits_gsm7_segments_and_uses_phone_digits(
    world: Callable[..., World], gateway: FakeSmsGateway
) -> None:
    url = gateway_url(gateway).replace("{phone}", "{phone_digits}")
    w = world(((Channel.SMS, "+14155550123"),), sms_gateway_url=url, sms_max_segments=2)
    w.raise_alert()
    assert w.sweep().sent == 2
    (sms,) = gateway.sent
    assert sms.body["to"] == "14155550123"
    text = sms.body["text"]
    assert sms_encoding(text) == "gsm7"
    assert sms_length(text) <= 2 * 153
    assert "Acknowledge: http://localhost:8501/?ack=" in text.splitlines()[-1]


def test_unconfigured_ntfy_and_sms_are_dead_at_once_with_the_setting_named(
    world: Callable[..., World], ntfy: FakeNtfy, gateway: FakeSmsGateway
) -> None:
    w = world(
        ((Channel.NTFY, "care-night"), (Channel.SMS, "+821012345678")),
        ntfy_url=None,
        ntfy_token=None,
        sms_gateway_url=None,
    )
    w.raise_alert()
    stats = w.sweep()
    assert (stats.sent, stats.dead) == (1, 2)
    (push,) = w.rows(Channel.NTFY)
    (sms,) = w.rows(Channel.SMS)
    assert push.status is sms.status is NotificationStatus.DEAD
    assert "IOTCARE_NTFY_URL" in (push.last_error or "")
    assert "IOTCARE_SMS_GATEWAY_URL" in (sms.last_error or "")
    assert ntfy.published == [] and gateway.sent == []


def test_a_refusing_sms_gateway_is_retried_then_sent_once_and_its_password_never_logged(
    world: Callable[..., World], gateway: FakeSmsGateway, caplog: pytest.LogCaptureFixture
) -> None:
    w = world(((Channel.SMS, "+821012345678"),))
    w.raise_alert()
    gateway.fail_with = 503
    now = utcnow()
    with caplog.at_level(logging.DEBUG):
        first = w.sweep(now)
        gateway.stop()  # now down: connection refused
        second = w.sweep(now + timedelta(seconds=5))
    assert first.retried == 1 and second.retried == 1
    (row,) = w.rows(Channel.SMS)
    assert row.status is NotificationStatus.PENDING and row.attempts == 2
    for text in (caplog.text, row.last_error or ""):
        assert GATEWAY_PASSWORD not in text
        assert GATEWAY_USER not in text
    gateway.fail_with = None
    gateway.start()
    third = w.sweep(now + timedelta(seconds=10))
    assert third.sent == 1 and len(gateway.sent) == 1
    assert w.rows(Channel.SMS)[0].status is NotificationStatus.SENT
