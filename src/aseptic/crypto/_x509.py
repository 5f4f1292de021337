"""OPC UA application instance certificates: generation, loading and trust lists.

An OPC UA application (the twin's server, Aseptic's collector, a user's own client) proves who it is
with a self-signed X.509 certificate whose subject alternative name carries its application URI.
Basic256Sha256 needs RSA keys of 2048..4096 bits and the key usages listed in OPC UA Part 6, 6.2.2.
A trust list is a directory of DER or PEM certificates; a peer is trusted when its exact certificate
(compared byte for byte) is in it. There is no CA chain: each application is pinned (ADR 0020).

The time is passed in; nothing here reads the clock.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aseptic.clock import ensure_utc
from aseptic.errors import BackendError, ConfigError, SignatureError

__all__ = [
    "ApplicationIdentity",
    "ApplicationRole",
    "PkiDirectory",
    "TrustList",
    "add_to_trust_list",
    "generate_application_certificate",
    "load_certificate_file",
    "subject_common_name",
    "thumbprint",
    "verify_application_certificate",
]

_RSA_BITS = (2048, 3072, 4096)
_CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")


class ApplicationRole(Enum):
    """What a certificate is for; sets the extended key usage a peer checks."""

    SERVER = "server"
    CLIENT = "client"


@dataclass(frozen=True)
class PkiDirectory:
    """``DATA_DIR/pki``: ``own/`` (certificates and keys), ``trusted/`` (client trust list),
    ``rejected/`` (refused clients, for review), ``trusted-servers/`` (servers a client trusts)."""

    root: Path

    @classmethod
    def of(cls, data_dir: Path) -> PkiDirectory:
        return cls(data_dir / "pki")

    @property
    def own(self) -> Path:
        return self.root / "own"

    @property
    def trusted(self) -> Path:
        return self.root / "trusted"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected"

    @property
    def trusted_servers(self) -> Path:
        return self.root / "trusted-servers"


def generate_application_certificate(
    *,
    common_name: str,
    application_uri: str,
    role: ApplicationRole,
    now: datetime,
    valid_days: int = 365,
    key_bits: int = 2048,
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> tuple[bytes, bytes]:
    """A new self-signed application instance certificate and its RSA key.

    Returns ``(certificate DER, private key PKCS#8 PEM)``. ``hosts`` become DNS or IP subject
    alternative names beside the URI. The certificate is valid from one hour before ``now`` (clock
    skew between hosts) to ``valid_days`` after.

    Raises:
        ValueError: an RSA size Basic256Sha256 does not allow, or a non-positive validity.
    """
    if key_bits not in _RSA_BITS:
        raise ValueError(f"RSA key size {key_bits} is not allowed by Basic256Sha256 (use {_RSA_BITS})")
    if valid_days < 1:
        raise ValueError(f"validity of {valid_days} days; it must be at least 1")
    now = ensure_utc(now)
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Aseptic"),
        ]
    )
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for host in dict.fromkeys(hosts):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    usage = (
        ExtendedKeyUsageOID.SERVER_AUTH if role is ApplicationRole.SERVER else ExtendedKeyUsageOID.CLIENT_AUTH
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            # OPC UA Part 6 6.2.2: all four for Basic256Sha256; keyCertSign because it is self-signed.
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.DER), pem


def load_certificate_file(path: Path) -> x509.Certificate:
    """Parse the DER or PEM certificate in ``path``.

    Raises:
        ConfigError: the file is missing, unreadable or not a certificate; the message names it.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"certificate file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"certificate file {path} cannot be read: {exc.strerror}") from None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise ConfigError(
            f"certificate file {path} is corrupt or not an X.509 certificate ({exc})",
            hint="replace or remove the file; trust lists hold one DER or PEM certificate per file",
        ) from None


def thumbprint(cert: x509.Certificate) -> str:
    """The OPC UA thumbprint: SHA-1 of the DER encoding, hex (what UaExpert and others display).

    Only for display and file names; trust decisions compare whole certificates.
    """
    return cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - OPC UA Part 6 defines it as SHA-1


