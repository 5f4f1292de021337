"""The API over real TLS on loopback (uvicorn as `aseptic serve` runs it) with the write gateway to a
real twin OPC UA server: HTTPS from the site CA, mutual TLS for devices and services, the gateway
routes, and their errors.

One twin and one server for the module (each start costs seconds); tests take what they need.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pyotp
import pytest
from api_support import (
    PASSWORD,
    ServeThread,
    Site,
    TwinThread,
    add_engineer,
    add_site_ca,
    build_site,
    enrol_machine,
    ledger_entries,
    provision_writer,
    tls_client,
)
from cryptography.hazmat.primitives.asymmetric import ec

from aseptic.api import create_app
from aseptic.config import settings_from_mapping
from aseptic.trust import IdentityStore, SiteCA

pytestmark = pytest.mark.integration

REASON = "raise pH per deviation DEV-0042"


@dataclass
class Rig:
    site: Site
    twin: TwinThread
    api: ServeThread
    app: Any
    ca: Path
    console: tuple[Path, Path]  # a managed endpoint (Device)
    detector: tuple[Path, Path]  # a Service
    rogue: tuple[Path, Path]  # a certificate from another CA

    def login(self, name: str, cert: tuple[Path, Path] | None = None) -> dict[str, str]:
        self.site.clock.advance(31)  # one TOTP code per time step
        code = pyotp.TOTP(self.site.totp[name]).at(self.site.clock.now())
        with tls_client(self.api.url, self.ca, cert) as client:
            response = client.post(
                "/api/login", json={"username": name, "password": PASSWORD, "totp_code": code}
            )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def client(self, cert: tuple[Path, Path] | None = None, **headers: str) -> Any:
        return tls_client(self.api.url, self.ca, cert, **headers)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("api-gateway")
    site = build_site(root / "data")
    add_engineer(site)
    ca = add_site_ca(site)
    console = enrol_machine(site, "Device", "console-01", "field_device", root / "certs")
    detector = enrol_machine(site, "Service", "detector-01", "detector", root / "certs")
    other = SiteCA.create(ec.generate_private_key(ec.SECP256R1()), "site-99", site.clock.now())
    cert_pem, key_pem, _ = other.issue("Device", "console-01", site.clock.now())
    rogue = (root / "certs" / "rogue.pem", root / "certs" / "rogue.key")
    rogue[0].write_bytes(cert_pem)
    rogue[1].write_bytes(key_pem)
    with TwinThread(root / "twin") as twin:
        provision_writer(root / "twin", site.data_dir)
        twin.publish()  # batch 0 runs
        settings = settings_from_mapping({"gateway": {"endpoint": twin.url, "timeout_s": 5}})
        app = create_app(site.data_dir, settings, site.clock)
        with ServeThread(app, site.data_dir) as api:
            yield Rig(site, twin, api, app, ca, console, detector, rogue)


def _new_entries(rig: Rig, entry: str, since: int) -> list[dict[str, Any]]:
    rig.app.state.service.log.flush()
    return ledger_entries(rig.site.data_dir, entry)[since:]


def _count(rig: Rig, entry: str) -> int:
    rig.app.state.service.log.flush()
    return len(ledger_entries(rig.site.data_dir, entry))


def test_https_serves_a_site_ca_certificate_and_refuses_plain_http(rig: Rig) -> None:
    with rig.client() as client:
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/api/whoami").status_code == 401
    with pytest.raises(httpx2.TransportError):
        httpx2.get(rig.api.url.replace("https", "http") + "/health", timeout=5)
    with pytest.raises(httpx2.ConnectError):  # a client that trusts only the public web PKI
        httpx2.get(rig.api.url + "/health", timeout=5, verify=ssl.create_default_context())


def test_permitted_setpoint_write_over_mtls_reaches_the_twin_and_is_logged(rig: Rig) -> None:
    headers = rig.login("olga")
    decisions, changes = _count(rig, "access_decision"), _count(rig, "record_change")
    with rig.client(rig.console, **headers) as client:
        batch = client.get("/api/batches/active").json()
        assert (batch["batch_state"], batch["active"], batch["phase"]) == ("running", True, "BATCH_GROWTH")
        assert (batch["source"], batch["plant"]) == ("plant", "connected")
        response = client.post("/api/setpoints/ph_sp", json={"value": 6.61, "reason": REASON})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["record"], body["new"]) == ("setpoint:ph_sp", 6.61)
    assert rig.twin.plant.setpoints()["ph_sp"] == 6.61
    new_decisions = _new_entries(rig, "access_decision", decisions)
    assert [(d["action"], d["decision"]) for d in new_decisions] == [
        ("read_record", "allow"),
        ("write_setpoint", "allow"),
    ]
    (change,) = _new_entries(rig, "record_change", changes)
    assert (change["who"], change["why"], change["decision"]) == ('User::"olga"', REASON, body["decision"])


def test_write_from_an_unmanaged_endpoint_is_denied(rig: Rig) -> None:
    headers = rig.login("olga")
    with rig.client(None, **headers) as client:  # no client certificate: not attested
        response = client.post("/api/setpoints/ph_sp", json={"value": 6.62, "reason": REASON})
    assert response.status_code == 403, response.text
    assert response.json()["error"]["policy_ids"] == ["forbid-critical-from-unattested-endpoint"]
    assert rig.twin.plant.setpoints()["ph_sp"] != 6.62


def test_operator_outside_their_area_is_denied_over_http(rig: Rig) -> None:
    headers = rig.login("otto")
    with rig.client(rig.console, **headers) as client:
        response = client.post("/api/setpoints/ph_sp", json={"value": 6.63, "reason": REASON})
    assert response.status_code == 403
    assert rig.twin.plant.setpoints()["ph_sp"] != 6.63


def test_gateway_bad_input_gets_the_right_status(rig: Rig) -> None:
    headers = rig.login("olga")
    with rig.client(rig.console, **headers) as client:
        cases = {
            "/api/setpoints/ph_sp": [
                ({"value": 6.6}, 422),
                ({"value": 6.6, "reason": "  "}, 422),
                ({"value": "NaN", "reason": "x"}, 422),
                ({"value": 6.6, "reason": "x", "y": 1}, 422),
            ],
            "/api/setpoints/no_such_tag": [({"value": 6.6, "reason": "x"}, 404)],
            "/api/units/fermenter-99/recipe": [({"parameter": "ph_sp", "value": 6.6, "reason": "x"}, 404)],
            "/api/units/fermenter-01/recipe": [
                ({"parameter": "ph_sp", "value": 6.6, "reason": "x"}, 403),
                ({"parameter": "nope", "value": 1, "reason": "x"}, 422),
            ],
        }
        for path, bodies in cases.items():
            for body, status in bodies:
                response = client.post(path, json=body)
                assert response.status_code == status, (path, body, response.text)
                assert "error" in response.json()


def test_service_authenticates_with_its_certificate_and_revocation_applies_on_the_next_request(
    rig: Rig,
) -> None:
    with rig.client(rig.detector) as client:
        who = client.get("/api/whoami")
        assert who.status_code == 200, who.text
        assert (who.json()["kind"], who.json()["name"]) == ("Service", "detector-01")
        assert client.get("/api/tags/temperature_k/readings").status_code == 200
        # A service may not write the plant: no permit, and it is logged.
        assert client.post("/api/setpoints/ph_sp", json={"value": 6.6, "reason": "x"}).status_code == 403
        service = rig.app.state.service
        with IdentityStore.open(rig.site.data_dir, audit=service.log) as admin:
            admin.revoke_machine("detector-01", actor="root", now=rig.site.clock.now())
        refused = client.get("/api/whoami")  # same connection, next request
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]


def test_device_principal_is_refused_reads_without_attestation(rig: Rig) -> None:
    with rig.client(rig.console) as client:
        assert client.get("/api/whoami").json()["kind"] == "Device"
        response = client.get("/api/tags/temperature_k/readings")
    assert response.status_code == 403
    assert "forbid-unattested-device" in response.json()["error"]["policy_ids"]


def test_certificate_from_another_ca_is_refused_at_the_handshake(rig: Rig) -> None:
    with pytest.raises(httpx2.TransportError), rig.client(rig.rogue) as client:
        client.get("/health")


def test_read_routes_decide_with_the_plants_batch_state(rig: Rig) -> None:
    # The twin runs batch 0: a read's logged decision carries "running", read from the plant as the
    # write gateway reads it, not a fixed "none".
    headers = rig.login("olga")
    before = _count(rig, "access_decision")
    with rig.client(rig.console, **headers) as client:
        response = client.get("/api/tags/temperature_k/readings")
    assert response.status_code == 200, response.text
    (decision,) = _new_entries(rig, "access_decision", before)
    assert (decision["action"], decision["context"]["batch_state"]) == ("read_tag", "running")
