"""The QA release workflow in a real browser (Debian's Chromium via Playwright) against `aseptic serve`
over HTTPS: an operator sees a batch running; the plant completes it; a qa_reviewer signs the review
(password + TOTP); a qa_approver, on an enrolled console (mutual TLS: a managed endpoint), asks for a
release grant that a second approver grants, and signs the release (password + TOTP); and a release
of another batch is shown blocked by an open finding. Screenshots go to the test's output."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from batch_site import FLAGGED, PASSWORD, RUNNING, BatchSite, build_batch_site, complete_running_batch

pytestmark = [
    pytest.mark.integration,
    pytest.mark.requirement("ASE-RELEASE", "P11-11.50", "P11-11.200", "P11-11.70", "ASE-ZERO-TRUST"),
]


def free_port() -> int:
    # Not imported from conftest: another directory's conftest may hold that module name in a full run.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HttpsServer:
    """`aseptic serve` with its defaults (HTTPS from the site CA, client certificates accepted) on a
    fixed loopback port, so that it can be stopped and started again at the same origin."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port = data_dir, port
        self.base_url = f"https://127.0.0.1:{port}"
        self.ca_path = data_dir / "site-ca.pem"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aseptic.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read() if self.process.stdout else ""
                raise RuntimeError(f"aseptic serve exited with {self.process.returncode}:\n{output}")
            try:
                if httpx2.get(f"{self.base_url}/health", timeout=1, verify=self.verify).status_code == 200:
                    return
            except httpx2.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("aseptic serve did not answer /health within 60 s")

    @property
    def verify(self) -> ssl.SSLContext:
        """A TLS client context trusting only the site CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> BatchSite:
    return build_batch_site(tmp_path_factory.mktemp("e2e-batches") / "data")


@pytest.fixture(scope="module")
def server(site: BatchSite) -> Iterator[HttpsServer]:
    running = HttpsServer(site.data_dir, free_port())
    running.start()
    yield running
    running.stop()


def _context(
    browser: Browser, server: HttpsServer, site: BatchSite, *, console: bool = False
) -> BrowserContext:
    # The server certificate is validated against the site CA (conftest: Chromium's NSS database;
    # for a client-certificate context, Playwright's TLS client with NODE_EXTRA_CA_CERTS).
    options: dict[str, object] = {"base_url": server.base_url}
    if console:  # the operator console's certificate from the site CA: a managed endpoint
        options["client_certificates"] = [
            {"origin": server.base_url, "certPath": str(site.console_cert), "keyPath": str(site.console_key)}
        ]
    return browser.new_context(**options)  # type: ignore[arg-type]


def _now_code(site: BatchSite, user: str, *, later: int = 0) -> str:
    return pyotp.TOTP(site.totp[user]).at(datetime.now(UTC) + timedelta(seconds=30 * later))


def _sign_in(page: Page, site: BatchSite, user: str) -> None:
    page.goto("/")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.fill("#totp", _now_code(site, user))
    page.click("#login-form button[type=submit]")
    expect(page.locator("#who")).to_contain_text(user)


def _open_batch(page: Page, batch_id: str) -> None:
    page.click("#nav a[href='#batches']")
    page.locator(f'button[data-batch="{batch_id}"]').click()
    expect(page.locator("#batch-detail h2")).to_contain_text(f"Batch {batch_id}")


def _approve_grant_as(server: HttpsServer, site: BatchSite, approver: str) -> None:
    """The second person (another qa_approver) approves the requested grant through the API."""
    verify = server.verify
    login = httpx2.post(
        f"{server.base_url}/api/login",
        json={"username": approver, "password": PASSWORD, "totp_code": _now_code(site, approver)},
        timeout=20,
        verify=verify,
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    grants = httpx2.get(f"{server.base_url}/api/grants", headers=headers, timeout=20, verify=verify).json()
    (grant,) = [g for g in grants if g["state"] == "requested"]
    approved = httpx2.post(
        f"{server.base_url}/api/grants/{grant['grant_id']}/approve",
        headers=headers,
        timeout=20,
        verify=verify,
    )
    assert approved.status_code == 200, approved.text


def test_a_batch_from_running_to_released_and_a_release_blocked_by_an_open_finding(
    browser: Browser, server: HttpsServer, site: BatchSite, artifacts: Path
) -> None:
    # An operator sees the batch running (read-only: no signature forms for her or for a running batch).
    operator = _context(browser, server, site, console=True)
    page = operator.new_page()
    _sign_in(page, site, "olga")
    # No plant configured: the overview shows the batch the ledger has open, and says so.
    expect(page.locator("#batch")).to_have_text(
        f"Active batch {RUNNING}, phase HARVEST (last logged) (from the ledger; no plant configured)"
    )
    page.click("#nav a[href='#batches']")
    expect(page.locator(f'#batches-table tr[data-batch="{RUNNING}"]')).to_contain_text("running")
    _open_batch(page, RUNNING)
    expect(page.locator("#release-status")).to_contain_text("has not completed")
    expect(page.locator("#review-form")).to_have_count(0)
    page.screenshot(path=str(artifacts / "batch-running-operator.png"), full_page=True)

    # The plant completes the batch (its COMPLETE event is logged while the server is down: one writer).
    server.stop()
    complete_running_batch(site)
    server.start()
    page.reload()
    _open_batch(page, RUNNING)
    expect(page.locator("#batch-detail .state")).to_have_text("awaiting review")
    expect(page.locator("#sign-note")).to_contain_text("need the qa_reviewer or qa_approver role")
    expect(page.locator("#review-form")).to_have_count(0)
    page.screenshot(path=str(artifacts / "batch-completed-operator.png"), full_page=True)
    operator.close()

    # The qa_reviewer signs the review: bad input is explained first, then password + a fresh TOTP code.
    reviewer = _context(browser, server, site, console=True)
    page = reviewer.new_page()
    _sign_in(page, site, "rita")
    _open_batch(page, RUNNING)
    page.fill("#review-totp", "12ab")
    page.click("#review-form button[type=submit]")
    expect(page.locator("#review-error")).to_contain_text("Enter your password")
    expect(page.locator("#review-error")).to_contain_text("six digits")
    page.fill("#review-password", PASSWORD)
    page.fill("#review-totp", "")
    page.click("#review-form button[type=submit]")
    expect(page.locator("#review-error")).to_contain_text("needs your authenticator code")
    page.fill("#review-password", PASSWORD)
    page.fill("#review-totp", _now_code(site, "rita", later=1))
    page.click("#review-form button[type=submit]")
    expect(page.locator("#batch-detail .state")).to_have_text("reviewed", timeout=20_000)
    expect(page.locator("#batch-signatures")).to_contain_text("Rita Reviewer")
    page.screenshot(path=str(artifacts / "batch-reviewed.png"), full_page=True)
    reviewer.close()

    # The qa_approver, on the enrolled console: asks for the release grant, a second approver grants
    # it, and she signs the release ("approved for release").
    approver = _context(browser, server, site, console=True)
    page = approver.new_page()
    _sign_in(page, site, "anna")
    _open_batch(page, RUNNING)
    page.click("#request-grant")
    expect(page.locator("#grant-note")).to_contain_text("another qa_approver must approve it")
    _approve_grant_as(server, site, "alex")
    page.fill("#release-password", PASSWORD)
    page.fill("#release-totp", _now_code(site, "anna", later=1))
    page.click("#release-form button[type=submit]")
    expect(page.locator("#batch-detail .state")).to_have_text("released", timeout=20_000)
    expect(page.locator("#batch-signatures")).to_contain_text("approved for release")
    expect(page.locator("#batch-signatures")).to_contain_text("Anna Approver")
    expect(page.locator(f'#batches-table tr[data-batch="{RUNNING}"]')).to_contain_text("released")
    page.click("#package-button")
    expect(page.locator("#package-link")).to_be_visible(timeout=60_000)
    page.screenshot(path=str(artifacts / "batch-released.png"), full_page=True)

    # Another batch, with an open finding: its release is blocked, and says why.
    _open_batch(page, FLAGGED)
    blocked = page.locator("#release-status")
    expect(blocked).to_contain_text("Release blocked")
    expect(blocked).to_contain_text("has no signed assessment")
    expect(page.locator(f"#assess-{_finding_leaf(page)}-form")).to_be_visible()
    page.fill("#release-password", PASSWORD)  # her session has signed once: the password alone
    page.click("#release-form button[type=submit]")
    error = page.locator("#release-error")
    expect(error).to_contain_text("refused (HTTP 409)")
    expect(error).to_contain_text("open finding at leaf")
    expect(error).to_contain_text("no qa_reviewer has signed this version")
    page.screenshot(path=str(artifacts / "batch-release-blocked-by-finding.png"), full_page=True)

    # The assessment form explains what it needs before anything is signed.
    leaf = _finding_leaf(page)
    page.fill(f"#assess-{leaf}-reason", "drift")
    page.click(f"#assess-{leaf}-form button[type=submit]")
    expect(page.locator(f"#assess-{leaf}-error")).to_contain_text("Give the reason")
    expect(page.locator(f"#assess-{leaf}-error")).to_contain_text("impact on product quality")

    # A finding outside any batch is closed from the Findings view with a signed assessment.
    page.click("#nav a[href='#findings']")
    outside = page.locator("#findings-table tbody tr", has_text="outside any batch")
    expect(outside).to_contain_text("open")
    loose = outside.get_attribute("data-finding") or ""
    page.fill(f"#finding-assess-{loose}-reason", "Scheduled maintenance login, confirmed with IT")
    page.fill(f"#finding-assess-{loose}-impact", "None: no batch was in production at the time")
    page.fill(f"#finding-assess-{loose}-password", PASSWORD)  # her session has signed: no TOTP now
    page.click(f"#finding-assess-{loose}-form button[type=submit]")
    closed = page.locator(f'#findings-table tbody tr[data-finding="{loose}"]')
    expect(closed).to_contain_text("closed by Anna Approver", timeout=20_000)
    expect(page.locator(f"#finding-assess-{loose}-form")).to_have_count(0)
    page.screenshot(path=str(artifacts / "finding-outside-batch-closed.png"), full_page=True)

    # The periodic audit-trail review, signed from the Audit trail view (bad input explained first).
    page.click("#nav a[href='#audit']")
    page.fill("#audit-review-since", "2020-01-01T00:00:00Z")
    page.fill("#audit-review-until", "2019-01-01T00:00:00Z")
    page.click("#audit-review-form button[type=submit]")
    expect(page.locator("#audit-review-error")).to_contain_text("must end after it starts")
    expect(page.locator("#audit-review-error")).to_contain_text("Enter your password")
    page.fill("#audit-review-until", "2100-01-01T00:00:00Z")
    page.fill("#audit-review-comments", "No unexplained changes; the release and the assessments match.")
    page.fill("#audit-review-password", PASSWORD)
    page.click("#audit-review-form button[type=submit]")
    expect(page.locator("#audit-review-note")).to_contain_text(
        'signed "reviewed" by Anna Approver', timeout=20_000
    )
    expect(page.locator("#audit-table")).to_contain_text("audit-review:2020-01-01")
    page.screenshot(path=str(artifacts / "audit-trail-periodic-review.png"), full_page=True)
    approver.close()


def _finding_leaf(page: Page) -> str:
    return page.locator("#batch-findings tbody tr").first.get_attribute("data-finding") or ""
