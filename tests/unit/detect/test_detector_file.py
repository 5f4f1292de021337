"""Integrity and twin-residual detectors saved and loaded with their digest: same scores after a
round trip, a modified file is tamper evidence, a garbled one bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aseptic.detect import (
    PhysicsDetector,
    RedundancyDetector,
    ReplayDetector,
    StaleValueDetector,
    TwinResidualDetector,
    load_detector,
    save_detector,
)
from aseptic.detect._detector_file import FileDetector
from aseptic.errors import InputError, IntegrityError
from aseptic.twin import simulate_batches

Sample = dict[str, float]

FACTORIES: dict[str, Callable[[], FileDetector]] = {
    "stale": StaleValueDetector,
    "replay": ReplayDetector,
    "physics": PhysicsDetector,
    "redundancy": RedundancyDetector,
    "twin": lambda: TwinResidualDetector(seed=5),
}


def _samples(seed: int, n: int) -> list[list[Sample]]:
    out = []
    for b in simulate_batches(n, seed, duration_h=30.0, paa_control="true"):
        out.append([{k: float(b.tags[k][i]) for k in b.tags} for i in range(b.time_h.size)])
    return out


@pytest.fixture(scope="module")
def batches() -> tuple[list[list[Sample]], list[Sample]]:
    data = _samples(40, 5)
    return data[:4], data[4]


@pytest.fixture(params=sorted(FACTORIES))
def fitted(request: pytest.FixtureRequest, batches: tuple[list[list[Sample]], list[Sample]]) -> FileDetector:
    detector = FACTORIES[request.param]()
    detector.fit(batches[0])
    return detector


def _scores(detector: FileDetector, batch: list[Sample]) -> list[object]:
    detector.reset()
    return [detector.score_one(s) for s in batch]


def test_round_trip_gives_identical_scores_and_bytes(
    fitted: FileDetector, batches: tuple[list[list[Sample]], list[Sample]], tmp_path: Path
) -> None:
    path = tmp_path / "d.json"
    digest = save_detector(fitted, path)
    loaded = load_detector(path, expected_digest=digest)
    assert type(loaded) is type(fitted) and loaded.name == fitted.name
    assert _scores(loaded, batches[1]) == _scores(fitted, batches[1])
    assert save_detector(loaded, tmp_path / "again.json") == digest  # canonical: same detector, same bytes


def test_modified_detector_file_is_refused_as_tampering(fitted: FileDetector, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    digest = save_detector(fitted, path)
    path.write_bytes(path.read_bytes() + b" ")  # still valid JSON, other bytes
    with pytest.raises(IntegrityError, match="does not match"):
        load_detector(path, expected_digest=digest)
    (tmp_path / "d.json.sha256").unlink()
    with pytest.raises(IntegrityError, match="no readable recorded digest"):
        load_detector(path)


def test_garbled_detector_file_is_bad_input(fitted: FileDetector, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    save_detector(fitted, path)
    truncated = path.read_bytes()[:-20]
    path.write_bytes(truncated)
    with pytest.raises(InputError, match="not a detector"):
        load_detector(path, expected_digest=__import__("hashlib").sha256(truncated).hexdigest())


def test_unfitted_detector_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        save_detector(ReplayDetector(), tmp_path / "r.json")
