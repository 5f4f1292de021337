"""`aseptic bench batadal` end to end on synthetic data in the BATADAL formats; the S score."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from bench_fixtures import write_batadal
from typer.testing import CliRunner

import aseptic.bench._batadal as batadal_module
from aseptic.bench import BatadalTable, attack_events, batadal_score, load_batadal_csv, run_batadal
from aseptic.cli.main import app
from aseptic.detect import Decision
from aseptic.errors import InputError

runner = CliRunner()


@pytest.fixture(scope="module")
def batadal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_batadal(tmp_path_factory.mktemp("batadal"))


def test_cli_writes_one_prediction_per_test_hour_with_the_time_verbatim(
    batadal_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["bench", "batadal", "--data", str(batadal_dir), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    with (out / "predictions_test.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["DATETIME", "ATT_FLAG"]
    test = load_batadal_csv(batadal_dir / "test_unlabelled.csv", labelled=False)
    assert [r[0] for r in rows[1:]] == list(test.times)
    assert {r[1] for r in rows[1:]} <= {"0", "1"}
    assert report["test"]["rows"] == 120
    cv = report["dataset04_cv"]
    assert cv["attacks"] == 2 and len(cv["fold_settings"]) == 4
    assert report["test"]["setting"]["features"] in batadal_module.VARIANTS
    assert 0.0 <= cv["S"] <= 1.0
    assert report["dataset04_label_free"]["attacks_detected"] == 2
    assert isinstance(report["control_rules"], list)
    assert "dataset04_label_free_differences" in report


def test_harness_reads_only_the_three_competition_files(
    batadal_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    real = batadal_module.load_batadal_csv

    def spy(path: Path, *, labelled: bool) -> BatadalTable:
        read.append(path.name)
        return real(path, labelled=labelled)

    monkeypatch.setattr(batadal_module, "load_batadal_csv", spy)
    run_batadal(batadal_dir, tmp_path / "out")
    assert sorted(read) == ["dataset03.csv", "dataset04_partial_labels.csv", "test_unlabelled.csv"]


def test_missing_file_is_refused_with_a_clear_error(batadal_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "dataset03.csv").write_bytes((batadal_dir / "dataset03.csv").read_bytes())
    result = runner.invoke(app, ["bench", "batadal", "--data", str(data), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "dataset04_partial_labels.csv is missing" in "".join(result.stderr.splitlines())


def test_test_file_with_other_variables_is_refused(batadal_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("dataset03.csv", "dataset04_partial_labels.csv"):
        (data / name).write_bytes((batadal_dir / name).read_bytes())
    text = (batadal_dir / "test_unlabelled.csv").read_text().replace("P_J269", "P_J999", 1)
    (data / "test_unlabelled.csv").write_text(text)
    with pytest.raises(InputError, match="other variables"):
        run_batadal(data, tmp_path / "o")


def test_label_other_than_0_or_1_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("DATETIME,L_T1,ATT_FLAG\n01/01/17 00,1.0,-999\n")
    with pytest.raises(InputError, match="ATT_FLAG is -999.0"):
        load_batadal_csv(path, labelled=True)


def test_non_numeric_value_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("DATETIME,L_T1\n01/01/17 00,1.0\n01/01/17 01,abc\n")
    with pytest.raises(InputError, match="line 3"):
        load_batadal_csv(path, labelled=False)


def test_s_score_of_a_perfect_detector_is_1() -> None:
    labels = [0] * 10 + [1] * 5 + [0] * 10 + [1] * 3
    assert batadal_score(labels, labels).s == 1.0


def test_s_score_counts_time_to_detect_and_missed_attacks() -> None:
    labels = [0] * 4 + [1] * 4 + [0] * 4 + [1] * 2
    flags = [0] * 4 + [0, 1, 1, 1] + [1, 0, 0, 0] + [0, 0]
    s = batadal_score(flags, labels)
    assert attack_events(labels) == [(4, 8), (12, 14)]
    assert s.ttd_h == (1.0, 2.0)
    assert s.s_ttd == pytest.approx(1 - (1 / 4 + 2 / 2) / 2)
    assert s.tpr == pytest.approx(3 / 6) and s.tnr == pytest.approx(7 / 8)
    assert s.s == pytest.approx(0.5 * s.s_ttd + 0.5 * (s.tpr + s.tnr) / 2)
    assert s.detected == 1


def test_strict_variant_ignores_the_loose_rules_and_the_loose_variant_the_strict_ones() -> None:
    members = ("predictor.max", "rule.rule", "rule_loose.rule")
    ratios = np.array([[0.5, 0.0, 3.0], [0.2, 2.0, 2.0], [4.0, 0.0, 0.0]])
    decision = Decision(members, ratios, ratios.max(axis=1), np.zeros(3))
    np.testing.assert_array_equal(batadal_module.variant_score(decision, loose_rules=False), [0.5, 2.0, 4.0])
    np.testing.assert_array_equal(batadal_module.variant_score(decision, loose_rules=True), [3.0, 2.0, 4.0])


def test_ensemble_gets_the_hydraulic_members_only_with_levels_and_flows() -> None:
    with_tanks = batadal_module.batadal_ensemble(columns=["L_T1", "F_PU1", "S_PU1"])
    assert {"rule.rule", "rule_loose.rule", "balance.balance"} <= set(with_tanks.members)
    assert "autoencoder.recon" not in with_tanks.members
    without = batadal_module.batadal_ensemble(columns=["P_J1", "P_J2"])
    assert not {"rule.rule", "balance.balance"} & set(without.members)
