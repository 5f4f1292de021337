"""``aseptic campaign ...``: the threat-simulation scenario library (list, validate) and the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aseptic.campaign import (
    PRIMITIVES,
    ParamSpec,
    Scenario,
    load_library,
    load_scenario,
    run_campaign,
    write_campaign,
)
from aseptic.cli._common import JsonOption, handles_errors, print_json, stderr
from aseptic.errors import InputError

app = typer.Typer(help="Threat simulation on the digital twin: the scenario library.", no_args_is_help=True)

ScenarioDirOption = Annotated[
    list[Path] | None,
    typer.Option("--scenario-dir", help="A directory of your own scenarios (*.yaml), added to the library."),
]


def _summary(scenario: Scenario) -> dict[str, object]:
    return {
        "id": scenario.id,
        "name": scenario.name,
        "techniques": list(scenario.techniques),
        "steps": [step.primitive for step in scenario.steps],
        "first_malicious_h": scenario.first_malicious_h,
        "expected": [e.detector for e in scenario.expected],
        "source": scenario.source,
    }


@app.command("list")
@handles_errors
def list_scenarios(scenario_dir: ScenarioDirOption = None, as_json: JsonOption = False) -> None:
    """List the scenario library (built-in plus --scenario-dir), checking every file."""
    scenarios = load_library(scenario_dir or [])
    if as_json:
        print_json({"scenarios": [_summary(s) for s in scenarios]})
        return
    for scenario in scenarios:
        print(f"{scenario.id:36} {','.join(scenario.techniques):24} {scenario.name}")
    print(f"{len(scenarios)} scenarios")


@app.command("validate")
@handles_errors
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files or directories to check.")],
    as_json: JsonOption = False,
) -> None:
    """Check scenario files against the schema, the technique catalogues and the primitives.

    Exit 0 if every file is valid, 2 with every problem listed otherwise.
    """
    scenarios: list[Scenario] = []
    for path in paths:
        if path.is_dir():
            scenarios.extend(load_library([path], include_builtin=False))
        else:
            scenarios.append(load_scenario(path))
    if as_json:
        print_json({"valid": [_summary(s) for s in scenarios]})
        return
    for scenario in scenarios:
        print(f"ok {scenario.source} ({scenario.id})")


def _param_row(spec: ParamSpec) -> dict[str, object]:
    row: dict[str, object] = {"type": spec.type, "required": spec.required}
    if spec.choices:
        row["choices"] = list(spec.choices)
    return row


@app.command("primitives")
@handles_errors
def primitives(as_json: JsonOption = False) -> None:
    """The attack primitives a scenario step can use, with their techniques and parameters."""
    specs = list(PRIMITIVES.values())
    if as_json:
        print_json(
            {
                "primitives": [
                    {
                        "name": spec.name,
                        "target": spec.target,
                        "techniques": list(spec.techniques),
                        "params": {name: _param_row(p) for name, p in spec.params.items()},
                        "description": spec.description,
                    }
                    for spec in specs
                ]
            }
        )
        return
    for spec in specs:
        params = ", ".join(f"{name}:{p.type}" for name, p in spec.params.items())
        print(f"{spec.name:22} {spec.target:9} {','.join(spec.techniques):20} {params}")


@app.command("run")
@handles_errors
def run(
    scenario_ids: Annotated[
        list[str] | None,
        typer.Argument(metavar="[SCENARIO]...", help="Scenario ids; none = the whole library."),
    ] = None,
    batches: Annotated[int, typer.Option("--batches", min=1, help="Attacked batches per scenario.")] = 4,
    train_batches: Annotated[
        int, typer.Option("--train-batches", min=3, help="Clean batches the detectors are fitted on.")
    ] = 10,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 2,
    out: Annotated[Path, typer.Option("--out", help="Directory for campaign.json and report.html.")] = Path(
        "campaign-out"
    ),
    scenario_dir: ScenarioDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run scenarios on twin batches, score detection and impact; write OUT/campaign.json and report.html."""
    library = {s.id: s for s in load_library(scenario_dir or [])}
    unknown = [i for i in scenario_ids or [] if i not in library]
    if unknown:
        raise InputError(
            f"unknown scenario id(s): {', '.join(unknown)}", hint="`aseptic campaign list` shows the library"
        )
    chosen = [library[i] for i in scenario_ids] if scenario_ids else list(library.values())
    with Progress(
        TextColumn("campaign"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=stderr
    ) as bar:
        task = bar.add_task("batches", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_campaign(
            chosen, batches=batches, train_batches=train_batches, workers=workers, progress=progress
        )
    json_path, html_path = write_campaign(report, out)
    if as_json:
        print_json(report)
        return
    for s in report["scenarios"]:
        verdict = "not evaluable" if s["detected"] is None else ("detected" if s["detected"] else "MISSED")
        ttd = f" median TTD {s['median_ttd_h']} h" if s["median_ttd_h"] is not None else ""
        print(f"{s['id']:36} {verdict:13} rate {s['detection_rate']}{ttd}")
    for n in report["not_executed"]:
        print(f"{n['id']:36} not executed: {'; '.join(n['reasons'])}")
    cov, timing = report["coverage"], report["timing"]
    print(
        f"techniques detected {cov['techniques_detected']} of {cov['techniques_executed']} executed"
        f" (missed: {', '.join(cov['missed']) or 'none'}); {timing['attacked_batches']} attacked batches,"
        f" {timing['attacked_batches_per_min']} per minute"
    )
    print(f"written: {json_path} {html_path}")
