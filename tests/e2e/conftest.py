"""Browser tests: Debian's Chromium driven by Playwright (no browser download), against a real
`aseptic serve` on 127.0.0.1 over HTTPS that the fixtures start and stop. Screenshots go to the
test's temporary directory (or $ASEPTIC_E2E_ARTIFACTS), never into the repository.

The server certificate is validated, not ignored (ADR 0380): Chromium runs with a throwaway HOME whose
NSS database (``~/.pki/nssdb``, made with Debian's certutil) trusts the module's site CA and nothing
else of ours; Playwright's own TLS client (used for contexts that present a client certificate)
trusts it through ``NODE_EXTRA_CA_CERTS``. Each test module's ``server`` fixture provides ``ca_path``.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import httpx2
import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

CHROMIUM_FLAGS = [
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str:
    for candidate in (os.environ.get("ASEPTIC_CHROMIUM"), "/usr/bin/chromium", "/usr/lib/chromium/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium")
    if found:
        return found
    pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")


class HasSiteCA(Protocol):
    """A module's ``server`` fixture: the site CA its HTTPS certificate chains to."""

    ca_path: Path


def trusting_home(ca_path: Path, home: Path) -> Path:
    """A HOME whose NSS database trusts ``ca_path`` as a TLS server CA (Chromium on Linux reads it)."""
    certutil = shutil.which("certutil")
    if certutil is None:
        pytest.fail(
            "Debian's certutil is not installed: `make test` installs it (apt-get install libnss3-tools)"
        )
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    database = f"sql:{nssdb}"
    subprocess.run([certutil, "-N", "-d", database, "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        [certutil, "-A", "-d", database, "-n", "aseptic-site-ca", "-t", "C,,", "-i", str(ca_path)],
        check=True,
        capture_output=True,
    )
    return home


# Module scope, not session: Playwright's sync API runs an event loop in this thread while it is
# open, and later tests that call asyncio.run() (the OPC UA tests) would fail if it stayed open.
@pytest.fixture(scope="module")
def playwright(server: HasSiteCA) -> Iterator[Playwright]:
    # The driver (Node) reads NODE_EXTRA_CA_CERTS once, at its start: the site CA of this module.
    previous = os.environ.get("NODE_EXTRA_CA_CERTS")
    os.environ["NODE_EXTRA_CA_CERTS"] = str(server.ca_path)
    try:
        with sync_playwright() as driver:
            yield driver
    finally:
        if previous is None:
            os.environ.pop("NODE_EXTRA_CA_CERTS", None)
        else:
            os.environ["NODE_EXTRA_CA_CERTS"] = previous


@pytest.fixture(scope="module")
def browser(
    playwright: Playwright, server: HasSiteCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    home = trusting_home(server.ca_path, tmp_path_factory.mktemp("chromium-home"))
    browser = playwright.chromium.launch(
        executable_path=chromium_path(), args=CHROMIUM_FLAGS, env={**os.environ, "HOME": str(home)}
    )
    yield browser
    browser.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    base = os.environ.get("ASEPTIC_E2E_ARTIFACTS")
    folder = Path(base) if base else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_site_ca(data_dir: Path) -> Path:
    """``D/site-ca.pem`` as `aseptic init` makes it (ECDSA P-256), for data directories built by the
    test helpers without ``init``."""
    from aseptic.clock import WallClock
    from aseptic.service import CA_FILE, open_site_ca

    open_site_ca(data_dir, "site-01", WallClock())
    return data_dir / CA_FILE


class Server:
    """`aseptic serve` in a subprocess on loopback, with its defaults: HTTPS from the site CA."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.base_url = f"https://127.0.0.1:{self.port}"
        self.ca_path = ensure_site_ca(data_dir)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aseptic.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
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
                health = httpx2.get(f"{self.base_url}/health", timeout=1, verify=self.verify)
                if health.status_code == 200:
                    return
            except httpx2.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("aseptic serve did not answer /health within 60 s")

    @property
    def verify(self) -> ssl.SSLContext:
        """A TLS client context trusting only the site CA (for API calls beside the browser)."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
