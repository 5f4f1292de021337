"""HTTPS and mutual TLS for ``aseptic serve``: a server certificate from the site CA, client
certificates from the site CA, and the client's certificate handed to the app on every request.

- ``ensure_server_certificate`` issues ``D/tls/server.pem`` (+ ``server.key``, 0600) from the site CA
  (``D/site-ca.pem``; ECDSA P-256, ADR 0380) when it is missing, expires within a day, or was not
  issued by the current CA. ECDSA P-256 (browsers refuse Ed25519), serverAuth, SAN: localhost,
  127.0.0.1, ::1 and the host name.
- ``server_ssl_context``: TLS 1.2 or later, the server certificate, and the site CA (plus the
  retired CAs of ``D/site-ca.retired.pem`` after ``aseptic key migrate-ca``) as the only trust
  anchors for client certificates, which are *optional* at the TLS layer (users come with a bearer
  token). OpenSSL checks a presented certificate's chain and validity during the handshake; the app
  checks it again, with the identity store, on every request (revocation applies at once).
- ``PeerCertificateH11`` is uvicorn's h11 protocol plus the ASGI TLS extension
  (``scope["extensions"]["tls"]["client_cert_chain"]``), which uvicorn does not fill itself.
"""

from __future__ import annotations

import os
import socket
import ssl
from datetime import datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from aseptic.clock import WallClock, ensure_utc
from aseptic.errors import BackendError, ConfigError, InputError
from aseptic.service import RETIRED_CA_FILE, open_site_ca

__all__ = [
    "CA_FILE",
    "TLS_DIR",
    "PeerCertificateH11",
    "client_certificate",
    "ensure_server_certificate",
    "is_ecdsa_ca",
    "load_site_ca_certificate",
    "server_ssl_context",
]

CA_FILE = "site-ca.pem"
TLS_DIR = "tls"


def load_site_ca_certificate(data_dir: Path) -> x509.Certificate | None:
    """``D/site-ca.pem``, or None if the site has no CA yet.

    Raises:
        ConfigError: the file exists but is not a certificate.
    """
    path = data_dir / CA_FILE
    if not path.is_file():
        return None
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM certificate: {exc}") from None


def is_ecdsa_ca(data_dir: Path) -> bool:
    """Whether the site CA (``D/site-ca.pem``) is ECDSA (browsers accept it; Ed25519 they refuse).

    Raises:
        ConfigError: the file exists but is not a certificate.
    """
    ca = load_site_ca_certificate(data_dir)
    return ca is not None and isinstance(ca.public_key(), ec.EllipticCurvePublicKey)


def _is_current(cert_path: Path, ca: x509.Certificate, now: datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        cert.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    if not isinstance(cert.public_key(), ec.EllipticCurvePublicKey):
        return False  # an Ed25519 server certificate from before ADR 0380: browsers refuse it
    return cert.not_valid_before_utc <= now < cert.not_valid_after_utc - timedelta(days=1)


def ensure_server_certificate(
    data_dir: Path, *, site: str, now: datetime, valid_days: int = 365, hosts: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """The API's server certificate and key paths, issuing them from the site CA if needed.

    Raises:
        ConfigError: the site has no CA (run ``aseptic init``) or its key does not fit.
        BackendError: the files cannot be written.
    """
    ca = load_site_ca_certificate(data_dir)
    if ca is None:
        raise ConfigError(
            f"{data_dir} has no site CA ({CA_FILE})", hint=f"aseptic init --data-dir {data_dir}"
        )
    now = ensure_utc(now)
    directory = data_dir / TLS_DIR
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    if cert_path.is_file() and key_path.is_file() and _is_current(cert_path, ca, now):
        return cert_path, key_path
    try:
        site_ca = open_site_ca(data_dir, site, WallClock())  # the clock is unused: the CA exists
    except InputError as exc:
        raise ConfigError(exc.message, hint="check --data-dir and the key store") from None
    ca_key = site_ca.private_key
    names = sorted({"localhost", socket.gethostname(), *hosts})
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names if not _is_ip(n)]
    alt += [
        x509.IPAddress(ip_address(n)) for n in sorted({"127.0.0.1", "::1", *[h for h in hosts if _is_ip(h)]})
    ]
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, f"aseptic-api-{site}"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Service"),
                ]
            )
        )
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(ca_key, None if isinstance(ca_key, Ed25519PrivateKey) else hashes.SHA256())
    )
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise BackendError(f"cannot write the API's server certificate in {directory}: {exc}") from None
    return cert_path, key_path


def _is_ip(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def server_ssl_context(cert_path: Path, key_path: Path, ca_path: Path) -> ssl.SSLContext:
    """TLS >= 1.2 with the server certificate; client certificates optional, from the site CA only
    (``ca_path``, and the retired CAs of ``site-ca.retired.pem`` beside it, if any).

    Raises:
        ConfigError: a file is missing or does not load.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_path, key_path)
        context.load_verify_locations(cafile=ca_path)
        retired = ca_path.with_name(RETIRED_CA_FILE)
        if retired.is_file():
            context.load_verify_locations(cafile=retired)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS: cannot load {cert_path}, {key_path} or {ca_path}: {exc}") from None
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_certificate(scope: Scope) -> bytes | None:
    """The client's certificate (PEM) from the ASGI TLS extension, or None (no TLS, no certificate)."""
    tls = scope.get("extensions", {}).get("tls")
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    if not chain:
        return None
    first = chain[0]
    return first.encode("ascii") if isinstance(first, str) else None


class _WithPeerCertificate:
    """Adds the connection's client certificate to every request's scope (ASGI TLS extension)."""

    def __init__(self, app: ASGIApp, pem: str | None, version: str | None) -> None:
        self.app = app
        self.pem = pem
        self.version = version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            extensions = dict(scope.get("extensions") or {})
            extensions["tls"] = {
                "client_cert_chain": [self.pem] if self.pem else [],
                "tls_version": self.version,
            }
            scope = {**scope, "extensions": extensions}
        await self.app(scope, receive, send)


class PeerCertificateH11(H11Protocol):
    """uvicorn's h11 protocol, passing the verified peer certificate to the app."""

    def connection_made(self, transport: Any) -> None:  # asyncio.Transport; uvicorn's override
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        der = ssl_object.getpeercert(binary_form=True)
        pem = ssl.DER_cert_to_PEM_cert(der) if der else None
        self.app = _WithPeerCertificate(self.app, pem, ssl_object.version())
