"""Tamper test at small scale: every random single mutation of a stored log is detected by
``aseptic ledger verify`` (full scale: benchmarks/ledger_tamper.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_random_single_mutations_of_a_stored_log_are_all_detected(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, "-m", "benchmarks.ledger_tamper", "--mutations", "50", "--seed", "3"]
    done = subprocess.run(
        [*command, "--data", str(tmp_path), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["mutations"] == 50
    assert all(row["mutations"] > 0 for row in result["by_kind"].values()), result["by_kind"]
    assert result["detected"] == result["counted"] > 40, result["misses"]
