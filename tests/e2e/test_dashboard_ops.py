"""The operations views in a real browser: threat-simulation results with the resilience trend chart
and technique coverage, the active policy set and recent denials, each role seeing what its policy
allows. Campaign cycles are stored by the real scheduler code from recorded campaign results."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2
import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from api_support import PASSWORD, Site, build_site

from aseptic.campaign import Scenario, SchedulePlan, load_library, run_cycle
from aseptic.crypto import KeyStore
from aseptic.ledger import Ledger
from aseptic.trust import DecisionLog, IdentityStore
from conftest import Server

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-OPS", "ASE-RESILIENCE", "ASE-ZERO-TRUST")]

SCENARIOS = ("paa-setpoint-tamper", "ph-bias-loop", "temperature-ramp-loop")
# Which scenario each recorded cycle misses: a regression in cycle 4 (paa-setpoint-tamper).
MISSED_IN = {4: "paa-setpoint-tamper"}


def _recorded(cycle: int) -> Any:
    def campaign(scenarios: Sequence[Scenario], plan: SchedulePlan) -> dict[str, Any]:
        rows = []
        for s in scenarios:
            detected = MISSED_IN.get(cycle) != s.id
            rows.append(
                {
                    "id": s.id,
                    "name": s.name,
                    "techniques": list(s.techniques),
                    "batches": 2,
                    "detected": detected,
                    "detection_rate": 1.0 if detected else 0.0,
                    "median_ttd_h": round(0.2 + 0.1 * cycle, 2) if detected else None,
                    "p95_ttd_h": round(0.5 + 0.1 * cycle, 2) if detected else None,
                    "false_alarms_per_100h": 0.1,
                    "impact": {"titre_loss_g_per_l": 0.2, "qa_reject": not detected},
                }
            )
        return {"scenarios": rows, "not_executed": [], "coverage": {}}

    return campaign


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    built = build_site(tmp_path_factory.mktemp("dash-ops") / "data")
    site_key = KeyStore.open(built.data_dir).load_or_create("site")
    library = [s for s in load_library() if s.id in SCENARIOS]
    with DecisionLog(lambda: Ledger.open(built.data_dir, site_key=site_key, clock=built.clock)) as log:
        with IdentityStore.open(built.data_dir, audit=log) as store:
            for name, roles in (("sam", ("security_analyst",)), ("nina", ("operator",))):
                areas = ("fermentation",) if roles == ("operator",) else ()
                enrolment = store.add_user(name, roles, areas, PASSWORD, actor="root", now=built.clock.now())
                built.totp[name] = enrolment.secret
        for cycle in range(1, 5):
            built.clock.advance(3600)
            run_cycle(
                built.data_dir,
                library,
                SchedulePlan(scenarios_per_cycle=2),
                audit=log,
                findings=log.log_finding,
                clock=built.clock,
                campaign=_recorded(cycle),
            )
    return built


@pytest.fixture(scope="module")
def server(site: Site) -> Iterator[Server]:
    running = Server(site.data_dir)
    yield running
    running.stop()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def sign_in(page: Page, site: Site, user: str) -> None:
    page.goto("/")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.fill("#totp", pyotp.TOTP(site.totp[user]).now())
    page.click("button[type=submit]")
    expect(page.locator("#who")).to_contain_text(user)


def test_security_analyst_sees_results_trend_coverage_policies_and_denials(
    page: Page, site: Site, server: Server, artifacts: Path
) -> None:
    # A denial to show: an operator asks the API for the campaign results.
    code = pyotp.TOTP(site.totp["nina"]).now()
    login = httpx2.post(
        f"{server.base_url}/api/login",
        json={"username": "nina", "password": PASSWORD, "totp_code": code},
        verify=server.verify,
    )
    token = login.json()["token"]
    denied = httpx2.get(
        f"{server.base_url}/api/campaign/results",
        headers={"Authorization": f"Bearer {token}"},
        verify=server.verify,
    )
    assert denied.status_code == 403
    sign_in(page, site, "sam")
    page.click("#nav a[href='#campaign']")
    expect(page.locator("#campaign-status")).to_contain_text("Resilience score")
    expect(page.locator("#campaign-status")).to_contain_text("after cycle 4")
    expect(page.locator("#campaign-table tbody tr")).to_have_count(len(SCENARIOS))
    expect(page.locator("#campaign-table tbody")).to_contain_text("MISSED")
    # The trend: one point per cycle, the regression (cycle 4 raised findings) marked.
    expect(page.locator("#resilience-chart circle")).to_have_count(4)
    expect(page.locator("#resilience-chart circle.alarm")).to_have_count(1)
    assert page.locator("#resilience-chart polyline.score").get_attribute("points").count(",") == 4
    expect(page.locator("#coverage .technique.missed")).to_contain_text(["T0836", "T0855"])
    expect(page.locator("#coverage .technique.ok").first).to_be_visible()
    page.screenshot(path=str(artifacts / "threat-simulation-security-analyst.png"), full_page=True)
    page.click("#nav a[href='#policies']")
    expect(page.locator("#policy-set")).to_contain_text("0 (the shipped default)")
    expect(page.locator("#policies-table tbody")).to_contain_text("forbid-self-approval")
    expect(page.locator("#policies-table tbody")).to_contain_text("monitoring-read-metrics")
    expect(page.locator("#policy-denials tbody")).to_contain_text('User::"nina"')
    expect(page.locator("#policy-denials tbody")).to_contain_text('Record::"campaign-results"')
    page.screenshot(path=str(artifacts / "policies-security-analyst.png"), full_page=True)


def test_operator_is_told_the_ops_views_are_not_permitted(page: Page, site: Site, artifacts: Path) -> None:
    sign_in(page, site, "olga")
    page.click("#nav a[href='#campaign']")
    expect(page.locator("#campaign-status")).to_have_text("Not permitted for your role.")
    expect(page.locator("#resilience-chart")).to_be_hidden()
    expect(page.locator("#campaign-table")).to_be_hidden()
    page.click("#nav a[href='#policies']")
    expect(page.locator("#policies-note")).to_have_text("Not permitted for your role.")
    expect(page.locator("#policy-denials-note")).to_have_text("Not permitted for your role.")
    expect(page.locator("#policies-table")).to_be_hidden()
    expect(page.locator("#policy-set")).to_be_hidden()
    expect(page.locator("#policy-history-heading")).to_be_hidden()
    page.screenshot(path=str(artifacts / "policies-operator.png"), full_page=True)


def test_administrator_sees_the_policies_but_not_the_campaign(
    page: Page, site: Site, artifacts: Path
) -> None:
    sign_in(page, site, "root")
    page.click("#nav a[href='#policies']")
    expect(page.locator("#policies-table tbody tr").first).to_be_visible()
    expect(page.locator("#policies-table tbody")).to_contain_text("admin-read-policies")
    # The administrator may not read the access decisions (no record permit but the policy set's).
    expect(page.locator("#policy-denials-note")).to_have_text("Not permitted for your role.")
    page.click("#nav a[href='#campaign']")
    expect(page.locator("#campaign-status")).to_have_text("Not permitted for your role.")
    page.screenshot(path=str(artifacts / "threat-simulation-administrator.png"), full_page=True)
