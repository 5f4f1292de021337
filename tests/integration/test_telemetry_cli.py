"""``aseptic telemetry replay``: a tag history through the chain of custody, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aseptic.cli.main import app

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "ALCOA-ORIGINAL")

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def test_replayed_history_is_logged_and_verifies(tmp_path: Path) -> None:
    code, _, err = run("twin", "run", "--batches", "1", "--seed", "3", "--out", str(tmp_path / "runs"))
    assert code == 0, err
    (history,) = sorted((tmp_path / "runs").glob("*.csv"))
    data = tmp_path / "data"
    code, out, err = run(
        "telemetry",
        "replay",
        str(history),
        "--start",
        "2026-01-01T00:00:00Z",
        "--data-dir",
        str(data),
        "--json",
    )
    assert code == 0, err
    counts = json.loads(out)
    assert counts["readings"] > 30_000 and counts["rejected"] == 0
    code, out, err = run("ledger", "verify", "--data-dir", str(data))
    assert code == 0, err
    code, out, err = run(
        "historian",
        "query",
        "ph",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-01T01:00:00Z",
        "--data-dir",
        str(data),
        "--json",
    )
    assert code == 0, err
    times = [row["time"] for row in json.loads(out)]
    # Samples at 0.2, 0.4, 0.6 and 0.8 h; the one at 1.0 h is the query's exclusive end.
    assert times == [f"2026-01-01T00:{m:02d}:00.000000Z" for m in (12, 24, 36, 48)]


def test_malformed_line_names_line_and_column_and_keeps_what_came_before(tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text("time_h,phase,ph\n0.2,BATCH_GROWTH,6.5\n0.4,BATCH_GROWTH,six\n", encoding="utf-8")
    data = tmp_path / "data"
    code, _, err = run(
        "telemetry", "replay", str(history), "--start", "2026-01-01T00:00:00Z", "--data-dir", str(data)
    )
    assert code == 2
    assert "line 3, column 3" in err
    code, _, err = run("ledger", "verify", "--data-dir", str(data))
    assert code == 0, err


def test_start_without_offset_is_refused(tmp_path: Path) -> None:
    code, _, err = run("telemetry", "replay", str(tmp_path / "x.csv"), "--start", "2026-01-01T00:00:00")
    assert code == 2 and "--start" in err
