"""A fitted tabular ensemble in the streaming engine: loaded verified, causal, Findings that explain."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from aseptic.clock import SimClock
from aseptic.detect import (
    Engine,
    Ensemble,
    Finding,
    FrozenValueDetector,
    TabularEnsembleDetector,
    TagPredictorDetector,
    load_ensemble_detector,
    save_tabular_detector,
)
from aseptic.errors import InputError, IntegrityError
from aseptic.twin import simulate_batches

Sample = dict[str, float]


def _samples(seed: int, n: int) -> list[list[Sample]]:
    out = []
    for b in simulate_batches(n, seed, duration_h=40.0, paa_control="true"):
        names = list(b.tags)
        out.append([{k: float(b.tags[k][i]) for k in names} for i in range(b.time_h.size)])
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An ensemble fitted on clean twin batches, saved with its digest (what a deployment ships)."""
    adapter = TabularEnsembleDetector(
        Ensemble([TagPredictorDetector(seed=1), FrozenValueDetector(seed=1)], false_alarm_rate=0.01)
    )
    adapter.fit(_samples(0, 5))
    path = tmp_path_factory.mktemp("models") / "tabular.json"
    return path, save_tabular_detector(adapter.ensemble, path)


@pytest.fixture(scope="module")
def clean() -> list[Sample]:
    return _samples(800, 1)[0]


def _run(detector: TabularEnsembleDetector, samples: list[Sample]) -> list[Finding]:
    findings: list[Finding] = []
    engine = Engine([detector], findings.append, clock=SimClock(datetime(2026, 1, 1, tzinfo=UTC)))
    engine.start_batch("B-tab")
    for s in samples:
        engine.push_sample(s)
    return findings


def test_spoofed_temperature_is_a_finding_naming_the_tag_and_a_technique(
    saved: tuple[Path, str], clean: list[Sample]
) -> None:
    path, digest = saved
    detector = load_ensemble_detector(path, expected_digest=digest)
    attacked = [dict(s) for s in clean]
    for s in attacked[120:150]:
        s["temperature_k"] += 3.0  # on the reporting path: the process is the clean one
    assert _run(detector, clean) == []
    findings = _run(detector, attacked)
    assert findings, "a 3 K step on the reported temperature must open an episode"
    first = findings[0]
    row = next(i for i, s in enumerate(attacked) if s["batch_time_h"] == first.batch_time_h)
    assert 120 <= row < 150
    assert first.detector == "tabular.score"
    assert first.tags[0] == "temperature_k"
    assert first.technique == "T0856"
    assert first.observed[0] == attacked[row]["temperature_k"]
    assert abs(first.expected[0] - clean[row]["temperature_k"]) < 1.0  # what it should have read
    assert detector.leading_member() is not None


def test_scores_follow_the_ensemble_decision_on_the_batch_so_far(
    saved: tuple[Path, str], clean: list[Sample]
) -> None:
    detector = load_ensemble_detector(saved[0])
    detector.reset()
    streamed = [detector.score_one(s)[0].value for s in clean]
    matrix = np.array([[s.get(t, math.nan) for t in detector.tags] for s in clean], dtype=np.float64)
    whole = detector.ensemble.decide(matrix).score
    np.testing.assert_allclose(streamed, np.where(whole > 0, whole, 0.0), rtol=1e-12)


def test_tampered_or_wrong_ensemble_file_is_refused(saved: tuple[Path, str], tmp_path: Path) -> None:
    path, digest = saved
    forged = tmp_path / "forged.json"
    forged.write_bytes(path.read_bytes().replace(b"1", b"2", 1))
    with pytest.raises(IntegrityError, match="does not match"):
        load_ensemble_detector(forged, expected_digest=digest)
    single = TagPredictorDetector(seed=1)
    rng = np.random.default_rng(0)
    single.fit(rng.normal(size=(200, 3)), ("a", "b", "c"))
    one = tmp_path / "one.json"
    with pytest.raises(InputError, match="not an ensemble"):
        load_ensemble_detector(one, expected_digest=save_tabular_detector(single, one))


def test_a_missing_tag_is_scored_as_missing_not_refused(saved: tuple[Path, str], clean: list[Sample]) -> None:
    detector = load_ensemble_detector(saved[0])
    without = [{k: v for k, v in s.items() if k != "ph"} for s in clean[:60]]
    detector.reset()
    assert all(math.isfinite(detector.score_one(s)[0].value) for s in without)


def test_signed_ensemble_is_loaded_only_with_its_manifest_and_a_flipped_byte_is_a_refusal(
    saved: tuple[Path, str], tmp_path: Path
) -> None:
    from aseptic.crypto import SigningKey
    from aseptic.provenance import (
        ArtifactKind,
        LedgerReference,
        LoadRefusal,
        ManifestSpec,
        manifest_path_for,
        sign_artifact,
        write_manifest,
    )

    path = tmp_path / "signed.json"
    path.write_bytes(saved[0].read_bytes())
    key = SigningKey.generate()
    spec = ManifestSpec(
        kind=ArtifactKind.MODEL,
        name="tabular-ensemble",
        version="1.0.0",
        built_at=datetime(2026, 3, 1, tzinfo=UTC),
        builder_id="urn:aseptic:site:site-01",
        code_version="0.1.0",
        intended_use="process anomaly detection on fermenter-01",
        approver="qa-lead",
        parameters={},
        metrics={},
        training_data=(LedgerReference("site-01", 0, 9, 10, "ab" * 32),),
    )
    write_manifest(sign_artifact(path, spec, key), manifest_path_for(path))
    now = datetime(2026, 3, 2, tzinfo=UTC)
    assert load_ensemble_detector(path, trusted_keys=[key.public], now=now).tags  # no sidecar needed

    class Refusals:
        def __init__(self) -> None:
            self.seen: list[LoadRefusal] = []

        def record_refusal(self, refusal: LoadRefusal) -> None:
            self.seen.append(refusal)

    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    refusals = Refusals()
    with pytest.raises(IntegrityError):
        load_ensemble_detector(path, trusted_keys=[key.public], sink=refusals, now=now)
    assert [r.purpose for r in refusals.seen] == ["tabular detector"]
