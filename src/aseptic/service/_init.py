"""Site initialisation: keys, the site CA, ``site.pub``, the ledger, the identity store and a one-time
enrolment token for the first administrator.

``aseptic init`` and ``aseptic serve`` (on an empty data directory) both call ``initialise_site``;
the CLI only parses and renders. Running it again on an initialised directory changes nothing and
makes no second token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aseptic.clock import Clock
from aseptic.config import Settings
from aseptic.crypto import ED25519_ML_DSA_65, SITE_KEY, KeyStore, PublicKey
from aseptic.errors import BackendError
from aseptic.ledger import Ledger
from aseptic.trust import DecisionLog, IdentityStore, SiteCA

__all__ = ["CA_FILE", "CA_KEY", "SESSION_KEY", "SITE_PUB", "SiteInit", "initialise_site", "open_site_ca"]

SESSION_KEY = "session"
CA_KEY = "ca"
CA_FILE = "site-ca.pem"
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

    Raises:
        BackendError: the certificate cannot be written.
    """
    key = KeyStore.open(data_dir).load_or_create(CA_KEY)
    path = data_dir / CA_FILE
    if path.is_file():
        return SiteCA.load(key, path.read_bytes())
    ca = SiteCA.create(key, site_id, clock.now())
    try:
        path.write_bytes(ca.to_pem())
    except OSError as exc:
        raise BackendError(f"cannot write {path}: {exc.strerror}") from None
    return ca


def initialise_site(
    data_dir: Path, settings: Settings, clock: Clock, algorithm: str = ED25519_ML_DSA_65
) -> SiteInit:
    """Create (if absent) the site key (a new one as ``algorithm``: hybrid by default), the session
    and CA keys, ``site.pub`` (the site's public checkpoint key: one line ``<algorithm> <hex>``),
    ``ledger.db``, ``identity.db`` and, while no administrator
    exists and none is waiting, a one-time enrolment token (mode 0600).

    Raises:
        ConfigError: a key or ``site.pub`` belongs to another site, or a passphrase problem.
        IntegrityError: an existing ledger fails its open-time checks.
        BackendError: the files cannot be written.
    """
    keys = KeyStore.open(data_dir)
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
            token: Path | None = None
            principals = identities.list_principals()
            has_admin = any(p.kind == "User" and "administrator" in p.roles for p in principals)
            if not has_admin and not (data_dir / _TOKEN_FILE).exists():
                token = identities.create_enrolment_token(data_dir, clock.now())
        finally:
            identities.close()
    finally:
        log.close()
    return SiteInit(data_dir, site_key.public, data_dir / SITE_PUB, data_dir / CA_FILE, token)
