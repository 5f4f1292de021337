"""Batched scoring gives the bits of per-sample scoring: every block detector alone, and the engine."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import pytest

from aseptic.clock import SimClock
from aseptic.detect import (
    BatchModel,
    BlockDetector,
    ControlLoopDetector,
    Detector,
    Engine,
    ExpectsBlock,
    Finding,
    MspcDetector,
    PhysicsDetector,
    RecipeDetector,
    RedundancyDetector,
    ReplayDetector,
    ResidualCusum,
    SampleBlock,
    Score,
    StaleValueDetector,
    TwinResidualDetector,
    fit_model,
)
from aseptic.detect._explain import Expects
from aseptic.errors import InputError
from aseptic.twin import simulate_batches

Sample = dict[str, float]
SPLITS = (1, 7, 30, 2, 1, 45)  # then the rest: blocks of every size, streaming rows in between


def _samples(seed: int, n: int) -> list[list[Sample]]:
    out = []
    for b in simulate_batches(n, seed, duration_h=40.0, paa_control="true"):
        names = list(b.tags)
        out.append([{k: float(b.tags[k][i]) for k in names} for i in range(b.time_h.size)])
    return out


@pytest.fixture(scope="module")
def train() -> list[list[Sample]]:
    return _samples(0, 5)


@pytest.fixture(scope="module")
def model(train: list[list[Sample]]) -> BatchModel:
    return fit_model(train, seed=3)


@pytest.fixture(scope="module")
def attacked() -> list[Sample]:
    """A pH replay, a temperature freeze, DO bias, sugar feed off recipe, gaps, NaN: alarms, odd rows."""
    batch = [dict(s) for s in _samples(900, 1)[0]]
    for i in range(120, 170):
        batch[i]["ph"] = batch[i - 80]["ph"]
    for i in range(60, 100):
        batch[i]["temperature_k"] = batch[59]["temperature_k"]
    for i in range(175, 195):
        batch[i]["dissolved_o2_mg_per_l"] += 4.0
    for i in range(150, 160):
        batch[i]["sugar_feed_l_per_h"] += 20.0
    for i in range(20, 35):  # a spoofed level (the volume balance)
        batch[i]["volume_l"] += 50.0 * (i - 19)
    for i in range(105, 118):  # the cooling valve held while its law asks for a change (stuck)
        batch[i]["cooling_water_l_per_h"] = batch[104]["cooling_water_l_per_h"] + 30.0
    for i in range(180, 186):  # the temperature setpoint moved
        batch[i]["temperature_sp_k"] += 0.5
    for i in range(25, 50):  # pH well under its setpoint with the base shut (the loop)
        batch[i]["ph"] -= 0.3
        batch[i]["base_flow_l_per_h"] = 0.0
    for i in range(0, len(batch), 13):
        del batch[i]["volume_l"]
    for i in range(5, len(batch), 17):
        batch[i]["offgas_co2_pct"] = math.nan
    batch[40] = {"batch_time_h": batch[40]["batch_time_h"]}
    return batch


def _factories(model: BatchModel, train: list[list[Sample]]) -> dict[str, Callable[[], Detector]]:
    def fitted(detector: Detector) -> Detector:
        detector.fit(train)
        return detector

    return {
        "mspc": lambda: MspcDetector(model),
        "cusum": lambda: ResidualCusum(model),
        "recipe": lambda: RecipeDetector(model),
        "stale": lambda: fitted(StaleValueDetector()),
        "replay": lambda: fitted(ReplayDetector()),
        "twin": lambda: fitted(TwinResidualDetector(seed=1)),
        "physics": lambda: fitted(PhysicsDetector()),
        "control": lambda: fitted(ControlLoopDetector()),
        "redundancy": lambda: fitted(RedundancyDetector()),
        "redundancy-trend": lambda: fitted(RedundancyDetector(trend=True, trend_window_h=2.0, name="trend")),
    }


def _chunks(batch: Sequence[Sample]) -> list[list[Sample]]:
    out, i = [], 0
    for size in SPLITS:
        out.append(list(batch[i : i + size]))
        i += size
    out.append(list(batch[i:]))
    return out


BLOCK_DETECTORS = [
    "mspc",
    "cusum",
    "recipe",
    "stale",
    "replay",
    "twin",
    "redundancy",
    "redundancy-trend",
    "physics",
    "control",
]


def _expected(detector: Detector, tags: Sequence[str]) -> tuple[float, ...]:
    return detector.expected_values(tags) if isinstance(detector, Expects) else ()


@pytest.mark.parametrize("name", BLOCK_DETECTORS)
def test_block_scores_are_the_bits_of_per_sample_scores(
    name: str, model: BatchModel, train: list[list[Sample]], attacked: list[Sample]
) -> None:
    detector = _factories(model, train)[name]()
    assert isinstance(detector, BlockDetector)
    tags = ("ph", "temperature_k", "ph_2", "temperature_2_k", "dissolved_o2_mg_per_l", "no_such_tag")
    detector.reset()
    one, one_expected = [], []
    for s in attacked:
        one.append(detector.score_one(s))
        one_expected.append(_expected(detector, tags))
    assert any(s.exceeds for row in one for s in row), "the attacked batch must raise this statistic"
    for whole in (True, False):
        detector.reset()
        rows: list[tuple[Score, ...]] = []
        expected: list[tuple[float, ...]] = []
        for k, chunk in enumerate([list(attacked)] if whole else _chunks(attacked)):
            if k % 2 and len(chunk) == 1:  # a streaming sample between two blocks
                rows.append(detector.score_one(chunk[0]))
                expected.append(_expected(detector, tags))
                continue
            blocks = detector.score_block(SampleBlock(chunk))
            rows += [tuple(b.score(i) for b in blocks) for i in range(len(chunk))]
            if isinstance(detector, Expects):
                assert isinstance(detector, ExpectsBlock)
                expected += [tuple(float(v) for v in r) for r in detector.expected_rows(tags)]
                # After a block the detector holds its last row, as after score_one on it.
                np.testing.assert_array_equal(_expected(detector, tags), expected[-1])
            else:
                expected += [() for _ in chunk]
        assert rows == one
        np.testing.assert_array_equal(np.array(expected, dtype=float), np.array(one_expected, dtype=float))


def _engine(detectors: list[Detector], sink: Callable[[Finding], None]) -> Engine:
    engine = Engine(detectors, sink, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)), persistence=3)
    engine.start_batch("B-block")
    return engine


def _all(model: BatchModel, train: list[list[Sample]]) -> list[Detector]:
    made = [f() for f in _factories(model, train).values()]
    return made


def test_engine_block_gives_the_verdicts_and_findings_of_per_sample(
    model: BatchModel, train: list[list[Sample]], attacked: list[Sample]
) -> None:
    detectors = _all(model, train)
    one_findings: list[Finding] = []
    engine = _engine(detectors, one_findings.append)
    one = [engine.push_sample(s) for s in attacked]
    assert {f.detector.split(".")[0] for f in one_findings} >= {
        "replay",
        "stale",
        "twin",
        "redundancy",
        "physics",
    }
    # The block path must carry each Finding's expected values from its own row.
    assert any(
        math.isfinite(v) for f in one_findings if f.detector.startswith("redundancy.") for v in f.expected
    )
    for chunks in ([list(attacked)], _chunks(attacked)):
        block_findings: list[Finding] = []
        engine = _engine(detectors, block_findings.append)
        verdicts = []
        for chunk in chunks:
            block = engine.push_block(chunk)
            assert block.findings == tuple(f for i in range(len(block)) for f in block.verdict(i).findings)
            verdicts += [block.verdict(i) for i in range(len(block))]
            for i in range(len(block)):
                assert block.confirmed_at(i) == block.verdict(i).confirmed
        # A missing observed value (row 40) is NaN in its Findings: equal because the engine
        # gives every Finding's NaN as the one ``math.nan`` object.
        assert verdicts == one
        assert block_findings == one_findings
        assert engine.samples == len(attacked) and engine.findings == len(one_findings)


def test_block_with_batch_time_going_back_is_refused_whole(
    model: BatchModel, train: list[list[Sample]], attacked: list[Sample]
) -> None:
    engine = _engine([MspcDetector(model), ResidualCusum(model)], lambda f: None)
    with pytest.raises(InputError, match="block sample 2"):
        engine.push_block([attacked[0], attacked[2], attacked[1]])
    assert engine.samples == 0
    with pytest.raises(InputError, match="batch_time_h"):
        engine.push_block([attacked[0], {"ph": 6.5}])
    with pytest.raises(InputError, match="3 samples but 1 times"):
        engine.push_block(attacked[:3], times=[datetime(2026, 1, 1, tzinfo=UTC)])
    # Nothing was scored: the CUSUM state is still fresh, as the per-sample engine shows.
    fresh = _engine([MspcDetector(model), ResidualCusum(model)], lambda f: None)
    block = engine.push_block(attacked[:10])
    assert [block.verdict(i) for i in range(10)] == [fresh.push_sample(s) for s in attacked[:10]]
    with pytest.raises(InputError, match="behind"):
        engine.push_block(attacked[5:8])


def test_empty_block_changes_nothing(model: BatchModel, attacked: list[Sample]) -> None:
    engine = _engine([MspcDetector(model)], lambda f: None)
    block = engine.push_block([])
    assert len(block) == 0 and block.values.shape == (0, 3) and engine.samples == 0
