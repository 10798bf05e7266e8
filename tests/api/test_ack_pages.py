"""One-click acknowledgement served by the API: a GET only asks, the POST acknowledges."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import delete

from core.alerts import lifecycle
from core.notify.links import make_ack_token
from core.timeutil import utcnow
from models import Alert, AlertStatus, CaregiverAssignment, Role, User
from tests.api.conftest import ApiDatabase, raise_for
from tests.factories import Factory


def _alert_and_token(api_db: ApiDatabase, api_settings, language: str = "en") -> tuple:
    with api_db.session() as session:
        factory = Factory(session)
        resident = factory.resident()
        caregiver = factory.user(Role.CAREGIVER, residents=(resident,), language=language)
        alert = raise_for(session, resident.id, resident.site_id)
        session.commit()
    token = make_ack_token(
        api_settings, alert.id, caregiver.id, utcnow() + timedelta(hours=1), opening=0
    )
    return alert.id, caregiver, token


def _status(api_db: ApiDatabase, alert_id) -> AlertStatus:
    with api_db.session() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert.status


def test_get_shows_a_confirm_page_and_post_acknowledges(
    client: TestClient, api_db: ApiDatabase, api_settings
) -> None:
    alert_id, caregiver, token = _alert_and_token(api_db, api_settings, language="ko")
    page = client.get("/api/ack", params={"token": token})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "맡으시겠습니까" in page.text and 'method="post"' in page.text
    # A link scanner that only GETs (several times) acknowledges nothing.
    client.get("/api/ack", params={"token": token})
    assert _status(api_db, alert_id) is AlertStatus.OPEN

    done = client.post("/api/ack", data={"token": token})
    assert done.status_code == 200
    assert "확인했습니다" in done.text
    assert _status(api_db, alert_id) is AlertStatus.ACKNOWLEDGED
    with api_db.session() as session:
        assert session.get(Alert, alert_id).acknowledged_by == caregiver.id


def test_a_tampered_or_expired_link_is_refused(
    client: TestClient, api_db: ApiDatabase, api_settings
) -> None:
    alert_id, caregiver, token = _alert_and_token(api_db, api_settings)
    tampered = client.post("/api/ack", data={"token": token[:-2] + "xx"})
    assert tampered.status_code == 400
    assert "not valid" in tampered.text
    expired = make_ack_token(
        api_settings, alert_id, caregiver.id, utcnow() - timedelta(seconds=1), opening=0
    )
    refused = client.get("/api/ack", params={"token": expired}, headers={"Accept-Language": "ko"})
    assert refused.status_code == 410
    assert "만료" in refused.text
    assert _status(api_db, alert_id) is AlertStatus.OPEN


def test_a_link_of_an_earlier_opening_round_no_longer_applies(
    client: TestClient, api_db: ApiDatabase, api_settings
) -> None:
    alert_id, caregiver, token = _alert_and_token(api_db, api_settings)
    with api_db.session() as session:
        lifecycle.resolve(session, alert_id, None)
        user = session.get(User, caregiver.id)
        lifecycle.reopen(session, alert_id, user)
        session.commit()
    stale = client.post("/api/ack", data={"token": token})
    assert stale.status_code == 409
    assert "no longer applies" in stale.text
    assert _status(api_db, alert_id) is AlertStatus.OPEN


def test_a_recipient_unassigned_since_cannot_acknowledge(
    client: TestClient, api_db: ApiDatabase, api_settings
) -> None:
    alert_id, caregiver, token = _alert_and_token(api_db, api_settings)
    with api_db.session() as session:
        session.execute(
            delete(CaregiverAssignment).where(CaregiverAssignment.user_id == caregiver.id)
        )
        session.commit()
    assert client.get("/api/ack", params={"token": token}).status_code == 409
    assert client.post("/api/ack", data={"token": token}).status_code == 409
    assert _status(api_db, alert_id) is AlertStatus.OPEN
