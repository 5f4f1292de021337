"""Replacing a legacy Ed25519 site CA by an ECDSA P-256 one (ADR 0380): ``aseptic key migrate-ca``.

Browsers (Chromium's BoringSSL, NSS) do not accept Ed25519 certificates, so the dashboard cannot be
opened over HTTPS on a site whose CA is Ed25519. The migration, in an order that a crash at any
point leaves the site working and the command re-runnable:

1. the key store's ``tls-ca`` key (ECDSA P-256) is created, or reused after a crash;
2. the new CA certificate is made, and the change is logged (an audit-trail ``record_change`` of
   ``certificate:site-ca``: old and new certificate SHA-256, who, why) - before any file changes;
3. the old certificate is appended to ``site-ca.retired.pem``: client certificates it issued keep
   working (mutual TLS, the API's certificate check) until they expire or are re-issued;
4. ``site-ca.pem`` is replaced (atomically) and the API's server certificate removed, so that the
   next ``aseptic serve`` issues a P-256 one from the new CA.

Evidence signatures (checkpoints, e-signatures, manifests) are untouched: they are the site key's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aseptic.audit import AuditEntry, Change, read_host_clock_sync
from aseptic.clock import Clock
from aseptic.crypto import KeyStore
from aseptic.errors import BackendError, ConfigError
from aseptic.service._init import CA_FILE, RETIRED_CA_FILE, TLS_CA_KEY
from aseptic.trust import SiteCA

__all__ = ["CaMigration", "migrate_site_ca"]

CA_RECORD = "certificate:site-ca"
_SERVER_FILES = ("tls/server.pem", "tls/server.key")


@dataclass(frozen=True)
class CaMigration:
    """What ``migrate_site_ca`` did: the retired and the new CA certificate (SHA-256, hex)."""

    retired: str
    successor: str
    audit_leaf: int


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def migrate_site_ca(
    data_dir: Path,
    *,
    site_id: str,
    clock: Clock,
    record: Callable[[Mapping[str, Any]], int],
    who: str,
    why: str,
) -> CaMigration:
    """Replace the site's Ed25519 CA by a new ECDSA P-256 CA; ``record`` logs the audit entry
    (e.g. ``DecisionLog.record``) and returns its leaf.

    Raises:
        ConfigError: no site CA, or it is already ECDSA P-256 (nothing to migrate).
        InputError: no reason, or ``who`` is not an identity name.
        BackendError: files cannot be written.
    """
    path = data_dir / CA_FILE
    try:
        old = x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{data_dir} has no site CA ({CA_FILE})", hint="aseptic init") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM certificate: {exc}") from None
    if isinstance(old.public_key(), ec.EllipticCurvePublicKey):
        raise ConfigError(
            f"the site CA in {path} is already ECDSA P-256: nothing to migrate",
            hint="browsers accept it; `aseptic serve` issues its server certificate from it",
        )

    def entry(new_value: str) -> AuditEntry:
        return AuditEntry(
            record=CA_RECORD,
            change=Change.MODIFY,
            old=f"ed25519 sha256:{_fingerprint(old)}",
            new=new_value,
            who=who,
            when=clock.now(),
            clock_sync=read_host_clock_sync(),
            why=why,
            system=site_id,
        )

    entry("successor")  # checked before anything is created: a change without a reason is refused
    keys = KeyStore.open(data_dir)
    new = SiteCA.create(keys.load_or_create_x509_key(TLS_CA_KEY), site_id, clock.now())
    leaf = record(entry(f"ecdsa-p256 sha256:{_fingerprint(new.certificate)}").to_payload())
    retired = data_dir / RETIRED_CA_FILE
    old_pem = old.public_bytes(serialization.Encoding.PEM)
    try:
        kept = retired.read_bytes() if retired.is_file() else b""
        if old_pem not in kept:
            _replace(retired, kept + old_pem)
        _replace(path, new.to_pem())
        for name in _SERVER_FILES:
            (data_dir / name).unlink(missing_ok=True)
    except OSError as exc:
        raise BackendError(f"cannot write the new site CA in {data_dir}: {exc.strerror}") from None
    return CaMigration(_fingerprint(old), _fingerprint(new.certificate), leaf)


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
