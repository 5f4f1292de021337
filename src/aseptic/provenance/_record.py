"""The GMP model record: what QA needs to accept an AI model in a GMP process (EU GMP Annex 22 draft spirit).

Built from the verified manifest and the ledger, never typed in by hand: intended use; training and
test data and whether they are independent; performance against acceptance criteria; how each
prediction is explained; and the human review of every change (who signed, approved, deployed or
was refused, and what the guard found). ``render_markdown`` / ``render_html`` write it out.
"""

from __future__ import annotations

import html
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aseptic.clock import format_rfc3339
from aseptic.errors import InputError
from aseptic.provenance._manifest import VerifiedManifest

__all__ = ["AcceptanceCriterion", "ModelRecord", "build_model_record", "render_html", "render_markdown"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_CRITERION = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")


@dataclass(frozen=True)
class AcceptanceCriterion:
    """``metric op threshold``, e.g. ``rmse_mg_per_l <= 50``."""

    metric: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> AcceptanceCriterion:
        """Parse ``NAME<=NUMBER`` (also ``>=``, ``<``, ``>``).

        Raises:
            InputError: not of that form.
        """
        match = _CRITERION.match(text)
        if match is None:
            raise InputError(f"acceptance criterion {text!r}: expected NAME<=NUMBER (or >=, <, >)")
        return cls(match[1], match[2], float(match[3]))

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class ModelRecord:
    """The record's content, ready to render."""

    name: str
    version: str
    generated_at: datetime
    manifest_sha256: str
    key_id: str
    files: Mapping[str, str]
    built_at: str
    builder: str
    code_version: str
    intended_use: str
    approver: str
    parameters: Mapping[str, str]
    training_data: tuple[str, ...]
    test_data: tuple[str, ...]
    independence: str
    performance: tuple[tuple[str, str, str, str], ...]  # metric, value, criterion, verdict
    explanation_method: str
    explanation: tuple[tuple[str, float], ...]
    history: tuple[tuple[int, str, str], ...]  # leaf, time, what happened
    gaps: tuple[str, ...] = field(default=())


def _leaf_ranges(refs: Sequence[str]) -> list[tuple[int, int]]:
    ranges = []
    for ref in refs:
        match = re.search(r":leaves:(\d+)-(\d+)@", ref) or _RANGE.match(ref)
        if match:
            ranges.append((int(match[1]), int(match[2])))
    return ranges


def _independence(
    params: Mapping[str, str], training: Sequence[str], test: Sequence[str]
) -> tuple[str, bool]:
    train_seed, test_seed = params.get("training_seed"), params.get("test_seed")
    if train_seed is not None and test_seed is not None:
        if train_seed == test_seed:
            return f"NOT independent: training and test seed are both {train_seed}", False
        return f"independent: simulated with distinct seeds (training {train_seed}, test {test_seed})", True
    train_ranges, test_ranges = _leaf_ranges(training), _leaf_ranges(test)
    if train_ranges and test_ranges:
        overlap = [(a, b) for a in train_ranges for b in test_ranges if a[0] <= b[1] and b[0] <= a[1]]
        if overlap:
            return (
                f"NOT independent: training leaves {overlap[0][0]} overlap test leaves {overlap[0][1]}",
                False,
            )
        return "independent: training and test ledger leaves are disjoint", True
    return "not demonstrated: the manifest names no test data (parameters test_seed / test_leaves)", False


def build_model_record(
    manifest: VerifiedManifest,
    entries: Sequence[tuple[int, Mapping[str, Any]]],
    *,
    acceptance: Sequence[AcceptanceCriterion],
    generated_at: datetime,
    explanation_method: str = "",
    explanation: Sequence[tuple[str, float]] = (),
) -> ModelRecord:
    """The record of the model ``manifest`` describes, with its history from ledger ``entries``.

    ``entries`` are (leaf index, decoded JSON) of the ledger's JSON leaves; those about this model
    (its manifests, deployments, deploy decisions, load refusals, guard findings) form the history.
    """
    statement = manifest.statement
    document = statement.document
    predicate = document["predicate"]
    build, run = predicate["buildDefinition"], predicate["runDetails"]
    external = build["externalParameters"]
    params = {str(k): str(v) for k, v in dict(external.get("parameters", {})).items()}
    metrics = {str(k): float(v) for k, v in dict(external.get("metrics", {})).items()}
    training = tuple(str(dep.get("uri", "")) for dep in build.get("resolvedDependencies", []))
    test = tuple(t for t in params.get("test_leaves", "").split(",") if t)
    if "training_seed" in params:
        training = (*training, f"simulated, seed {params['training_seed']}")
    if "test_seed" in params:
        test = (*test, f"simulated, seed {params['test_seed']}")
    independence, independent = _independence(params, training, test)
    gaps = [] if independent else [f"training/test independence {independence.split(':')[0]}"]
    performance = []
    for criterion in acceptance:
        value = metrics.get(criterion.metric)
        if value is None:
            performance.append((criterion.metric, "(not reported)", str(criterion), "FAIL"))
            gaps.append(f"metric {criterion.metric} is not in the manifest")
            continue
        passed = _OPS[criterion.op](value, criterion.threshold)
        performance.append((criterion.metric, f"{value:g}", str(criterion), "pass" if passed else "FAIL"))
        if not passed:
            gaps.append(f"{criterion.metric} = {value:g} fails {criterion}")
    for metric, value in sorted(metrics.items()):
        if all(metric != c.metric for c in acceptance):
            performance.append((metric, f"{value:g}", "(no criterion)", "-"))
    if not acceptance:
        gaps.append("no acceptance criteria were given")
    if not explanation_method:
        gaps.append("no explanation method for individual predictions")
    if not str(external.get("approver", "")):
        gaps.append("the manifest names no approver")
    return ModelRecord(
        name=statement.name,
        version=statement.version,
        generated_at=generated_at,
        manifest_sha256=manifest.sha256,
        key_id=manifest.key_id,
        files=dict(statement.files),
        built_at=str(run.get("metadata", {}).get("finishedOn", "")),
        builder=str(run["builder"]["id"]),
        code_version=str(build.get("internalParameters", {}).get("codeVersion", "")),
        intended_use=str(external.get("intendedUse", "")) or "(not stated)",
        approver=str(external.get("approver", "")) or "(none)",
        parameters=params,
        training_data=training,
        test_data=test,
        independence=independence,
        performance=tuple(performance),
        explanation_method=explanation_method or "(none)",
        explanation=tuple(explanation),
        history=tuple(_history(statement.name, entries)),
        gaps=tuple(gaps),
    )


def _history(name: str, entries: Sequence[tuple[int, Mapping[str, Any]]]) -> list[tuple[int, str, str]]:
    rows = []
    for leaf, entry in entries:
        kind = entry.get("type") or entry.get("entry") or entry.get("detector")
        time = str(entry.get("time", ""))
        if kind == "provenance.manifest" and entry.get("name") == name:
            rows.append(
                (
                    leaf,
                    time,
                    f"signed: version {entry.get('version')} by key {entry.get('key')}, "
                    f"manifest {str(entry.get('manifest_sha256'))[:16]}",
                )
            )
        elif kind == "provenance.deployment" and entry.get("name") == name:
            rows.append(
                (
                    leaf,
                    time,
                    f"deployed: version {entry.get('version')} by {entry.get('by')} to "
                    f"{entry.get('target')}; reason: {entry.get('reason')}",
                )
            )
        elif (
            kind == "access_decision"
            and entry.get("action") == "deploy_model"
            and (entry.get("resource") == f'Model::"{name}"')
        ):
            rows.append(
                (
                    leaf,
                    time,
                    f"deploy {entry.get('decision')} for {entry.get('principal')} ({'; '.join(_why(entry))})",
                )
            )
        elif kind == "provenance.load_refused" and name in str(entry.get("artifact", "")):
            rows.append(
                (
                    leaf,
                    time,
                    f"refused at {entry.get('purpose')}: {entry.get('error')}: "
                    f"{str(entry.get('message'))[:160]}",
                )
            )
        elif str(kind).startswith("guard."):
            rows.append(
                (
                    leaf,
                    time,
                    f"guard finding {kind}: {entry.get('technique')} "
                    f"{entry.get('technique_name')}: {entry.get('message')}",
                )
            )
    return rows


def _why(entry: Mapping[str, Any]) -> list[str]:
    return [str(r) for r in (entry.get("reasons") or entry.get("policy_ids") or [])]


def _sections(record: ModelRecord) -> list[tuple[str, list[list[str]] | str]]:
    return [
        (
            "Identity",
            [
                ["name", record.name],
                ["version", record.version],
                ["manifest SHA-256", record.manifest_sha256],
                ["signed by key", record.key_id],
                ["built", record.built_at],
                ["builder", record.builder],
                ["code version", record.code_version],
                ["approver", record.approver],
                *[[f"file {n}", d] for n, d in sorted(record.files.items())],
            ],
        ),
        ("Intended use", record.intended_use),
        (
            "Training and test data",
            [
                ["training data", "; ".join(record.training_data) or "(none referenced)"],
                ["test data", "; ".join(record.test_data) or "(none referenced)"],
                ["independence", record.independence],
                *[[f"parameter {k}", v] for k, v in sorted(record.parameters.items())],
            ],
        ),
        (
            "Performance against acceptance criteria",
            [["metric", "value", "criterion", "verdict"], *[list(r) for r in record.performance]],
        ),
        (
            "Explainability of each prediction",
            [
                ["method", record.explanation_method],
                *[[label, f"{value:+.1f}"] for label, value in record.explanation],
            ],
        ),
        (
            "Human review of changes (from the ledger)",
            [["leaf", "time", "event"], *[[str(a), b, c] for a, b, c in record.history]],
        ),
        ("Open gaps", "\n".join(f"- {g}" for g in record.gaps) or "none"),
    ]


def render_markdown(record: ModelRecord) -> str:
    """The record as Markdown."""
    lines = [
        f"# GMP model record: {record.name} {record.version}",
        "",
        f"Generated {format_rfc3339(record.generated_at)} from the signed manifest and the ledger.",
        "",
    ]
    for title, body in _sections(record):
        lines += [f"## {title}", ""]
        if isinstance(body, str):
            lines += [body, ""]
            continue
        header = body[0] if title.startswith(("Performance", "Human")) else ["item", "value"]
        rows = body[1:] if header is body[0] else body
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


def render_html(record: ModelRecord) -> str:
    """The record as a self-contained HTML page (every value escaped)."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Model record {esc(record.name)} {esc(record.version)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em;text-align:left}"
        "</style></head><body>",
        f"<h1>GMP model record: {esc(record.name)} {esc(record.version)}</h1>",
        f"<p>Generated {esc(format_rfc3339(record.generated_at))} from the signed manifest "
        "and the ledger.</p>",
    ]
    for title, body in _sections(record):
        parts.append(f"<h2>{esc(title)}</h2>")
        if isinstance(body, str):
            parts.append("<p>" + esc(body).replace("\n", "<br>") + "</p>")
            continue
        parts.append("<table>")
        for row in body:
            parts.append("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
