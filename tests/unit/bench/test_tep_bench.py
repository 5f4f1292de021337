"""`aseptic bench tep` end to end on synthetic data in the TEP file formats, and its protocol."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from bench_fixtures import write_tep
from typer.testing import CliRunner

import aseptic.bench._tep as tep_module
from aseptic.bench import load_tep, run_tep
from aseptic.cli.main import app
from aseptic.detect import Ensemble, FrozenValueDetector, TagPredictorDetector
from aseptic.errors import InputError

runner = CliRunner()


def _small_ensemble(*, seed: int = 0, false_alarm_rate: float = 0.01) -> Ensemble:
    return Ensemble(
        [TagPredictorDetector(seed=seed), FrozenValueDetector(seed=seed)],
        false_alarm_rate=false_alarm_rate,
        kinds=tep_module.TEP_KINDS,
    )


@pytest.fixture()
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """Protocol tests run the harness with a two-detector ensemble (the full one is tested once)."""
    monkeypatch.setattr(tep_module, "tep_ensemble", _small_ensemble)


@pytest.fixture(scope="module")
def tep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tep(tmp_path_factory.mktemp("tep"))


def _flags(out: Path, nn: int) -> list[str]:
    return (out / f"flags_d{nn:02d}_te.csv").read_text().splitlines()


def test_cli_runs_the_full_ensemble_and_writes_22_flag_files(tep_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["bench", "tep", "--data", str(tep_dir), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for nn in range(22):
        lines = _flags(out, nn)
        assert len(lines) == 960 and set(lines) <= {"0", "1"}
    ens = report["ensemble"]
    assert ens["far_d00_te"] <= 0.05 and ens["far_first160"] <= 0.05
    assert ens["mean_dr_21"] > 0.9  # a 3-sd bias on one variable is plain to see
    assert len(ens["detection_rate"]) == 21
    assert [b["method"][:6] for b in report["baselines"]] == ["PCA T2", "PCA SP"]
    assert report["cpu_us_per_reading"] > 0 and report["train_cpu_s"] > 0


def test_cli_plain_output_prints_rates_per_fault(tep_dir: Path, tmp_path: Path, small: None) -> None:
    result = runner.invoke(app, ["bench", "tep", "--data", str(tep_dir), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "IDV(21)" in result.stdout and "DR 18" in result.stdout and "FAR 1-160" in result.stdout


def test_missing_d00_is_refused_with_a_clear_error(tep_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tep_dir, data)
    (data / "d00.dat").unlink()
    result = runner.invoke(app, ["bench", "tep", "--data", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "d00.dat is missing" in "".join(result.stderr.splitlines())


def test_test_file_of_the_wrong_length_is_refused(tep_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tep_dir, data)
    x = np.loadtxt(data / "d07_te.dat")
    np.savetxt(data / "d07_te.dat", x[:959])
    with pytest.raises(InputError, match="d07_te.dat has 959 samples, expected 960"):
        load_tep(data)


def test_file_with_wrong_columns_is_refused(tep_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tep_dir, data)
    np.savetxt(data / "d03_te.dat", np.loadtxt(data / "d03_te.dat")[:, :50])
    with pytest.raises(InputError, match="50 columns, expected 52"):
        load_tep(data)


def test_d00_is_transposed_on_read(tep_dir: Path) -> None:
    data = load_tep(tep_dir)
    assert data.train.shape == (300, 52)
    assert sorted(data.tests) == list(range(22))


def test_flags_are_causal_per_file(tep_dir: Path, tmp_path: Path, small: None) -> None:
    run_tep(tep_dir, tmp_path / "a")
    data = tmp_path / "data"
    shutil.copytree(tep_dir, data)
    x = np.loadtxt(data / "d05_te.dat")
    x[500:] += 50.0  # change the future of one file
    np.savetxt(data / "d05_te.dat", x)
    run_tep(data, tmp_path / "b")
    before, after = _flags(tmp_path / "a", 5), _flags(tmp_path / "b", 5)
    assert before[:500] == after[:500]
    assert after[500:] == ["1"] * 460
    for nn in (0, 1, 21):  # no other file's flags move: no refit, no per-file threshold
        assert _flags(tmp_path / "a", nn) == _flags(tmp_path / "b", nn)


def test_scorer_never_sees_the_file_name(tep_dir: Path, tmp_path: Path, small: None) -> None:
    run_tep(tep_dir, tmp_path / "a")
    data = tmp_path / "data"
    shutil.copytree(tep_dir, data)
    (data / "d03_te.dat").rename(data / "tmp")
    (data / "d11_te.dat").rename(data / "d03_te.dat")
    (data / "tmp").rename(data / "d11_te.dat")
    run_tep(data, tmp_path / "b")
    assert _flags(tmp_path / "a", 3) == _flags(tmp_path / "b", 11)
    assert _flags(tmp_path / "a", 11) == _flags(tmp_path / "b", 3)


def test_out_that_is_a_file_is_refused(tep_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = runner.invoke(app, ["bench", "tep", "--data", str(tep_dir), "--out", str(tmp_path / "f")])
    assert result.exit_code == 2
    assert "not a directory" in "".join(result.stderr.splitlines())
