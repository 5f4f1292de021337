"""The TLS chain is ECDSA P-256 (ADR 0380): browsers refuse Ed25519 certificates, so a new site's CA,
the API's server certificate and device/service client certificates are P-256; a site with a legacy
Ed25519 CA keeps working and migrates with `aseptic key migrate-ca`, a logged change, without
breaking the device certificates the old CA issued."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import httpx2
import pytest
from api_support import (
    START,
    ServeThread,
    Site,
    add_site_ca,
    build_site,
    enrol_machine,
    ledger_entries,
    tls_client,
)
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from aseptic.api import create_app, ensure_server_certificate, is_ecdsa_ca
from aseptic.config import Settings
from aseptic.crypto import KeyStore, SigningKey
from aseptic.errors import ConfigError
from aseptic.ledger import Ledger
from aseptic.service import RETIRED_CA_FILE, migrate_site_ca
from aseptic.trust import DecisionLog, SiteCA

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-ZERO-TRUST", "A11-12")]


def _is_p256(public: object) -> bool:
    return isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1)


def _served_certificate(url: str, ca: Path) -> x509.Certificate:
    """The server certificate a client trusting only the site CA sees in a verified handshake."""
    host, port = url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _open_log(site: Site) -> DecisionLog:
    key = KeyStore.open(site.data_dir).load_or_create("site")
    return DecisionLog(lambda: Ledger.open(site.data_dir, site_key=key, clock=site.clock))


def test_new_site_serves_a_verified_p256_chain_and_device_mtls_works(tmp_path: Path) -> None:
    site = build_site(tmp_path / "data")
    ca = add_site_ca(site)
    assert is_ecdsa_ca(site.data_dir) and _is_p256(
        x509.load_pem_x509_certificate(ca.read_bytes()).public_key()
    )
    device = enrol_machine(site, "Device", "console-01", "field_device", tmp_path / "certs")
    assert _is_p256(x509.load_pem_x509_certificate(device[0].read_bytes()).public_key())
    with ServeThread(create_app(site.data_dir, Settings(), site.clock), site.data_dir) as api:
        served = _served_certificate(api.url, ca)  # verified against the site CA, not ignored
        assert _is_p256(served.public_key())
        assert served.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256
        with tls_client(api.url, ca, device) as client:
            assert client.get("/api/whoami").json()["name"] == "console-01"


def test_legacy_ed25519_site_migrates_and_keeps_its_device_certificates(tmp_path: Path) -> None:
    site = build_site(tmp_path / "data")
    ca = add_site_ca(site, legacy_ed25519=True)
    old_device = enrol_machine(site, "Device", "console-01", "field_device", tmp_path / "certs")
    assert isinstance(
        x509.load_pem_x509_certificate(old_device[0].read_bytes()).public_key(), Ed25519PublicKey
    )
    assert not is_ecdsa_ca(site.data_dir)
    # Before the migration the legacy site still serves (for TLS stacks that accept Ed25519).
    server_cert, _ = ensure_server_certificate(site.data_dir, site="site-01", now=START)
    legacy_served = x509.load_pem_x509_certificate(server_cert.read_bytes())
    before = len(ledger_entries(site.data_dir, "record_change"))
    with _open_log(site) as log:
        migration = migrate_site_ca(
            site.data_dir,
            site_id="site-01",
            clock=site.clock,
            record=log.record,
            who="root",
            why="Chromium refuses Ed25519 certificates: dashboard over HTTPS",
        )
        with pytest.raises(ConfigError, match="already ECDSA P-256"):
            migrate_site_ca(
                site.data_dir,
                site_id="site-01",
                clock=site.clock,
                record=log.record,
                who="root",
                why="again!",
            )
    assert is_ecdsa_ca(site.data_dir) and not server_cert.exists()
    retired = x509.load_pem_x509_certificates((site.data_dir / RETIRED_CA_FILE).read_bytes())
    assert len(retired) == 1 and isinstance(retired[0].public_key(), Ed25519PublicKey)
    (change,) = ledger_entries(site.data_dir, "record_change")[before:]
    assert (change["record"], change["who"], change["change"]) == ("certificate:site-ca", "root", "modify")
    assert (
        change["old"].endswith(migration.retired)
        and change["new"] == f"ecdsa-p256 sha256:{migration.successor}"
    )
    new_device = enrol_machine(site, "Service", "detector-01", "detector", tmp_path / "certs")
    with ServeThread(create_app(site.data_dir, Settings(), site.clock), site.data_dir) as api:
        served = _served_certificate(api.url, ca)
        assert _is_p256(served.public_key()) and served.serial_number != legacy_served.serial_number
        for cert, name in ((old_device, "console-01"), (new_device, "detector-01")):
            with tls_client(api.url, ca, cert) as client:
                assert client.get("/api/whoami").json()["name"] == name
        # A certificate of a foreign CA with the site's old CA name is still refused.
        rogue = SiteCA.create(SigningKey.generate(), "site-01", START)
        pem, key, _ = rogue.issue("Device", "console-01", START)
        (tmp_path / "rogue.pem").write_bytes(pem)
        (tmp_path / "rogue.key").write_bytes(key)
        with pytest.raises(httpx2.TransportError):
            with tls_client(api.url, ca, (tmp_path / "rogue.pem", tmp_path / "rogue.key")) as client:
                client.get("/api/whoami")
