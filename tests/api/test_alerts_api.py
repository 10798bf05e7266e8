"""The alerts API on both backends: access as the token's user, scopes, paging, actions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from core.db import make_session_factory
from models import (
    Alert,
    AlertHistory,
    AlertStatus,
    AuditEntry,
    Notification,
    NotificationPurpose,
    NotificationStatus,
    Role,
    Severity,
    User,
)
from tests.api.conftest import ApiDatabase, bearer, raise_for
from tests.factories import Factory


@dataclass
class World:
    """A site with two residents; a caregiver of the first; an operator; an alert for each."""

    site_id: str
    mine: int
    other: int
    caregiver: User
    operator: User
    my_alert: uuid.UUID
    other_alert: uuid.UUID


@pytest.fixture
def world(api_db: ApiDatabase) -> World:
    with api_db.session() as session:
        factory = Factory(session)
        site = factory.site()
        mine, other = factory.resident(site), factory.resident(site)
        caregiver = factory.user(Role.CAREGIVER, residents=(mine,), language="ko")
        operator = factory.user(Role.OPERATOR)
        my_alert = raise_for(session, mine.id, site.id)
        other_alert = raise_for(session, other.id, site.id, Severity.WARNING)
        session.commit()
        return World(site.id, mine.id, other.id, caregiver, operator, my_alert.id, other_alert.id)


def test_a_caregiver_token_sees_only_their_residents_alerts(
    client: TestClient, make_token: Callable[..., str], world: World
) -> None:
    token = make_token(world.caregiver)
    listed = client.get("/api/v1/alerts", params={"site": world.site_id}, headers=bearer(token))
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [str(world.my_alert)]

    hidden = client.get(f"/api/v1/alerts/{world.other_alert}", headers=bearer(token))
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
    # The caregiver reads Korean: the problem is in their language.
    assert hidden.json()["title"] == "찾을 수 없음"

    operator = make_token(world.operator)
    both = client.get("/api/v1/alerts", params={"site": world.site_id}, headers=bearer(operator))
    assert {item["id"] for item in both.json()["items"]} == {
        str(world.my_alert),
        str(world.other_alert),
    }


def test_filters_and_cursor_paging(
    client: TestClient, make_token: Callable[..., str], world: World, api_db: ApiDatabase
) -> None:
    token = make_token(world.operator)
    with api_db.session() as session:
        extra = [raise_for(session, world.other, world.site_id).id]  # folded: same key
        session.commit()
    assert extra == [world.other_alert]

    critical = client.get(
        "/api/v1/alerts",
        params={"site": world.site_id, "severity": "critical"},
        headers=bearer(token),
    ).json()
    assert [item["id"] for item in critical["items"]] == [str(world.my_alert)]
    by_resident = client.get(
        "/api/v1/alerts", params={"resident": world.other}, headers=bearer(token)
    ).json()
    assert [item["id"] for item in by_resident["items"]] == [str(world.other_alert)]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (
        client.get(
            "/api/v1/alerts",
            params={"site": world.site_id, "since": future},
            headers=bearer(token),
        ).json()["items"]
        == []
    )

    first = client.get(
        "/api/v1/alerts", params={"site": world.site_id, "limit": 1}, headers=bearer(token)
    ).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = client.get(
        "/api/v1/alerts",
        params={"site": world.site_id, "limit": 1, "cursor": first["next_cursor"]},
        headers=bearer(token),
    ).json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    assert {first["items"][0]["id"], second["items"][0]["id"]} == {
        str(world.my_alert),
        str(world.other_alert),
    }

    bad = client.get("/api/v1/alerts", params={"cursor": "nonsense"}, headers=bearer(token))
    assert bad.status_code == 422
    assert bad.json()["type"] == "urn:iotcare:problem:validation"


def test_acknowledge_resolve_and_comment_are_audited_like_the_app(
    client: TestClient, make_token: Callable[..., str], world: World, api_db: ApiDatabase
) -> None:
    reader = make_token(world.caregiver)
    refused = client.post(f"/api/v1/alerts/{world.my_alert}/acknowledge", headers=bearer(reader))
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:iotcare:problem:insufficient-scope"

    token = make_token(world.caregiver, scopes=("read", "acknowledge"))
    url = f"/api/v1/alerts/{world.my_alert}"
    acked = client.post(f"{url}/acknowledge", json={"note": "on my way"}, headers=bearer(token))
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["ack_note"] == "on my way"

    commented = client.post(f"{url}/comments", json={"note": "she is fine"}, headers=bearer(token))
    assert commented.status_code == 201
    assert commented.json()["status"] == "acknowledged"
    assert [h["action"] for h in commented.json()["history"]][-1] == "commented"

    no_note = client.post(f"{url}/resolve", json={"note": ""}, headers=bearer(token))
    assert no_note.status_code == 422
    resolved = client.post(f"{url}/resolve", json={"note": "false alarm"}, headers=bearer(token))
    assert resolved.json()["status"] == "resolved"
    again = client.post(f"{url}/acknowledge", headers=bearer(token))
    assert again.status_code == 409
    assert again.json()["title"] == "충돌"

    hidden = client.post(f"/api/v1/alerts/{world.other_alert}/acknowledge", headers=bearer(token))
    assert hidden.status_code == 404

    with api_db.session() as session:
        actions = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.target_id == str(world.my_alert), AuditEntry.actor_id.is_not(None))
            .order_by(AuditEntry.id)
        ).all()
        assert actions == ["alert.acknowledge", "alert.comment", "alert.resolved"]
        assert session.get(Alert, world.my_alert).status is AlertStatus.RESOLVED
        notes = session.scalars(
            select(AlertHistory.note).where(AlertHistory.action == "commented")
        ).all()
        assert "she is fine" in notes


def test_a_resolve_through_the_api_tells_the_others_who_were_notified(
    client: TestClient, make_token: Callable[..., str], api_db: ApiDatabase, api_settings
) -> None:
    """The API's sessions carry its settings, so its alert changes queue notifications too."""
    with make_session_factory(api_db.engine, api_settings)() as session:
        factory = Factory(session)
        site = factory.site()
        resident = factory.resident(site)
        resolver = factory.user(Role.CAREGIVER, residents=(resident,))
        colleague = factory.user(Role.CAREGIVER, residents=(resident,))
        alert = raise_for(session, resident.id, site.id)
        session.flush()
        queued = select(Notification.recipient_id).where(Notification.alert_id == alert.id)
        told = set(session.scalars(queued))
        # Delivered: only people actually reached are told the alert is over.
        session.execute(
            update(Notification)
            .where(Notification.alert_id == alert.id)
            .values(status=NotificationStatus.SENT)
        )
        session.commit()
        assert {resolver.id, colleague.id} <= told
    token = make_token(resolver, scopes=("read", "acknowledge"))
    resolved = client.post(
        f"/api/v1/alerts/{alert.id}/resolve", json={"note": "helped up"}, headers=bearer(token)
    )
    assert resolved.status_code == 200, resolved.text
    with api_db.session() as session:
        recipients = session.scalars(
            select(Notification.recipient_id).where(
                Notification.alert_id == alert.id,
                Notification.purpose == NotificationPurpose.RESOLVED,
            )
        ).all()
    assert colleague.id in recipients and resolver.id not in recipients
