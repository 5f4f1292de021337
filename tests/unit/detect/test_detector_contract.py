"""One contract suite over every detector: seeded determinism, finite scores, missing tags."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from detect_synthetic import MakeBatch, Sample

from aseptic.detect import (
    Detector,
    MspcDetector,
    RecipeDetector,
    ResidualCusum,
    Score,
    ThreeSigmaDetector,
)
from aseptic.errors import InputError

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
