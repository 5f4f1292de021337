"""The traceability matrix: each requirement, the tests that prove it, and their latest results."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aseptic.validation._requirements import Requirement, TestResult, TestRun

__all__ = ["Trace", "TraceMatrix", "render_html", "render_markdown", "trace"]

Status = Literal["verified", "failing", "not run", "not covered"]


@dataclass(frozen=True)
class Trace:
    requirement: Requirement
    tests: tuple[TestResult, ...]

    @property
    def status(self) -> Status:
        if not self.tests:
            return "not covered"
        if any(t.outcome in ("failed", "error") for t in self.tests):
            return "failing"
        if not any(t.outcome == "passed" for t in self.tests):
            return "not run"
        return "verified"


@dataclass(frozen=True)
class TraceMatrix:
    run: TestRun
    traces: tuple[Trace, ...]
    unknown: dict[str, tuple[str, ...]]  # requirement id named by tests but not in the catalogue -> tests

    def count(self, status: Status) -> int:
        return sum(1 for t in self.traces if t.status == status)

    @property
    def acceptable(self) -> bool:
        """Every requirement verified, no failing test, no unknown requirement id."""
        return not self.unknown and all(t.status == "verified" for t in self.traces)


def trace(catalogue: Sequence[Requirement], run: TestRun) -> TraceMatrix:
    """Join the catalogue with a recorded run."""
    by_id: dict[str, list[TestResult]] = {r.id: [] for r in catalogue}
    unknown: dict[str, list[str]] = {}
    for result in run.results:
        for requirement_id in result.requirements:
            if requirement_id in by_id:
                by_id[requirement_id].append(result)
            else:
                unknown.setdefault(requirement_id, []).append(result.nodeid)
    return TraceMatrix(
        run=run,
        traces=tuple(Trace(r, tuple(by_id[r.id])) for r in catalogue),
        unknown={k: tuple(v) for k, v in sorted(unknown.items())},
    )


def _summary(matrix: TraceMatrix) -> str:
    total = len(matrix.traces)
    return (
        f"{matrix.count('verified')} of {total} requirements verified, {matrix.count('failing')} failing,"
        f" {matrix.count('not run')} not run, {matrix.count('not covered')} not covered"
    )


def render_markdown(matrix: TraceMatrix) -> str:
    run = matrix.run
    lines = [
        "# Aseptic validation report: requirements traceability",
        "",
        f"Test run {run.started} to {run.finished}, commit {run.commit or 'unknown'},"
        f" Python {run.python}, {run.platform}.",
        "",
        _summary(matrix) + ".",
        "",
        "| requirement | source | risk | status | tests (passed/total) |",
        "|---|---|---|---|---|",
    ]
    for item in matrix.traces:
        passed = sum(1 for t in item.tests if t.outcome == "passed")
        lines.append(
            f"| {item.requirement.id} | {item.requirement.source} | {item.requirement.risk} | {item.status}"
            f" | {passed}/{len(item.tests)} |"
        )
    for item in matrix.traces:
        lines += ["", f"## {item.requirement.id}: {item.requirement.text}", ""]
        lines += [f"- {t.outcome}: `{t.nodeid}`" for t in item.tests] or ["- no test names this requirement"]
    if matrix.unknown:
        lines += ["", "## Requirement ids named by tests but not in the catalogue", ""]
        lines += [f"- {rid}: {', '.join(nodes)}" for rid, nodes in matrix.unknown.items()]
    return "\n".join(lines) + "\n"


_COLOUR = {"verified": "#1b7f3b", "failing": "#b00020", "not run": "#9a6700", "not covered": "#9a6700"}


def render_html(matrix: TraceMatrix) -> str:
    esc = html.escape
    run = matrix.run
    rows = []
    for item in matrix.traces:
        passed = sum(1 for t in item.tests if t.outcome == "passed")
        tests = "".join(f"<li><code>{esc(t.nodeid)}</code> {esc(t.outcome)}</li>" for t in item.tests)
        rows.append(
            f"<tr><td>{esc(item.requirement.id)}</td><td>{esc(item.requirement.source)}</td>"
            f"<td>{esc(item.requirement.text)}</td><td>{esc(item.requirement.risk)}</td>"
            f'<td style="color:{_COLOUR[item.status]}"><b>{esc(item.status)}</b></td>'
            f"<td>{passed}/{len(item.tests)}<details><summary>tests</summary><ul>{tests}</ul></details></td></tr>"
        )
    unknown = "".join(f"<li>{esc(k)}: {esc(', '.join(v))}</li>" for k, v in matrix.unknown.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Aseptic validation report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}</style></head><body>
<h1>Validation report: requirements traceability</h1>
<p>Test run {esc(run.started)} to {esc(run.finished)}, commit {esc(run.commit or "unknown")},
Python {esc(run.python)}, {esc(run.platform)}.</p>
<p><b>{esc(_summary(matrix))}.</b></p>
<table><tr><th>requirement</th><th>source</th><th>text</th><th>risk</th><th>status</th><th>tests</th></tr>
{"".join(rows)}</table>
{f"<h2>Requirement ids named by tests but not in the catalogue</h2><ul>{unknown}</ul>" if unknown else ""}
</body></html>
"""
