"""Grants and break-glass over the HTTP API: the two-person rule, 403/404/422 on bad requests, and
every step in the ledger."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from api_support import PASSWORD, Site, build_site
from fastapi.testclient import TestClient

from aseptic.api import create_app
from aseptic.config import settings_from_mapping
from aseptic.crypto import KeyStore
from aseptic.ledger import Ledger
from aseptic.trust import DecisionLog, IdentityStore

pytestmark = pytest.mark.integration

REASON = "deviation DV-77: hold the temperature"
WRITE = {
    "action": "write_setpoint",
    "scope": {"type": "Unit", "id": "fermenter-01"},
    "reason": REASON,
    "duration_s": 600,
}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    built = build_site(tmp_path / "data")
    key = KeyStore.open(built.data_dir).load_or_create("site")
    with DecisionLog(lambda: Ledger.open(built.data_dir, site_key=key, clock=built.clock)) as log:
        with IdentityStore.open(built.data_dir, audit=log) as store:
            for name, role in (("erin", "process_engineer"), ("sam", "security_analyst")):
                built.totp[name] = store.add_user(
                    name, (role,), (), PASSWORD, actor="root", now=built.clock.now()
                ).secret
    return built


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    with TestClient(create_app(site.data_dir, settings_from_mapping({}), site.clock)) as test_client:
        yield test_client


def _login(client: TestClient, site: Site, name: str) -> dict[str, str]:
    site.clock.advance(31)
    code = pyotp.TOTP(site.totp[name]).at(site.clock.now())
    response = client.post("/api/login", json={"username": name, "password": PASSWORD, "totp_code": code})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _entries(data_dir: Path) -> list[dict[str, Any]]:
    query = (
        "SELECT payload FROM (SELECT leaf, payload FROM audit UNION ALL SELECT leaf, payload FROM decisions"
        " UNION ALL SELECT leaf, payload FROM findings) ORDER BY leaf"
    )
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        return [json.loads(row[0]) for row in conn.execute(query)]


def test_grant_needs_a_second_authorised_person(client: TestClient, site: Site) -> None:
    olga, root, erin = (_login(client, site, name) for name in ("olga", "root", "erin"))
    response = client.post("/api/grants", json=WRITE, headers=olga)
    assert response.status_code == 200, response.text
    grant = response.json()
    assert grant["state"] == "requested" and grant["requester"] == "olga"
    url = f"/api/grants/{grant['grant_id']}/approve"
    denied = client.post(url, headers=olga)
    assert denied.status_code == 403 and "own grant" in denied.json()["error"]["message"]
    denied = client.post(url, headers=root)  # an administrator may not approve a plant write
    assert denied.status_code == 403
    assert denied.json()["error"]["reasons"] == ["no policy permits this request (deny by default)"]
    approved = client.post(url, headers=erin)
    assert approved.status_code == 200 and approved.json()["state"] == "active"
    assert approved.json()["approver"] == "erin"
    again = client.post(url, headers=erin)
    assert again.status_code == 422 and "not waiting for approval" in again.json()["error"]["message"]
    listed = client.get("/api/grants", headers=olga).json()
    assert [(g["grant_id"], g["state"]) for g in listed] == [(grant["grant_id"], "active")]
    site.clock.advance(600)
    listed = client.get("/api/grants", headers=olga).json()
    assert [g["state"] for g in listed] == ["expired"]
    client.app.state.service.log.flush()  # type: ignore[attr-defined]
    events = [e["event"] for e in _entries(site.data_dir) if e.get("entry") == "grant"]
    assert events == ["requested", "approved", "expired"]
    approvals = [
        (e["principal"], e["decision"]) for e in _entries(site.data_dir) if e.get("action") == "approve_grant"
    ]
    assert approvals == [('User::"olga"', "deny"), ('User::"root"', "deny"), ('User::"erin"', "allow")]


def test_malformed_grant_requests_are_422_and_change_nothing(client: TestClient, site: Site) -> None:
    olga = _login(client, site, "olga")
    bodies: list[dict[str, Any]] = [
        {**WRITE, "action": "read_tag"},
        {**WRITE, "reason": "short"},
        {**WRITE, "duration_s": 10 * 3600},
        {**WRITE, "scope": {"type": "Role", "id": "administrator"}},
        {**WRITE, "scope": {"type": "Tag", "id": "../etc"}},
        {**WRITE, "extra": 1},
    ]
    for body in bodies:
        response = client.post("/api/grants", json=body, headers=olga)
        assert response.status_code == 422, (body, response.text)
    assert client.get("/api/grants", headers=olga).json() == []


def test_unknown_grant_is_404_and_malformed_id_422(client: TestClient, site: Site) -> None:
    erin = _login(client, site, "erin")
    assert client.post("/api/grants/g-0123456789abcdef/approve", headers=erin).status_code == 404
    assert client.post("/api/grants/nonsense/approve", headers=erin).status_code == 422


@pytest.mark.requirement("A11-16")
def test_breakglass_over_the_api_is_a_finding_and_waits_for_review(client: TestClient, site: Site) -> None:
    olga, sam = _login(client, site, "olga"), _login(client, site, "sam")
    response = client.post("/api/breakglass", json=WRITE, headers=olga)
    assert response.status_code == 200, response.text
    grant_id = response.json()["grant_id"]
    assert [g["grant_id"] for g in client.get("/api/breakglass/reviews", headers=sam).json()] == [grant_id]
    own = client.post(f"/api/breakglass/{grant_id}/review", json={"note": "fine"}, headers=olga)
    assert own.status_code == 403
    done = client.post(f"/api/breakglass/{grant_id}/review", json={"note": "justified, DV-77"}, headers=sam)
    assert done.status_code == 200 and done.json()["reviewed_by"] == "sam"
    assert client.get("/api/breakglass/reviews", headers=sam).json() == []
    findings = [e for e in _entries(site.data_dir) if e.get("kind") == "finding"]
    assert [(f["technique"], f["principal"]) for f in findings] == [("T0859", 'User::"olga"')]


def test_grants_are_listed_in_full_only_to_roles_that_may_read_access_records(
    client: TestClient, site: Site
) -> None:
    olga, otto, sam = (_login(client, site, name) for name in ("olga", "otto", "sam"))
    grant = client.post("/api/grants", json=WRITE, headers=olga).json()
    assert [g["grant_id"] for g in client.get("/api/grants", headers=olga).json()] == [grant["grant_id"]]
    assert client.get("/api/grants", headers=otto).json() == []  # another operator sees only their own
    assert [g["grant_id"] for g in client.get("/api/grants", headers=sam).json()] == [grant["grant_id"]]
    assert client.get("/api/breakglass/reviews", headers=otto).status_code == 403
    client.app.state.service.log.flush()  # type: ignore[attr-defined]
    reads = [
        (e["principal"], e["decision"])
        for e in _entries(site.data_dir)
        if e.get("entry") == "access_decision" and e.get("resource") == 'Record::"access-decisions"'
    ]
    assert ('User::"otto"', "deny") in reads and ('User::"sam"', "allow") in reads