def subject_common_name(cert: x509.Certificate) -> str:
    """The subject's common name, or ``""`` if it has none."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def verify_application_certificate(
    cert: x509.Certificate, *, now: datetime, application_uri: str | None, role: ApplicationRole
) -> None:
    """Check that ``cert`` is usable by a peer in ``role`` at ``now`` (trust is checked apart).

    Checks the validity period, that the URI SAN equals ``application_uri`` (when given), and the
    key usages Basic256Sha256 needs.

    Raises:
        SignatureError: which rule failed, with the subject.
    """
    now = ensure_utc(now)
    who = f"certificate {cert.subject.rfc4514_string()!r}"
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SignatureError(
            f"{who} is valid from {cert.not_valid_before_utc.isoformat()} "
            f"to {cert.not_valid_after_utc.isoformat()}, not at {now.isoformat()}"
        )
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise SignatureError(f"{who} lacks a required extension ({exc.oid.dotted_string})") from None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if application_uri is not None and application_uri not in uris:
        raise SignatureError(f"{who} is for {uris}, not for application URI {application_uri!r}")
    if not (usage.digital_signature and usage.key_encipherment and usage.data_encipherment):
        raise SignatureError(f"{who} does not allow digitalSignature, keyEncipherment, dataEncipherment")
    wanted = (
        ExtendedKeyUsageOID.SERVER_AUTH if role is ApplicationRole.SERVER else ExtendedKeyUsageOID.CLIENT_AUTH
    )
    try:
        extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return  # OPC UA makes extendedKeyUsage optional
    if wanted not in extended:
        raise SignatureError(f"{who} is not for a {role.value} (extendedKeyUsage lacks {wanted._name})")


@dataclass(frozen=True)
class TrustList:
    """The certificates in one trust-list directory, compared byte for byte."""

    directory: Path
    certificates: tuple[x509.Certificate, ...]

    @classmethod
    def load(cls, directory: Path) -> TrustList:
        """Load every ``*.der``/``*.pem``/``*.crt``/``*.cer`` file in ``directory``.

        Raises:
            ConfigError: the directory is missing or empty (fail closed), or a file in it is corrupt;
                the message names the file.
        """
        if not directory.is_dir():
            raise ConfigError(f"trust list {directory} does not exist", hint="create it and add certificates")
        paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in _CERT_SUFFIXES)
        if not paths:
            raise ConfigError(
                f"trust list {directory} is empty: nobody would be trusted",
                hint="add a certificate with `aseptic twin trust CERT.der --data-dir D`",
            )
        return cls(directory, tuple(load_certificate_file(path) for path in paths))

    def verify_trusted(self, cert: x509.Certificate) -> None:
        """Pass if ``cert`` is in the list.

        Raises:
            SignatureError: it is not; the message names the subject, thumbprint and directory.
        """
        der = cert.public_bytes(serialization.Encoding.DER)
        if any(c.public_bytes(serialization.Encoding.DER) == der for c in self.certificates):
            return
        raise SignatureError(
            f"certificate {cert.subject.rfc4514_string()!r} (thumbprint {thumbprint(cert)}) "
            f"is not in trust list {self.directory}"
        )


def add_to_trust_list(directory: Path, cert: x509.Certificate) -> Path:
    """Write ``cert`` (DER) into trust-list ``directory``; return its path. Idempotent.

    Raises:
        BackendError: the directory or file cannot be written.
    """
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in subject_common_name(cert)) or "cert"
    path = directory / f"{stem}-{thumbprint(cert)[:16]}.der"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        os.replace(tmp, path)
    except OSError as exc:
        raise BackendError(f"cannot write {path}: {exc.strerror}") from None
    return path


@dataclass(frozen=True)
class ApplicationIdentity:
    """An application's own certificate and private key, as stored in ``DATA_DIR/pki/own``."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey
    cert_path: Path
    key_path: Path

    @property
    def application_uri(self) -> str:
        san = self.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return san.get_values_for_type(x509.UniformResourceIdentifier)[0]

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def private_key_der(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @classmethod
    def load(cls, own_dir: Path, name: str) -> ApplicationIdentity:
        """Load ``own_dir/<name>.der`` and its key ``own_dir/<name>.pem``.

        Raises:
            ConfigError: a file is missing or corrupt, or the key is not RSA; the message names it.
        """
        cert_path, key_path = own_dir / f"{name}.der", own_dir / f"{name}.pem"
        cert = load_certificate_file(cert_path)
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except FileNotFoundError:
            raise ConfigError(f"private key file {key_path} does not exist") from None
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"private key file {key_path} is corrupt or unreadable ({exc})") from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.public_key() != cert.public_key():
            raise ConfigError(f"private key file {key_path} is not the RSA key of {cert_path}")
        return cls(cert, key, cert_path, key_path)

    @classmethod
    def create(
        cls,
        own_dir: Path,
        name: str,
        *,
        common_name: str,
        application_uri: str,
        role: ApplicationRole,
        now: datetime,
        hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
        key_bits: int = 2048,
    ) -> ApplicationIdentity:
        """Generate and save a new identity (key file mode 0600, directory 0700).

        Raises:
            BackendError: the files cannot be written (or already exist).
        """
        der, pem = generate_application_certificate(
            common_name=common_name,
            application_uri=application_uri,
            role=role,
            now=now,
            hosts=hosts,
            key_bits=key_bits,
        )
        cert_path, key_path = own_dir / f"{name}.der", own_dir / f"{name}.pem"
        try:
            own_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            cert_path.write_bytes(der)
        except OSError as exc:
            raise BackendError(f"cannot write identity {name!r} in {own_dir}: {exc.strerror}") from None
        return cls.load(own_dir, name)
