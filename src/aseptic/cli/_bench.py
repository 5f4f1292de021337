"""``aseptic bench ...``: external benchmarks (TEP, BATADAL) under their published protocols."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from aseptic.bench import run_batadal, run_tep
from aseptic.cli._bench_twin import twin
from aseptic.cli._common import JsonOption, handles_errors, print_json, stderr
from aseptic.errors import ConfigError

app = typer.Typer(
    help="Benchmarks on public data nobody here made (TEP, BATADAL) and on the twin.", no_args_is_help=True
)
app.command("twin")(twin)  # aseptic bench twin: clean and attacked twin batches (docs/bench-twin.md)

DataOption = Annotated[
    Path, typer.Option("--data", help="Directory holding the benchmark's files (read only).")
]
OutOption = Annotated[Path, typer.Option("--out", help="Directory for the output files.")]
FarOption = Annotated[
    float,
    typer.Option(
        "--false-alarm-rate", min=0.0001, max=0.2, help="Design false-alarm rate on held-out normal data."
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", min=0, help="Seed of every learned model.")]


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")


def _say(message: str) -> None:
    stderr.print(f"[dim]{escape(message)}[/]", highlight=False, markup=True)


@app.command("tep")
@handles_errors
def tep(
    data: DataOption,
    out: OutOption,
    false_alarm_rate: FarOption = 0.01,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
) -> None:
    """Tennessee Eastman: fit on d00.dat only, flag every dNN_te.dat causally, write flags_dNN_te.csv."""
    _check_out(out)
    report = run_tep(data, out, seed=seed, false_alarm_rate=false_alarm_rate, progress=_say)
    if as_json:
        print_json(report.to_dict())
        return
    methods = (report.ensemble, *report.baselines)
    typer.echo(f"{'fault':>8} " + " ".join(f"{m.name[:18]:>18}" for m in methods))
    for fault in sorted(report.ensemble.detection):
        typer.echo(
            f"{'IDV(' + str(fault) + ')':>8} " + " ".join(f"{m.detection[fault]:>18.3f}" for m in methods)
        )
    typer.echo(f"{'DR 21':>8} " + " ".join(f"{m.mean21:>18.3f}" for m in methods))
    typer.echo(f"{'DR 18':>8} " + " ".join(f"{m.mean18:>18.3f}" for m in methods))
    typer.echo(f"{'FAR 00te':>8} " + " ".join(f"{m.far_d00:>18.3f}" for m in methods))
    typer.echo(f"{'FAR 1-160':>8} " + " ".join(f"{m.far_first160:>18.3f}" for m in methods))
    typer.echo(
        f"training {report.train_s:.1f} CPU s; scoring {report.us_per_reading:.2f} CPU us per tag-reading "
        f"({report.readings} readings); flags in {out}"
    )


@app.command("batadal")
@handles_errors
def batadal(
    data: DataOption,
    out: OutOption,
    false_alarm_rate: FarOption = 0.01,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
) -> None:
    """BATADAL: fit on dataset03, cross-validated S on dataset04, write predictions_test.csv."""
    _check_out(out)
    report = run_batadal(data, out, seed=seed, false_alarm_rate=false_alarm_rate, progress=_say)
    if as_json:
        print_json(report.to_dict())
        return
    for label, score in (
        ("dataset04, time-blocked CV", report.cv),
        ("dataset04, label-free (values, c=1, hold 0)", report.label_free),
        ("  same, values+differences (not used)", report.label_free_differences),
        ("dataset04, PCA-SPE baseline", report.baseline),
    ):
        typer.echo(
            f"{label:<44} S {score.s:.3f}  S_TTD {score.s_ttd:.3f}  S_CM {score.s_cm:.3f}  "
            f"TPR {score.tpr:.3f}  TNR {score.tnr:.3f}  attacks {score.detected}/{score.events}"
        )
    for rule in report.rules:
        typer.echo(f"control rule learned on dataset03: {rule}")
    features, c, h = report.test_setting
    typer.echo(
        f"test: {report.test_rows} hours, {report.test_flagged} flagged ({features}, c={c}, hold {h} h) "
        f"-> {report.predictions}"
    )
    typer.echo(
        f"training {report.train_s:.1f} CPU s; scoring {report.us_per_reading:.2f} CPU us per tag-reading"
    )
