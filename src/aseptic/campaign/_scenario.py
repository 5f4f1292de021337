"""Scenario files: YAML checked against the published JSON Schema, then against what the package
knows (technique catalogues, attack primitives and their parameters, detector families, batch timing).

Every problem in a file is reported, each with the file and the path inside it, e.g.
``ph-bias.yaml: steps[0].params.offset: expected a number, got str 'high'``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from aseptic.campaign._primitive_specs import PRIMITIVES, check_params
from aseptic.campaign._techniques import techniques
from aseptic.errors import InputError

__all__ = [
    "DETECTOR_FAMILIES",
    "MAX_SCENARIO_BYTES",
    "Expectation",
    "Preconditions",
    "Scenario",
    "Step",
    "builtin_scenario_dir",
    "load_library",
    "load_scenario",
    "parse_scenario",
    "scenario_schema",
]

MAX_SCENARIO_BYTES = 256 * 1024
GROWTH_END_H = 24.0  # the twin's batch-growth phase ends here (twin._phases)
DEFAULT_BATCH_H = 230.0  # the twin's nominal batch length

# What an expected detection may name: a detector family or an integrity check that raises Findings.
DETECTOR_FAMILIES = frozenset(
    {
        "access_analytics",
        "alarm_audit",
        "attestation",
        "control_loop",
        "cusum",
        "ensemble",
        "gateway",
        "ledger_verify",
        "model_guard",
        "mspc",
        "physics",
        "provenance",
        "ransomware",
        "recipe",
        "replay",
        "stale",
        "twin_residual",
    }
)


@dataclass(frozen=True)
class Preconditions:
    unit: str = "fermenter-01"
    phase: str | None = None
    after_h: float = 0.0
    batch_duration_h: float = DEFAULT_BATCH_H


@dataclass(frozen=True)
class Step:
    """One malicious step: a primitive with parameters, from ``at_h`` for ``duration_h`` (None: a
    one-off action, or until the end of the batch for a windowed primitive)."""

    primitive: str
    at_h: float
    duration_h: float | None
    params: Mapping[str, Any]
    techniques: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Expectation:
    detector: str
    within_h: float = 2.0
    technique: str | None = None


@dataclass(frozen=True)
class Scenario:
    id: str
    name: str
    description: str
    techniques: tuple[str, ...]
    preconditions: Preconditions
    steps: tuple[Step, ...]
    cleanup: tuple[str, ...]
    expected: tuple[Expectation, ...]
    impact: tuple[str, ...]
    source: str

    @property
    def first_malicious_h(self) -> float:
        return min(step.at_h for step in self.steps)


@cache
def scenario_schema() -> dict[str, Any]:
    """The published JSON Schema of a scenario file (``campaign/scenario.schema.json``)."""
    text = (resources.files("aseptic.campaign") / "scenario.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Any:
    return jsonschema_rs.validator_for(scenario_schema())


def builtin_scenario_dir() -> Path:
    """The scenario library shipped with the package."""
    return Path(str(resources.files("aseptic.campaign") / "scenarios"))


def load_scenario(path: Path) -> Scenario:
    """Read and check one scenario file.

    Raises:
        InputError: unreadable, too large, not YAML, or any schema or semantic problem (all listed).
    """
    try:
        size = path.stat().st_size
        if size > MAX_SCENARIO_BYTES:
            raise InputError(f"{path}: {size} bytes, more than the {MAX_SCENARIO_BYTES} a scenario may have")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read scenario file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise InputError(f"{path}: not valid YAML at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    return parse_scenario(document, source=str(path))


def parse_scenario(document: object, *, source: str = "<scenario>") -> Scenario:
    """Check a decoded scenario document and build the ``Scenario``.

    Raises:
        InputError: every schema and semantic problem found, one per line.
    """
    problems = [
        f"{source}: {_path_of(error.instance_path)}: {error.message}"
        for error in _validator().iter_errors(document)
    ]
    if problems or not isinstance(document, dict):
        raise _refusal(source, problems or [f"{source}: a scenario is a mapping"])
    problems.extend(_semantic_problems(document, source))
    if problems:
        raise _refusal(source, problems)
    return _build(document, source)


def load_library(directories: Iterable[Path] = (), *, include_builtin: bool = True) -> tuple[Scenario, ...]:
    """Every ``*.yaml``/``*.yml`` scenario in the built-in library and ``directories``, by id.

    Raises:
        InputError: a file is invalid, a directory is missing, or two scenarios share an id.
    """
    folders = ([builtin_scenario_dir()] if include_builtin else []) + list(directories)
    found: dict[str, Scenario] = {}
    for folder in folders:
        if not folder.is_dir():
            raise InputError(f"scenario directory {folder} does not exist or is not a directory")
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            scenario = load_scenario(path)
            if scenario.id in found:
                raise InputError(
                    f"{path}: scenario id {scenario.id!r} is already used by {found[scenario.id].source}"
                )
            found[scenario.id] = scenario
    return tuple(found[key] for key in sorted(found))


def _refusal(source: str, problems: list[str]) -> InputError:
    count = len(problems)
    return InputError(
        f"scenario {source} is invalid ({count} problem{'s' if count != 1 else ''}):\n  "
        + "\n  ".join(problems),
        hint="the format is documented in docs/campaign.md; `aseptic campaign validate FILE` checks a file",
    )


def _path_of(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _semantic_problems(document: Mapping[str, Any], source: str) -> list[str]:
    problems: list[str] = []
    known = techniques()
    for index, technique_id in enumerate(document["techniques"]):
        if technique_id not in known:
            problems.append(f"{source}: techniques[{index}]: unknown technique id {technique_id!r}")
    pre = document.get("preconditions", {})
    after_h = float(pre.get("after_h", 0.0))
    duration = float(pre.get("batch_duration_h", DEFAULT_BATCH_H))
    phase = pre.get("phase")
    if after_h >= duration:
        problems.append(
            f"{source}: preconditions.after_h: {after_h:g} h is not before the batch end ({duration:g} h)"
        )
    executed: set[str] = set()
    previous_h = -1.0
    for index, step in enumerate(document["steps"]):
        where = f"{source}: steps[{index}]"
        spec = PRIMITIVES.get(step["primitive"])
        if spec is None:
            problems.append(
                f"{where}.primitive: unknown primitive {step['primitive']!r} (known: {', '.join(PRIMITIVES)})"
            )
            continue
        executed.update(spec.techniques)
        problems.extend(check_params(spec, step.get("params", {}), f"{where}.params"))
        at_h = float(step["at_h"])
        end_h = (
            at_h + float(step["duration_h"])
            if "duration_h" in step
            else (duration if spec.needs_window else at_h)
        )
        if at_h < previous_h:
            problems.append(
                f"{where}.at_h: {at_h:g} h is before the previous step ({previous_h:g} h):"
                " order steps by time"
            )
        previous_h = at_h
        if at_h < after_h:
            problems.append(f"{where}.at_h: {at_h:g} h is before preconditions.after_h ({after_h:g} h)")
        if end_h > duration:
            problems.append(
                f"{where}: ends at {end_h:g} h, after the batch ends ({duration:g} h): impossible timing"
            )
        if "duration_h" in step and not spec.needs_window:
            problems.append(f"{where}.duration_h: {spec.name} is a one-off action and takes no duration")
        if phase == "batch_growth" and end_h > GROWTH_END_H:
            problems.append(
                f"{where}: runs to {end_h:g} h, past the batch-growth phase (ends {GROWTH_END_H:g} h)"
            )
        if phase == "fed_batch_production" and at_h <= GROWTH_END_H:
            problems.append(
                f"{where}.at_h: {at_h:g} h is in batch growth,"
                f" not fed-batch production (after {GROWTH_END_H:g} h)"
            )
    for index, technique_id in enumerate(document["techniques"]):
        if technique_id in known and technique_id not in executed:
            problems.append(
                f"{source}: techniques[{index}]: {technique_id} is claimed but no step executes it"
                f" (steps execute: {', '.join(sorted(executed)) or 'nothing'})"
            )
    for index, expectation in enumerate(document["expected"]):
        if expectation["detector"] not in DETECTOR_FAMILIES:
            problems.append(
                f"{source}: expected[{index}].detector: unknown detector family {expectation['detector']!r}"
                f" (known: {', '.join(sorted(DETECTOR_FAMILIES))})"
            )
        technique_id = expectation.get("technique")
        if technique_id is not None and technique_id not in known:
            problems.append(f"{source}: expected[{index}].technique: unknown technique id {technique_id!r}")
    return problems


def _build(document: Mapping[str, Any], source: str) -> Scenario:
    pre = document.get("preconditions", {})
    steps = tuple(
        Step(
            primitive=step["primitive"],
            at_h=float(step["at_h"]),
            duration_h=float(step["duration_h"]) if "duration_h" in step else None,
            params={**_defaults(step["primitive"]), **step.get("params", {})},
            techniques=PRIMITIVES[step["primitive"]].techniques,
            note=step.get("note", ""),
        )
        for step in document["steps"]
    )
    return Scenario(
        id=document["id"],
        name=document["name"],
        description=document["description"].strip(),
        techniques=tuple(document["techniques"]),
        preconditions=Preconditions(
            unit=pre.get("unit", "fermenter-01"),
            phase=pre.get("phase"),
            after_h=float(pre.get("after_h", 0.0)),
            batch_duration_h=float(pre.get("batch_duration_h", DEFAULT_BATCH_H)),
        ),
        steps=steps,
        cleanup=tuple(document.get("cleanup", ())),
        expected=tuple(
            Expectation(e["detector"], float(e.get("within_h", 2.0)), e.get("technique"))
            for e in document["expected"]
        ),
        impact=tuple(document.get("impact", ())),
        source=source,
    )


def _defaults(primitive: str) -> dict[str, Any]:
    return {name: p.default for name, p in PRIMITIVES[primitive].params.items() if not p.required}
