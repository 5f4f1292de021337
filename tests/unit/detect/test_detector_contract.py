"""One contract suite over every detector: determinism, causality, finite scores, missing tags, save/load.

Batch detectors (fed-batch samples with batch time) and tabular detectors (samples x variables
streams, and their ensemble) each run the same checks in their own shape of data. Every detector
class of ``aseptic.detect`` is here: the batch-model ones (MSPC aligned and static, CUSUM, recipe,
3-sigma) on synthetic batches; the integrity checks (stale, replay, physics), the twin residuals and
a tabular ensemble run by the engine's adapter on short twin batches (the physics checks need the
twin's flows and loops); the tabular detectors and the ensemble on synthetic streams.
``ThreeSigmaDetector`` is a baseline kept for comparison and has no file format (no round trip).
Batched scoring equals per-sample scoring bit for bit: test_block_scoring.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from detect_synthetic import MakeBatch, Sample
from tabular_synthetic import COLUMNS, KINDS, make_stream

from aseptic.detect import (
    AutoencoderDetector,
    Detector,
    DynamicPcaDetector,
    Ensemble,
    EwmaResidualDetector,
    FrozenValueDetector,
    MassBalanceDetector,
    MspcDetector,
    PcaDetector,
    PhysicsDetector,
    RecipeDetector,
    RedundancyDetector,
    ReplayDetector,
    ResidualCusum,
    Score,
    StaleValueDetector,
    TabularDetector,
    TabularEnsembleDetector,
    TagPredictorDetector,
    ThreeSigmaDetector,
    TwinResidualDetector,
    fit_model,
    load_detector,
    load_ensemble_detector,
    load_model,
    load_tabular_detector,
    model_digest,
    save_detector,
    save_model,
    save_tabular_detector,
)
from aseptic.errors import InputError, IntegrityError
from aseptic.twin import simulate_batches

FACTORIES: dict[str, Callable[[], Detector]] = {
    "mspc": lambda: MspcDetector(seed=7),
    "pca-static": lambda: MspcDetector(aligned=False, seed=7),
    "cusum": lambda: ResidualCusum(seed=7),
    "recipe": lambda: RecipeDetector(seed=7),
    "3sigma": lambda: ThreeSigmaDetector(),
}


@pytest.fixture(params=sorted(FACTORIES))
def detector_factory(request: pytest.FixtureRequest) -> Callable[[], Detector]:
    return FACTORIES[request.param]


def _scores(detector: Detector, batch: list[Sample]) -> list[tuple[Score, ...]]:
    detector.reset()
    return [detector.score_one(s) for s in batch]


def test_same_seed_and_data_give_identical_scores(
    detector_factory: Callable[[], Detector], training_batches: list[list[Sample]], batch_maker: MakeBatch
) -> None:
    test_batch = batch_maker(1001)
    first, second = detector_factory(), detector_factory()
    first.fit(training_batches)
    second.fit(training_batches)
    assert _scores(first, test_batch) == _scores(second, test_batch)


def test_scores_are_finite_and_named_after_the_detector(
    detector_factory: Callable[[], Detector], training_batches: list[list[Sample]], batch_maker: MakeBatch
) -> None:
    detector = detector_factory()
    detector.fit(training_batches)
    for scores in _scores(detector, batch_maker(1002)):
        assert scores
        for score in scores:
            assert score.statistic.startswith(detector.name + ".")
            assert math.isfinite(score.value) and score.value >= 0
            assert math.isfinite(score.limit) and score.limit > 0
            shares = [share for _, share in score.contributions]
            assert shares == sorted(shares, reverse=True)
            assert not shares or math.isclose(sum(shares), 1.0, rel_tol=1e-9)


def test_missing_and_nan_tags_are_tolerated(
    detector_factory: Callable[[], Detector], training_batches: list[list[Sample]], batch_maker: MakeBatch
) -> None:
    detector = detector_factory()
    detector.fit(training_batches)
    detector.reset()
    for sample in batch_maker(1003)[:60]:
        degraded = {k: v for k, v in sample.items() if k not in ("ph", "volume_l", "sugar_feed_l_per_h")}
        degraded["dissolved_o2_mg_per_l"] = math.nan
        only_time = {"batch_time_h": sample["batch_time_h"]}
        for scores in (detector.score_one(degraded), detector.score_one(only_time)):
            assert all(math.isfinite(s.value) for s in scores)


@pytest.mark.parametrize("name", ["mspc", "cusum", "recipe"])
def test_sample_without_batch_time_is_refused(name: str, training_batches: list[list[Sample]]) -> None:
    detector = FACTORIES[name]()
    detector.fit(training_batches)
    with pytest.raises(InputError, match="batch_time_h"):
        detector.score_one({"temperature_k": 298.0})


def test_unfitted_detector_says_so(detector_factory: Callable[[], Detector]) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        detector_factory().score_one({"batch_time_h": 1.0})


def test_training_on_too_few_batches_is_refused(
    detector_factory: Callable[[], Detector], training_batches: list[list[Sample]]
) -> None:
    detector = detector_factory()
    if isinstance(detector, ThreeSigmaDetector):
        with pytest.raises(InputError):
            detector.fit([])
        return
    with pytest.raises(InputError, match="at least 3"):
        detector.fit(training_batches[:2])


def test_three_training_batches_are_enough(
    detector_factory: Callable[[], Detector], training_batches: list[list[Sample]], batch_maker: MakeBatch
) -> None:
    """Each held-out fold then fits on two batches; the model must still produce finite limits."""
    detector = detector_factory()
    detector.fit(training_batches[:3])
    for scores in _scores(detector, batch_maker(1004)):
        assert all(math.isfinite(s.value) and math.isfinite(s.limit) for s in scores)


# --- The same contract for the existing batch detectors: causality and save/load round trip ---


CAUSAL: dict[str, Callable[[], Detector]] = {
    **FACTORIES,
    "stale": StaleValueDetector,
    "replay": ReplayDetector,
}


@pytest.mark.parametrize("name", sorted(CAUSAL))
def test_batch_score_of_a_sample_does_not_change_when_later_samples_change(
    name: str, training_batches: list[list[Sample]], batch_maker: MakeBatch
) -> None:
    detector = CAUSAL[name]()
    detector.fit(training_batches)
    batch = batch_maker(1005)
    altered = [dict(s) for s in batch]
    for s in altered[40:]:
        s["temperature_k"] = batch[40]["temperature_k"] + 5.0  # frozen, and off by 5 K
        s["sugar_feed_l_per_h"] = s["sugar_feed_l_per_h"] + 3.0
        s["agitator_rpm"] = s["agitator_rpm"] + 50.0
    before, after = _scores(detector, batch), _scores(detector, altered)
    assert before[:40] == after[:40]
    if name != "replay":  # a frozen tag is the stale detector's, not replay's (flat windows are skipped)
        assert before[40:] != after[40:]


def test_batch_model_save_load_round_trip_scores_identically(
    tmp_path: Path, training_batches: list[list[Sample]], batch_maker: MakeBatch
) -> None:
    model = fit_model(training_batches, seed=7)
    save_model(model, tmp_path / "m.json")
    loaded = load_model(tmp_path / "m.json")
    batch = batch_maker(1006)
    assert _scores(MspcDetector(model), batch) == _scores(MspcDetector(loaded), batch)
    assert _scores(ResidualCusum(model), batch) == _scores(ResidualCusum(loaded), batch)


# --- Tabular detectors (samples x variables streams) and the ensemble ---

TABULAR: dict[str, Callable[[], TabularDetector]] = {
    "pca": lambda: PcaDetector(components=3, seed=7),
    "dpca": lambda: DynamicPcaDetector(lags=2, seed=7),
    "predictor": lambda: TagPredictorDetector(seed=7),
    "ewma": lambda: EwmaResidualDetector(lam=0.2, seed=7),
    "autoencoder": lambda: AutoencoderDetector(hidden=8, bottleneck=3, max_iter=60, seed=7),
    "frozen": lambda: FrozenValueDetector(seed=7),
    # The level rules need pumps switching on a level; their contract runs on a simulated tank
    # (test_hydraulic_detectors.py). The mass balance runs here too: level change vs the inflow.
    "balance": lambda: MassBalanceDetector(levels=["level"], flows=["flow_in", "valve"], seed=7),
}


def _ensemble() -> Ensemble:
    return Ensemble(
        [TagPredictorDetector(seed=7), DynamicPcaDetector(lags=1, seed=7), FrozenValueDetector(seed=7)],
        false_alarm_rate=0.02,
        kinds=KINDS,
    )


class _EnsembleAsDetector:
    """The ensemble under the tabular contract: one statistic, its score (max ratio to the limits)."""

    name = "ensemble"
    statistics = ("score",)

    def __init__(self, ensemble: Ensemble | None = None) -> None:
        self.ensemble = ensemble or _ensemble()

    def fit(self, x: np.ndarray, columns: tuple[str, ...]) -> None:
        self.ensemble.fit(x, columns)

    def score(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return {"score": self.ensemble.decide(x).score}


@pytest.fixture(params=[*sorted(TABULAR), "ensemble"])
def tabular_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _make(name: str) -> Any:
    return _EnsembleAsDetector() if name == "ensemble" else TABULAR[name]()


@pytest.fixture(scope="module")
def normal() -> np.ndarray:
    return make_stream(0, 300)


def test_tabular_same_seed_and_data_give_identical_scores(tabular_name: str, normal: np.ndarray) -> None:
    first, second = _make(tabular_name), _make(tabular_name)
    first.fit(normal, COLUMNS)
    second.fit(normal, COLUMNS)
    test = make_stream(1, 120)
    a, b = first.score(test), second.score(test)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_tabular_score_of_a_row_does_not_change_when_later_rows_change(
    tabular_name: str, normal: np.ndarray
) -> None:
    detector = _make(tabular_name)
    detector.fit(normal, COLUMNS)
    test = make_stream(2, 120)
    altered = test.copy()
    altered[60:] += np.array([5.0, -3.0, 2.0, 0.0, 50.0, 1.0])
    altered[60:, 3] = altered[59, 3]  # and freeze the valve
    full, changed = detector.score(test), detector.score(altered)
    prefix = detector.score(test[:60])
    for key in full:
        np.testing.assert_array_equal(full[key][:60], changed[key][:60])
        np.testing.assert_array_equal(full[key][:60], prefix[key])
        assert not np.array_equal(full[key][60:], changed[key][60:])


def test_tabular_scores_are_finite_non_negative_and_named(tabular_name: str, normal: np.ndarray) -> None:
    detector = _make(tabular_name)
    detector.fit(normal, COLUMNS)
    scores = detector.score(make_stream(3, 100))
    assert set(scores) == set(detector.statistics)
    for values in scores.values():
        assert values.shape == (100,)
        assert np.all(np.isfinite(values)) and np.all(values >= 0)


def test_tabular_missing_variables_and_nan_are_tolerated(tabular_name: str, normal: np.ndarray) -> None:
    detector = _make(tabular_name)
    training = normal.copy()
    training[::17, 2] = np.nan  # gaps in the training data too
    detector.fit(training, COLUMNS)
    test = make_stream(4, 80)
    test[:, 1] = np.nan  # a variable missing throughout
    test[10:20, :] = np.nan  # whole samples missing
    test[30, 4] = np.nan
    for values in detector.score(test).values():
        assert np.all(np.isfinite(values))


@pytest.mark.parametrize("name", sorted(TABULAR))
def test_tabular_contributions_cover_every_variable_and_are_non_negative(
    name: str, normal: np.ndarray
) -> None:
    detector = TABULAR[name]()
    detector.fit(normal, COLUMNS)
    test = make_stream(5, 50)
    for stat in detector.statistics:
        c = detector.contributions(test, stat)
        assert c.shape == (50, len(COLUMNS))
        assert np.all(np.isfinite(c)) and np.all(c >= 0)
    expected = detector.expected(test)
    assert expected is None or expected.shape == test.shape
    with pytest.raises(ValueError, match="no statistic"):
        detector.contributions(test, "nonsense")


@pytest.mark.parametrize("name", [*sorted(TABULAR), "ensemble"])
def test_tabular_save_load_round_trip_scores_identically(
    name: str, normal: np.ndarray, tmp_path: Path
) -> None:
    detector = _make(name)
    detector.fit(normal, COLUMNS)
    model = detector.ensemble if isinstance(detector, _EnsembleAsDetector) else detector
    path = tmp_path / "det.json"
    digest = save_tabular_detector(model, path)
    assert (tmp_path / "det.json.sha256").read_text().split()[0] == digest
    loaded = load_tabular_detector(path, expected_digest=digest)
    again = _EnsembleAsDetector(loaded) if isinstance(loaded, Ensemble) else loaded
    test = make_stream(6, 90)
    a, b = detector.score(test), again.score(test)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert (
        path.read_bytes()
        == (save_tabular_detector(model, tmp_path / "again.json"), (tmp_path / "again.json").read_bytes())[1]
    )


def test_tampered_tabular_detector_file_is_refused(normal: np.ndarray, tmp_path: Path) -> None:
    detector = TagPredictorDetector(seed=7)
    detector.fit(normal, COLUMNS)
    path = tmp_path / "det.json"
    save_tabular_detector(detector, path)
    path.write_bytes(path.read_bytes().replace(b'"alpha":1.0', b'"alpha":2.0'))
    with pytest.raises(IntegrityError, match="does not match"):
        load_tabular_detector(path)
    (tmp_path / "det.json.sha256").unlink()
    with pytest.raises(IntegrityError, match="no readable recorded digest"):
        load_tabular_detector(path)


def test_garbled_tabular_detector_file_is_bad_input(normal: np.ndarray, tmp_path: Path) -> None:
    detector = FrozenValueDetector()
    detector.fit(normal, COLUMNS)
    path = tmp_path / "det.json"
    save_tabular_detector(detector, path)
    data = path.read_bytes()[:-20]
    path.write_bytes(data)
    with pytest.raises(InputError, match="truncated or garbled"):
        load_tabular_detector(path, expected_digest=model_digest(data))


def test_unfitted_tabular_detector_says_so(tabular_name: str) -> None:
    if tabular_name == "ensemble":
        with pytest.raises(RuntimeError, match="not fitted"):
            _ensemble().decide(make_stream(0, 10))
        return
    with pytest.raises(RuntimeError, match="not fitted"):
        TABULAR[tabular_name]().score(make_stream(0, 10))


def test_tabular_input_with_other_columns_is_refused(normal: np.ndarray) -> None:
    detector = TagPredictorDetector()
    detector.fit(normal, COLUMNS)
    with pytest.raises(InputError, match="fitted on 6"):
        detector.score(normal[:, :5])
    with pytest.raises(InputError, match="column names"):
        TagPredictorDetector().fit(normal, COLUMNS[:5])


# --- Every streaming detector on twin samples (the integrity checks need the twin's flows and loops),
# and a fitted tabular ensemble run by the engine through its adapter ---


def _twin_samples(seed: int, n: int) -> list[list[Sample]]:
    out = []
    for b in simulate_batches(n, seed, duration_h=40.0, paa_control="true"):
        names = list(b.tags)
        out.append([{k: float(b.tags[k][i]) for k in names} for i in range(b.time_h.size)])
    return out


@pytest.fixture(scope="module")
def twin_train() -> list[list[Sample]]:
    return _twin_samples(0, 5)


@pytest.fixture(scope="module")
def twin_test() -> list[Sample]:
    return _twin_samples(700, 1)[0]


STREAMING: dict[str, Callable[[], Detector]] = {
    "stale": StaleValueDetector,
    "replay": ReplayDetector,
    "physics": PhysicsDetector,
    "redundancy": RedundancyDetector,
    "redundancy-trend": lambda: RedundancyDetector(trend=True),  # ADR 0401's ramp GLR beside the CUSUM
    "twin": lambda: TwinResidualDetector(seed=7),
    "tabular": lambda: TabularEnsembleDetector(
        Ensemble([TagPredictorDetector(seed=7), FrozenValueDetector(seed=7)], false_alarm_rate=0.02)
    ),
}


@pytest.fixture(scope="module")
def streaming_fitted(twin_train: list[list[Sample]]) -> dict[str, Detector]:
    out = {}
    for name, factory in STREAMING.items():
        detector = factory()
        detector.fit(twin_train)
        out[name] = detector
    return out


def _saved_and_loaded(detector: Detector, path: Path) -> Detector:
    if isinstance(detector, TabularEnsembleDetector):
        digest = save_tabular_detector(detector.ensemble, path)
        return load_ensemble_detector(path, expected_digest=digest)
    assert isinstance(
        detector,
        StaleValueDetector | ReplayDetector | PhysicsDetector | TwinResidualDetector | RedundancyDetector,
    )
    return load_detector(path, expected_digest=save_detector(detector, path))


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_streaming_detector_same_seed_and_data_give_identical_scores(
    name: str, twin_train: list[list[Sample]], twin_test: list[Sample], streaming_fitted: dict[str, Detector]
) -> None:
    again = STREAMING[name]()
    again.fit(twin_train)
    assert _scores(streaming_fitted[name], twin_test) == _scores(again, twin_test)


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_streaming_detector_scores_are_finite_named_and_explained(
    name: str, twin_test: list[Sample], streaming_fitted: dict[str, Detector]
) -> None:
    detector = streaming_fitted[name]
    for scores in _scores(detector, twin_test):
        assert scores
        for score in scores:
            assert score.statistic.startswith(detector.name + ".")
            assert math.isfinite(score.value) and score.value >= 0
            assert math.isfinite(score.limit) and score.limit > 0
            shares = [share for _, share in score.contributions]
            assert shares == sorted(shares, reverse=True)
            assert not shares or math.isclose(sum(shares), 1.0, rel_tol=1e-9)


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_streaming_detector_tolerates_missing_and_nan_tags(
    name: str, twin_test: list[Sample], streaming_fitted: dict[str, Detector]
) -> None:
    detector = streaming_fitted[name]
    detector.reset()
    for sample in twin_test[:80]:
        degraded = {k: v for k, v in sample.items() if k not in ("ph", "volume_l", "sugar_feed_l_per_h")}
        degraded["dissolved_o2_mg_per_l"] = math.nan
        degraded["temperature_k"] = "garbled"  # type: ignore[assignment]  # non-numeric reads as missing
        only_time = {"batch_time_h": sample["batch_time_h"]}
        for scores in (detector.score_one(degraded), detector.score_one(only_time)):
            assert all(math.isfinite(s.value) for s in scores)


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_streaming_score_of_a_sample_does_not_change_when_later_samples_change(
    name: str, twin_test: list[Sample], streaming_fitted: dict[str, Detector]
) -> None:
    detector = streaming_fitted[name]
    altered = [dict(s) for s in twin_test]
    for i in range(100, len(altered)):
        altered[i]["temperature_k"] = twin_test[100]["temperature_k"] + 3.0  # frozen, and off by 3 K
        altered[i]["volume_l"] += 2000.0
        altered[i]["ph"] = twin_test[40 + (i - 100) % 60]["ph"]  # a replayed pH
    before, after = _scores(detector, twin_test), _scores(detector, altered)
    assert before[:100] == after[:100]
    assert before[100:] != after[100:]


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_streaming_detector_save_load_round_trip_scores_identically(
    name: str, twin_test: list[Sample], streaming_fitted: dict[str, Detector], tmp_path: Path
) -> None:
    detector = streaming_fitted[name]
    loaded = _saved_and_loaded(detector, tmp_path / f"{name}.json")
    assert type(loaded) is type(detector)
    assert _scores(loaded, twin_test) == _scores(detector, twin_test)


@pytest.mark.parametrize("name", sorted(STREAMING))
def test_unfitted_streaming_detector_says_so(name: str) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        STREAMING[name]().score_one({"batch_time_h": 1.0})


@pytest.mark.parametrize("aligned", [True, False])
def test_every_batch_model_detector_round_trips_through_its_file(
    aligned: bool, tmp_path: Path, training_batches: list[list[Sample]], batch_maker: MakeBatch
) -> None:
    model = fit_model(training_batches, aligned=aligned, seed=7)
    loaded = load_model(tmp_path / "m.json", expected_digest=save_model(model, tmp_path / "m.json"))
    batch = batch_maker(1007)
    for make in (MspcDetector, ResidualCusum, RecipeDetector):
        assert _scores(make(model), batch) == _scores(make(loaded), batch)
