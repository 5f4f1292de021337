"""``aseptic demo`` end to end: a plant streams over secured OPC UA, an attack is caught, the
evidence verifies, and tampering with it afterwards is detected."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from aseptic.detect import TECHNIQUES

pytestmark = pytest.mark.integration


def aseptic(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aseptic.cli", *args], capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = aseptic("demo", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((out / "report.json").read_text(encoding="utf-8"))
    return out


def test_attacked_batch_is_detected_and_clean_batch_has_no_findings(demo_out: Path) -> None:
    report = json.loads((demo_out / "report.json").read_text(encoding="utf-8"))
    clean, attacked = report["batches"]
    assert not clean["attacked"] and clean["attack"] is None
    assert clean["findings"] == []
    assert attacked["attacked"] and attacked["attack"]["tag"] == "ph"
    assert attacked["detected"] is True
    assert 0 <= attacked["time_to_detect_h"] <= attacked["attack"]["end_h"] - attacked["attack"]["start_h"]
    assert report["ledger"]["verified"] is True
    telemetry = report["telemetry"]
    assert telemetry["rejected"] == 2 and telemetry["quarantined"] == 2  # the injected replay and forgery
    assert telemetry["readings"] > 50_000
    # Nothing lost between the server, the subscription and the ledger.
    assert telemetry["published"] == telemetry["received"] == telemetry["readings"]
    html = (demo_out / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and attacked["id"] in html


def test_demo_findings_name_contributing_tags_and_a_technique(demo_out: Path) -> None:
    """Issue 6: every Finding in the report says which tags drove it, with shares, expected vs
    observed values, and the ATT&CK for ICS technique it suggests; the attacked tag is named."""
    report = json.loads((demo_out / "report.json").read_text(encoding="utf-8"))
    attacked = report["batches"][1]
    findings = [f for batch in report["batches"] for f in batch["findings"]]
    assert findings
    for f in findings:
        assert f["tags"] and f["technique"] in TECHNIQUES, f
        assert [tag for tag, _ in f["contributions"]] == f["tags"]
        shares = [share for _, share in f["contributions"]]
        # The top tags (at most five) of a statistic: shares of the whole, largest first.
        assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0 + 1e-3
        assert len(f["expected"]) == len(f["observed"]) == len(f["tags"])
        assert f["cause"] in ("attack", "process fault")
    during = [f for f in attacked["findings"] if f["time_h"] >= attacked["attack"]["start_h"]]
    assert any(attacked["attack"]["tag"] in f["tags"] for f in during)


def test_ledger_verify_accepts_the_demo_evidence(demo_out: Path) -> None:
    result = aseptic("ledger", "verify", "--data-dir", str(demo_out / "data"))
    assert result.returncode == 0, result.stderr


def test_changed_reading_in_the_demo_ledger_is_named_by_verify(demo_out: Path, tmp_path: Path) -> None:
    copy = tmp_path / "data"
    subprocess.run(["cp", "-a", str(demo_out / "data"), str(copy)], check=True)
    with sqlite3.connect(copy / "ledger.db") as conn:
        conn.execute(
            "UPDATE readings SET value = value + 0.5 WHERE (leaf, position) ="
            " (SELECT leaf, position FROM readings WHERE tag = 'temperature_k' LIMIT 1)"
        )
    result = aseptic("ledger", "verify", "--data-dir", str(copy))
    assert result.returncode == 1
    assert "readings" in result.stdout + result.stderr
