"""``aseptic access analyse``: access analytics over the decision log, findings into the ledger.

Replays every decision and login entry of the ledger through ``AccessAnalytics`` (baselines learned
over the first ``--training-h`` hours of the log) and logs, as ``finding`` leaves, the findings raised
by entries newer than the previous run (``D/access-analytics.json`` keeps that mark), so running it
again never logs a finding twice.
"""

from __future__ import annotations

import json as jsonlib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from aseptic.cli._common import ConfigOption, DataDirOption, JsonOption, handles_errors, print_json, stderr
from aseptic.cli._trust import ActorOption, ActorPasswordFileOption, SessionFileOption, open_trust
from aseptic.clock import parse_rfc3339
from aseptic.errors import AccessDenied, BackendError, InputError
from aseptic.ledger import LeafKind, Ledger
from aseptic.trust import AccessAnalytics, AnalyticsConfig

app = typer.Typer(help="Access analytics over the decision log.", no_args_is_help=True)

STATE_FILE = "access-analytics.json"
ANALYST_ROLES = frozenset({"security_analyst", "administrator", "qa_approver", "auditor"})


def _entries(ledger: Ledger) -> list[tuple[int, dict[str, Any]]]:
    rows = ledger.entries(LeafKind.DECISION) + ledger.entries(LeafKind.AUDIT)
    return sorted((leaf, jsonlib.loads(payload)) for leaf, payload in rows)


def _last_leaf(path: Path) -> int:
    if not path.is_file():
        return -1
    try:
        return int(jsonlib.loads(path.read_text(encoding="utf-8"))["last_leaf"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path} is unreadable ({exc})", hint="delete it to analyse the whole log again"
        ) from None


@app.command("analyse")
@handles_errors
def analyse(
    training_h: Annotated[
        float, typer.Option("--training-h", help="Baseline: the log's first hours.")
    ] = 24.0,
    window_s: Annotated[float, typer.Option("--window-s")] = 300.0,
    denial_limit: Annotated[int, typer.Option("--denial-limit")] = 5,
    session_file: SessionFileOption = None,
    actor_name: ActorOption = None,
    actor_password_file: ActorPasswordFileOption = None,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Find bulk or unusual reads and exports and repeated denials; log new findings (exit 1 if any)."""
    settings = AnalyticsConfig(window_s=window_s, denial_limit=denial_limit)
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        if not ANALYST_ROLES & set(actor.roles):
            raise AccessDenied(
                f"{actor.name} may not run access analytics",
                reasons=(f"needs one of the roles {', '.join(sorted(ANALYST_ROLES))}",),
            )
        trust.log.flush()
        ledger = Ledger.open(
            trust.data_dir, site_key=trust.site_key, clock=trust.clock, origin=trust.site_id, create=False
        )
        try:
            entries = _entries(ledger)
        finally:
            ledger.close()
        state = trust.data_dir / STATE_FILE
        mark = _last_leaf(state)
        timed = [(leaf, e) for leaf, e in entries if e.get("entry") in ("access_decision", "authentication")]
        if not timed:
            stderr.print("no decisions in the log yet", highlight=False)
            return
        start = parse_rfc3339(str(timed[0][1]["time"]))
        analytics = AccessAnalytics(start + timedelta(hours=training_h), settings)
        new = [f for leaf, entry in timed for f in analytics.observe(entry) if leaf > mark]
        for finding in new:
            trust.log.log_finding(finding)
        try:
            state.write_text(jsonlib.dumps({"last_leaf": timed[-1][0]}) + "\n", encoding="utf-8")
        except OSError as exc:
            raise BackendError(f"cannot write {state}: {exc.strerror}") from None
    if json:
        print_json(new)
    else:
        for finding in new:
            typer.echo(
                f"{finding['time']} {finding['technique']} {finding['detector']:<24} {finding['summary']}"
            )
        stderr.print(f"{len(new)} new finding(s) logged", highlight=False)
    if new:
        raise typer.Exit(1)
