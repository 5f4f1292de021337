"""What the identity and policy commands share: the site's trust context, secrets read safely, and
``aseptic init`` (site keys, ledger, identity store, one-time administrator enrolment token).

Secrets (passwords, TOTP codes, tokens) are read from files, a hidden prompt or standard input,
never from argv, and never printed except the TOTP secret shown once at enrolment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from aseptic.cli._common import (
    ConfigOption,
    DataDirOption,
    data_dir_for,
    handles_errors,
    settings_for,
    stderr,
)
from aseptic.clock import WallClock
from aseptic.crypto import (
    ALGORITHMS,
    ED25519,
    ED25519_ML_DSA_65,
    SITE_KEY,
    KeyStore,
    SigningKey,
    TokenConfig,
)
from aseptic.errors import ConfigError, InputError
from aseptic.ledger import Ledger, has_ledger
from aseptic.service import CA_FILE, SESSION_KEY, initialise_site, open_site_ca, token_from_settings
from aseptic.trust import (
    AccessRequest,
    DecisionLog,
    EnforcementPoint,
    EntityRef,
    GrantStore,
    IdentityStore,
    PolicyDecisionPoint,
    Principal,
    RequestContext,
    SiteCA,
    area_entity,
    batch_entity,
    load_active_policy_set,
    lockout_policy,
    plant_entities,
    record_entity,
)

SESSION_TOKEN_ENV = "ASEPTIC_SESSION_TOKEN"  # noqa: S105 - the name of a variable, not a secret
PASSWORD_ENV = "ASEPTIC_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
TOTP_ENV = "ASEPTIC_TOTP_CODE"
ACTOR_SESSION_S = 60  # the session a password login of a single command gets (not handed out)
# Site records outside the plant areas, as the HTTP API names them (docs/dashboard.md):
# Record::"<id>" in Batch::"site-records" of Area::"site-records".
SITE_RECORDS_AREA = "site-records"

SessionFileOption = Annotated[
    Path | None,
    typer.Option(
        "--session-file",
        envvar="ASEPTIC_SESSION_FILE",
        help="File holding your session token (from `aseptic user login`); or set ASEPTIC_SESSION_TOKEN.",
    ),
]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        envvar="ASEPTIC_USER",
        help="Log in as this user for this command instead of a session: the password comes from"
        " --actor-password-file or ASEPTIC_PASSWORD, the TOTP code from ASEPTIC_TOTP_CODE (else a prompt"
        " or standard input).",
    ),
]
ActorPasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--actor-password-file",
        envvar="ASEPTIC_PASSWORD_FILE",
        help="File holding the password of the --as user.",
    ),
]


@dataclass
class TrustContext:
    """The open trust state of one data directory for one CLI command."""

    data_dir: Path
    site_id: str
    site_key: SigningKey
    session_key: SigningKey
    log: DecisionLog
    identities: IdentityStore
    grants: GrantStore
    clock: WallClock

    def now(self) -> datetime:
        return self.clock.now()

    def enforcement_point(self) -> EnforcementPoint:
        """The enforcement point over the active policy set (the site's, else the shipped one), elevating
        requests by the site's active grants."""
        bundle, _ = load_active_policy_set(self.data_dir, self.site_key.public)
        return EnforcementPoint(PolicyDecisionPoint(bundle, plant_entities()), self.log, self.grants)

    def site_ca(self) -> SiteCA:
        """The site CA (created with its certificate ``D/site-ca.pem`` on first use)."""
        return open_site_ca(self.data_dir, self.site_id, self.clock)

    def authenticate(
        self,
        session_file: Path | None,
        actor: str | None = None,
        actor_password_file: Path | None = None,
    ) -> Principal:
        """Who runs this command: the session token in ``session_file`` (else ``$ASEPTIC_SESSION_TOKEN``),
        or a password and TOTP login of ``actor`` (logged as any login is). Never from argv.

        Raises:
            ConfigError: no session and no ``--as`` user.
            AccessDenied, InputError, SignatureError: the token or the credentials are refused.
        """
        if session_file is not None or (actor is None and os.environ.get(SESSION_TOKEN_ENV)):
            token = (
                read_secret_file(session_file, "session token")
                if session_file is not None
                else os.environ[SESSION_TOKEN_ENV].strip()
            )
            return self.identities.verify_session(token, public_key=self.session_key.public, now=self.now())
        if actor is None:
            raise ConfigError(
                "this command needs a session or a login",
                hint="`aseptic user login NAME --out F`, then --session-file F; or --as NAME with"
                " --actor-password-file F (or ASEPTIC_PASSWORD) and ASEPTIC_TOTP_CODE",
            )
        password = (
            read_secret_file(actor_password_file, "password")
            if actor_password_file is not None
            else os.environ.get(PASSWORD_ENV) or read_secret(None, f"password of {actor}")
        )
        code = os.environ.get(TOTP_ENV) or read_secret(None, f"TOTP code of {actor}")
        token = self.identities.login(
            actor, password, code.strip(), key=self.session_key, now=self.now(), lifetime_s=ACTOR_SESSION_S
        )
        return self.identities.verify_session(token, public_key=self.session_key.public, now=self.now())

    def cli_context(self) -> RequestContext:
        """The context of a CLI request: conduit ``cli``, operations zone, no batch, an attested
        endpoint (the CLI has no posture signal yet). ``elevated`` is set by the enforcement point."""
        return RequestContext(
            batch_state="none",
            firmware_attested=True,
            source_zone="operations",
            conduit="cli",
            time=self.now(),
        )

    def require_admin_action(self, actor: Principal, action: str) -> None:
        """Ask the enforcement point whether ``actor`` may do ``action`` on the site; log the decision.
        An active grant of ``actor`` for the action elevates the request (the enforcement point looks).

        Raises:
            AccessDenied: the policies deny it (the deny is logged).
        """
        request = AccessRequest(
            EntityRef(actor.kind, actor.name), action, EntityRef("Site", "site-01"), self.cli_context()
        )
        self.enforcement_point().require(request, extra=[actor.to_entity()])

    def require_site_record_read(self, actor: Principal, record: str) -> None:
        """Ask the enforcement point whether ``actor`` may read the site record ``record`` (e.g.
        ``access-decisions``, as the API's access view does); log the decision.

        Raises:
            AccessDenied: the policies deny it (the deny is logged).
        """
        entities = [
            actor.to_entity(),
            area_entity(SITE_RECORDS_AREA),
            batch_entity(SITE_RECORDS_AREA, "fermenter-01", SITE_RECORDS_AREA),
            record_entity(record, SITE_RECORDS_AREA, SITE_RECORDS_AREA),
        ]
        request = AccessRequest(
            EntityRef(actor.kind, actor.name), "read_record", EntityRef("Record", record), self.cli_context()
        )
        self.enforcement_point().require(request, extra=entities)


@contextmanager
def open_trust(
    data_dir: Path | None, config: Path | None, *, create: bool = False, algorithm: str = ED25519
) -> Iterator[TrustContext]:
    """Open keys, the decision log (ledger) and the identity store of the data directory.

    Raises:
        ConfigError: not initialised and not ``create``.
    """
    settings = settings_for(config)
    directory = data_dir_for(data_dir, settings)
    if not create and not has_ledger(directory):
        if directory.exists() and any(directory.iterdir()):
            raise ConfigError(
                f"{directory} is not initialised (and not empty)",
                hint=f"check --data-dir, or `aseptic init --data-dir {directory}`",
            )
        # An empty data directory is initialised on first use: keys, CA, ledger, enrolment token.
        token = initialise(directory, config)
        raise ConfigError(
            f"{directory} was empty: initialised it; the one-time enrolment token is in {token}",
            hint=f"enrol the first administrator: aseptic user enrol NAME --token-file {token}"
            f" --data-dir {directory}",
        )
    keys = KeyStore.open(directory)
    site_key = keys.load_or_create(SITE_KEY, algorithm)  # an existing key keeps its algorithm
    session_key = keys.load_or_create(SESSION_KEY)
    clock = WallClock()

    def open_ledger() -> Ledger:
        return Ledger.open(directory, site_key=site_key, clock=clock, origin=settings.site.id, create=create)

    log = DecisionLog(open_ledger)
    try:
        identities = IdentityStore.open(directory, audit=log, lockout=lockout_policy(settings))
        try:
            with GrantStore.open(directory, audit=log, findings=log.log_finding) as grants:
                yield TrustContext(
                    directory, settings.site.id, site_key, session_key, log, identities, grants, clock
                )
        finally:
            identities.close()
    finally:
        log.close()


def read_secret_file(path: Path, what: str) -> str:
    """The first line of ``path`` (a secret kept in a file).

    Raises:
        InputError: the file cannot be read or is empty.
    """
    try:
        text = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} from {path}: {exc}") from None
    if not text or not text[0].strip():
        raise InputError(f"{path} holds no {what}")
    return text[0].strip()


