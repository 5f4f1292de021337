"""``aseptic twin ...``: simulate batches and serve the plant over OPC UA."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from aseptic.cli._common import ConfigOption, JsonOption, handles_errors, print_json, settings_for, stderr
from aseptic.errors import BackendError, ConfigError
from aseptic.twin import TAGS, BatchResult, Phase, parse_faults, simulate_batches

app = typer.Typer(
    help="The plant digital twin: simulate batches, serve them over OPC UA.", no_args_is_help=True
)

FLOAT_FORMAT = ".6f"  # fixed formatting: the same seed gives byte-identical files


def _cell(value: float) -> str:
    return "" if math.isnan(value) else format(value, FLOAT_FORMAT)


def batch_csv(result: BatchResult) -> str:
    """The batch's tag history as CSV: time_h, phase, then every tag (empty cell: no report)."""
    header = ["time_h", "phase", *(t.name for t in TAGS)]
    columns = [result.tags[t.name] for t in TAGS]
    lines = [",".join(header)]
    for i, time_h in enumerate(result.time_h.tolist()):
        cells = [format(time_h, FLOAT_FORMAT), Phase(int(result.phase[i])).name]
        cells.extend(_cell(float(col[i])) for col in columns)
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def run_summary(results: list[BatchResult]) -> dict[str, Any]:
    """The ``summary.json`` document."""
    return {"batches": [r.summary() for r in results]}


@app.command("run")
@handles_errors
def run(
    out: Annotated[Path, typer.Option("--out", help="Directory for batch CSV files and summary.json.")],
    batches: Annotated[int, typer.Option("--batches", min=1, max=10_000, help="How many batches.")] = 1,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, help="Seed of batch 0 (batch i: seed + i).")
    ] = None,
    fault: Annotated[
        list[str] | None, typer.Option("--fault", help="Process fault 1-8 or its name; repeatable.")
    ] = None,
    duration_h: Annotated[
        float | None, typer.Option("--duration-h", help="Fixed batch length (default: 230 + 25 N(0,1) h).")
    ] = None,
    paa_control: Annotated[
        str, typer.Option("--paa-control", help="softsensor (Raman PLS in the loop), true, or recipe.")
    ] = "softsensor",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Simulate batches; write each batch's tag history (CSV) and a summary (JSON)."""
    settings = settings_for(config).twin
    faults = parse_faults(fault or [])
    if paa_control not in ("softsensor", "true", "recipe"):
        raise ConfigError(f"--paa-control {paa_control!r}: choose softsensor, true or recipe")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    try:  # before the simulation, not after it
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackendError(f"cannot create --out {out}: {exc.strerror}") from None
    first_seed = settings.seed if seed is None else seed
    with Progress(
        TextColumn("[bold]twin run[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} samples"),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
    ) as progress:
        task = progress.add_task("simulate", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        results = simulate_batches(
            batches,
            first_seed,
            faults,
            settings=settings,
            duration_h=duration_h,
            paa_control=paa_control,  # type: ignore[arg-type]  # checked against the Literal above
            progress=report,
        )
    summary = run_summary(results)
    try:
        for result in results:
            (out / f"batch-{result.id:03d}.csv").write_text(batch_csv(result), encoding="utf-8")
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BackendError(f"cannot write into --out {out}: {exc.strerror}") from None
    if as_json:
        print_json(summary)
        return
    for entry in summary["batches"]:
        typer.echo(
            f"batch {entry['id']} seed {entry['seed']}: {entry['duration_h']:g} h, "
            f"P {entry['final_penicillin_g_per_l']:.2f} g/L, "
            f"harvested {entry['harvested_penicillin_kg']:.0f} kg, "
            f"pH {entry['min_ph']:.2f}-{entry['max_ph']:.2f}"
        )
    typer.echo(f"wrote {len(results)} batch file(s) and summary.json to {out}")
