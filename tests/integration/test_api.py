"""The HTTP API (issue 4, part 3a): authentication, the enforcement point on every route, bad input.

The app runs in-process (FastAPI's TestClient) over a real data directory: keys, a ledger with
signed telemetry, an identity store with real argon2 passwords and TOTP. One test starts
`aseptic serve` as a subprocess on a free loopback port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pyotp
import pytest
from api_support import PASSWORD, START, TAG, Site, build_site
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from aseptic.api import create_app
from aseptic.clock import format_rfc3339
from aseptic.config import Settings, settings_from_mapping
from aseptic.crypto import KeyStore
from aseptic.trust import IdentityStore, issue_token, verify_token

pytestmark = pytest.mark.integration

# "/" is the dashboard's static page: it holds no data; everything it shows comes from protected routes.
PUBLIC = {("GET", "/health"), ("POST", "/api/login"), ("GET", "/openapi.json"), ("GET", "/")}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return build_site(tmp_path / "data")


def _settings(**api: Any) -> Settings:
    return settings_from_mapping({"api": api})


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    with TestClient(create_app(site.data_dir, _settings(max_body_bytes=4096), site.clock)) as test_client:
        yield test_client


def _login(client: TestClient, site: Site, name: str) -> dict[str, str]:
    site.clock.advance(31)  # a TOTP code is accepted once: each login needs a later time step
    code = pyotp.TOTP(site.totp[name]).at(site.clock.now())
    response = client.post("/api/login", json={"username": name, "password": PASSWORD, "totp_code": code})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _ledger_entries(data_dir: Path, entry: str) -> list[dict[str, Any]]:
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        rows = conn.execute(
            "SELECT payload FROM (SELECT leaf, payload FROM audit"
            " UNION ALL SELECT leaf, payload FROM decisions)"
            " ORDER BY leaf"
        ).fetchall()
    return [e for e in (json.loads(row[0]) for row in rows) if e.get("entry") == entry]


def _readings_url(tag: str = TAG) -> str:
    start, end = format_rfc3339(START - timedelta(hours=1)), format_rfc3339(START)
    return f"/api/tags/{tag}/readings?from={start}&to={end}"


# The batch routes (tests/integration/test_api_batches.py) and their answer to the operator with a
# good token on this site without batches: the list is empty, B-0001 is unknown, a POST needs a body.
BATCH_ROUTES = {
    "/api/batches": 200,
    "/api/batches/B-0001": 404,
    "/api/batches/B-0001/package": 404,
    "/api/batches/B-0001/review": 422,
    "/api/batches/B-0001/release": 422,
    "/api/findings/1/assessment": 422,
    "/api/audit/review": 422,  # a body is needed (the period, comments, the signature's components)
}


def _protected_routes(client: TestClient) -> list[tuple[str, str]]:
    routes = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, APIRoute):
            for method in route.methods:
                if (method, route.path) not in PUBLIC:
                    routes.append(
                        (method, route.path.replace("{tag}", TAG).replace("{unit}", "fermenter-01"))
                        if "{batch_id}" not in route.path and "{finding_leaf}" not in route.path
                        else (
                            method,
                            route.path.replace("{batch_id}", "B-0001").replace("{finding_leaf}", "1"),
                        )
                    )
    return routes


def _forged(token: str) -> str:
    body, signature = token.rsplit(".", 1)
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{body}.{flipped}"


# -- authentication ----------------------------------------------------------------------------


def test_health_and_openapi_answer_without_a_token(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    assert {"/health", "/api/login", "/api/whoami", "/api/ledger/status", "/api/tags/{tag}/readings"} <= set(
        spec["paths"]
    )
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_every_protected_route_refuses_missing_forged_expired_and_malformed_tokens(
    client: TestClient, site: Site
) -> None:
    routes = _protected_routes(client)
    assert {path for _, path in routes} == {
        "/api/whoami",
        "/api/ledger/status",
        f"/api/tags/{TAG}/readings",
        "/api/findings",
        f"/api/setpoints/{TAG}",
        "/api/units/fermenter-01/recipe",
        "/api/batches/active",
        "/api/audit",
        "/api/decisions",
        "/api/campaign/results",
        "/api/campaign/trend",
        "/api/policies",
        "/metrics",
        *BATCH_ROUTES,
    }
    # With a good token: the reads answer (the active batch from the ledger: no gateway configured);
    # the writes need a body (422).
    authenticated = {
        f"/api/setpoints/{TAG}": 422,
        "/api/units/fermenter-01/recipe": 422,
        "/api/audit": 403,  # olga is an operator: the site records are outside her area
        "/api/decisions": 403,
        "/api/campaign/results": 403,  # site records too (docs/operations.md)
        "/api/campaign/trend": 403,
        "/api/policies": 403,
        "/metrics": 403,
        **BATCH_ROUTES,
    }
    good = _login(client, site, "olga")["Authorization"].removeprefix("Bearer ")
    other_key = KeyStore.open(site.data_dir / "elsewhere").load_or_create("session")
    foreign, _ = issue_token(
        other_key, subject="olga", kind="User", roles=("operator",), now=site.clock.now()
    )
    ghost, _ = issue_token(
        site.session_key, subject="ghost", kind="User", roles=("operator",), now=site.clock.now()
    )
    expired, _ = issue_token(
        site.session_key, subject="olga", kind="User", roles=("operator",), now=START - timedelta(hours=2)
    )
    bad_headers: dict[str, dict[str, str]] = {
        "missing": {},
        "wrong scheme": {"Authorization": f"Basic {good}"},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "forged signature": {"Authorization": f"Bearer {_forged(good)}"},
        "signed by another key": {"Authorization": f"Bearer {foreign}"},
        "unknown subject": {"Authorization": f"Bearer {ghost}"},
        "expired": {"Authorization": f"Bearer {expired}"},
    }
    for method, path in routes:
        for what, headers in bad_headers.items():
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, what, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["type"] == "Unauthenticated"
        answer = client.request(method, path, headers={"Authorization": f"Bearer {good}"})
        assert answer.status_code == authenticated.get(path, 200), (path, answer.text)


def test_token_expires_after_its_lifetime(site: Site) -> None:
    app = create_app(site.data_dir, _settings(token_lifetime_s=60), site.clock)
    with TestClient(app) as client:
        headers = _login(client, site, "olga")
        assert client.get("/api/whoami", headers=headers).status_code == 200
        site.clock.advance(61)
        assert client.get("/api/whoami", headers=headers).status_code == 401


def test_disabled_user_is_refused_on_the_next_request(client: TestClient, site: Site) -> None:
    headers = _login(client, site, "olga")
    assert client.get("/api/whoami", headers=headers).json()["name"] == "olga"
    service = client.app.state.service  # type: ignore[attr-defined]
    with IdentityStore.open(site.data_dir, audit=service.log) as admin_store:
        admin_store.disable("olga", actor="root", now=site.clock.now())
    response = client.get("/api/whoami", headers=headers)
    assert response.status_code == 401
    assert "disabled" in response.json()["error"]["message"]


def test_revoked_token_is_refused_on_the_next_request(client: TestClient, site: Site) -> None:
    headers = _login(client, site, "olga")
    token = headers["Authorization"].removeprefix("Bearer ")
    token_id = verify_token(token, site.session_key.public, site.clock.now()).token_id
    assert client.get("/api/whoami", headers=headers).status_code == 200
    service = client.app.state.service  # type: ignore[attr-defined]
    with IdentityStore.open(site.data_dir, audit=service.log) as admin_store:
        admin_store.revoke_token(token_id, actor="root", now=site.clock.now())
    response = client.get("/api/whoami", headers=headers)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_failed_logins_get_one_generic_401_and_are_counted(client: TestClient, site: Site) -> None:
    code = pyotp.TOTP(site.totp["olga"]).at(site.clock.now())
    attempts = [
        {"username": "olga", "password": "wrong password!", "totp_code": code},
        {"username": "olga", "password": PASSWORD, "totp_code": "000000" if code != "000000" else "111111"},
        {"username": "nobody", "password": PASSWORD, "totp_code": code},
    ]
    messages = set()
    for body in attempts:
        response = client.post("/api/login", json=body)
        assert response.status_code == 401
        messages.add(response.json()["error"]["message"])
    assert messages == {"authentication failed"}
    assert client.app.state.service.failed_logins == 3  # type: ignore[attr-defined]


def test_replayed_totp_code_is_refused(client: TestClient, site: Site) -> None:
    _login(client, site, "olga")
    code = pyotp.TOTP(site.totp["olga"]).at(site.clock.now())
    body = {"username": "olga", "password": PASSWORD, "totp_code": code}
    assert client.post("/api/login", json=body).status_code == 401


# -- authorisation -----------------------------------------------------------------------------


def test_operator_reads_a_tag_of_their_own_area(client: TestClient, site: Site) -> None:
    response = client.get(_readings_url(), headers=_login(client, site, "olga"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tag"] == TAG and body["unit"] == "K" and not body["truncated"]
    assert len(body["readings"]) == 12
    assert {r["quality"] for r in body["readings"]} == {"good"}


def test_operator_of_another_area_is_denied_and_the_deny_is_logged(client: TestClient, site: Site) -> None:
    response = client.get(_readings_url(), headers=_login(client, site, "otto"))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["policy_ids"] == []
    assert error["reasons"] == ["no policy permits this request (deny by default)"]
    client.app.state.service.log.flush()  # type: ignore[attr-defined]
    denies = [
        e
        for e in _ledger_entries(site.data_dir, "access_decision")
        if e["principal"] == 'User::"otto"' and e["decision"] == "deny"
    ]
    assert [(e["action"], e["resource"]) for e in denies] == [("read_tag", f'Tag::"{TAG}"')]


def test_control_zone_read_from_enterprise_zone_is_forbidden_by_named_policy(site: Site) -> None:
    app = create_app(site.data_dir, _settings(source_zone="enterprise"), site.clock)
    with TestClient(app) as client:
        response = client.get(_readings_url(), headers=_login(client, site, "olga"))
    assert response.status_code == 403
    assert response.json()["error"]["policy_ids"] == ["forbid-control-read-from-enterprise-zone"]


def test_administrator_cannot_read_ledger_status_or_process_data(client: TestClient, site: Site) -> None:
    headers = _login(client, site, "root")
    assert client.get("/api/ledger/status", headers=headers).status_code == 403
    assert client.get(_readings_url(), headers=headers).status_code == 403
    status = client.get("/api/ledger/status", headers=_login(client, site, "olga"))
    assert status.status_code == 200
    assert status.json()["readings"] == 12


def test_findings_are_listed_for_an_operator_and_denied_to_an_administrator(
    client: TestClient, site: Site
) -> None:
    assert client.get("/api/findings", headers=_login(client, site, "root")).status_code == 403
    listed = client.get("/api/findings?since_leaf=0&limit=5", headers=_login(client, site, "olga"))
    assert listed.status_code == 200
    assert listed.json() == {"findings": [], "truncated": False, "next_since_leaf": 0}  # none raised here
    assert client.get("/api/findings?limit=0", headers=_login(client, site, "olga")).status_code == 422


# -- bad input ---------------------------------------------------------------------------------


def test_unknown_tag_is_404_and_its_deny_is_logged(client: TestClient, site: Site) -> None:
    response = client.get(_readings_url("no_such_tag"), headers=_login(client, site, "olga"))
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "UnknownResource"
    client.app.state.service.log.flush()  # type: ignore[attr-defined]
    assert any(
        e["resource"] == 'Tag::"no_such_tag"' and e["decision"] == "deny"
        for e in _ledger_entries(site.data_dir, "access_decision")
    )


@pytest.mark.parametrize(
    "query",
    ["from=yesterday", "to=2026-13-01T00:00:00Z", "from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z"],
)
def test_malformed_time_range_is_422(client: TestClient, site: Site, query: str) -> None:
    response = client.get(f"/api/tags/{TAG}/readings?{query}", headers=_login(client, site, "olga"))
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "InputError"


def test_tag_name_outside_the_entity_alphabet_is_422(client: TestClient, site: Site) -> None:
    response = client.get("/api/tags/%20drop%20table/readings", headers=_login(client, site, "olga"))
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"username": "olga", "password": "x"}',
        b'{"username": "olga", "password": "x", "totp_code": "12ab56"}',
        b'{"username": "olga", "password": "x", "totp_code": "123456", "admin": true}',
    ],
)
def test_malformed_login_body_is_422(client: TestClient, body: bytes) -> None:
    response = client.post("/api/login", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "InputError"


def test_oversized_body_is_413_before_it_is_parsed(client: TestClient) -> None:
    big = b'{"username": "' + b"a" * 8000 + b'", "password": "x", "totp_code": "123456"}'
    response = client.post("/api/login", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["error"]["message"]


def test_oversized_chunked_body_without_length_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    response = client.post("/api/login", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


# -- evidence ----------------------------------------------------------------------------------


def test_decisions_and_logins_are_ledger_entries_and_ledger_verify_passes(site: Site) -> None:
    with TestClient(create_app(site.data_dir, _settings(), site.clock)) as client:
        olga = _login(client, site, "olga")
        client.get(_readings_url(), headers=olga)
        client.get("/api/ledger/status", headers=olga)
        client.get("/api/whoami", headers={"Authorization": "Bearer forged"})
        client.post(
            "/api/login", json={"username": "olga", "password": "nope nope nope", "totp_code": "123456"}
        )
    decisions = _ledger_entries(site.data_dir, "access_decision")
    assert [(d["action"], d["decision"]) for d in decisions] == [
        ("read_tag", "allow"),
        ("read_record", "allow"),
    ]
    assert all(d["context"]["conduit"] == "http-api" for d in decisions)
    results = [e["result"] for e in _ledger_entries(site.data_dir, "authentication")]
    assert results == ["session_issued", "token_refused", "refused"]
    verify = subprocess.run(
        [sys.executable, "-m", "aseptic.cli", "ledger", "verify", "--data-dir", str(site.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


# -- aseptic serve -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_initialises_an_empty_data_dir_and_refuses_unauthenticated_requests(tmp_path: Path) -> None:
    data_dir = tmp_path / "empty"
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "aseptic.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        base = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                # HTTPS by default, with a server certificate from the site CA `serve` just made.
                context = ssl.create_default_context(cafile=str(data_dir / "site-ca.pem"))
                health = httpx2.get(f"{base}/health", timeout=2, verify=context)
                break
            except (httpx2.TransportError, FileNotFoundError, ssl.SSLError):
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "aseptic serve did not come up"
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        with httpx2.Client(base_url=base, verify=context, timeout=5) as client:
            assert client.get("/api/whoami").status_code == 401
            assert client.get("/api/ledger/status").status_code == 401
            assert client.post("/api/setpoints/ph_sp", json={"value": 6.6, "reason": "x"}).status_code == 401
            assert "/api/setpoints/{tag}" in client.get("/openapi.json").json()["paths"]
        with pytest.raises(httpx2.TransportError):
            httpx2.get(f"http://127.0.0.1:{port}/health", timeout=5)  # no plain HTTP beside it
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, stderr = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            _, stderr = server.communicate()
    assert server.returncode == 0, stderr
    token = data_dir / "enrolment-token"
    assert f"enrolment token: {token} (mode 0600)" in " ".join(stderr.split())
    assert token.stat().st_mode & 0o777 == 0o600
    assert (data_dir / "ledger.db").is_file()


def test_write_gateway_not_configured_or_twin_unreachable_is_503_never_a_write(site: Site) -> None:
    body = {"value": 6.6, "reason": "per SOP-12"}
    with TestClient(create_app(site.data_dir, _settings(), site.clock)) as client:
        headers = _login(client, site, "olga")
        response = client.post("/api/setpoints/ph_sp", json=body, headers=headers)
        assert response.status_code == 503
        assert "not configured" in response.json()["error"]["message"]
    unreachable = settings_from_mapping(
        {"gateway": {"endpoint": f"opc.tcp://127.0.0.1:{_free_port()}/aseptic/", "timeout_s": 2}}
    )
    with TestClient(create_app(site.data_dir, unreachable, site.clock)) as client:
        headers = _login(client, site, "olga")
        for method, path, json_body in (
            ("POST", "/api/setpoints/ph_sp", body),
            ("POST", "/api/units/fermenter-01/recipe", {"parameter": "ph_sp", **body}),
        ):
            response = client.request(method, path, json=json_body, headers=headers)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["type"] in {"BackendError", "ConfigError"}
        # The overview's active batch falls back to the ledger, labelled so (here: no batch in it).
        batch = client.get("/api/batches/active", headers=headers)
        assert batch.status_code == 200, batch.text
        assert {k: batch.json()[k] for k in ("batch", "source", "plant")} == {
            "batch": None,
            "source": "ledger",
            "plant": "unreachable",
        }
    assert not [d for d in _ledger_entries(site.data_dir, "access_decision") if d["action"] != "read_record"]
    assert _ledger_entries(site.data_dir, "record_change") == []


def test_unreachable_plant_makes_reads_503_but_a_grant_can_still_be_revoked(site: Site) -> None:
    # Reads decide with the plant's batch state: unknown is a 503, never a guessed "none". Taking a
    # grant away is not about the plant and must work while the plant is down.
    unreachable = settings_from_mapping(
        {"gateway": {"endpoint": f"opc.tcp://127.0.0.1:{_free_port()}/aseptic/", "timeout_s": 2}}
    )
    with TestClient(create_app(site.data_dir, unreachable, site.clock)) as client:
        headers = _login(client, site, "olga")
        response = client.get(_readings_url(), headers=headers)
        assert response.status_code == 503, response.text
        grant = client.post(
            "/api/grants",
            json={
                "action": "write_setpoint",
                "scope": {"type": "Tag", "id": "ph_sp"},
                "reason": "deviation DV-9: hold pH",
                "duration_s": 600,
            },
            headers=headers,
        )
        assert grant.status_code == 200, grant.text
        revoked = client.post(f"/api/grants/{grant.json()['grant_id']}/revoke", headers=headers)
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["state"] == "revoked"
    (decision,) = [
        d for d in _ledger_entries(site.data_dir, "access_decision") if d["action"] == "revoke_grant"
    ]
    assert (decision["decision"], decision["policy_ids"]) == ("allow", ["grant-party-revoke"])


def test_a_closed_service_fails_closed_with_503_not_401(site: Site) -> None:
    app = create_app(site.data_dir, _settings(), site.clock)
    client = TestClient(app)  # no lifespan: the service is closed by hand below
    headers = _login(client, site, "olga")
    app.state.service.close()
    for response in (
        client.get("/api/whoami", headers=headers),
        client.get(_readings_url(), headers=headers),
        client.post("/api/login", json={"username": "olga", "password": PASSWORD, "totp_code": "123456"}),
    ):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["type"] == "BackendError"


def test_serve_refuses_a_twin_endpoint_that_is_not_opc_tcp(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aseptic.cli.main import app

    result = CliRunner().invoke(
        app, ["serve", "--twin-endpoint", "http://127.0.0.1:4840/", "--data-dir", str(tmp_path / "d")]
    )
    assert result.exit_code == 2
    # (rich eats "[gateway]" as markup in report_error: only the rest of the key path shows)
    assert "endpoint: String should match pattern" in " ".join(result.output.split())
    assert not (tmp_path / "d").exists()  # refused before anything was created
