"""The API's resources beyond alerts, on both backends: readings and rollups (paged, JSON and
CSV), care reports, devices, commands, rules, silences, and writing sites and residents; each
acting as the token's user, each write audited as in the app."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.care_report import make_report
from core.contract.catalogue import DeviceType
from models import AuditEntry, Command, Reading, Role, Rollup, RollupPeriod, User
from tests.api.conftest import ApiDatabase, bearer
from tests.factories import Factory

START = datetime(2026, 3, 9, tzinfo=UTC)
END = START + timedelta(hours=1)


@dataclass
class World:
    """A site; a resident with a wearable (readings, rollups, a report) and another resident;
    a caregiver of the first, an operator; a gas valve."""

    site_id: str
    mine: int
    other: int
    wearable: str
    theirs: str
    valve: str
    caregiver: User
    operator: User


@pytest.fixture
def world(api_db: ApiDatabase) -> World:
    with api_db.session() as session:
        factory = Factory(session)
        site = factory.site(timezone="UTC")
        mine, other = factory.resident(site, name="Mine"), factory.resident(site, name="Other")
        wearable = factory.device(DeviceType.WEARABLE, resident=mine)
        theirs = factory.device(DeviceType.WEARABLE, resident=other)
        valve = factory.device(DeviceType.GAS_VALVE, site=site, name="Kitchen valve")
        for minute in range(60):
            at = START + timedelta(minutes=minute)
            session.add(Reading(device_id=wearable.id, metric="heart_rate", ts=at, value=70))
            session.add(Reading(device_id=wearable.id, metric="spo2", ts=at, value=97))
            session.add(Reading(device_id=theirs.id, metric="heart_rate", ts=at, value=80))
        for hour in range(3):
            session.add(
                Rollup(
                    device_id=wearable.id,
                    metric="heart_rate",
                    period=RollupPeriod.HOUR,
                    bucket=START + timedelta(hours=hour),
                    count=60,
                    min=60.0,
                    max=80.0,
                    mean=70.0,
                    p95=78.0,
                )
            )
        session.flush()
        make_report(session, mine.id, START.date())
        caregiver = factory.user(Role.CAREGIVER, residents=(mine,))
        operator = factory.user(Role.OPERATOR)
        session.commit()
        return World(
            site.id, mine.id, other.id, wearable.id, theirs.id, valve.id, caregiver, operator
        )


def _range(**extra: object) -> dict[str, object]:
    return {"start": START.isoformat(), "end": END.isoformat(), **extra}


def _actions(api_db: ApiDatabase, actor: User) -> list[str]:
    with api_db.session() as session:
        return list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.actor_id == actor.id)
                .order_by(AuditEntry.id)
            )
        )


def test_readings_page_by_cursor_as_json_and_csv(
    client: TestClient, make_token: Callable[..., str], world: World
) -> None:
    token = make_token(world.caregiver)
    url = f"/api/v1/residents/{world.mine}/readings"
    whole = client.get(url, params=_range(limit=500), headers=bearer(token))
    assert whole.status_code == 200, whole.text
    assert len(whole.json()["items"]) == 120 and whole.json()["next_cursor"] is None
    items, cursor, pages = [], None, 0
    while True:
        params = _range(limit=50, **({"cursor": cursor} if cursor else {}))
        page = client.get(url, params=params, headers=bearer(token)).json()
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert items == whole.json()["items"] and pages == 3

    spo2 = client.get(url, params=_range(metric="spo2", format="csv"), headers=bearer(token))
    assert spo2.status_code == 200
    assert spo2.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(spo2.text)))
    assert rows[0] == ["device_id", "metric", "ts", "value"] and len(rows) == 61
    assert rows[1] == [world.wearable, "spo2", "2026-03-09T00:00:00+00:00", "97.0"]

    paged = client.get(url, params=_range(limit=100), headers=bearer(token, Accept="text/csv"))
    assert paged.headers["content-type"].startswith("text/csv")
    assert paged.headers["x-next-cursor"] and 'rel="next"' in paged.headers["link"]
    rest = client.get(
        url,
        params=_range(limit=100, cursor=paged.headers["x-next-cursor"]),
        headers=bearer(token, Accept="text/csv"),
    )
    assert len(rest.text.splitlines()) == 1 + 20 and "x-next-cursor" not in rest.headers


def test_rollups_of_a_device(
    client: TestClient, make_token: Callable[..., str], world: World
) -> None:
    token = make_token(world.caregiver)
    rollups = client.get(
        f"/api/v1/devices/{world.wearable}/rollups",
        params={"start": START.isoformat(), "end": (START + timedelta(hours=2)).isoformat()},
        headers=bearer(token),
    )
    assert rollups.status_code == 200, rollups.text
    assert [(r["bucket"], r["mean"], r["p95"]) for r in rollups.json()["items"]] == [
        ("2026-03-09T00:00:00Z", 70.0, 78.0),
        ("2026-03-09T01:00:00Z", 70.0, 78.0),
    ]


def test_what_a_caregiver_may_not_see_is_not_found(
    client: TestClient, make_token: Callable[..., str], world: World
) -> None:
    token = make_token(world.caregiver)
    for url in (
        f"/api/v1/residents/{world.other}/readings",
        f"/api/v1/residents/{world.other}/rollups",
        f"/api/v1/devices/{world.theirs}/readings",
        "/api/v1/devices/no-such-device/readings",
        "/api/v1/residents/999999/readings",
    ):
        hidden = client.get(url, params=_range(), headers=bearer(token))
        assert hidden.status_code == 404, (url, hidden.text)
        assert hidden.headers["content-type"] == "application/problem+json"
    assert (
        client.get(f"/api/v1/residents/{world.other}/reports", headers=bearer(token)).status_code
        == 404
    )
    # The fleet, commands and rules are for operators: the role says no (403).
    assert client.get("/api/v1/devices", headers=bearer(token)).status_code == 403
    assert client.get("/api/v1/rules", headers=bearer(token)).status_code == 403


def test_bad_ranges_and_cursors(
    client: TestClient, make_token: Callable[..., str], world: World
) -> None:
    token = make_token(world.operator)
    url = f"/api/v1/devices/{world.wearable}/readings"
    empty = client.get(
        url, params={"start": END.isoformat(), "end": START.isoformat()}, headers=bearer(token)
    )
    assert empty.status_code == 200 and empty.json() == {"items": [], "next_cursor": None}
    korean = client.get(
        url,
        params=_range(cursor="garbage"),
        headers=bearer(token, **{"Accept-Language": "ko"}),
    )
    assert korean.status_code == 422
    naive = client.get(
        url,
        params={"start": "2026-03-09T00:00:00", "end": "2026-03-10T00:00:00"},
        headers=bearer(token),
    )
    assert naive.status_code == 422


def test_care_reports(client: TestClient, make_token: Callable[..., str], world: World) -> None:
    token = make_token(world.caregiver)
    listed = client.get(f"/api/v1/residents/{world.mine}/reports", headers=bearer(token))
    assert listed.status_code == 200, listed.text
    (report,) = listed.json()
    assert report["day"] == START.date().isoformat() and "Mine" in report["subject"]
    assert report["data"]["vitals"]["heart_rate"]["count"] == 60
    one = client.get(f"/api/v1/residents/{world.mine}/reports/2026-03-09", headers=bearer(token))
    assert one.json() == report
    assert (
        client.get(
            f"/api/v1/residents/{world.mine}/reports/2026-03-10", headers=bearer(token)
        ).status_code
        == 404
    )


def test_devices_register_credentials_and_status(
    client: TestClient, make_token: Callable[..., str], world: World, api_db: ApiDatabase
) -> None:
    reader = make_token(world.operator)
    writer = make_token(world.operator, scopes=("write",))
    body = {
        "id": "api-wear-1",
        "site_id": world.site_id,
        "type": "wearable",
        "resident_id": world.mine,
    }
    assert client.post("/api/v1/devices", json=body, headers=bearer(reader)).status_code == 403
    created = client.post("/api/v1/devices", json=body, headers=bearer(writer))
    assert created.status_code == 201, created.text
    assert (
        created.json()["resident_id"] == world.mine and created.json()["shown_status"] == "unknown"
    )
    assert client.post("/api/v1/devices", json=body, headers=bearer(writer)).status_code == 409

    moved = client.put(
        "/api/v1/devices/api-wear-1",
        json={"name": "Wristband", "resident_id": world.mine, "room": "garden"},
        headers=bearer(writer),
    )
    assert moved.status_code == 200 and moved.json()["room"] == "garden"

    issued = client.post("/api/v1/devices/api-wear-1/credentials", headers=bearer(writer))
    assert issued.status_code == 201, issued.text
    assert issued.json()["username"] == "api-wear-1" and len(issued.json()["password"]) >= 16
    assert issued.json()["broker_files_written"] is False
    again = client.post("/api/v1/devices/api-wear-1/credentials", headers=bearer(writer))
    assert again.status_code == 409
    rotated = client.post(
        "/api/v1/devices/api-wear-1/credentials", json={"rotate": True}, headers=bearer(writer)
    )
    assert (
        rotated.json()["rotated"] is True
        and rotated.json()["password"] != issued.json()["password"]
    )

    listed = client.get(
        "/api/v1/devices", params={"site": world.site_id, "limit": 2}, headers=bearer(reader)
    ).json()
    assert len(listed["items"]) == 2 and listed["next_cursor"]
    rest = client.get(
        "/api/v1/devices",
        params={"site": world.site_id, "limit": 2, "cursor": listed["next_cursor"]},
        headers=bearer(reader),
    ).json()
    ids = [d["device_id"] for d in listed["items"] + rest["items"]]
    assert ids == sorted(ids) and "api-wear-1" in ids and len(ids) == 4
    detail = client.get(f"/api/v1/devices/{world.valve}", headers=bearer(reader)).json()
    assert detail["type"] == "gas_valve" and detail["status"] == "unknown"
    assert client.get("/api/v1/devices/nope", headers=bearer(reader)).status_code == 404
    assert _actions(api_db, world.operator)[-4:] == [
        "device.add",
        "device.reassign",
        "device.credentials.issue",
        "device.credentials.rotate",
    ]


def test_commands_are_sent_and_followed(
    client: TestClient, make_token: Callable[..., str], world: World, api_db: ApiDatabase
) -> None:
    writer = make_token(world.operator, scopes=("write",))
    commander = make_token(world.operator, scopes=("commands",))
    url = f"/api/v1/devices/{world.valve}/commands"
    body = {"command": "close_valve", "reason": "gas smell"}
    assert client.post(url, json=body, headers=bearer(writer)).status_code == 403
    sent = client.post(url, json=body, headers=bearer(commander))
    assert sent.status_code == 202, sent.text
    assert sent.json()["status"] == "pending" and sent.json()["reason"] == "gas smell"
    followed = client.get(
        f"/api/v1/commands/{sent.json()['command_id']}", headers=bearer(commander)
    )
    assert followed.json() == sent.json()
    listed = client.get(url, headers=bearer(commander)).json()["items"]
    assert [c["command_id"] for c in listed] == [sent.json()["command_id"]]
    wrong = client.post(
        f"/api/v1/devices/{world.wearable}/commands", json=body, headers=bearer(commander)
    )
    assert wrong.status_code == 422
    with api_db.session() as session:
        assert session.scalar(select(Command.requested_by)) == world.operator.id
    assert "command.request" in _actions(api_db, world.operator)


RULE = {
    "name": "High heart rate",
    "kind": "threshold",
    "params": {"metric": "heart_rate", "op": ">", "value": 120, "for_minutes": 5},
    "severity": "warning",
}


def test_rules_are_listed_created_updated_and_backtested(
    client: TestClient, make_token: Callable[..., str], world: World, api_db: ApiDatabase
) -> None:
    writer = make_token(world.operator, scopes=("read", "write"))
    created = client.post("/api/v1/rules", json=RULE, headers=bearer(writer))
    assert created.status_code == 201, created.text
    rule_id = created.json()["id"]
    assert created.json()["params"]["value"] == 120
    bad = client.post(
        "/api/v1/rules", json={**RULE, "params": {"metric": "heart_rate"}}, headers=bearer(writer)
    )
    assert bad.status_code == 422 and bad.json()["type"].endswith("validation")
    updated = client.put(
        f"/api/v1/rules/{rule_id}",
        json={**RULE, "params": {**RULE["params"], "value": 130}, "enabled": False},
        headers=bearer(writer),
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["params"]["value"] == 130 and updated.json()["enabled"] is False
    listed = client.get("/api/v1/rules", headers=bearer(writer)).json()
    assert any(r["id"] == rule_id and "130" in r["what"] for r in listed)
    assert _actions(api_db, world.operator)[-3:] == ["rule.create", "rule.update", "rule.disable"]

    tried = client.post(
        "/api/v1/rules/backtest",
        json={**RULE, "params": {**RULE["params"], "value": 60}, "days": 30},
        headers=bearer(writer),
    )
    assert tried.status_code == 200, tried.text
    assert tried.json()["kind"] == "threshold" and tried.json()["data_points"] >= 0
    assert client.get("/api/v1/rules/987654", headers=bearer(writer)).status_code == 404


def test_silences_for_a_caregiver_and_an_operator(
    client: TestClient, make_token: Callable[..., str], world: World, api_db: ApiDatabase
) -> None:
    caregiver = make_token(world.caregiver, scopes=("read", "write"))
    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    mine = client.post(
        "/api/v1/silences",
        json={"scope": "resident", "target": str(world.mine), "ends_at": ends, "reason": "away"},
        headers=bearer(caregiver),
    )
    assert mine.status_code == 201, mine.text
    assert mine.json()["label"] == "Mine" and mine.json()["active"] is True
    for target in (str(world.other), "12x"):
        hidden = client.post(
            "/api/v1/silences",
            json={"scope": "resident", "target": target, "ends_at": ends, "reason": "away"},
            headers=bearer(caregiver),
        )
        assert hidden.status_code == 404, hidden.text
    site = client.post(
        "/api/v1/silences",
        json={"scope": "site", "target": world.site_id, "ends_at": ends, "reason": "maintenance"},
        headers=bearer(caregiver),
    )
    assert site.status_code == 403
    listed = client.get("/api/v1/silences", headers=bearer(caregiver)).json()
    assert [s["id"] for s in listed] == [mine.json()["id"]]
    cancelled = client.delete(f"/api/v1/silences/{mine.json()['id']}", headers=bearer(caregiver))
    assert cancelled.status_code == 200 and cancelled.json()["active"] is False
    again = client.delete(f"/api/v1/silences/{mine.json()['id']}", headers=bearer(caregiver))
    assert again.status_code == 409
    assert _actions(api_db, world.caregiver)[-2:] == ["silence.create", "silence.cancel"]


def test_sites_and_residents_are_created_and_edited(
    client: TestClient, make_token: Callable[..., str], world: World, api_db: ApiDatabase
) -> None:
    writer = make_token(world.operator, scopes=("read", "write"))
    site = client.post(
        "/api/v1/sites",
        json={"id": "annex", "name": "Annex", "timezone": "Asia/Seoul"},
        headers=bearer(writer),
    )
    assert site.status_code == 201, site.text
    assert (
        client.post(
            "/api/v1/sites",
            json={"id": "annex", "name": "A", "timezone": "UTC"},
            headers=bearer(writer),
        ).status_code
        == 409
    )
    bad_zone = client.put(
        "/api/v1/sites/annex",
        json={"name": "Annex", "timezone": "Mars/Base"},
        headers=bearer(writer),
    )
    assert bad_zone.status_code == 422
    renamed = client.put(
        "/api/v1/sites/annex",
        json={"name": "The annex", "timezone": "Asia/Seoul", "address": "1 Road"},
        headers=bearer(writer),
    )
    assert renamed.json()["name"] == "The annex" and renamed.json()["address"] == "1 Road"

    admitted = client.post(
        "/api/v1/residents",
        json={
            "site_id": "annex",
            "name": "Park",
            "room": "201",
            "contacts": [{"name": "Son", "phone": "+82 10 1234 5678"}],
        },
        headers=bearer(writer),
    )
    assert admitted.status_code == 201, admitted.text
    resident_id = admitted.json()["id"]
    edited = client.put(
        f"/api/v1/residents/{resident_id}",
        json={"name": "Park Ji-hoon", "room": "202", "active_start": "06:30:00"},
        headers=bearer(writer),
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["room"] == "202" and edited.json()["active_start"] == "06:30"
    assert _actions(api_db, world.operator)[-5:] == [
        "site.create",
        "site.update",
        "resident.create",
        "resident.update",
        "resident.move",
    ]
    caregiver = make_token(world.caregiver, scopes=("read", "write"))
    denied = client.put(
        f"/api/v1/residents/{world.mine}", json={"name": "X"}, headers=bearer(caregiver)
    )
    assert denied.status_code == 403
