"""``aseptic record sign|verify|signer`` and ``aseptic user unlock``: electronic signatures on records.

Secrets never come from argv: the password from ``--password-file``, ``$ASEPTIC_SIGN_PASSWORD``
or a hidden prompt (else one line of standard input), the TOTP code likewise
(``--totp-file``, ``$ASEPTIC_SIGN_TOTP``). With ``--session-file`` the signing belongs to that
session: its first signing needs password and TOTP, later ones the password (11.200(a)(1)(i)).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from aseptic.audit import MEANINGS, ElectronicSignature, RecordSigner, ledger_sink, verify_signature
from aseptic.cli._common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    data_dir_for,
    handles_errors,
    print_json,
    settings_for,
)
from aseptic.cli._trust import SessionFileOption, open_trust, read_secret, read_secret_file
from aseptic.clock import WallClock
from aseptic.crypto import SITE_KEY, KeyStore, PublicKey, SigningKey, read_public_key
from aseptic.errors import BackendError, ConfigError, InputError, IntegrityError
from aseptic.ledger import LeafKind, Ledger, LogReader, canonical_json, has_ledger
from aseptic.service import SESSION_KEY
from aseptic.trust import IdentityStore, lockout_policy, verify_token

app = typer.Typer(help="Electronic signatures on records: sign, verify, signer names.", no_args_is_help=True)

PASSWORD_ENV = "ASEPTIC_SIGN_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
TOTP_ENV = "ASEPTIC_SIGN_TOTP"
_MAX_RECORD_BYTES = 64 * 1024 * 1024


@dataclass
class Signing:
    ledger: Ledger
    identities: IdentityStore
    site_key: SigningKey
    session_key: SigningKey
    clock: WallClock
    system: str


@contextmanager
def open_signing(data_dir: Path | None, config: Path | None) -> Iterator[Signing]:
    """The ledger (this process its only writer) and the identity store writing into it."""
    settings = settings_for(config)
    directory = data_dir_for(data_dir, settings)
    if not has_ledger(directory):
        raise ConfigError(f"{directory} is not initialised", hint=f"aseptic init --data-dir {directory}")
    keys = KeyStore.open(directory)
    site_key, session_key = keys.load(SITE_KEY), keys.load(SESSION_KEY)
    clock = WallClock()
    with Ledger.open(
        directory, site_key=site_key, clock=clock, origin=settings.site.id, create=False
    ) as ledger:
        with IdentityStore.open(
            directory, audit=ledger_sink(ledger), lockout=lockout_policy(settings)
        ) as identities:
            yield Signing(ledger, identities, site_key, session_key, clock, settings.site.id)


def read_signing_secret(path: Path | None, env: str, what: str) -> str:
    if path is not None:
        return read_secret_file(path, what)
    value = os.environ.get(env)
    if value:
        return value.strip()
    return read_secret(None, what)


def signing_credentials(
    signing: Signing,
    name: str | None,
    session_file: Path | None,
    password_file: Path | None,
    totp_file: Path | None,
) -> tuple[str, str | None, str, str | None]:
    """Who signs, in which session, with which password and (at a session's first signing) TOTP code.

    Raises:
        ConfigError: no signer named, or one other than the session's user.
        AccessDenied, InputError, SignatureError: the session token is refused.
    """
    session_id = None
    if session_file is not None:
        token = read_secret_file(session_file, "session token")
        now = signing.clock.now()
        principal = signing.identities.verify_session(token, public_key=signing.session_key.public, now=now)
        session_id = verify_token(token, signing.session_key.public, now).token_id
        if name is not None and name != principal.name:
            raise ConfigError(f"{name!r} is not the session's user {principal.name!r}")
        name = principal.name
    if name is None:
        raise ConfigError(
            "who signs?", hint="name the user, or give --session-file from `aseptic user login`"
        )
    needs_totp = session_id is None or not signing.identities.has_signed_in_session(session_id, name)
    password = read_signing_secret(password_file, PASSWORD_ENV, "password")
    code = read_signing_secret(totp_file, TOTP_ENV, "TOTP code") if needs_totp else None
    return name, session_id, password, code


def _read_record(path: Path) -> bytes:
    try:
        if path.stat().st_size > _MAX_RECORD_BYTES:
            raise InputError(f"{path} is larger than {_MAX_RECORD_BYTES} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read record {path}: {exc.strerror}") from None


RecordIdOption = Annotated[
    str | None, typer.Option("--record", help="The record's id <kind>:<id> (default: file:<file name>).")
]


@app.command("sign")
@handles_errors
def sign(
    record_file: Annotated[Path, typer.Argument(help="The record to sign (JSON is canonicalised first).")],
    meaning: Annotated[str, typer.Option("--meaning", help=f"One of {', '.join(MEANINGS)}.")],
    signer: Annotated[
        str | None, typer.Option("--signer", help="Your user name (default: the session's).")
    ] = None,
    record: RecordIdOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Signature file (default RECORD_FILE.sig.json).")
    ] = None,
    password_file: Annotated[Path | None, typer.Option("--password-file", help="Password file.")] = None,
    totp_file: Annotated[Path | None, typer.Option("--totp-file", help="TOTP code file.")] = None,
    session_file: SessionFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Sign a record with your password (and TOTP code at a session's first signing); log it."""
    content = _read_record(record_file)
    record_id = record or f"file:{record_file.name}"
    with open_signing(data_dir, config) as signing:
        signer, session_id, password, code = signing_credentials(
            signing, signer, session_file, password_file, totp_file
        )
        signature, leaf = RecordSigner(
            signing.identities,
            signing.ledger,
            site_key=signing.site_key,
            clock=signing.clock,
            system=signing.system,
        ).sign(
            record=record_id,
            content=content,
            signer=signer,
            meaning=meaning,
            password=password,
            totp_code=code,
            session_id=session_id,
        )
    target = out if out is not None else record_file.with_name(record_file.name + ".sig.json")
    try:
        target.write_text(
            json.dumps(signature.to_payload(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    except OSError as exc:
        raise BackendError(f"cannot write {target}: {exc.strerror}") from None
    if json_out:
        print_json({"leaf": leaf, "signature_file": str(target), **signature.to_payload()})
    else:
        typer.echo(signature.manifestation())
        typer.echo(f"logged as leaf {leaf}; signature in {target}")


@app.command("verify")
@handles_errors
def verify(
    record_file: Annotated[Path, typer.Argument(help="The record that was signed.")],
    signature_file: Annotated[
        Path | None, typer.Option("--signature", help="Signature file (default RECORD_FILE.sig.json).")
    ] = None,
    trust: Annotated[
        list[Path] | None,
        typer.Option("--trust", help="Trusted site public key file(s) (default D/site.pub)."),
    ] = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Check a signature offline: signed by a trusted site key, unedited, bound to this very record."""
    content = _read_record(record_file)
    path = (
        signature_file
        if signature_file is not None
        else record_file.with_name(record_file.name + ".sig.json")
    )
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read signature {path}: {exc}") from None
    if not isinstance(payload, dict):
        raise InputError(f"{path} is not a signature object")
    signature = ElectronicSignature.from_payload(payload)
    if trust:  # offline: only the keys given
        verify_signature(signature, content=content, trusted_keys=[read_public_key(p) for p in trust])
    else:  # on the site: the signature must be in its log, signed by the key in force at its leaf
        directory = data_dir_for(data_dir, settings_for(config))
        key = _key_in_force(directory, signature)
        verify_signature(signature, content=content, trusted_keys=[key])
    if json_out:
        print_json({"verified": True, **signature.to_payload()})
    else:
        typer.echo(f"verified: {signature.manifestation()}")


def _key_in_force(directory: Path, signature: ElectronicSignature) -> PublicKey:
    """The site key that may have signed ``signature``, found by its leaf in the site's log (its
    ``ledger.db`` or PostgreSQL store).

    Raises:
        ConfigError: no ledger in ``directory``.
        IntegrityError: the signature is not in the site's log.
        SignatureError: its key is not the site's or was retired before its leaf.
    """
    anchor = read_public_key(directory / "site.pub")
    if not has_ledger(directory):
        raise ConfigError(f"{directory} is not initialised", hint=f"aseptic init --data-dir {directory}")
    with LogReader.open(directory) as reader:
        row = reader.leaf_of(LeafKind.SIGNATURE, canonical_json(signature.to_payload()))
        chain = reader.site_keys(anchor)
    if row is None:
        raise IntegrityError(
            f"signature by {signature.signer!r} ({signature.meaning}) on {signature.record} is not in the"
            f" log of {directory}",
            hint="every signature is logged when it is made; verify elsewhere with --trust site.pub",
        )
    return chain.key_for_leaf(signature.key_id, row)


@app.command("signer")
@handles_errors
def signer_name(
    name: Annotated[str, typer.Argument(help="The user whose printed name to set.")],
    full_name: Annotated[str, typer.Option("--full-name", help="Printed name shown on signatures.")],
    session_file: SessionFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Set the printed (full) name a user's e-signatures show (administrators; logged)."""
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file)
        trust.require_admin_action(actor, "manage_identity")
        trust.identities.set_full_name(name, full_name, actor=actor.name, now=trust.now())
    typer.echo(f"{name}: signatures show {' '.join(full_name.split())!r}")


@handles_errors
def unlock(
    name: Annotated[str, typer.Argument(help="The user locked after repeated failures.")],
    session_file: SessionFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Re-enable a user that a burst of failed logins or signings locked (administrators; logged)."""
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file)
        trust.require_admin_action(actor, "manage_identity")
        trust.identities.unlock(name, actor=actor.name, now=trust.now())
    sys.stdout.write(f"{name} unlocked\n")
