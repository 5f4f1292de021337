"""Device and service certificates: forged, foreign, expired, revoked and never-enrolled ones are refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import AccessDenied, InputError, SignatureError
from aseptic.trust import IdentityStore, SiteCA, verify_client_certificate


def new_ca_key(kind: str) -> SigningKey | ec.EllipticCurvePrivateKey:
    """The site CA key of ``kind``: ECDSA P-256 (since ADR 0380), or a legacy Ed25519 signing key."""
    return ec.generate_private_key(ec.SECP256R1()) if kind == "p256" else SigningKey.generate()


@pytest.fixture(params=["p256", "ed25519-legacy"])
def ca_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def ca(clock: SimClock, ca_kind: str) -> SiteCA:
    return SiteCA.create(new_ca_key(ca_kind), "site-01", clock.now())


def test_issued_certificate_verifies_and_names_the_device(ca: SiteCA, clock: SimClock) -> None:
    cert, key, fingerprint = ca.issue("Device", "at-201", clock.now())
    identity = verify_client_certificate(cert, ca.certificate, clock.now())
    assert (identity.kind, identity.name, identity.fingerprint) == ("Device", "at-201", fingerprint)
    assert b"PRIVATE KEY" in key


def test_certificate_from_another_ca_with_the_same_name_is_refused(
    ca: SiteCA, ca_kind: str, clock: SimClock
) -> None:
    impostor = SiteCA.create(new_ca_key(ca_kind), "site-01", clock.now())
    cert, _, _ = impostor.issue("Device", "at-201", clock.now())
    with pytest.raises(SignatureError, match="does not verify with the site CA"):
        verify_client_certificate(cert, ca.certificate, clock.now())


def test_expired_certificate_is_refused(ca: SiteCA, clock: SimClock) -> None:
    cert, _, _ = ca.issue("Device", "at-201", clock.now(), valid_days=1)
    with pytest.raises(AccessDenied, match="not at"):
        verify_client_certificate(cert, ca.certificate, clock.now() + timedelta(days=2))


def test_ca_certificate_itself_is_not_a_client_certificate(ca: SiteCA, clock: SimClock) -> None:
    with pytest.raises((AccessDenied, InputError)):
        verify_client_certificate(ca.to_pem(), ca.certificate, clock.now())


def test_garbage_is_refused(ca: SiteCA, clock: SimClock) -> None:
    with pytest.raises(InputError, match="not readable"):
        verify_client_certificate(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ca.certificate, clock.now()
        )


def test_ca_loads_only_with_its_own_key(ca: SiteCA, ca_kind: str) -> None:
    with pytest.raises(InputError, match="does not belong"):
        SiteCA.load(new_ca_key(ca_kind), ca.to_pem())
    loaded = SiteCA.load(ca.private_key, ca.to_pem())
    assert loaded.certificate == x509.load_pem_x509_certificate(ca.to_pem())
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert loaded.certificate.public_key().public_bytes(*spki) == ca.private_key.public_key().public_bytes(
        *spki
    )


def test_new_ca_and_its_client_certificates_are_ecdsa_p256(clock: SimClock) -> None:
    """Browsers and every TLS stack accept ECDSA P-256; Chromium refuses Ed25519 (ADR 0380)."""
    ca = SiteCA.create(new_ca_key("p256"), "site-01", clock.now())
    assert not ca.is_legacy
    cert_pem, key_pem, _ = ca.issue("Service", "prometheus", clock.now())
    cert = x509.load_pem_x509_certificate(cert_pem)
    for public in (ca.certificate.public_key(), cert.public_key()):
        assert isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1)
    assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert isinstance(serialization.load_pem_private_key(key_pem, None), ec.EllipticCurvePrivateKey)


def test_client_certificate_of_a_retired_ca_verifies_only_with_it_among_the_anchors(clock: SimClock) -> None:
    """After `aseptic key migrate-ca` a device certificate of the old Ed25519 CA keeps working."""
    old = SiteCA.create(new_ca_key("ed25519-legacy"), "site-01", clock.now())
    new = SiteCA.create(new_ca_key("p256"), "site-01", clock.now())
    assert old.is_legacy and old.certificate.subject != new.certificate.subject
    cert, _, fingerprint = old.issue("Device", "at-201", clock.now())
    with pytest.raises(SignatureError, match="is not the site CA"):
        verify_client_certificate(cert, new.certificate, clock.now())
    identity = verify_client_certificate(cert, (new.certificate, old.certificate), clock.now())
    assert identity.fingerprint == fingerprint


def test_revoked_device_certificate_is_refused_on_the_next_check(
    store: IdentityStore, ca: SiteCA, clock: SimClock
) -> None:
    cert, _, fingerprint = ca.issue("Device", "at-201", clock.now())
    store.add_machine(
        "Device", "at-201", ("field_device",), actor="root", now=clock.now(), fingerprint=fingerprint
    )
    identity = verify_client_certificate(cert, ca.certificate, clock.now())
    assert store.verify_client(identity.kind, identity.name, identity.fingerprint).roles == ("field_device",)
    store.revoke_machine("at-201", actor="root", now=clock.now())
    with pytest.raises(AccessDenied, match="revoked"):
        store.verify_client(identity.kind, identity.name, identity.fingerprint)


def test_valid_certificate_never_enrolled_is_refused(
    store: IdentityStore, ca: SiteCA, clock: SimClock
) -> None:
    cert, _, _ = ca.issue("Device", "at-202", clock.now())
    identity = verify_client_certificate(cert, ca.certificate, clock.now())
    with pytest.raises(AccessDenied, match="not enrolled"):
        store.verify_client(identity.kind, identity.name, identity.fingerprint)


def test_enrolled_certificate_presented_under_another_name_is_refused(
    store: IdentityStore, ca: SiteCA, clock: SimClock
) -> None:
    _, _, fingerprint = ca.issue("Device", "at-201", clock.now())
    store.add_machine(
        "Device", "at-201", ("field_device",), actor="root", now=clock.now(), fingerprint=fingerprint
    )
    with pytest.raises(AccessDenied, match="not enrolled for Device 'at-203'"):
        store.verify_client("Device", "at-203", fingerprint)
