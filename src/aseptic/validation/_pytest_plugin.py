"""A pytest plugin: the ``requirement`` marker, and ``--validation-record FILE`` which writes each
test's requirement ids and outcome for ``aseptic validation report``.

Enabled for this project's suite through ``-p aseptic.validation._pytest_plugin`` in pyproject.toml.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aseptic.validation._requirements import RECORD_VERSION


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--validation-record",
        metavar="FILE",
        default=None,
        help="write each test's requirement ids and outcome to FILE (aseptic validation report)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requirement(*ids): the requirement ids (src/aseptic/validation/requirements.yaml) a test proves",
    )
    path = config.getoption("--validation-record")
    if path is not None:
        recorder = _Recorder(Path(path), Path(str(config.rootpath)))
        config.pluginmanager.register(recorder, "validation-recorder")


class _Recorder:
    """Collects each test's requirement ids and outcome; writes them when the session ends."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path, self.root = path, root
        self.started = _now()
        self.record: dict[str, dict[str, Any]] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            ids = {str(arg) for mark in item.iter_markers("requirement") for arg in mark.args}
            self.record[item.nodeid] = {
                "nodeid": item.nodeid,
                "requirements": sorted(ids),
                "outcome": "skipped",  # until a report says otherwise (deselected or not reached)
                "duration_s": 0.0,
            }

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.record.get(report.nodeid)
        if entry is None:
            return
        if report.when == "call":
            entry["outcome"] = "passed" if report.passed else "failed" if report.failed else "skipped"
            entry["duration_s"] = round(report.duration, 4)
        elif report.failed:  # an error in setup or teardown
            entry["outcome"] = "error"

    def pytest_sessionfinish(self) -> None:
        document = {
            "version": RECORD_VERSION,
            "started": self.started,
            "finished": _now(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "commit": _commit(self.root),
            "results": sorted(self.record.values(), key=lambda e: str(e["nodeid"])),
        }
        self.path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _commit(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, only to label the record
            cwd=root, capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None
