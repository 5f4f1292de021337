"""The dashboard in a real browser: second-factor sign-in, live trends, findings with techniques,
ledger status, and each role seeing only what its policy allows."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from api_support import PASSWORD, START, Site, build_site

from aseptic.crypto import KeyStore
from aseptic.ledger import Ledger
from aseptic.trust import DecisionLog, IdentityStore
from conftest import Server

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-SOC", "ASE-ZERO-TRUST", "P11-11.10d")]

FINDING = {
    "batch_id": "B-0007",
    "batch_time_h": 112.0,
    "contributions": [{"share": 0.75, "tag": "ph"}, {"share": 0.25, "tag": "temperature_k"}],
    "detector": "mspc.spe",
    "kind": "finding",
    "limit": 10.0,
    "score": 31.0,
    "technique": "T0856",
    "time": START.isoformat().replace("+00:00", "Z"),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    built = build_site(tmp_path_factory.mktemp("dash") / "data")
    site_key = KeyStore.open(built.data_dir).load_or_create("site")
    with Ledger.open(built.data_dir, site_key=site_key, clock=built.clock) as ledger:
        ledger.append_finding(FINDING)
        ledger.checkpoint()
    # Users of the audit and access views (each signs in once: a TOTP code is accepted once).
    with DecisionLog(lambda: Ledger.open(built.data_dir, site_key=site_key, clock=built.clock)) as log:
        with IdentityStore.open(built.data_dir, audit=log) as store:
            for name, roles, areas in (
                ("ada", ("auditor",), ()),
                ("sam", ("security_analyst",), ()),
                ("oscar", ("operator",), ("fermentation",)),
                ("opal", ("operator",), ("fermentation",)),
            ):
                enrolment = store.add_user(name, roles, areas, PASSWORD, actor="root", now=built.clock.now())
                built.totp[name] = enrolment.secret
    return built


@pytest.fixture(scope="module")
def server(site: Site) -> Iterator[Server]:
    running = Server(site.data_dir)
    yield running
    running.stop()


@pytest.fixture
def page(browser: Browser, server: Server) -> Iterator[Page]:
    context = browser.new_context(base_url=server.base_url)
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


def test_sign_in_needs_the_second_factor(page: Page, site: Site, artifacts: Path) -> None:
    page.goto("/")
    page.fill("#username", "olga")
    page.fill("#password", PASSWORD)
    page.fill("#totp", "000000" if pyotp.TOTP(site.totp["olga"]).now() != "000000" else "111111")
    page.click("button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("Sign-in failed")
    expect(page.locator("#nav")).to_be_hidden()
    page.screenshot(path=str(artifacts / "login-refused.png"))


def test_operator_sees_live_trend_of_her_area_and_findings(page: Page, site: Site, artifacts: Path) -> None:
    sign_in(page, site, "olga")
    card = page.locator('.card[data-tag="temperature_k"]')
    expect(card.locator(".value")).to_contain_text("K", timeout=10_000)
    expect(card.locator("polyline")).to_have_count(1)
    page.screenshot(path=str(artifacts / "overview-operator.png"), full_page=True)
    page.click("#nav a[href='#findings']")
    row = page.locator("#findings-table tbody tr").first
    expect(row).to_contain_text("T0856")
    expect(row).to_contain_text("B-0007")
    expect(row).to_contain_text("ph 75%")
    page.click("#nav a[href='#ledger']")
    expect(page.locator("#ledger-status")).to_contain_text("size")
    expect(page.locator("#ledger-status")).to_contain_text("never run (aseptic ledger verify)")
    page.screenshot(path=str(artifacts / "ledger-operator.png"), full_page=True)


def test_operator_of_another_area_is_told_what_is_not_permitted(page: Page, site: Site) -> None:
    sign_in(page, site, "otto")
    card = page.locator('.card[data-tag="temperature_k"]')
    expect(card.locator(".denied")).to_have_text("Not permitted for your role.", timeout=10_000)


def test_pages_carry_a_strict_content_security_policy(page: Page) -> None:
    response = page.goto("/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_logout_forgets_the_token(page: Page, site: Site) -> None:
    sign_in(page, site, "root")  # a TOTP code is accepted once: another user than the tests above
    page.click("#logout")
    expect(page.locator("#login-view")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('aseptic.token')") is None


def test_auditor_sees_the_audit_trail_with_a_filter(page: Page, site: Site, artifacts: Path) -> None:
    sign_in(page, site, "ada")
    page.click("#nav a[href='#audit']")
    rows = page.locator("#audit-table tbody tr")
    expect(rows.first).to_be_visible(timeout=10_000)
    expect(page.locator("#audit-table")).to_contain_text("principal:olga")
    page.fill("#audit-who", "root")
    page.fill("#audit-record", "principal:sam")
    page.click("#audit-form button[type=submit]")
    expect(page.locator("#audit-note")).to_contain_text("matching the filter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("principal:sam")
    expect(rows.first).to_contain_text("root")
    expect(page.locator("#audit-table")).not_to_contain_text("principal:olga")
    # The auditor reads the trail; the periodic review is QA's to sign (the policy decides either way).
    expect(page.locator("#audit-review-form")).to_be_hidden()
    expect(page.locator("#audit-review-note")).to_contain_text("qa_reviewer or qa_approver")
    page.screenshot(path=str(artifacts / "audit-trail-auditor.png"), full_page=True)


def test_operator_is_told_the_access_view_is_not_permitted(page: Page, site: Site, artifacts: Path) -> None:
    sign_in(page, site, "opal")
    page.click("#nav a[href='#access']")
    expect(page.locator("#access-note")).to_have_text("Not permitted for your role.", timeout=10_000)
    expect(page.locator("#denials-table")).to_be_hidden()
    expect(page.locator("#grants-table")).to_be_hidden()
    page.click("#nav a[href='#audit']")
    expect(page.locator("#audit-note")).to_have_text("Not permitted for your role.")
    page.screenshot(path=str(artifacts / "access-operator.png"), full_page=True)


def test_security_analyst_sees_recent_denials(
    page: Page, site: Site, server: Server, artifacts: Path
) -> None:
    # An operator asks for the access decisions through the API: denied, and the deny is logged.
    code = pyotp.TOTP(site.totp["oscar"]).now()
    login = httpx2.post(
        f"{server.base_url}/api/login",
        json={"username": "oscar", "password": PASSWORD, "totp_code": code},
        timeout=10,
        verify=server.verify,
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    denied = httpx2.get(f"{server.base_url}/api/decisions", headers=headers, timeout=10, verify=server.verify)
    assert denied.status_code == 403
    sign_in(page, site, "sam")
    page.click("#nav a[href='#access']")
    expect(page.locator("#access-note")).to_contain_text("recent denials", timeout=10_000)
    row = page.locator("#denials-table tbody tr", has_text='User::"oscar"').first
    expect(row).to_contain_text('Record::"access-decisions"')
    expect(page.locator("#grants-note")).to_contain_text("grants")
    page.screenshot(path=str(artifacts / "access-security-analyst.png"), full_page=True)
    page.click("#nav a[href='#ledger']")
    expect(page.locator("#ledger-status")).to_contain_text("last checkpoint")
    expect(page.locator("#ledger-status")).to_contain_text("witness cosignatures")
