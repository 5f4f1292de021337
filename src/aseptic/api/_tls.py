"""HTTPS and mutual TLS for ``aseptic serve``: a server certificate from the site CA, client
certificates from the site CA, and the client's certificate handed to the app on every request.

- ``ensure_server_certificate`` issues ``D/tls/server.pem`` (+ ``server.key``, 0600) from the site CA
  (the key store's ``ca`` key, ``D/site-ca.pem``) when it is missing, expires within a day, or was not
  issued by the current CA. Ed25519, serverAuth, SAN: localhost, 127.0.0.1, ::1 and the host name.
- ``server_ssl_context``: TLS 1.2 or later, the server certificate, and the site CA as the only trust
  anchor for client certificates, which are *optional* at the TLS layer (users come with a bearer
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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from aseptic.clock import ensure_utc
from aseptic.crypto import KeyStore
from aseptic.errors import BackendError, ConfigError

__all__ = [
    "CA_FILE",
    "CA_KEY",
    "TLS_DIR",
    "PeerCertificateH11",
    "client_certificate",
    "ensure_server_certificate",
    "load_site_ca_certificate",
    "server_ssl_context",
]

CA_KEY = "ca"  # the key store's site CA key (as `aseptic init` makes it)
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


def _ca_private_key(data_dir: Path) -> Ed25519PrivateKey:
    keys = KeyStore.open(data_dir)
    loaded = serialization.load_pem_private_key(keys.load_or_create(CA_KEY).to_pem(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigError("the site CA key is not an Ed25519 key")
    return loaded


def _is_current(cert_path: Path, ca: x509.Certificate, now: datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    public = ca.public_key()
    if cert.issuer != ca.subject or not isinstance(public, Ed25519PublicKey):
        return False
    try:
        public.verify(cert.signature, cert.tbs_certificate_bytes)
    except InvalidSignature:
        return False
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
    ca_key = _ca_private_key(data_dir)
    if ca_key.public_key().public_bytes_raw() != _raw(ca):
        raise ConfigError(f"{data_dir / CA_FILE} does not belong to the key store's {CA_KEY!r} key")
    names = sorted({"localhost", socket.gethostname(), *hosts})
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names if not _is_ip(n)]
    alt += [
        x509.IPAddress(ip_address(n)) for n in sorted({"127.0.0.1", "::1", *[h for h in hosts if _is_ip(h)]})
    ]
    key = Ed25519PrivateKey.generate()
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
        .sign(ca_key, None)
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


def _raw(ca: x509.Certificate) -> bytes:
    public = ca.public_key()
    if not isinstance(public, Ed25519PublicKey):
        raise ConfigError("the site CA certificate's key is not Ed25519")
    return public.public_bytes_raw()


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
    """TLS >= 1.2 with the server certificate; client certificates optional, from the site CA only.

    Raises:
        ConfigError: a file is missing or does not load.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_path, key_path)
        context.load_verify_locations(cafile=ca_path)
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
