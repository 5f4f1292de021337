"""``aseptic bench twin``: attacks and process faults on twin batches, per detector and ensemble.

Registered on the ``bench`` app (cli/_bench.py) as ``bench.command("twin")(twin)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aseptic.bench import GROUPS, run_twin_bench
from aseptic.cli._common import JsonOption, handles_errors, print_json, stderr


@handles_errors
def twin(
    batches: Annotated[
        int, typer.Option("--batches", min=1, help="Clean test batches, and attacked per scenario.")
    ] = 10,
    out: Annotated[Path, typer.Option("--out", help="Directory for twin.json.")] = Path("bench-out"),
    train_batches: Annotated[
        int, typer.Option("--train-batches", min=3, help="Clean training batches.")
    ] = 20,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 2,
    json_out: JsonOption = False,
) -> None:
    """Simulate clean, attacked and faulty twin batches; score detection; write OUT/twin.json."""
    with Progress(
        TextColumn("twin bench"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=stderr
    ) as bar:
        task = bar.add_task("batches", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_twin_bench(batches, out, train_batches=train_batches, workers=workers, progress=progress)
    if json_out:
        print_json(report)
        return
    print(render_table(report))
    print(f"written: {out / 'twin.json'}")


def render_table(report: dict[str, Any]) -> str:
    """A plain-text table: detected/batches and median time to detect per group."""
    head = ["scenario", *GROUPS]
    rows = [head]
    fa = report["clean"]["fa_episodes_per_100h"]
    rows.append(["FA episodes / 100 clean batch-h", *(f"{fa[g]:.2f}" for g in GROUPS)])
    for s in report["scenarios"]:
        cells = []
        for g in GROUPS:
            cell = s["groups"][g]
            ttd = f" {cell['median_ttd_h']:.1f}h" if cell["median_ttd_h"] is not None else ""
            cells.append(f"{cell['detected']}/{s['batches']}{ttd}")
        rows.append([s["scenario"], *cells])
    for f in report["process_faults"]:
        rows.append(
            [
                f"process fault {f['fault']}",
                f"{f['batches_with_findings']}/{f['batches']} batches with findings",
                f"{f['reported_as_process_fault']} of {f['findings']} findings as process fault",
                f"first finding a process fault in {f.get('first_finding_process_fault', 0)}/{f['batches']}",
                *[""] * (len(head) - 4),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
