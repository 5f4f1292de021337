"""``aseptic device ...``: enrol a device or service (a client certificate from the site CA),
revoke it, and check a certificate the way a TLS front end will (mutual TLS itself is not built yet).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from aseptic.cli._common import ConfigOption, DataDirOption, JsonOption, handles_errors, print_json, stderr
from aseptic.cli._trust import ActorOption, ActorPasswordFileOption, SessionFileOption, open_trust
from aseptic.errors import BackendError, ConfigError, InputError
from aseptic.service import load_client_anchors
from aseptic.trust import verify_client_certificate

app = typer.Typer(
    help="Devices and services: enrol (X.509 client certificate), revoke, verify.", no_args_is_help=True
)

_KINDS = {"device": "Device", "service": "Service"}


def _write_private(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except FileExistsError:
        raise ConfigError(f"{path} exists already; not overwriting a key") from None
    except OSError as exc:
        raise BackendError(f"cannot write {path}: {exc.strerror}") from None


@app.command("enrol")
@handles_errors
def enrol(
    name: Annotated[str, typer.Argument(help="The device's or service's name, e.g. at-201.")],
    role: Annotated[list[str], typer.Option("--role", help="A role (field_device, detector).")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where to write NAME.crt.pem and NAME.key.pem.")],
    kind: Annotated[str, typer.Option("--kind", help="device or service.")] = "device",
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Issue a client certificate from the site CA and register the device (needs an admin session)."""
    if kind not in _KINDS:
        raise ConfigError(f"--kind {kind!r} is not device or service")
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        trust.require_admin_action(actor, "manage_identity")
        key_path = out_dir / f"{name}.key.pem"
        if key_path.exists():
            raise ConfigError(f"{key_path} exists already; not overwriting a key")
        try:  # before the device is registered: a key that cannot be written is never issued
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot create --out-dir {out_dir}: {exc.strerror}") from None
        cert_pem, key_pem, fingerprint = trust.site_ca().issue(_KINDS[kind], name, trust.now())
        trust.identities.add_machine(
            _KINDS[kind], name, tuple(role), actor=actor.name, now=trust.now(), fingerprint=fingerprint
        )
        _write_private(key_path, key_pem)
    try:
        (out_dir / f"{name}.crt.pem").write_bytes(cert_pem)
    except OSError as exc:
        raise BackendError(f"cannot write {out_dir / f'{name}.crt.pem'}: {exc.strerror}") from None
    typer.echo(f"certificate  {out_dir / f'{name}.crt.pem'} (sha256 {fingerprint})")
    typer.echo(
        f"private key  {out_dir / f'{name}.key.pem'} (mode 0600: install it on the device, then delete it)"
    )


@app.command("revoke")
@handles_errors
def revoke(
    name: Annotated[str, typer.Argument(help="The device or service to revoke.")],
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Disable a device or service and revoke its certificates (effective on its next request)."""
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        trust.require_admin_action(actor, "manage_identity")
        trust.identities.revoke_machine(name, actor=actor.name, now=trust.now())
    typer.echo(f"revoked {name}")


@app.command("verify")
@handles_errors
def verify(
    certificate: Annotated[Path, typer.Argument(help="A client certificate (PEM).")],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Check a client certificate against the site CA and the identity store (exit 1 if refused)."""
    try:
        pem = certificate.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {certificate}: {exc.strerror}") from None
    with open_trust(data_dir, config) as trust:
        anchors = (trust.site_ca().certificate, *load_client_anchors(trust.data_dir))
        identity = verify_client_certificate(pem, anchors, trust.now())
        principal = trust.identities.verify_client(identity.kind, identity.name, identity.fingerprint)
    if json:
        print_json({**principal.to_json(), "certificate_sha256": identity.fingerprint})
    else:
        typer.echo(f"{principal.kind} {principal.name} roles={','.join(principal.roles)}")
        stderr.print(f"certificate sha256 {identity.fingerprint}", highlight=False)
