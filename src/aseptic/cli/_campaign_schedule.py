"""``aseptic campaign schedule`` and ``aseptic campaign trend``: the continuous campaign from the CLI.

``schedule --once`` runs one cycle now (the next scenarios in turn, on a shadow twin) and logs it;
without ``--once`` it runs cycles every ``[campaign_schedule] interval_s`` in the foreground until
Ctrl-C (``aseptic serve`` does the same in the background when ``enabled``). ``trend`` prints the
stored cycles and their resilience score.
"""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from aseptic.campaign import CycleRecord, ScheduleStore, run_cycle
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
from aseptic.cli._trust import open_trust
from aseptic.errors import AsepticError
from aseptic.service import schedule_plan, scheduled_scenarios


def _line(record: CycleRecord) -> str:
    s = record.score
    return (
        f"cycle {record.cycle:>4}  {record.finished:%Y-%m-%dT%H:%M:%SZ}  score {s.score:5.1f}"
        f"  coverage {len(s.techniques_detected)}/{len(s.techniques_executed)}"
        f"  median TTD {s.median_ttd_h} h  p95 {s.p95_ttd_h} h  FA/100h {s.false_alarms_per_100h}"
        f"  findings {record.findings}  ran {', '.join(record.scenarios)}"
    )


@handles_errors
def schedule(
    once: Annotated[bool, typer.Option("--once", help="Run one cycle now and exit.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the continuous campaign: the next scenarios in turn on a shadow twin, scored and logged.

    Each cycle stores its result in D/campaign-schedule.db, logs a campaign_cycle audit entry (with
    the result's SHA-256) and a Finding when the resilience score drops or a technique detected
    before is missed now. Exit 0; 2 on bad settings; 3 when a store or the ledger fails.
    """
    settings = settings_for(config)
    section = settings.campaign_schedule
    scenarios = scheduled_scenarios(section)
    plan = schedule_plan(section)
    with open_trust(data_dir, config) as trust:
        pause = threading.Event()
        try:
            while True:
                record = run_cycle(
                    trust.data_dir,
                    scenarios,
                    plan,
                    audit=trust.log,
                    findings=trust.log.log_finding,
                    clock=trust.clock,
                )
                if as_json:
                    print_json(record.to_json())
                else:
                    typer.echo(_line(record))
                if once:
                    return
                pause.wait(section.interval_s)
        except KeyboardInterrupt:  # Ctrl-C ends the loop; a cycle it interrupted stored nothing
            stderr.print("stopped", highlight=False)


@handles_errors
def trend(
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="The last N cycles.")] = 100,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The stored campaign cycles, oldest first, with the resilience score and its components."""
    directory = data_dir_for(data_dir, settings_for(config))
    try:
        with ScheduleStore.open(directory, read_only=True) as store:
            records = store.cycles(limit)
            latest = store.latest_results()
    except AsepticError:
        if (directory / "campaign-schedule.db").exists():
            raise
        records, latest = [], {}
    if as_json:
        print_json({"cycles": [r.to_json() for r in records], "latest": latest})
        return
    for record in records:
        typer.echo(_line(record))
    stderr.print(f"{len(records)} cycles, {len(latest)} scenarios run", highlight=False)
