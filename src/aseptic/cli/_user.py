"""``aseptic user ...``: enrol the first administrator, log in, add, disable and list users.

Administrative commands are an enforcement point: they need a session (``--session-file``), and
the policies must allow ``manage_identity`` for its principal; the decision is logged either way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from aseptic.cli._common import ConfigOption, DataDirOption, JsonOption, handles_errors, print_json, stderr
from aseptic.cli._trust import (
    ActorOption,
    ActorPasswordFileOption,
    SessionFileOption,
    open_trust,
    read_secret,
    read_secret_file,
)
from aseptic.errors import BackendError, ConfigError
from aseptic.trust import TotpEnrolment

app = typer.Typer(help="Users: enrolment, login, add, disable, list.", no_args_is_help=True)

PasswordFileOption = Annotated[
    Path | None,
    typer.Option("--password-file", help="Read the password from this file (else prompt or stdin)."),
]


def _show_totp(name: str, enrolment: TotpEnrolment) -> None:
    typer.echo(f"TOTP secret for {name} (shown once; add it to an authenticator app now):")
    typer.echo(f"  secret  {enrolment.secret}")
    typer.echo(f"  uri     {enrolment.uri}")


@app.command("enrol")
@handles_errors
def enrol(
    name: Annotated[str, typer.Argument(help="The administrator's user name.")],
    token_file: Annotated[
        Path, typer.Option("--token-file", help="The enrolment token from `aseptic init`.")
    ],
    password_file: PasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Enrol the first administrator with the one-time token; prints the TOTP secret once."""
    token = read_secret_file(token_file, "enrolment token")
    password = read_secret(password_file, "password", confirm=True)
    with open_trust(data_dir, config) as trust:
        enrolment = trust.identities.enrol_administrator(token, name, password, trust.now())
    try:
        token_file.unlink()
    except OSError:
        stderr.print(f"warning: could not delete {token_file}; it is used up, delete it by hand")
    _show_totp(name, enrolment)


@app.command("login")
@handles_errors
def login(
    name: Annotated[str, typer.Argument(help="Your user name.")],
    out: Annotated[Path, typer.Option("--out", help="Write the session token here (mode 0600).")],
    password_file: PasswordFileOption = None,
    lifetime_s: Annotated[int, typer.Option("--lifetime-s", min=60, max=8 * 3600)] = 900,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Log in with password and TOTP code (prompted, or two lines on stdin); write a session token."""
    password = read_secret(password_file, "password")
    code = read_secret(None, "TOTP code")
    with open_trust(data_dir, config) as trust:
        token = trust.identities.login(
            name, password, code, key=trust.session_key, now=trust.now(), lifetime_s=lifetime_s
        )
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(token + "\n")
    except OSError as exc:
        raise BackendError(f"cannot write session token to {out}: {exc.strerror}") from None
    stderr.print(f"session token for {name} in {out} (valid {lifetime_s} s)", highlight=False)


@app.command("add")
@handles_errors
def add(
    name: Annotated[str, typer.Argument(help="The new user's name.")],
    role: Annotated[list[str], typer.Option("--role", help="A role (repeat for several).")],
    area: Annotated[list[str] | None, typer.Option("--area", help="An area the user works in.")] = None,
    password_file: PasswordFileOption = None,
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a user (needs an administrator's session); prints the new user's TOTP secret once."""
    password = read_secret(password_file, "new user's password", confirm=True)
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        trust.require_admin_action(actor, "manage_identity")
        enrolment = trust.identities.add_user(
            name, tuple(role), tuple(area or ()), password, actor=actor.name, now=trust.now()
        )
    _show_totp(name, enrolment)


@app.command("disable")
@handles_errors
def disable(
    name: Annotated[str, typer.Argument(help="The user, device or service to disable.")],
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Disable a user: its sessions are refused from the next request on."""
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        trust.require_admin_action(actor, "manage_identity")
        if actor.name == name:
            raise ConfigError("an administrator cannot disable their own account", hint="ask another one")
        trust.identities.disable(name, actor=actor.name, now=trust.now())
    typer.echo(f"disabled {name}")


@app.command("list")
@handles_errors
def list_users(
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List users, devices and services with their roles (needs an administrator's session)."""
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        trust.require_admin_action(actor, "manage_identity")
        principals = trust.identities.list_principals()
    if json:
        print_json([p.to_json() for p in principals])
        return
    for p in principals:
        state = "active" if p.active else "disabled"
        areas = f" areas={','.join(p.areas)}" if p.areas else ""
        typer.echo(f"{p.kind:<8} {p.name:<20} {state:<9} roles={','.join(p.roles)}{areas}")
