"""The requirement catalogue (requirements.yaml) and the test results that trace to it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from aseptic.errors import InputError

__all__ = ["RECORD_VERSION", "Requirement", "TestResult", "TestRun", "load_run", "requirements"]

RECORD_VERSION = 1
Outcome = Literal["passed", "failed", "skipped", "error"]
_OUTCOMES = ("passed", "failed", "skipped", "error")


@dataclass(frozen=True)
class Requirement:
    id: str
    source: str
    risk: str
    text: str


@dataclass(frozen=True)
class TestResult:
    """One test of the last recorded run: its node id, the requirements it names, its outcome."""

    nodeid: str
    requirements: tuple[str, ...]
    outcome: Outcome
    duration_s: float


@dataclass(frozen=True)
class TestRun:
    """A recorded pytest run (``pytest --validation-record FILE``)."""

    started: str
    finished: str
    python: str
    platform: str
    commit: str | None
    results: tuple[TestResult, ...]


@cache
def requirements() -> tuple[Requirement, ...]:
    """The catalogue shipped with the package, in file order."""
    text = (resources.files("aseptic.validation") / "requirements.yaml").read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    found = tuple(
        Requirement(str(r["id"]), str(r["source"]), str(r["risk"]), " ".join(str(r["text"]).split()))
        for r in document["requirements"]
    )
    ids = [r.id for r in found]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"requirements.yaml: duplicate requirement ids {duplicates}")
    return found


def load_run(path: Path) -> TestRun:
    """Read a run recorded by the pytest plugin.

    Raises:
        InputError: missing, not JSON, another format version, or malformed entries.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the test record ({exc.strerror})",
            hint="record one with `pytest --validation-record FILE` (or `make validation`)",
        ) from None
    except ValueError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("version") != RECORD_VERSION:
        version = document.get("version") if isinstance(document, dict) else None
        raise InputError(f"{path}: record format version {version!r}, expected {RECORD_VERSION}")
    try:
        results = tuple(_result(entry) for entry in document["results"])
        return TestRun(
            started=str(document["started"]),
            finished=str(document["finished"]),
            python=str(document["python"]),
            platform=str(document["platform"]),
            commit=document.get("commit"),
            results=results,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: malformed test record ({exc!r})") from None


def _result(entry: Mapping[str, Any]) -> TestResult:
    outcome = entry["outcome"]
    if outcome not in _OUTCOMES:
        raise ValueError(f"outcome {outcome!r}")
    ids: Sequence[str] = entry["requirements"]
    return TestResult(str(entry["nodeid"]), tuple(str(i) for i in ids), outcome, float(entry["duration_s"]))
