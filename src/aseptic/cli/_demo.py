"""``aseptic demo``: the end-to-end chain of custody on this machine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from aseptic.cli._common import ConfigOption, JsonOption, handles_errors, print_json, settings_for, stderr
from aseptic.service import run_demo


@handles_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Report and data directory.")] = Path("aseptic-demo"),
    json_out: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Stream a clean and an attacked batch from the secured twin; sign, log, detect, verify.

    Writes OUT/report.json and OUT/report.html; the data directory is OUT/data, so
    `aseptic ledger verify --data-dir OUT/data` checks the evidence afterwards.
    """
    settings = settings_for(config)
    # asyncua narrates session negotiation at WARNING; the demo reports what matters itself.
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=stderr, transient=False
    ) as bar:
        task = bar.add_task("starting", total=1.0)

        def progress(message: str, fraction: float) -> None:
            bar.update(task, description=message, completed=fraction)

        report = run_demo(out, settings, progress=progress)
    if json_out:
        print_json(report)
        return
    for batch in report["batches"]:
        if batch["attacked"]:
            ttd = batch["time_to_detect_h"]
            found = f"detected after {ttd:.1f} h" if batch["detected"] else "NOT detected"
            attack = batch["attack"]
            print(f"batch {batch['id']}: attacked ({attack['kind']} on {attack['tag']}): {found}")
        else:
            print(f"batch {batch['id']}: clean, {len(batch['findings'])} findings")
    ledger, tel = report["ledger"], report["telemetry"]
    state = "verified" if ledger["verified"] else "VERIFICATION FAILED"
    print(f"ledger: {ledger['size']} leaves, root {ledger['root'][:16]}..., {state}")
    print(
        f"telemetry: {tel['envelopes']} envelopes, {tel['readings']} readings, "
        f"{tel['rejected']} rejected, {tel['quarantined']} quarantined"
    )
    print(f"report: {out / 'report.html'}; evidence: aseptic ledger verify --data-dir {out / 'data'}")
