"""The redundancy detector: a loop reading against its independent check element (ADR 0400)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from twin_support import twin_samples

from aseptic.campaign import Bias, Freeze, InLoopPlant, Ramp, apply_attacks
from aseptic.clock import SimClock
from aseptic.detect import (
    Engine,
    Finding,
    RedundancyDetector,
    StaleValueDetector,
    load_detector,
    save_detector,
)
from aseptic.detect._detector_file import decode_detector, encode_detector
from aseptic.detect._redundancy_model import siegmund_limit
from aseptic.errors import InputError

pytestmark = pytest.mark.requirement("ASE-DETECT")

Sample = dict[str, float]
DURATION_H = 60.0


def _samples(seed: int, n: int) -> list[list[Sample]]:
    return twin_samples(seed, n, DURATION_H)


@pytest.fixture(scope="module")
def train() -> list[list[Sample]]:
    return _samples(0, 6)


@pytest.fixture(scope="module")
def fitted(train: list[list[Sample]]) -> RedundancyDetector:
    detector = RedundancyDetector()
    detector.fit(train)
    return detector


def _findings(detector: RedundancyDetector, batch: list[Sample]) -> list[Finding]:
    found: list[Finding] = []
    engine = Engine([detector], found.append, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.start_batch("b")
    for sample in batch:
        engine.push_sample(sample)
    return found


def test_fit_learns_the_check_elements_error_model(fitted: RedundancyDetector) -> None:
    assert fitted.pairs == (("temperature_k", "temperature_2_k"), ("ph", "ph_2"))
    # The twin: 0.01 K and 0.002 pH of noise on each element -> 0.0141 / 0.0028 on the difference.
    assert fitted.noise_sd[0] == pytest.approx(0.0141, rel=0.15)
    assert fitted.noise_sd[1] == pytest.approx(0.00283, rel=0.15)
    assert np.all(fitted.wander_sd >= 0) and np.all(fitted.offset_sd > 0) and np.all(fitted.drift_sd > 0)
    assert fitted.limit >= siegmund_limit(0.75, 4000.0 / 0.2)


def test_siegmund_limit_matches_the_textbook_run_length() -> None:
    # k = 0.5, h = 5: in-control ARL of about 930 samples (Siegmund's approximation).
    assert siegmund_limit(0.5, 938.0) == pytest.approx(5.0, abs=0.02)
    assert siegmund_limit(0.5, 20_000.0) > siegmund_limit(0.5, 2_000.0)


def test_a_clean_batch_raises_nothing(fitted: RedundancyDetector) -> None:
    for batch in _samples(500, 2):
        assert _findings(fitted, batch) == []


def test_a_falsified_loop_reading_is_found_named_and_explained(fitted: RedundancyDetector) -> None:
    clean = _samples(501, 1)[0]
    attacked = [apply_attacks([Bias("temperature_k", 30.0, 20.0, 0.1)], s["batch_time_h"], s) for s in clean]
    found = _findings(fitted, attacked)
    assert found, "a 0.1 K offset between two elements of 0.01 K noise must be found"
    first = found[0]
    assert 30.0 <= first.batch_time_h <= 31.0
    assert first.detector == "redundancy.disagreement"
    assert first.tags[0] == "temperature_k" and "temperature_2_k" in first.tags
    assert first.technique == "T0856" and first.cause == "attack"
    # Expected: the check element's reading plus the learned gap, about 0.1 K below the observed.
    gap = first.observed[0] - first.expected[0]
    assert 0.05 < gap < 0.15
    assert _findings(fitted, clean) == []


def test_an_in_loop_ramp_the_controller_hides_is_found_within_hours(fitted: RedundancyDetector) -> None:
    plant = InLoopPlant(502, [Ramp("ph", 30.0, 20.0, 0.006)], paa_control="true", duration_h=DURATION_H)
    samples = []
    while not plant.finished:
        samples.append(plant.step())
    found = _findings(fitted, samples)
    assert found and 30.0 <= found[0].batch_time_h <= 34.0
    assert found[0].tags[0] == "ph"


def test_missing_check_values_are_tolerated_and_keep_the_state(fitted: RedundancyDetector) -> None:
    batch = _samples(503, 1)[0]
    holed = [dict(s) for s in batch]
    for s in holed[100:140]:
        s["ph_2"] = math.nan
        del s["temperature_2_k"]
    fitted.reset()
    scores = [fitted.score_one(s)[0] for s in holed]
    assert all(math.isfinite(s.value) for s in scores)
    assert scores[120].value == scores[99].value  # no update while a partner is missing


def test_save_load_round_trip_scores_identically(fitted: RedundancyDetector, tmp_path: Path) -> None:
    path = tmp_path / "redundancy.json"
    loaded = load_detector(path, expected_digest=save_detector(fitted, path))
    assert isinstance(loaded, RedundancyDetector)
    batch = _samples(504, 1)[0]
    fitted.reset()
    before = [fitted.score_one(s) for s in batch]
    after = [loaded.score_one(s) for s in batch]
    assert before == after


def test_a_file_naming_a_pair_that_is_not_a_check_element_is_refused(fitted: RedundancyDetector) -> None:
    doc = json.loads(encode_detector(fitted))
    doc["meta"]["pairs"][0] = ["temperature_k", "ph_2"]
    with pytest.raises(InputError, match="not a loop tag and its check element"):
        decode_detector(json.dumps(doc).encode(), source="x.json")


def test_training_without_check_elements_is_refused(train: list[list[Sample]]) -> None:
    stripped = [
        [{k: v for k, v in s.items() if k not in ("temperature_2_k", "ph_2")} for s in b] for b in train
    ]
    with pytest.raises(InputError, match="no redundant pair"):
        RedundancyDetector().fit(stripped)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="k must be positive"):
        RedundancyDetector(k=0.0)
    with pytest.raises(ValueError, match="margin"):
        RedundancyDetector(margin=0.5)


def test_a_frozen_check_element_is_found_by_the_stale_detector(train: list[list[Sample]]) -> None:
    """Blinding the check first (then attacking the loop) must not go unnoticed."""
    stale = StaleValueDetector()
    stale.fit(train)
    assert {"temperature_2_k", "ph_2"} <= set(stale.tags)
    clean = _samples(505, 1)[0]
    freeze = [Freeze("ph_2", 30.0, 20.0)]  # stateful: one instance holds the value for the batch
    frozen = [apply_attacks(freeze, s["batch_time_h"], s) for s in clean]
    found: list[Finding] = []
    engine = Engine([stale], found.append, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.start_batch("b")
    engine.push_block(frozen)
    assert found and 30.0 <= found[0].batch_time_h <= 32.0 and found[0].tags[0] == "ph_2"


def test_identical_elements_fit_finite_parameters(train: list[list[Sample]]) -> None:
    """Quantised or mirrored readings (no difference at all) must not break the fit."""
    mirrored = [[{**s, "temperature_2_k": s["temperature_k"], "ph_2": s["ph"]} for s in b] for b in train]
    detector = RedundancyDetector()
    detector.fit(mirrored)
    assert np.all(np.isfinite(detector.noise_sd)) and math.isfinite(detector.limit)
    detector.reset()
    assert all(math.isfinite(detector.score_one(s)[0].value) for s in mirrored[0])
