"""The site CA and the X.509 client certificates of devices and services (for mutual TLS).

The CA key is the key store's ``tls-ca`` key (ECDSA P-256, which every TLS stack accepts, browsers
included); its self-signed certificate is ``D/site-ca.pem``. Sites initialised before ADR 0380 have
an Ed25519 CA (the key store's ``ca`` key): it still loads, issues and verifies, and
``aseptic key migrate-ca`` replaces it (the old certificate stays a trust anchor for the client
certificates it issued). A device or service certificate names the principal in its common name and in a
``urn:aseptic:<kind>:<name>`` URI, is good for client authentication only, and is identified by the
SHA-256 of its DER bytes. ``verify_client_certificate`` checks the certificate against the CA;
whether it is still enrolled and not revoked is the identity store's check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aseptic.clock import ensure_utc, format_rfc3339
from aseptic.crypto import SigningKey
from aseptic.errors import AccessDenied, InputError, SignatureError

__all__ = ["ClientIdentity", "SiteCA", "verify_client_certificate"]

_KINDS = ("Device", "Service")


@dataclass(frozen=True)
class ClientIdentity:
    """Who a verified client certificate names."""

    kind: str
    name: str
    fingerprint: str  # SHA-256 of the DER certificate, hex


CAKey = ec.EllipticCurvePrivateKey | Ed25519PrivateKey


def _private(key: SigningKey | CAKey) -> CAKey:
    if isinstance(key, ec.EllipticCurvePrivateKey | Ed25519PrivateKey):
        return key
    loaded = serialization.load_pem_private_key(key.to_pem(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise InputError("the site CA key is not an Ed25519 key")
    return loaded


def _hash_for(key: CAKey) -> hashes.SHA256 | None:
    """ECDSA signs with SHA-256; Ed25519 takes no separate hash."""
    return hashes.SHA256() if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _public_der(key: object) -> bytes:
    public_bytes = getattr(key, "public_bytes", None)
    if public_bytes is None:
        return b""
    der: bytes = public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return der


def fingerprint_of(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


class SiteCA:
    """The site's certificate authority for device and service identities (and the API's server
    certificate): ECDSA P-256, or Ed25519 for a CA made before ADR 0380."""

    def __init__(self, key: SigningKey | CAKey, certificate: x509.Certificate) -> None:
        self._key = _private(key)
        self.certificate = certificate

    @property
    def private_key(self) -> CAKey:
        """The CA's private key (to issue the API's server certificate)."""
        return self._key

    @property
    def is_legacy(self) -> bool:
        """An Ed25519 CA: browsers refuse its certificates (``aseptic key migrate-ca``)."""
        return isinstance(self._key, Ed25519PrivateKey)

    @classmethod
    def create(cls, key: SigningKey | CAKey, site: str, now: datetime, valid_days: int = 3650) -> SiteCA:
        """A new self-signed CA certificate for ``key``."""
        private = _private(key)
        # A P-256 CA's name differs from the legacy Ed25519 one's, so that after a migration a TLS
        # stack holding both as anchors never picks the wrong issuer by name.
        suffix = "" if isinstance(private, Ed25519PrivateKey) else " (ECDSA P-256)"
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Aseptic site CA {site}{suffix}")])
        now = ensure_utc(now)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(_private(key).public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        )
        if isinstance(private, ec.EllipticCurvePrivateKey):
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False
            )
        return cls(private, builder.sign(private, _hash_for(private)))

    @classmethod
    def load(cls, key: SigningKey | CAKey, pem: bytes) -> SiteCA:
        """The CA of ``key`` with its stored certificate.

        Raises:
            InputError: the PEM is not a certificate of ``key``.
        """
        try:
            certificate = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise InputError(f"site CA certificate is not readable: {exc}") from None
        private = _private(key)
        if _public_der(certificate.public_key()) != _public_der(private.public_key()):
            raise InputError("the site CA certificate does not belong to the key store's CA key")
        return cls(private, certificate)

    def to_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, kind: str, name: str, now: datetime, valid_days: int = 365) -> tuple[bytes, bytes, str]:
        """A new client key and certificate for ``kind`` ``name``: (certificate PEM, key PEM, fingerprint)."""
        if kind not in _KINDS:
            raise ValueError(f"kind {kind!r} is not one of {_KINDS}")
        # The client key is of the CA's kind: P-256 (any TLS stack), or Ed25519 under a legacy CA.
        client_key: CAKey = (
            Ed25519PrivateKey.generate() if self.is_legacy else ec.generate_private_key(ec.SECP256R1())
        )
        now = ensure_utc(now)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COMMON_NAME, name),
                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, kind),
                    ]
                )
            )
            .issuer_name(self.certificate.subject)
            .public_key(client_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(f"urn:aseptic:{kind.lower()}:{name}")]
                ),
                critical=False,
            )
            .sign(self._key, _hash_for(self._key))
        )
        key_pem = client_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return certificate.public_bytes(serialization.Encoding.PEM), key_pem, fingerprint_of(certificate)


def verify_client_certificate(
    pem: bytes, ca_certificate: x509.Certificate | Sequence[x509.Certificate], now: datetime
) -> ClientIdentity:
    """Check a client certificate against the site CA (or any of several: the current CA and the
    retired ones whose client certificates are still honoured) at ``now``; say whom it names.

    Raises:
        InputError: not a readable certificate, or it names no kind/name.
        SignatureError: not issued by the site CA (forged or foreign).
        AccessDenied: expired or not yet valid, a CA certificate, or not for client authentication.
    """
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise InputError(f"client certificate is not readable: {exc}") from None
    anchors = (ca_certificate,) if isinstance(ca_certificate, x509.Certificate) else tuple(ca_certificate)
    issuers = [ca for ca in anchors if ca.subject == cert.issuer]
    if not issuers:
        raise SignatureError(f"client certificate issuer {cert.issuer.rfc4514_string()!r} is not the site CA")
    for issuer in issuers:
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            continue
        break
    else:
        raise SignatureError("client certificate signature does not verify with the site CA key")
    now = ensure_utc(now)
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        raise AccessDenied(
            f"client certificate is valid {format_rfc3339(cert.not_valid_before_utc)}"
            f" .. {format_rfc3339(cert.not_valid_after_utc)}, not at {format_rfc3339(now)}",
            reasons=("certificate outside its validity period",),
        )
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        raise AccessDenied("client certificate lacks basic constraints or extended key usage") from None
    if is_ca or ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise AccessDenied("certificate is not a client-authentication certificate")
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    kinds = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if len(names) != 1 or len(kinds) != 1 or kinds[0].value not in _KINDS:
        raise InputError("client certificate must name one principal (CN) and its kind (OU Device|Service)")
    return ClientIdentity(str(kinds[0].value), str(names[0].value), fingerprint_of(cert))
