"""Device and service certificates: forged, foreign, expired, revoked and never-enrolled ones are refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import AccessDenied, InputError, SignatureError
from aseptic.trust import IdentityStore, SiteCA, verify_client_certificate


@pytest.fixture
def ca(clock: SimClock) -> SiteCA:
    return SiteCA.create(SigningKey.generate(), "site-01", clock.now())


def test_issued_certificate_verifies_and_names_the_device(ca: SiteCA, clock: SimClock) -> None:
    cert, key, fingerprint = ca.issue("Device", "at-201", clock.now())
    identity = verify_client_certificate(cert, ca.certificate, clock.now())
    assert (identity.kind, identity.name, identity.fingerprint) == ("Device", "at-201", fingerprint)
    assert b"PRIVATE KEY" in key


def test_certificate_from_another_ca_with_the_same_name_is_refused(ca: SiteCA, clock: SimClock) -> None:
    impostor = SiteCA.create(SigningKey.generate(), "site-01", clock.now())
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


def test_ca_loads_only_with_its_own_key(ca: SiteCA) -> None:
    with pytest.raises(InputError, match="does not belong"):
        SiteCA.load(SigningKey.generate(), ca.to_pem())
    loaded = SiteCA.load(ca._key, ca.to_pem())
    assert loaded.certificate == x509.load_pem_x509_certificate(ca.to_pem())
    assert (
        loaded.certificate.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        == ca._key.public.raw
    )


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
