"""``aseptic access analyse``: access analytics over the decision log, findings into the ledger.

Replays every decision and login entry of the ledger through ``AccessAnalytics`` (``AccessWatch``:
baselines learned over the first ``--training-h`` hours of the log) and logs, as ``finding`` leaves,
the findings raised by entries newer than the previous run (``D/access-analytics.json`` keeps that
mark, and `aseptic serve` with inline analytics moves it too), so a finding is never logged twice.
"""

from __future__ import annotations

from typing import Annotated

import typer

from aseptic.cli._common import ConfigOption, DataDirOption, JsonOption, handles_errors, print_json, stderr
from aseptic.cli._trust import ActorOption, ActorPasswordFileOption, SessionFileOption, open_trust
from aseptic.errors import ConfigError
from aseptic.ledger import Ledger
from aseptic.trust import AccessWatch, AnalyticsConfig

app = typer.Typer(help="Access analytics over the decision log.", no_args_is_help=True)


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
    # The ranges of [access] in the config; AnalyticsConfig and AccessWatch raise ValueError.
    if not 0 < training_h <= 24 * 365:
        raise ConfigError(f"--training-h {training_h:g} is outside (0, 8760] hours")
    if not 0 < window_s <= 86_400:
        raise ConfigError(f"--window-s {window_s:g} is outside (0, 86400] seconds")
    if denial_limit < 2:
        raise ConfigError(f"--denial-limit {denial_limit} is below 2 (one denial is not a burst)")
    settings = AnalyticsConfig(window_s=window_s, denial_limit=denial_limit)
    with open_trust(data_dir, config) as trust:
        actor = trust.authenticate(session_file, actor_name, actor_password_file)
        # Reading the decision log is ``read_record`` on Record::"access-decisions", decided by the
        # policies as for the dashboard's access view (no role list here).
        trust.require_site_record_read(actor, "access-decisions")
        trust.log.flush()
        ledger = Ledger.open(
            trust.data_dir, site_key=trust.site_key, clock=trust.clock, origin=trust.site_id, create=False
        )
        watch = AccessWatch(trust.data_dir, settings, training_h, trust.now())
        try:
            new = watch.catch_up(ledger)
        finally:
            ledger.close()
        for finding in new:
            trust.log.log_finding(finding)
        watch.save_mark()
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
