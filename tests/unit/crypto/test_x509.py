"""OPC UA application certificates: what Basic256Sha256 needs, and trust lists that fail closed."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from aseptic.crypto import (
    ApplicationIdentity,
    ApplicationRole,
    PkiDirectory,
    TrustList,
    add_to_trust_list,
    generate_application_certificate,
    load_certificate_file,
    subject_common_name,
    thumbprint,
    verify_application_certificate,
)
from aseptic.errors import BackendError, ConfigError, SignatureError

pytestmark = pytest.mark.requirement("ASE-ZERO-TRUST")

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
URI = "urn:aseptic:client:historian"


def make(role: ApplicationRole = ApplicationRole.CLIENT, **kwargs: object) -> x509.Certificate:
    der, _ = generate_application_certificate(
        common_name="historian",
        application_uri=URI,
        role=role,
        now=NOW,
        **kwargs,  # type: ignore[arg-type]
    )
    return x509.load_der_x509_certificate(der)


def identity(own: Path, name: str = "client-historian") -> ApplicationIdentity:
    return ApplicationIdentity.create(
        own, name, common_name="historian", application_uri=URI, role=ApplicationRole.CLIENT, now=NOW
    )


def test_certificate_has_the_uri_hosts_and_basic256sha256_key_usages() -> None:
    cert = make()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [URI]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    assert usage.key_encipherment and usage.data_encipherment
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    assert cert.not_valid_before_utc <= NOW <= cert.not_valid_after_utc
    assert cert.not_valid_after_utc == NOW + timedelta(days=365)
    assert subject_common_name(cert) == "historian"
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 2048
    verify_application_certificate(cert, now=NOW, application_uri=URI, role=ApplicationRole.CLIENT)


def test_rsa_3072_is_supported() -> None:
    key = make(key_bits=3072).public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 3072


@pytest.mark.parametrize("bits", [1024, 8192])
def test_key_size_basic256sha256_forbids_is_refused(bits: int) -> None:
    with pytest.raises(ValueError, match=str(bits)):
        make(key_bits=bits)


def test_expired_certificate_is_refused() -> None:
    with pytest.raises(SignatureError, match="not at"):
        verify_application_certificate(
            make(valid_days=30),
            now=NOW + timedelta(days=31),
            application_uri=URI,
            role=ApplicationRole.CLIENT,
        )


def test_certificate_of_another_application_is_refused() -> None:
    with pytest.raises(SignatureError, match="urn:aseptic:client:other"):
        verify_application_certificate(
            make(), now=NOW, application_uri="urn:aseptic:client:other", role=ApplicationRole.CLIENT
        )


def test_client_certificate_posing_as_a_server_is_refused() -> None:
    with pytest.raises(SignatureError, match="not for a server"):
        verify_application_certificate(make(), now=NOW, application_uri=None, role=ApplicationRole.SERVER)


def test_identity_key_file_is_owner_only_and_round_trips(tmp_path: Path) -> None:
    created = identity(tmp_path / "own")
    assert stat.S_IMODE(created.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "own").stat().st_mode) == 0o700
    loaded = ApplicationIdentity.load(tmp_path / "own", "client-historian")
    assert loaded.certificate_der == created.certificate_der
    assert loaded.application_uri == URI


def test_identity_is_never_overwritten(tmp_path: Path) -> None:
    identity(tmp_path)
    with pytest.raises(BackendError, match="cannot write identity"):
        identity(tmp_path)


def test_corrupt_private_key_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    created = identity(tmp_path)
    created.key_path.write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match=str(created.key_path)):
        ApplicationIdentity.load(tmp_path, "client-historian")


def test_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    created = identity(tmp_path)
    other = identity(tmp_path, "client-other")
    created.key_path.write_bytes(other.key_path.read_bytes())
    with pytest.raises(ConfigError, match="is not the RSA key of"):
        ApplicationIdentity.load(tmp_path, "client-historian")


def test_trusted_certificate_passes_and_an_impostor_with_the_same_name_fails(tmp_path: Path) -> None:
    genuine, impostor = make(), make()  # same subject and URI, different keys
    add_to_trust_list(tmp_path, genuine)
    trust = TrustList.load(tmp_path)
    trust.verify_trusted(genuine)
    with pytest.raises(SignatureError, match=thumbprint(impostor)):
        trust.verify_trusted(impostor)


def test_corrupt_trust_list_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    add_to_trust_list(tmp_path, make())
    (tmp_path / "vendor.der").write_bytes(b"\x30\x82\x01\x00truncated")
    with pytest.raises(ConfigError, match="vendor.der"):
        TrustList.load(tmp_path)


def test_corrupt_pem_trust_list_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "vendor.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="vendor.pem"):
        TrustList.load(tmp_path)


def test_empty_or_missing_trust_list_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty"):
        TrustList.load(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        TrustList.load(tmp_path / "nowhere")


def test_pem_and_der_certificates_both_load(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    cert = make()
    (tmp_path / "a.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (tmp_path / "b.der").write_bytes(cert.public_bytes(Encoding.DER))
    assert load_certificate_file(tmp_path / "a.pem") == load_certificate_file(tmp_path / "b.der") == cert


def test_adding_the_same_certificate_twice_keeps_one_file(tmp_path: Path) -> None:
    cert = make()
    first, second = add_to_trust_list(tmp_path, cert), add_to_trust_list(tmp_path, cert)
    assert first == second and [p.name for p in tmp_path.iterdir()] == [first.name]
    assert first.name.startswith("historian-") and thumbprint(cert)[:16] in first.name


def test_pki_layout() -> None:
    pki = PkiDirectory.of(Path("/d"))
    assert (pki.own, pki.trusted, pki.rejected, pki.trusted_servers) == (
        Path("/d/pki/own"),
        Path("/d/pki/trusted"),
        Path("/d/pki/rejected"),
        Path("/d/pki/trusted-servers"),
    )
