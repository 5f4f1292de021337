"""The browser and the site's TLS chain (ADR 0380): the browser's certificate store (NSS, which
Chromium on Linux reads) cannot even hold an Ed25519 CA, so a site made before ADR 0380 cannot be
opened over HTTPS; after `aseptic key migrate-ca` (a logged change) the same browser setup opens the
dashboard over HTTPS with the certificate validated against the new ECDSA P-256 site CA."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Error, Playwright, expect

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from api_support import Site, add_site_ca, build_site

from aseptic.crypto import KeyStore
from aseptic.ledger import Ledger
from aseptic.service import migrate_site_ca
from aseptic.trust import DecisionLog
from conftest import CHROMIUM_FLAGS, Server, chromium_path, trusting_home

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-ZERO-TRUST", "A11-12")]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    built = build_site(tmp_path_factory.mktemp("tls") / "data")
    add_site_ca(built, legacy_ed25519=True)  # as `aseptic init` made it before ADR 0380
    return built


@pytest.fixture(scope="module")
def server(site: Site) -> Iterator[Server]:
    running = Server(site.data_dir)  # the API itself still serves (for TLS stacks that take Ed25519)
    yield running
    running.stop()


def _launch(playwright: Playwright, ca_path: Path, home: Path) -> Browser:
    return playwright.chromium.launch(
        executable_path=chromium_path(),
        args=CHROMIUM_FLAGS,
        env={**os.environ, "HOME": str(trusting_home(ca_path, home))},
    )


def test_chromium_cannot_trust_the_ed25519_ca_and_opens_https_after_migrate_ca(
    playwright: Playwright, server: Server, site: Site, tmp_path: Path, artifacts: Path
) -> None:
    # The legacy CA cannot be made a trust anchor of the browser: NSS refuses the Ed25519 certificate.
    with pytest.raises(subprocess.CalledProcessError):
        trusting_home(server.ca_path, tmp_path / "legacy-home")
    # And Chromium calls the Ed25519-signed chain invalid outright (not merely of an unknown issuer).
    untrusting = playwright.chromium.launch(
        executable_path=chromium_path(), args=CHROMIUM_FLAGS, env={**os.environ, "HOME": str(tmp_path)}
    )
    try:
        with pytest.raises(Error, match="net::ERR_CERT_INVALID"):
            untrusting.new_page().goto(f"{server.base_url}/health")
    finally:
        untrusting.close()

    server.stop()  # one ledger writer: the migration logs its change while the server is down
    site_key = KeyStore.open(site.data_dir).load_or_create("site")
    with DecisionLog(lambda: Ledger.open(site.data_dir, site_key=site_key, clock=site.clock)) as log:
        migrate_site_ca(
            site.data_dir,
            site_id="site-01",
            clock=site.clock,
            record=log.record,
            who="root",
            why="Chromium refuses Ed25519 certificates: open the dashboard over HTTPS",
        )
    migrated = Server(site.data_dir)
    try:
        fresh = _launch(playwright, migrated.ca_path, tmp_path / "home")
        try:
            page = fresh.new_page()
            response = page.goto(f"{migrated.base_url}/")
            assert response is not None and response.ok
            expect(page.locator("#login-form")).to_be_visible()
            page.screenshot(path=str(artifacts / "dashboard-over-https-after-migrate-ca.png"))
        finally:
            fresh.close()
    finally:
        migrated.stop()
