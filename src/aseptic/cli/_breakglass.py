"""``aseptic breakglass ...``: emergency elevation without a second person - loud, time-boxed, reviewed.

``open`` elevates the caller at once for one action on one scope (at most 4 h, a reason required),
logs an audit entry and a finding (T0859 Valid Accounts) and puts the session on the review list;
``review`` lists the sessions nobody has reviewed, or records a review by someone else. Break-glass
lifts only the two-person rule: the caller's roles still bound what the policies allow.
"""

from __future__ import annotations

from typing import Annotated

import typer

from aseptic.cli._common import ConfigOption, DataDirOption, JsonOption, handles_errors, print_json, stderr
from aseptic.cli._grant import ActionArgument, ReasonOption, ScopeArgument, parse_scope, show
from aseptic.cli._trust import ActorOption, ActorPasswordFileOption, SessionFileOption, open_trust
from aseptic.errors import InputError

app = typer.Typer(help="Break-glass emergency access: open, review.", no_args_is_help=True)


@app.command("open")
@handles_errors
def open_(
    action: ActionArgument,
    scope: ScopeArgument,
    reason: ReasonOption,
    duration_s: Annotated[int, typer.Option("--duration-s", help="At most 14400 (4 h).")] = 3600,
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Open emergency elevation now (a finding and an audit entry; reviewed afterwards by someone else)."""
    target = parse_scope(scope)
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        grant, _ = trust.grants.open_breakglass(actor, action, target, reason, duration_s, trust.now())
    stderr.print(
        f"BREAK-GLASS opened by {grant.requester}: logged as a finding (T0859) and on the review list",
        highlight=False,
    )
    show(grant, "active", json=json)


@app.command("review")
@handles_errors
def review(
    grant_id: Annotated[str | None, typer.Argument(help="The session to sign off; none: list them.")] = None,
    note: Annotated[
        str | None, typer.Option("--note", help="What was done and whether it was justified.")
    ] = None,
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """List unreviewed break-glass sessions, or review one (not your own; exit 1 if any is pending)."""
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        if grant_id is not None:
            if note is None:
                raise InputError("a review needs --note")
            reviewed = trust.grants.review_breakglass(
                grant_id, actor, note, trust.cli_context(), trust.enforcement_point()
            )
            typer.echo(f"reviewed {reviewed.grant_id} (opened by {reviewed.requester})")
            return
        now = trust.now()
        pending = trust.grants.pending_reviews()
    if json:
        print_json([g.to_json(now) for g in pending])
    else:
        for grant in pending:
            show(grant, grant.state(now), json=False)
        stderr.print(f"{len(pending)} break-glass session(s) waiting for review", highlight=False)
    if pending:
        raise typer.Exit(1)
