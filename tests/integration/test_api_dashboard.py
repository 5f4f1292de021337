"""The routes behind the dashboard's audit and access views: who may read them, their filters, and
bad input."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from api_support import PASSWORD, Site, build_site
from fastapi.testclient import TestClient

from aseptic.api import create_app
from aseptic.config import settings_from_mapping
from aseptic.crypto import KeyStore
from aseptic.ledger import Ledger
from aseptic.trust import DecisionLog, IdentityStore

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-ZERO-TRUST", "P11-11.10e")]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    built = build_site(tmp_path / "data")
    site_key = KeyStore.open(built.data_dir).load_or_create("site")
    with DecisionLog(lambda: Ledger.open(built.data_dir, site_key=site_key, clock=built.clock)) as log:
        with IdentityStore.open(built.data_dir, audit=log) as store:
            for name, role in (("ada", "auditor"), ("sam", "security_analyst")):
                enrolment = store.add_user(name, (role,), (), PASSWORD, actor="root", now=built.clock.now())
                built.totp[name] = enrolment.secret
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


def test_auditor_reads_the_audit_trail_with_filters(client: TestClient, site: Site) -> None:
    headers = _login(client, site, "ada")
    everything = client.get("/api/audit", headers=headers).json()["events"]
    assert {"principal:olga", "principal:ada", "principal:sam"} <= {e["record"] for e in everything}
    assert [e["leaf"] for e in everything] == sorted((e["leaf"] for e in everything), reverse=True)
    only = client.get("/api/audit", params={"who": "root", "record": "principal:sam"}, headers=headers)
    assert only.status_code == 200, only.text
    assert [(e["who"], e["record"], e["change"]) for e in only.json()["events"]] == [
        ("root", "principal:sam", "user_added")
    ]
    later = client.get("/api/audit", params={"since": "2100-01-01T00:00:00Z"}, headers=headers)
    assert later.json() == {"events": [], "truncated": False}
    one = client.get("/api/audit", params={"limit": 1}, headers=headers).json()
    assert len(one["events"]) == 1 and one["truncated"] is True


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
        {"record": "bad record with spaces"},
        {"limit": 0},
    ],
)
def test_bad_audit_filters_are_refused(client: TestClient, site: Site, params: dict[str, object]) -> None:
    response = client.get("/api/audit", params=params, headers=_login(client, site, "ada"))
    assert response.status_code == 422, response.text


def test_operator_may_read_neither_the_audit_trail_nor_the_decisions(client: TestClient, site: Site) -> None:
    headers = _login(client, site, "olga")
    for path in ("/api/audit", "/api/decisions"):
        response = client.get(path, headers=headers)
        assert response.status_code == 403, (path, response.text)
    sam = _login(client, site, "sam")
    denials = client.get("/api/decisions", params={"denied": "true"}, headers=sam).json()["decisions"]
    assert {(d["principal"], d["resource"]) for d in denials} == {
        ('User::"olga"', 'Record::"audit-trail"'),
        ('User::"olga"', 'Record::"access-decisions"'),
    }
    assert all(d["decision"] == "deny" for d in denials)
    client.app.state.service.log.flush()  # type: ignore[attr-defined]  # allows may be logged after the answer
    every = client.get("/api/decisions", params={"limit": 1000}, headers=sam).json()["decisions"]
    assert any(d["decision"] == "allow" and d["principal"] == 'User::"sam"' for d in every)


def test_ledger_status_lists_witness_cosignatures(client: TestClient, site: Site) -> None:
    status = client.get("/api/ledger/status", headers=_login(client, site, "olga")).json()
    assert status["cosignatures"] == []
    assert status["latest_checkpoint"]["time"]


def test_ledger_status_says_when_the_ledger_was_last_verified(client: TestClient, site: Site) -> None:
    from datetime import UTC, datetime

    from aseptic.service import LastVerification, record_verification

    headers = _login(client, site, "olga")
    assert client.get("/api/ledger/status", headers=headers).json()["last_verification"] is None
    when = datetime(2026, 3, 1, 12, tzinfo=UTC)
    record_verification(
        site.data_dir, LastVerification(ok=False, time=when, size=17, reason="leaf 9 altered")
    )
    status = client.get("/api/ledger/status", headers=headers).json()
    assert status["last_verification"] == {
        "ok": False,
        "time": "2026-03-01T12:00:00.000000Z",
        "size": 17,
        "reason": "leaf 9 altered",
    }
