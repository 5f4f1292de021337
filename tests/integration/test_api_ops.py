"""Operations routes: threat-simulation results and trend, the policy view, and ``/metrics`` (Prometheus),
each decided by the enforcement point; Prometheus scraping with a mutual-TLS service certificate."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pyotp
import pytest
from api_support import (
    PASSWORD,
    ServeThread,
    Site,
    add_site_ca,
    build_site,
    enrol_machine,
    tls_client,
)
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from aseptic.api import create_app
from aseptic.campaign import Scenario, SchedulePlan, load_library, run_cycle
from aseptic.cli.main import app as cli
from aseptic.config import settings_from_mapping
from aseptic.crypto import KeyStore
from aseptic.errors import InputError
from aseptic.ledger import Ledger
from aseptic.telemetry import Quarantine, Rejection, RejectReason
from aseptic.trust import DecisionLog, IdentityStore

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-OPS", "ASE-ZERO-TRUST", "ASE-RESILIENCE")]

SCENARIOS = ("paa-setpoint-tamper", "ph-bias-loop")


def _row(sid: str, techniques: list[str], detected: bool) -> dict[str, Any]:
    return {
        "id": sid,
        "name": sid,
        "techniques": techniques,
        "batches": 2,
        "detected": detected,
        "detection_rate": 1.0 if detected else 0.0,
        "median_ttd_h": 0.4 if detected else None,
        "p95_ttd_h": 0.8 if detected else None,
        "false_alarms_per_100h": 0.2,
        "impact": {"titre_loss_g_per_l": 0.1, "qa_reject": False},
    }


def _recorded(cycle: int) -> Any:
    def campaign(scenarios: Sequence[Scenario], plan: SchedulePlan) -> dict[str, Any]:
        # Recorded results: cycle 1 detects both; cycle 2 misses paa-setpoint-tamper (T0836, T0855).
        rows = [
            _row(s.id, list(s.techniques), cycle == 1 or s.id != "paa-setpoint-tamper") for s in scenarios
        ]
        return {"scenarios": rows, "not_executed": [], "coverage": {}}

    return campaign


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    built = build_site(tmp_path_factory.mktemp("ops") / "data")
    add_site_ca(built)
    keys = KeyStore.open(built.data_dir)
    site_key = keys.load_or_create("site")
    library = [s for s in load_library() if s.id in SCENARIOS]
    with DecisionLog(lambda: Ledger.open(built.data_dir, site_key=site_key, clock=built.clock)) as log:
        with IdentityStore.open(built.data_dir, audit=log) as store:
            for name, role in (("ada", "auditor"), ("sam", "security_analyst")):
                enrolment = store.add_user(name, (role,), (), PASSWORD, actor="root", now=built.clock.now())
                built.totp[name] = enrolment.secret
        for cycle in (1, 2):
            built.clock.advance(600)
            run_cycle(
                built.data_dir,
                library,
                SchedulePlan(scenarios_per_cycle=2),
                audit=log,
                findings=log.log_finding,
                clock=built.clock,
                campaign=_recorded(cycle),
            )
    quarantine = Quarantine.open(built.data_dir, clock=built.clock, max_stored_bytes=1 << 20)
    with Ledger.open(built.data_dir, site_key=site_key, clock=built.clock) as ledger:
        for raw in (b"not an envelope", b"\x00\x01"):
            event = quarantine.put(raw, Rejection(RejectReason.MALFORMED, InputError("not an envelope")))
            ledger.append_quarantine(event)
        ledger.checkpoint()
    return built


@pytest.fixture(scope="module")
def client(site: Site) -> Iterator[TestClient]:
    with TestClient(create_app(site.data_dir, settings_from_mapping({}), site.clock)) as test_client:
        yield test_client


def _login(client: TestClient, site: Site, name: str) -> dict[str, str]:
    site.clock.advance(31)
    code = pyotp.TOTP(site.totp[name]).at(site.clock.now())
    response = client.post("/api/login", json={"username": name, "password": PASSWORD, "totp_code": code})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_security_analyst_sees_latest_results_coverage_and_the_trend(client: TestClient, site: Site) -> None:
    headers = _login(client, site, "sam")
    results = client.get("/api/campaign/results", headers=headers)
    assert results.status_code == 200, results.text
    body = results.json()
    assert body["scheduler"] == {"enabled": False}
    assert sorted(r["id"] for r in body["scenarios"]) == sorted(SCENARIOS)
    assert {r["cycle"] for r in body["scenarios"]} == {2}
    coverage = body["coverage"]
    assert coverage["techniques_missed"] == ["T0836", "T0855"]
    assert set(coverage["techniques_detected"]) | set(coverage["techniques_missed"]) == set(
        coverage["techniques_executed"]
    )
    assert body["last_cycle"]["cycle"] == 2
    trend = client.get("/api/campaign/trend", headers=headers).json()["cycles"]
    assert [c["cycle"] for c in trend] == [1, 2]
    assert trend[1]["resilience"]["score"] < trend[0]["resilience"]["score"]
    assert trend[1]["findings"] == 3  # the drop and the two newly missed techniques
    assert client.get("/api/campaign/trend", params={"limit": 0}, headers=headers).status_code == 422


def test_operator_is_denied_the_ops_views_and_the_denial_is_visible(client: TestClient, site: Site) -> None:
    olga = _login(client, site, "olga")
    for path in ("/api/campaign/results", "/api/campaign/trend", "/api/policies", "/metrics"):
        response = client.get(path, headers=olga)
        assert response.status_code == 403, (path, response.text)
    denials = client.get("/api/decisions", params={"denied": "true"}, headers=_login(client, site, "sam"))
    resources = {d["resource"] for d in denials.json()["decisions"] if d["principal"] == 'User::"olga"'}
    assert {'Record::"campaign-results"', 'Record::"policies"', 'Record::"metrics"'} <= resources


def test_administrator_reads_the_active_policy_set_but_not_the_campaign(
    client: TestClient, site: Site
) -> None:
    root = _login(client, site, "root")
    response = client.get("/api/policies", headers=root)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 0 and body["restart_required"] is False
    assert body["digest"] == body["running_digest"]
    by_id = {p["id"]: p for p in body["policies"]}
    assert by_id["admin-read-policies"]["effect"] == "permit"
    assert by_id["forbid-self-approval"]["effect"] == "forbid"
    assert by_id["monitoring-read-metrics"]["principal"] == 'is Service in Role::"monitoring"'
    assert by_id["monitoring-read-metrics"]["resource"] == 'Record::"metrics"'
    assert client.get("/api/campaign/results", headers=root).status_code == 403


def test_metrics_need_credentials_and_report_the_site(client: TestClient, site: Site) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer forged"}).status_code == 401
    response = client.get("/metrics", headers=_login(client, site, "sam"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    m = _metrics(response.text)
    assert m[("aseptic_readings_ingested_total", ())] == 12
    assert m[("aseptic_envelopes_quarantined_total", (("reason", "malformed"),))] == 2
    assert m[("aseptic_ledger_leaves", ())] > 12
    assert m[("aseptic_access_decisions_total", (("decision", "allow"),))] >= 1
    assert m[("aseptic_access_decisions_total", (("decision", "deny"),))] >= 0
    assert m[("aseptic_ledger_checkpoint_age_seconds", ())] >= 0
    trend = client.get("/api/campaign/trend", headers=_login(client, site, "sam")).json()["cycles"]
    assert m[("aseptic_campaign_resilience_score", ())] == trend[-1]["resilience"]["score"]
    assert m[("aseptic_campaign_cycles", ())] == 2
    assert m[("aseptic_findings_open", (("technique", "none"),))] == 1  # the score drop
    assert m[("aseptic_findings_open", (("technique", "T0836"),))] == 1  # newly missed
    assert m[("aseptic_findings_open", (("technique", "T0855"),))] == 1
    assert ("aseptic_ledger_last_verification_ok", ()) not in m  # never verified yet


def test_ledger_verify_result_shows_in_the_metrics(client: TestClient, site: Site) -> None:
    client.app.state.service.log.flush()  # type: ignore[attr-defined]
    outcome = CliRunner().invoke(cli, ["ledger", "verify", "--data-dir", str(site.data_dir)])
    assert outcome.exit_code == 0, outcome.output
    m = _metrics(client.get("/metrics", headers=_login(client, site, "ada")).text)
    assert m[("aseptic_ledger_last_verification_ok", ())] == 1.0
    assert m[("aseptic_ledger_last_verification_timestamp_seconds", ())] > 0


def test_openapi_lists_every_ops_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/campaign/results",
        "/api/campaign/trend",
        "/api/policies",
        "/metrics",
        "/api/decisions",
    ):
        assert "get" in paths[path], path


def test_prometheus_scrapes_with_a_monitoring_service_certificate(tmp_path: Path) -> None:
    # A site of its own: the certificates must be valid on the wall clock the TLS handshake uses.
    site = build_site(tmp_path / "data")
    ca = add_site_ca(site)
    prometheus = enrol_machine(site, "Service", "prometheus", "monitoring", tmp_path / "certs")
    probe = enrol_machine(site, "Device", "probe-01", "field_device", tmp_path / "certs")
    app = create_app(site.data_dir, settings_from_mapping({}), site.clock)
    with ServeThread(app, site.data_dir) as api:
        with tls_client(api.url, ca, prometheus) as scraper:
            response = scraper.get("/metrics")
            assert response.status_code == 200, response.text
            assert _metrics(response.text)[("aseptic_readings_ingested_total", ())] == 12
            # Least privilege: the monitoring identity reads the metrics and nothing else.
            assert scraper.get("/api/policies").status_code == 403
            assert scraper.get("/api/campaign/results").status_code == 403
        with tls_client(api.url, ca, probe) as device:
            assert device.get("/metrics").status_code == 403  # a field device is not a monitor
        with tls_client(api.url, ca) as anonymous:
            assert anonymous.get("/metrics").status_code == 401
            assert anonymous.get("/health").status_code == 200


def test_openapi_covers_every_call_the_dashboard_makes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    patterns = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$") for path in paths]
    static = Path(str(resources.files("aseptic.web") / "static"))
    calls = set()
    for script in static.glob("*.js"):
        for literal in re.findall(r"api\(\s*[`\"]([^`\"]+)", script.read_text(encoding="utf-8")):
            # A template's ${...} is one path segment or, at the end, the query (not part of the path).
            path = re.sub(r"(?<!/)\$\{[^}]*\}?$", "", literal.split("?")[0])
            calls.add(re.sub(r"\$\{[^}]*\}", "x", path))
    assert {"/api/campaign/results", "/api/policies", "/api/tags/x/readings"} <= calls
    # A templated segment of a call (x) may stand for a route's parameter or for a fixed segment
    # (``/api/batches/${id}/${action}`` covers .../review and .../release).
    concrete = [re.sub(r"\{[^}]+\}", "x", path) for path in paths]

    def covered(call: str) -> bool:
        wild = re.compile(
            "^" + "/".join("[^/]+" if part == "x" else re.escape(part) for part in call.split("/")) + "$"
        )
        return any(p.match(call) for p in patterns) or any(wild.match(path) for path in concrete)

    uncovered = sorted(call for call in calls if not covered(call))
    assert uncovered == []
