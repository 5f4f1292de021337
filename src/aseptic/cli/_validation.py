"""``aseptic validation ...``: the requirement catalogue and the traceability report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aseptic.cli._common import JsonOption, handles_errors, print_json, stderr
from aseptic.errors import BackendError, InputError
from aseptic.validation import load_run, render_html, render_markdown, requirements, trace

app = typer.Typer(help="The validation pack: requirements traced to tests.", no_args_is_help=True)


@app.command("requirements")
@handles_errors
def list_requirements(as_json: JsonOption = False) -> None:
    """The requirement catalogue (Part 11, Annex 11, ALCOA+ and Aseptic's own)."""
    catalogue = requirements()
    if as_json:
        print_json([{"id": r.id, "source": r.source, "risk": r.risk, "text": r.text} for r in catalogue])
        return
    for r in catalogue:
        print(f"{r.id:20} {r.source:24} {r.risk:7} {r.text}")


@app.command("report")
@handles_errors
def report(
    results: Annotated[Path, typer.Option("--results", help="A run recorded by pytest --validation-record.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for validation.html and validation.md.")],
    as_json: JsonOption = False,
) -> None:
    """Write the traceability matrix of the recorded run; exit 1 unless every requirement is verified."""
    matrix = trace(requirements(), load_run(results))
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "validation.html").write_text(render_html(matrix), encoding="utf-8")
        (out / "validation.md").write_text(render_markdown(matrix), encoding="utf-8")
    except OSError as exc:
        raise BackendError(f"cannot write the report into {out}: {exc.strerror}") from None
    summary = {status: matrix.count(status) for status in ("verified", "failing", "not run", "not covered")}
    if as_json:
        print_json({**summary, "unknown_ids": sorted(matrix.unknown), "acceptable": matrix.acceptable})
    else:
        for item in matrix.traces:
            print(f"{item.status:12} {item.requirement.id:20} {len(item.tests)} tests")
        for rid in matrix.unknown:
            print(f"{'unknown id':12} {rid:20} named by tests, not in the catalogue")
    stderr.print(f"wrote {out / 'validation.html'} and {out / 'validation.md'}", highlight=False)
    if not matrix.acceptable:
        raise typer.Exit(1)
