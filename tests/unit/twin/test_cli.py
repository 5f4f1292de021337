"""``aseptic twin run`` (typer's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aseptic.cli.main import app
from aseptic.twin import TAGS

pytestmark = pytest.mark.requirement("ASE-TWIN")

runner = CliRunner()


@pytest.fixture(scope="module")
def acceptance_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    first = tmp_path_factory.mktemp("run1")
    second = tmp_path_factory.mktemp("run2")
    result = runner.invoke(app, ["twin", "run", "--batches", "3", "--seed", "7", "--out", str(first)])
    assert result.exit_code == 0, result.output
    again = runner.invoke(
        app, ["twin", "run", "--batches", "3", "--seed", "7", "--out", str(second), "--json"]
    )
    assert again.exit_code == 0, again.output
    return first, second, again.stdout


def test_acceptance_penicillin_and_ph_within_bounds(acceptance_runs: tuple[Path, Path, str]) -> None:
    summary = json.loads((acceptance_runs[0] / "summary.json").read_text())
    assert len(summary["batches"]) == 3
    for batch in summary["batches"]:
        assert 12.0 <= batch["final_penicillin_g_per_l"] <= 40.0, batch
        assert 6.3 <= batch["min_ph"] and batch["max_ph"] <= 6.7, batch
        assert batch["faults"] == []
        assert set(batch) == {
            "id",
            "seed",
            "duration_h",
            "final_penicillin_g_per_l",
            "harvested_penicillin_kg",
            "min_ph",
            "max_ph",
            "min_temperature_k",
            "max_temperature_k",
            "faults",
        }


def test_same_seed_writes_byte_identical_files(acceptance_runs: tuple[Path, Path, str]) -> None:
    first, second, _ = acceptance_runs
    names = sorted(p.name for p in first.iterdir())
    assert names == ["batch-000.csv", "batch-001.csv", "batch-002.csv", "summary.json"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_json_output_is_the_summary(acceptance_runs: tuple[Path, Path, str]) -> None:
    first, _, stdout = acceptance_runs
    assert json.loads(stdout) == json.loads((first / "summary.json").read_text())


def test_csv_has_time_phase_and_every_tag(acceptance_runs: tuple[Path, Path, str]) -> None:
    lines = (acceptance_runs[0] / "batch-000.csv").read_text().splitlines()
    assert lines[0].split(",") == ["time_h", "phase", *(t.name for t in TAGS)]
    first = lines[1].split(",")
    assert first[0] == "0.200000" and first[1] == "BATCH_GROWTH"
    assert lines[-1].split(",")[1] == "HARVEST"


def test_bad_fault_exits_2_with_the_valid_list(tmp_path: Path) -> None:
    result = runner.invoke(app, ["twin", "run", "--seed", "1", "--out", str(tmp_path), "--fault", "9"])
    assert result.exit_code == 2
    assert "unknown fault '9'" in result.output and "PH_SENSOR_DRIFT" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "summary.json").exists()


def test_fault_by_name_is_recorded_in_the_summary(tmp_path: Path) -> None:
    args = ["twin", "run", "--seed", "2", "--out", str(tmp_path), "--fault", "base_flow_drop"]
    result = runner.invoke(app, [*args, "--duration-h", "90", "--paa-control", "true", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["batches"][0]["faults"] == [4]
