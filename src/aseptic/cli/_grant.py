"""``aseptic grant ...``: just-in-time elevation under the two-person rule.

``request`` asks for a time-limited grant of one action on one scope, with a reason; ``approve`` is
the second person's (a different user whose role the policies allow to approve that action: the
decision is logged); ``revoke`` ends one at once; ``list`` shows them (and logs the expiry of those
whose time has run out). Every step is an audit entry in the ledger.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from aseptic.cli._common import ConfigOption, DataDirOption, JsonOption, handles_errors, print_json
from aseptic.cli._trust import ActorOption, ActorPasswordFileOption, SessionFileOption, open_trust
from aseptic.errors import InputError
from aseptic.trust import GRANTABLE_ACTIONS, EntityRef, Grant

app = typer.Typer(help="Just-in-time elevation grants: request, approve, revoke, list.", no_args_is_help=True)

_SCOPE = re.compile(r'^([A-Z][A-Za-z]*)::"?([^"]+)"?$')

ActionArgument = Annotated[
    str, typer.Argument(help=f"The action to elevate: {', '.join(GRANTABLE_ACTIONS)}.")
]
ScopeArgument = Annotated[
    str, typer.Argument(help="What it covers, e.g. Tag::temperature_sp_k, Unit::fermenter-01, Site::site-01.")
]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (a change ticket, a deviation number).")]
GrantIdArgument = Annotated[str, typer.Argument(help="The grant's id (from `aseptic grant list`).")]


def parse_scope(text: str) -> EntityRef:
    """``Type::id`` (or ``Type::"id"``) as an entity reference.

    Raises:
        InputError: not of that form.
    """
    match = _SCOPE.match(text.strip())
    if match is None:
        raise InputError(
            f"scope {text!r} is not Type::id", hint="e.g. Tag::temperature_sp_k or Site::site-01"
        )
    return EntityRef(match.group(1), match.group(2))


def show(grant: Grant, state: str, *, json: bool) -> None:
    if json:
        print_json({**grant.to_json(), "state": state})
        return
    expires = grant.to_json()["expires"]
    typer.echo(
        f"{grant.grant_id:<20} {state:<9} {grant.requester:<12} {grant.action:<15} {grant.scope}"
        f"  expires {expires}  approver {grant.approver or '-'}"
    )


@app.command("request")
@handles_errors
def request(
    action: ActionArgument,
    scope: ScopeArgument,
    reason: ReasonOption,
    duration_s: Annotated[int, typer.Option("--duration-s", help="How long, once approved.")] = 3600,
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Ask for a grant; it does nothing until a second, authorised person approves it."""
    target = parse_scope(scope)
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        grant = trust.grants.request(actor, action, target, reason, duration_s, trust.now())
    show(grant, "requested", json=json)


@app.command("approve")
@handles_errors
def approve(
    grant_id: GrantIdArgument,
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Approve someone else's grant (policy action approve_grant; never your own)."""
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        grant = trust.grants.approve(grant_id, actor, trust.cli_context(), trust.enforcement_point())
    show(grant, "active", json=json)


@app.command("revoke")
@handles_errors
def revoke(
    grant_id: GrantIdArgument,
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """End a grant at once (policy action revoke_grant: its requester or approver, or a reviewer role)."""
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        trust.grants.revoke(grant_id, actor, trust.cli_context(), trust.enforcement_point())
    typer.echo(f"revoked {grant_id}")


@app.command("list")
@handles_errors
def list_grants(
    all_: Annotated[bool, typer.Option("--all", help="Also expired and revoked grants.")] = False,
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Grants waiting for approval and active ones (any signed-in user may look)."""
    with open_trust(data_dir, config) as trust:
        trust.authenticate(session_file, actor_name, actor_password_file)
        trust.grants.expire_due(trust.now())
        now = trust.now()
        grants = [g for g in trust.grants.list_grants() if all_ or g.state(now) in ("requested", "active")]
    if json:
        print_json([g.to_json(now) for g in grants])
        return
    for grant in grants:
        show(grant, grant.state(now), json=False)