def read_secret(path: Path | None, what: str, *, confirm: bool = False) -> str:
    """A secret from ``path``, else a hidden prompt (a terminal), else one line of standard input.

    Raises:
        InputError: nothing was given.
    """
    if path is not None:
        return read_secret_file(path, what)
    if sys.stdin.isatty():
        return str(typer.prompt(what, hide_input=True, confirmation_prompt=confirm))
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise InputError(
            f"no {what} on standard input", hint=f"pipe it in, or use a file option for the {what}"
        )
    return line


def initialise(
    directory: Path,
    config: Path | None,
    algorithm: str = ED25519_ML_DSA_65,
    *,
    insecure_no_passphrase: bool = False,
    token: TokenConfig | None = None,
) -> Path | None:
    """Initialise ``directory`` (``aseptic.service.initialise_site``, the site key as ``algorithm``,
    keys in ``token`` or sealed; refused without either unless ``insecure_no_passphrase``);
    return the new enrolment token's path (``None`` if an administrator exists or a token is waiting)."""
    site = initialise_site(
        directory,
        settings_for(config),
        WallClock(),
        algorithm,
        insecure_no_passphrase=insecure_no_passphrase,
        token=token,
    )
    return site.enrolment_token


@handles_errors
def init(
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    algorithm: Annotated[
        str, typer.Option("--algorithm", help=f"Site key algorithm: {' or '.join(ALGORITHMS)}.")
    ] = ED25519_ML_DSA_65,
    pkcs11_module: Annotated[
        Path | None,
        typer.Option(
            "--pkcs11-module",
            help="Keep the keys in a PKCS#11 token: its module (overrides [crypto] pkcs11_module). "
            "PIN from ASEPTIC_PKCS11_PIN_FILE or [crypto] pkcs11_pin_file, never argv.",
        ),
    ] = None,
    token_label: Annotated[
        str | None, typer.Option("--token-label", help="The token's label (overrides [crypto] token_label).")
    ] = None,
    insecure_no_passphrase: Annotated[
        bool,
        typer.Option(
            "--insecure-no-passphrase",
            help="UNSAFE: allow private keys to be written unencrypted when no key passphrase or "
            "token is configured (throwaway setups only; recorded in the log).",
        ),
    ] = False,
) -> None:
    """Create the site keys and CA, the ledger and the identity store, and a one-time enrolment token for
    the first administrator (D/enrolment-token, readable by its owner only). Commands that find an
    empty data directory do this themselves. Private keys are sealed under the key passphrase
    (ASEPTIC_KEY_PASSPHRASE_FILE) or held in a PKCS#11 token; with neither, init refuses unless
    --insecure-no-passphrase."""
    settings = settings_for(config)
    directory = data_dir_for(data_dir, settings)
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"--algorithm {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    token = token_from_settings(settings)
    if pkcs11_module is not None:
        token = TokenConfig(
            pkcs11_module, token_label or settings.crypto.token_label, settings.crypto.pkcs11_pin_file
        )
    elif token_label is not None:
        if token is None:
            raise ConfigError("--token-label needs --pkcs11-module or [crypto] pkcs11_module")
        token = TokenConfig(token.module, token_label, token.pin_file)
    if token is None and not KeyStore(directory / "keys").encrypts_keys and insecure_no_passphrase:
        stderr.print(
            "warning: --insecure-no-passphrase: private keys are written UNENCRYPTED (0600); "
            "this is recorded in the log and in keys/INSECURE-NO-PASSPHRASE",
            highlight=False,
        )
        stderr.print("hint: set ASEPTIC_KEY_PASSPHRASE_FILE (docs/crypto.md)", highlight=False)
    path = initialise(
        directory, config, algorithm, insecure_no_passphrase=insecure_no_passphrase, token=token
    )
    if path is None:
        waiting = directory / "enrolment-token"
        if waiting.exists():
            stderr.print(f"an enrolment token is waiting in {waiting} (mode 0600)", highlight=False)
        else:
            stderr.print(f"{directory} is initialised; administrators exist: no enrolment token made")
        return
    typer.echo(f"site key        {directory / 'site.pub'} (give a copy to your auditors)")
    typer.echo(f"site CA         {directory / CA_FILE} (devices and services present its certificates)")
    typer.echo(f"enrolment token {path} (mode 0600, single use)")
    stderr.print(f"next: aseptic user enrol NAME --token-file {path} --data-dir {directory}", highlight=False)
