"""Site initialisation: keys, the site CA, ``site.pub``, the ledger, the identity store and a one-time
enrolment token for the first administrator.

``aseptic init`` and ``aseptic serve`` (on an empty data directory) both call ``initialise_site``;
the CLI only parses and renders. Running it again on an initialised directory changes nothing and
makes no second token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from aseptic.audit import AuditEntry, read_host_clock_sync
from aseptic.clock import Clock
from aseptic.config import Settings
from aseptic.crypto import ED25519_ML_DSA_65, SITE_KEY, KeyStore, PublicKey, TokenConfig
from aseptic.errors import BackendError, ConfigError
from aseptic.ledger import Ledger
from aseptic.trust import DecisionLog, IdentityStore, SiteCA

__all__ = [
    "CA_FILE",
    "CA_KEY",
    "RETIRED_CA_FILE",
    "SESSION_KEY",
    "SITE_PUB",
    "TLS_CA_KEY",
    "SiteInit",
    "initialise_site",
    "load_client_anchors",
    "open_site_ca",
    "token_from_settings",
]

SESSION_KEY = "session"
CA_KEY = "ca"  # the legacy Ed25519 site CA's key (sites initialised before ADR 0380)
TLS_CA_KEY = "tls-ca"  # the site CA's key: ECDSA P-256 (ADR 0380)
CA_FILE = "site-ca.pem"
# Retired CA certificates (PEM, one after the other) whose client certificates are still honoured
# until they expire or are re-issued (``aseptic key migrate-ca``).
RETIRED_CA_FILE = "site-ca.retired.pem"
SITE_PUB = "site.pub"
_TOKEN_FILE = "enrolment-token"  # noqa: S105 - a file name, not a secret


@dataclass(frozen=True)
class SiteInit:
    """What ``initialise_site`` left in the data directory."""

    data_dir: Path
    site_key: PublicKey
    site_pub: Path
    ca_file: Path
    enrolment_token: Path | None  # None: an administrator exists or a token is already waiting

    @property
    def token_waiting(self) -> bool:
        return self.enrolment_token is None and (self.data_dir / _TOKEN_FILE).exists()


def open_site_ca(data_dir: Path, site_id: str, clock: Clock) -> SiteCA:
    """The site CA of ``data_dir`` (created with its certificate ``site-ca.pem`` on first use).

    A new CA is ECDSA P-256 (the key store's ``tls-ca`` key). An existing ``site-ca.pem`` with an
    Ed25519 key is a CA made before ADR 0380 (the ``ca`` key): it loads as before
    (``SiteCA.is_legacy``) until ``aseptic key migrate-ca`` replaces it.

    Raises:
        BackendError: the certificate cannot be written.
        InputError: ``site-ca.pem`` does not belong to the key store's CA key.
    """
    keys = KeyStore.open(data_dir)
    path = data_dir / CA_FILE
    if path.is_file():
        pem = path.read_bytes()
        if keys.has(TLS_CA_KEY) and _names_ecdsa(pem):
            return SiteCA.load(keys.load_x509_key(TLS_CA_KEY), pem)
        # Exportable: pyca cryptography signs the certificates (sealed under the token's key if any).
        return SiteCA.load(keys.load_or_create(CA_KEY, exportable=True), pem)
    ca = SiteCA.create(keys.load_or_create_x509_key(TLS_CA_KEY), site_id, clock.now())
    try:
        path.write_bytes(ca.to_pem())
    except OSError as exc:
        raise BackendError(f"cannot write {path}: {exc.strerror}") from None
    return ca


def _names_ecdsa(pem: bytes) -> bool:
    try:
        public = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        return False
    return isinstance(public, ec.EllipticCurvePublicKey)


def load_client_anchors(data_dir: Path) -> tuple[x509.Certificate, ...]:
    """The retired CA certificates of ``site-ca.retired.pem`` (none if absent).

    Raises:
        ConfigError: the file is not a PEM certificate bundle.
    """
    path = data_dir / RETIRED_CA_FILE
    if not path.is_file():
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(path.read_bytes()))
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM certificate bundle: {exc}") from None


def token_from_settings(settings: Settings) -> TokenConfig | None:
    """The PKCS#11 token of the ``[crypto]`` section, if one is configured."""
    crypto = settings.crypto
    if crypto.pkcs11_module is None:
        return None
    return TokenConfig(crypto.pkcs11_module, crypto.token_label, crypto.pkcs11_pin_file)


def _key_protection(keys: KeyStore) -> str:
    if keys.token is not None:
        return f"pkcs11 token {keys.token.token_label!r} ({keys.token.module})"
    if keys.encrypts_keys:
        return "sealed (scrypt + AES-256-GCM, key passphrase)"
    return "UNENCRYPTED (--insecure-no-passphrase)"


def initialise_site(
    data_dir: Path,
    settings: Settings,
    clock: Clock,
    algorithm: str = ED25519_ML_DSA_65,
    *,
    insecure_no_passphrase: bool = False,
    token: TokenConfig | None = None,
) -> SiteInit:
    """Create (if absent) the site key (a new one as ``algorithm``: hybrid by default), the session
    and CA keys, ``site.pub`` (the site's public checkpoint key: one line ``<algorithm> <hex>``),
    ``ledger.db``, ``identity.db`` and, while no administrator
    exists and none is waiting, a one-time enrolment token (mode 0600).

    Keys go to ``token`` (default: the ``[crypto]`` section's) if any, else they are sealed under
    the key passphrase; with neither, nothing is written unless ``insecure_no_passphrase`` (ADR 0230).
    Unencrypted keys or keys in a token (anything but the sealed default) are logged as an audit
    entry (``key-store:protection``).

    Raises:
        ConfigError: a key or ``site.pub`` belongs to another site, a passphrase or token problem,
            or no passphrase, no token and not ``insecure_no_passphrase`` (secure by default).
        IntegrityError: an existing ledger fails its open-time checks.
        BackendError: the files cannot be written.
    """
    if token is None:
        token = token_from_settings(settings)
    had_keys = (data_dir / "keys" / f"{SITE_KEY}.key").is_file()
    existing = KeyStore(data_dir / "keys")
    protected = existing.encrypts_keys or token is not None
    if not (had_keys or protected or existing.allows_plaintext or insecure_no_passphrase):
        existing.require_protection("the site's private keys")  # refuse before anything is created
    # The opt-out is recorded only where it takes effect: no passphrase and no token.
    insecure = insecure_no_passphrase and not protected
    keys = KeyStore.open(data_dir, token=token, insecure_no_passphrase=insecure)
    site_key = keys.load_or_create(SITE_KEY, algorithm)
    keys.load_or_create(SESSION_KEY)
    origin = settings.site.id

    def open_ledger() -> Ledger:
        # Ledger.open writes site.pub (refusing one that holds another key).
        return Ledger.open(data_dir, site_key=site_key, clock=clock, origin=origin, create=True)

    log = DecisionLog(open_ledger)
    try:
        identities = IdentityStore.open(data_dir, audit=log)
        try:
            open_site_ca(data_dir, origin, clock)
            if not had_keys and (insecure or token is not None):
                # Part 11 / Annex 11: a departure from the default (sealed keys) is a logged
                # configuration record: unencrypted keys, or keys in a token.
                entry = AuditEntry(
                    record="key-store:protection",
                    change="create",  # type: ignore[arg-type]  # converted in __post_init__
                    old=None,
                    new=_key_protection(keys),
                    who="aseptic-init",
                    when=clock.now(),
                    clock_sync=read_host_clock_sync(),
                    why="aseptic init created the site keys",
                    system=origin,
                )
                log.record(entry.to_payload())
            enrolment: Path | None = None
            principals = identities.list_principals()
            has_admin = any(p.kind == "User" and "administrator" in p.roles for p in principals)
            if not has_admin and not (data_dir / _TOKEN_FILE).exists():
                enrolment = identities.create_enrolment_token(data_dir, clock.now())
        finally:
            identities.close()
    finally:
        log.close()
    return SiteInit(data_dir, site_key.public, data_dir / SITE_PUB, data_dir / CA_FILE, enrolment)
