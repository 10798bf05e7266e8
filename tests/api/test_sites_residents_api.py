"""Sites and residents through the API: a caregiver's token sees only their own."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from models import Role
from tests.api.conftest import ApiDatabase, bearer
from tests.factories import Factory


def test_a_caregiver_sees_their_residents_and_sites_only(
    client: TestClient, make_token: Callable[..., str], api_db: ApiDatabase
) -> None:
    with api_db.session() as session:
        factory = Factory(session)
        home, elsewhere = factory.site(), factory.site()
        mine = factory.resident(home, room="101")
        theirs = factory.resident(elsewhere)
        factory.device(resident=mine, device_id=f"w-{mine.id}")
        caregiver = factory.user(Role.CAREGIVER, residents=(mine,))
        operator = factory.user(Role.OPERATOR)
        session.commit()
    token = make_token(caregiver)

    residents = client.get("/api/v1/residents", headers=bearer(token)).json()
    assert [r["id"] for r in residents] == [mine.id]
    one = client.get(f"/api/v1/residents/{mine.id}", headers=bearer(token)).json()
    assert one["room"] == "101" and one["active_start"] == "07:00"
    assert [d["id"] for d in one["devices"]] == [f"w-{mine.id}"]
    hidden = client.get(f"/api/v1/residents/{theirs.id}", headers=bearer(token))
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"

    assert [s["id"] for s in client.get("/api/v1/sites", headers=bearer(token)).json()] == [home.id]
    assert client.get(f"/api/v1/sites/{elsewhere.id}", headers=bearer(token)).status_code == 404
    assert client.get(f"/api/v1/sites/{home.id}", headers=bearer(token)).json()["id"] == home.id

    everyone = make_token(operator)
    seen = {r["id"] for r in client.get("/api/v1/residents", headers=bearer(everyone)).json()}
    assert {mine.id, theirs.id} <= seen
    assert client.get(f"/api/v1/sites/{elsewhere.id}", headers=bearer(everyone)).status_code == 200
