"""Crash test at small scale: SIGKILL an ingest process at random moments; nothing acknowledged is
lost and the log verifies after every kill (full scale: benchmarks/ledger_crash.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "A11-7")

ROOT = Path(__file__).resolve().parents[3]


def test_sigkill_during_ingest_loses_no_acknowledged_reading(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.ledger_crash",
            "--runs",
            "5",
            "--seed",
            "7",
            "--data",
            str(tmp_path),
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["runs"] == 5
    assert result["acked_readings"] > 0  # the kills did land while readings were being acknowledged
    assert result["lost_readings"] == 0 and result["lost_envelopes"] == 0, result["failures"]
    assert result["verified_after_kill"] == 5, result["failures"]
    assert result["restarts_failed"] == 0, result["failures"]
