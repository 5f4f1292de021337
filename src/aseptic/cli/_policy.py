"""``aseptic policy ...``: run the active policy set's test cases; explain a decision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from aseptic.cli._common import (
    ConfigOption,
    DataDirOption,
    JsonOption,
    data_dir_for,
    handles_errors,
    print_json,
    settings_for,
    stderr,
)
from aseptic.cli._trust import ActorOption, ActorPasswordFileOption, SessionFileOption, open_trust
from aseptic.crypto import read_public_key
from aseptic.errors import InputError
from aseptic.trust import (
    IDENTITY_DB,
    POLICY_DIR,
    AccessRequest,
    IdentityStore,
    PolicyBundle,
    PolicyDecisionPoint,
    install_policy_set,
    load_active_policy_set,
    plant_entities,
    run_policy_cases,
)

app = typer.Typer(help="The Cedar policy set: test it, explain its decisions.", no_args_is_help=True)

PolicyDirOption = Annotated[
    Path | None,
    typer.Option(
        "--policy-dir", help="A policy directory (*.cedar, schema, cases.json) instead of the default."
    ),
]


def _bundle(policy_dir: Path | None, data_dir: Path) -> PolicyBundle:
    """``--policy-dir`` if given, else the data directory's active set (its own, else the default)."""
    if policy_dir is not None:
        return PolicyBundle.from_directory(policy_dir)
    if not (data_dir / POLICY_DIR).is_dir():
        return PolicyBundle.default()
    bundle, _ = load_active_policy_set(data_dir, read_public_key(data_dir / "site.pub"))
    return bundle


@app.command("test")
@handles_errors
def test(
    policy_dir: PolicyDirOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Run the test cases kept beside the active policies; exit 1 if any fails."""
    bundle = _bundle(policy_dir, data_dir_for(data_dir, settings_for(config)))
    results = run_policy_cases(bundle)
    failed = [r for r in results if not r.passed]
    if json:
        print_json(
            {
                "policy_set": bundle.digest,
                "cases": len(results),
                "failed": [
                    {
                        "name": r.name,
                        "expected": r.expected,
                        "expected_by": list(r.expected_by),
                        "got": "allow" if r.decision.allowed else "deny",
                        "decided_by": list(r.decision.policy_ids),
                    }
                    for r in failed
                ],
            }
        )
    else:
        for r in results:
            got = "allow" if r.decision.allowed else "deny"
            mark = "ok  " if r.passed else "FAIL"
            by = ", ".join(r.decision.policy_ids) or "default deny"
            typer.echo(f"{mark} {got:<5} {r.name} [{by}]")
        typer.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


def _read_request(path: Path) -> tuple[AccessRequest, list[dict[str, Any]]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read request {path}: {exc}") from None
    request = AccessRequest.from_json(document)
    extra = document.get("entities", []) if isinstance(document, dict) else []
    if not isinstance(extra, list):
        raise InputError(f"{path}: 'entities' must be a list of Cedar entities")
    return request, extra


@app.command("explain")
@handles_errors
def explain(
    request_file: Annotated[Path, typer.Argument(help="REQUEST.json: principal, action, resource, context.")],
    policy_dir: PolicyDirOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Show the decision for a request and the policies that decided it (exit 1 on deny).

    Entities: the plant catalogue, the data directory's users, devices and services (if any), and
    the request's own "entities" list. A what-if: nothing is granted, so nothing is logged.
    """
    request, extra = _read_request(request_file)
    directory = data_dir_for(data_dir, settings_for(config))
    known = {(e["uid"]["type"], e["uid"]["id"]) for e in extra if isinstance(e, dict) and "uid" in e}
    if (directory / IDENTITY_DB).is_file():
        with IdentityStore.open(directory, audit=_no_changes) as store:
            extra += [p.to_entity() for p in store.list_principals() if (p.kind, p.name) not in known]
    decision = PolicyDecisionPoint(_bundle(policy_dir, directory), plant_entities()).decide(request, extra)
    if json:
        print_json(decision.to_json())
    else:
        typer.echo(f"decision    {'allow' if decision.allowed else 'deny'}")
        typer.echo(f"request     {request.principal} {request.action} {request.resource}")
        typer.echo(f"decided by  {', '.join(decision.policy_ids) or '(no policy: deny by default)'}")
        for reason in decision.reasons:
            typer.echo(f"reason      {reason}")
        for error in decision.errors:
            stderr.print(f"error: {error}", highlight=False)
    if not decision.allowed:
        raise typer.Exit(1)


def _no_changes(entry: object) -> object:
    raise InputError("policy explain does not change identities")  # never called: read-only use


@app.command("apply")
@handles_errors
def apply(
    policy_dir: Annotated[
        Path, typer.Argument(help="A policy directory: *.cedar, schema.cedarschema, cases.json.")
    ],
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Install a policy set as the site's next signed version (needs change_policy: an administrator
    with an elevation grant). It must validate and pass its own cases; the change is logged."""
    bundle = PolicyBundle.from_directory(policy_dir)
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        trust.require_admin_action(actor, "change_policy")
        version = install_policy_set(
            trust.data_dir, bundle, key=trust.site_key, actor=actor.name, now=trust.now(), audit=trust.log
        )
    typer.echo(
        f"installed policy version {version} ({bundle.digest[:16]}, {len(bundle.policy_ids)} policies)"
    )
