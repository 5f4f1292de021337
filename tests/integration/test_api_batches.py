"""The batch routes: the release workflow over HTTP (review, assess, release with a two-person grant
from a managed endpoint), every refusal with its reason, status and ledger entry, and the evidence
package of the released batch verifying offline with only the bundle and the site key."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import ledger_entries
from batch_site import (
    CLEAN,
    FLAGGED,
    PASSWORD,
    RUNNING,
    BatchSite,
    build_batch_site,
    complete_running_batch,
)
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send
from typer.testing import CliRunner

from aseptic.api import create_app
from aseptic.batch import PACKAGE_ENTRY
from aseptic.cli.main import app
from aseptic.config import settings_from_mapping
from aseptic.crypto import SITE_KEY, KeyStore
from aseptic.ledger import LeafKind, Ledger, lineage_event

pytestmark = [
    pytest.mark.integration,
    pytest.mark.requirement(
        "ASE-RELEASE", "P11-11.50", "P11-11.70", "P11-11.200", "A11-14", "ASE-ZERO-TRUST"
    ),
]


class ManagedEndpoint:
    """What ``PeerCertificateH11`` does after a mutual-TLS handshake: hand the app the client's
    certificate (here the enrolled console's) in the ASGI TLS extension."""

    def __init__(self, app: ASGIApp, pem: str) -> None:
        self.app, self.pem = app, pem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {
                **scope,
                "extensions": {**scope.get("extensions", {}), "tls": {"client_cert_chain": [self.pem]}},
            }
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> BatchSite:
    return build_batch_site(tmp_path_factory.mktemp("batch-api") / "data")


@pytest.fixture
def site(tmp_path: Path, template: BatchSite) -> BatchSite:
    shutil.copytree(template.data_dir, tmp_path / "data")
    copy = BatchSite(tmp_path / "data", template.clock, template.session_key, dict(template.totp), *(
        template.console_cert, template.console_key))  # fmt: skip
    return copy


@pytest.fixture
def clients(site: BatchSite) -> Iterator[tuple[TestClient, TestClient]]:
    """A client from an unmanaged machine and one from the managed console (same app, same service)."""
    api = create_app(site.data_dir, settings_from_mapping({}), site.clock)
    with TestClient(api) as plain:
        console = TestClient(ManagedEndpoint(api, site.console_cert.read_text()))
        yield plain, console


def _login(client: TestClient, site: BatchSite, name: str) -> dict[str, str]:
    response = client.post(
        "/api/login", json={"username": name, "password": PASSWORD, "totp_code": site.code(name)}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _sign(site: BatchSite, name: str) -> dict[str, Any]:
    return {"password": PASSWORD, "totp_code": site.code(name)}


def _error(response: Any, status: int) -> list[str]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["message"]
    return list(body["reasons"])


def _grant(client: TestClient, site: BatchSite, who: dict[str, str], approver: str, batch: str) -> None:
    asked = client.post(
        "/api/grants",
        json={
            "action": "release_batch",
            "scope": {"type": "Batch", "id": batch},
            "reason": "QA release of " + batch,
        },
        headers=who,
    )
    assert asked.status_code == 200, asked.text
    approved = client.post(
        f"/api/grants/{asked.json()['grant_id']}/approve", headers=_login(client, site, approver)
    )
    assert approved.status_code == 200, approved.text


def test_an_operator_sees_batches_with_their_release_state(
    clients: tuple[TestClient, TestClient], site: BatchSite
) -> None:
    client, _ = clients
    olga = _login(client, site, "olga")
    listed = client.get("/api/batches", headers=olga)
    assert listed.status_code == 200, listed.text
    states = {b["batch_id"]: (b["state"], b["open_findings"]) for b in listed.json()["batches"]}
    assert states == {FLAGGED: ("awaiting review", 1), CLEAN: ("awaiting review", 0), RUNNING: ("running", 0)}
    one = client.get(f"/api/batches/{FLAGGED}", headers=olga).json()
    assert [p["phase"] for p in one["record"]["phases"]] == [
        "BATCH_GROWTH",
        "FED_BATCH_PRODUCTION",
        "HARVEST",
    ]
    assert one["record"]["equipment"]["unit"] == "fermenter-01"
    assert one["record"]["materials"]["sugar_feed_l"] > 0
    assert one["findings"][0]["status"] == "open" and one["findings"][0]["technique"] == "T0832"
    assert one["evidence_problems"] == []
    blocked = " | ".join(one["release_blocked_by"])
    assert "no qa_reviewer has signed" in blocked and "open finding at leaf" in blocked
    assert client.get("/api/batches/NO-SUCH", headers=olga).status_code == 404
    assert client.get("/api/batches/bad%20id", headers=olga).status_code == 422
    assert client.get("/api/batches").status_code == 401
    # The operator may read but not sign: the enforcement point says so (403), and it is logged.
    reasons = _error(client.post(f"/api/batches/{CLEAN}/review", json=_sign(site, "olga"), headers=olga), 403)
    assert any("not a qa_reviewer" in r for r in reasons)
    assert any("enforcement point denied sign_record" in r for r in reasons)


def test_every_refusal_says_why_with_its_status_and_is_logged(
    clients: tuple[TestClient, TestClient], site: BatchSite
) -> None:
    client, console = clients
    rita, anna, bo = (_login(client, site, n) for n in ("rita", "anna", "bo"))

    # Release without review (also: no grant, no managed endpoint, an open finding): 409, every reason.
    reasons = _error(
        client.post(f"/api/batches/{FLAGGED}/release", json=_sign(site, "anna"), headers=anna), 409
    )
    assert any("no qa_reviewer has signed this version" in r for r in reasons)
    assert any("open finding at leaf" in r for r in reasons)
    assert any("forbid-critical-from-unattested-endpoint" in r for r in reasons)
    # A reviewer may not release: 403.
    reasons = _error(
        client.post(f"/api/batches/{CLEAN}/release", json=_sign(site, "rita"), headers=rita), 403
    )
    assert any("rita is not a qa_approver" in r for r in reasons)
    # Review a running batch: 409; a forged form: 422; a wrong password: 403 (counted by the store).
    reasons = _error(
        client.post(f"/api/batches/{RUNNING}/review", json=_sign(site, "rita"), headers=rita), 409
    )
    assert any("has not completed" in r for r in reasons)
    bad = client.post(
        f"/api/batches/{CLEAN}/review", json={"password": PASSWORD, "totp_code": "12ab"}, headers=rita
    )
    assert bad.status_code == 422
    wrong = client.post(
        f"/api/batches/{CLEAN}/review",
        json={"password": "nope", "totp_code": site.code("rita")},
        headers=rita,
    )
    assert wrong.status_code == 403 and "authentication failed" in wrong.json()["error"]["message"]

    # Bo reviews CLEAN (first signing of his session: password and TOTP), then may not release it.
    assert client.post(f"/api/batches/{CLEAN}/review", json=_sign(site, "bo"), headers=bo).status_code == 200
    reasons = _error(
        client.post(f"/api/batches/{CLEAN}/review", json={"password": PASSWORD}, headers=bo), 409
    )
    assert any("already reviewed this version" in r for r in reasons)  # twice
    _grant(client, site, bo, "anna", CLEAN)
    reasons = _error(
        console.post(f"/api/batches/{CLEAN}/release", json={"password": PASSWORD}, headers=bo), 403
    )
    assert reasons == ["bo reviewed the batch record; a different person must release it"]

    # Anna releases CLEAN from the console with an approved grant; a second release is refused.
    _grant(client, site, anna, "alex", CLEAN)
    released = console.post(f"/api/batches/{CLEAN}/release", json=_sign(site, "anna"), headers=anna)
    assert released.status_code == 200, released.text
    assert released.json()["allowed"] is True and released.json()["signature_leaf"] > 0
    reasons = _error(
        console.post(f"/api/batches/{CLEAN}/release", json={"password": PASSWORD}, headers=anna), 409
    )
    assert any("was already released by anna" in r for r in reasons)
    status = client.get(f"/api/batches/{CLEAN}", headers=anna).json()
    assert status["state"] == "released" and status["release_blocked_by"] == []
    assert [(s["meaning"], s["printed_name"]) for s in status["signatures"]] == [
        ("reviewed", "Bo Both"), ("approved", "Anna Approver")
    ]  # fmt: skip

    refused = [e for e in ledger_entries(site.data_dir, "batch_release") if e["outcome"] == "refused"]
    assert {e["actor"] for e in refused} == {"anna", "rita", "bo"}
    assert all(e["reasons"] for e in refused)
    assert [
        e["actor"] for e in ledger_entries(site.data_dir, "batch_release") if e["outcome"] == "signed"
    ] == ["anna"]


def test_an_open_finding_blocks_release_until_a_signed_assessment_closes_it(
    clients: tuple[TestClient, TestClient], site: BatchSite
) -> None:
    client, console = clients
    rita, anna, bo = (_login(client, site, n) for n in ("rita", "anna", "bo"))
    assert (
        client.post(f"/api/batches/{FLAGGED}/review", json=_sign(site, "rita"), headers=rita).status_code
        == 200
    )
    _grant(client, site, anna, "alex", FLAGGED)
    reasons = _error(
        console.post(f"/api/batches/{FLAGGED}/release", json=_sign(site, "anna"), headers=anna), 409
    )
    finding = client.get(f"/api/batches/{FLAGGED}", headers=anna).json()["findings"][0]
    assert reasons == [f"open finding at leaf {finding['leaf']} (cusum, T0832) has no signed assessment"]

    short = {"reason": "drift", "impact": "none", **_sign(site, "bo")}
    assert (
        client.post(f"/api/findings/{finding['leaf']}/assessment", json=short, headers=bo).status_code == 422
    )
    olga = _login(client, site, "olga")
    body = {"reason": "TIC-101 probe drift, recalibrated", "impact": "none on product quality"}
    denied = client.post(
        f"/api/findings/{finding['leaf']}/assessment", json={**body, **_sign(site, "olga")}, headers=olga
    )
    assert denied.status_code == 403 and "enforcement point denied sign_record" in denied.text
    closed = client.post(
        f"/api/findings/{finding['leaf']}/assessment", json={**body, **_sign(site, "bo")}, headers=bo
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["batch_id"] == FLAGGED
    again = client.post(
        f"/api/findings/{finding['leaf']}/assessment", json={**body, "password": PASSWORD}, headers=bo
    )
    assert again.status_code == 409 and "already closed by bo" in again.text
    assert (
        client.post("/api/findings/1/assessment", json={**body, "password": PASSWORD}, headers=bo).status_code
        == 404
    )

    # The assessment is a new finding state, not a new record version: the review still counts. Anna's
    # refused release signed nothing, so her first signing of the session still needs the TOTP code.
    once = console.post(f"/api/batches/{FLAGGED}/release", json={"password": PASSWORD}, headers=anna)
    assert _error(once, 403) == ["second factor required"]
    released = console.post(f"/api/batches/{FLAGGED}/release", json=_sign(site, "anna"), headers=anna)
    assert released.status_code == 200, released.text
    view = client.get(f"/api/batches/{FLAGGED}", headers=anna).json()
    assert view["findings"][0]["assessment"]["printed_name"] == "Bo Both"


def test_a_tampered_record_in_the_window_blocks_release(
    clients: tuple[TestClient, TestClient], site: BatchSite
) -> None:
    client, console = clients
    rita, anna = _login(client, site, "rita"), _login(client, site, "anna")
    assert (
        client.post(f"/api/batches/{CLEAN}/review", json=_sign(site, "rita"), headers=rita).status_code == 200
    )
    _grant(client, site, anna, "alex", CLEAN)
    with sqlite3.connect(site.data_dir / "ledger.db") as conn:
        row = conn.execute(
            "SELECT leaf FROM readings WHERE tag = 'temperature_k' ORDER BY leaf DESC LIMIT 1"
        ).fetchone()
        conn.execute("UPDATE readings SET value = value + 5 WHERE leaf = ? AND tag = 'temperature_k'", row)
    reasons = _error(
        console.post(f"/api/batches/{CLEAN}/release", json=_sign(site, "anna"), headers=anna), 409
    )
    assert any(r.startswith("evidence does not verify: ") for r in reasons), reasons


def test_the_evidence_package_of_a_released_batch_verifies_offline(
    clients: tuple[TestClient, TestClient], site: BatchSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, console = clients
    rita, anna = _login(client, site, "rita"), _login(client, site, "anna")
    assert (
        client.post(f"/api/batches/{CLEAN}/review", json=_sign(site, "rita"), headers=rita).status_code == 200
    )
    _grant(client, site, anna, "alex", CLEAN)
    assert (
        console.post(f"/api/batches/{CLEAN}/release", json=_sign(site, "anna"), headers=anna).status_code
        == 200
    )
    response = client.get(f"/api/batches/{CLEAN}/package", headers=rita)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    offline = tmp_path / "inspector"  # a machine with the package only: no data directory, no database
    zipfile.ZipFile(io.BytesIO(response.content)).extractall(offline)
    package = offline / CLEAN
    assert sorted(p.name for p in package.iterdir()) == [
        "bundle.json",
        "report.html",
        "report.pdf",
        "site.pub",
    ]
    assert package.joinpath("report.pdf").read_bytes().startswith(b"%PDF")
    report = package.joinpath("report.html").read_text()
    assert "Anna Approver" in report and "Rita Reviewer" in report and "approved" in report
    monkeypatch.chdir(offline)  # no --data-dir: nothing but the package is read
    result = CliRunner().invoke(
        app,
        ["ledger", "verify", "--bundle", str(package / "bundle.json"), "--trust", str(package / "site.pub")],
    )
    assert result.exit_code == 0, result.output
    bundle = json.loads(package.joinpath("bundle.json").read_text())
    payloads = [
        json.loads(base64.b64decode(r["payload"])) for r in bundle["records"] if r["kind"] != "envelope"
    ]
    assert {"reviewed", "approved"} <= {p.get("meaning") for p in payloads}
    # The bundle proves which report files belong to it: their digests are a logged record in it.
    (entry,) = [p for p in payloads if p.get("entry") == PACKAGE_ENTRY]
    digests = {r["name"]: r["sha256"] for r in entry["renderings"]}
    for name in ("report.html", "report.pdf"):
        assert digests[name] == hashlib.sha256(package.joinpath(name).read_bytes()).hexdigest()
    assert not list(offline.rglob("*.db"))


def test_a_finding_outside_any_batch_is_closed_over_http_by_qa_only(
    clients: tuple[TestClient, TestClient], site: BatchSite
) -> None:
    client, _ = clients
    olga, rita = _login(client, site, "olga"), _login(client, site, "rita")
    listed = client.get("/api/findings", headers=olga).json()["findings"]
    (outside,) = [f for f in listed if f["batch_id"] is None]
    assert (outside["status"], outside["assessment"], outside["technique"]) == ("open", None, "T0859")
    body = {"reason": "access analytics: a scheduled job, confirmed", "impact": "none: no batch was running"}
    denied = client.post(
        f"/api/findings/{outside['leaf']}/assessment", json={**body, **_sign(site, "olga")}, headers=olga
    )
    assert _error(denied, 403) and "enforcement point denied sign_record" in denied.text
    closed = client.post(
        f"/api/findings/{outside['leaf']}/assessment", json={**body, **_sign(site, "rita")}, headers=rita
    )
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["batch_id"]) == ("closed", None)
    shown = {f["leaf"]: f for f in client.get("/api/findings", headers=olga).json()["findings"]}
    assessment = shown[outside["leaf"]]["assessment"]
    assert shown[outside["leaf"]]["status"] == "closed"
    assert (assessment["printed_name"], assessment["reason"]) == ("Rita Reviewer", body["reason"])
    assert assessment["signature_leaf"] == closed.json()["signature_leaf"]
    # The batch's own finding is untouched and still open; the refusal and the signature are logged.
    assert [f["status"] for f in shown.values() if f["batch_id"] == FLAGGED] == ["open"]
    refused = [e for e in ledger_entries(site.data_dir, "finding_assessment") if e["outcome"] == "refused"]
    assert [(e["actor"], e["finding_leaf"]) for e in refused] == [("olga", outside["leaf"])]


def test_the_periodic_audit_trail_review_is_signed_over_http_by_qa_only(
    clients: tuple[TestClient, TestClient], site: BatchSite
) -> None:
    client, _ = clients
    olga, rita = _login(client, site, "olga"), _login(client, site, "rita")
    period = {"since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}
    body = {**period, "comments": "No unexplained changes; two logins outside shift hours checked."}
    denied = client.post("/api/audit/review", json={**body, **_sign(site, "olga")}, headers=olga)
    assert "enforcement point denied sign_record" in " ".join(_error(denied, 403))
    naive = {**body, "since": "2026-01-01T00:00:00", "password": PASSWORD}
    assert client.post("/api/audit/review", json=naive, headers=rita).status_code == 422
    reversed_period = {**body, "since": period["until"], "until": period["since"], **_sign(site, "rita")}
    assert "is empty" in client.post("/api/audit/review", json=reversed_period, headers=rita).text
    signed = client.post("/api/audit/review", json={**body, **_sign(site, "rita")}, headers=rita)
    assert signed.status_code == 200, signed.text
    result = signed.json()
    assert result["record"].startswith("audit-review:2020-01-01T00:00:00") and result["events_reviewed"] > 0
    assert (result["printed_name"], result["meaning"]) == ("Rita Reviewer", "reviewed")
    trail = client.get("/api/audit", params={"record": "audit-review:*"}, headers=rita).json()["events"]
    assert {e["leaf"] for e in trail} >= {result["leaf"], result["signature_leaf"]}
    refused = [e for e in ledger_entries(site.data_dir, "audit_review") if e.get("outcome") == "refused"]
    assert [e["actor"] for e in refused] == ["olga"]


def test_without_a_plant_the_active_batch_is_read_from_the_ledger_through_the_enforcement_point(
    site: BatchSite,
) -> None:
    # No [gateway] endpoint: the overview's route answers the batch the ledger shows open (a lineage
    # START and no COMPLETE) with its last logged phase, labelled with where it was read.
    def active() -> dict[str, Any]:
        with TestClient(create_app(site.data_dir, settings_from_mapping({}), site.clock)) as client:
            response = client.get("/api/batches/active", headers=_login(client, site, "olga"))
            assert response.status_code == 200, response.text
            client.app.state.service.log.flush()  # type: ignore[attr-defined]
            return dict(response.json())

    running = active()
    assert running["start_leaf"] is not None and running["started"] and running["phase_time"]
    assert {
        k: running[k] for k in ("batch", "phase", "state", "batch_state", "active", "source", "plant")
    } == {
        "batch": RUNNING,
        "phase": "HARVEST",  # the last phase_index reading logged since its START (5)
        "state": None,  # the plant's ISA-88 state: not in the ledger
        "batch_state": "running",
        "active": True,
        "source": "ledger",
        "plant": "not configured",
    }
    read = [d for d in ledger_entries(site.data_dir, "access_decision") if d["action"] == "read_record"]
    assert (read[-1]["resource"], read[-1]["decision"]) == (f'Batch::"{RUNNING}"', "allow")

    complete_running_batch(site)  # the plant ends it: no batch is open in the ledger any more
    none = active()
    assert (none["batch"], none["phase"], none["batch_state"], none["active"], none["source"]) == (
        None,
        None,
        "none",
        False,
        "ledger",
    )
    read = [d for d in ledger_entries(site.data_dir, "access_decision") if d["action"] == "read_record"]
    assert (read[-1]["resource"], read[-1]["decision"]) == ('Batch::"none"', "allow")

    # A new batch started, no phase logged for it yet: the page says the phase is the plant's to tell.
    site_key = KeyStore.open(site.data_dir).load_or_create(SITE_KEY)
    with Ledger.open(site.data_dir, site_key=site_key, clock=site.clock, create=False) as ledger:
        start = lineage_event(
            "START", origin=ledger.origin, batch_id="B-0004", time=site.clock.now(), actor="service:custody"
        )
        leaf = ledger.append_entry(LeafKind.AUDIT, start)
        ledger.checkpoint()
    fresh = active()
    assert (fresh["batch"], fresh["phase"], fresh["phase_time"], fresh["start_leaf"]) == (
        "B-0004",
        None,
        None,
        leaf,
    )
    schema = create_app(site.data_dir, settings_from_mapping({}), site.clock).openapi()
    assert "ledger" in schema["paths"]["/api/batches/active"]["get"]["description"]
