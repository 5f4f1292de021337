"""Model persistence: round trip, deterministic bytes, tampered and garbled files refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from detect_synthetic import MakeBatch, Sample

from aseptic.detect import (
    BatchModel,
    MspcDetector,
    ResidualCusum,
    fit_model,
    load_model,
    model_digest,
    save_model,
)
from aseptic.errors import InputError, IntegrityError


@pytest.fixture(scope="module")
def model(training_batches: list[list[Sample]]) -> BatchModel:
    return fit_model(training_batches, seed=3)


def test_saved_model_scores_exactly_like_the_original(
    model: BatchModel, tmp_path: Path, batch_maker: MakeBatch
) -> None:
    path = tmp_path / "model.json"
    digest = save_model(model, path)
    assert (tmp_path / "model.json.sha256").read_text().split() == [digest, "model.json"]
    loaded = load_model(path)
    batch = batch_maker(1010)
    for detector_type in (MspcDetector, ResidualCusum):
        a, b = detector_type(model), detector_type(loaded)
        assert [a.score_one(s) for s in batch] == [b.score_one(s) for s in batch]


def test_same_model_gives_the_same_bytes(model: BatchModel, tmp_path: Path) -> None:
    assert save_model(model, tmp_path / "a.json") == save_model(model, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_tampered_model_file_is_refused(model: BatchModel, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    digest = save_model(model, path)
    doc = json.loads(path.read_bytes())
    doc["meta"]["spe_limit"] *= 100  # an attacker widens a limit to hide an attack
    path.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")))
    with pytest.raises(IntegrityError) as err:
        load_model(path)
    assert digest in str(err.value) and model_digest(path.read_bytes()) in str(err.value)


def test_model_with_flipped_bit_is_refused_against_an_expected_digest(
    model: BatchModel, tmp_path: Path
) -> None:
    path = tmp_path / "model.json"
    digest = save_model(model, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    (tmp_path / "model.json.sha256").write_text(model_digest(bytes(data)) + "  model.json\n")  # sidecar too
    with pytest.raises(IntegrityError, match="does not match"):
        load_model(path, expected_digest=digest)


def test_model_without_recorded_digest_is_refused(model: BatchModel, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    save_model(model, path)
    (tmp_path / "model.json.sha256").unlink()
    with pytest.raises(IntegrityError, match="no readable recorded digest"):
        load_model(path)


def test_truncated_model_file_is_refused_as_bad_input(model: BatchModel, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    save_model(model, path)
    truncated = path.read_bytes()[:1000]
    path.write_bytes(truncated)
    with pytest.raises(InputError, match="truncated or garbled"):
        load_model(path, expected_digest=model_digest(truncated))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(version=99), "unsupported version"),
        (lambda d: d.update(format="pickle"), "format"),
        (lambda d: d["meta"].update(t2_limit="inf"), "t2_limit"),
        (lambda d: d["arrays"]["mean"].update(shape=[1, 1]), "bytes for shape"),
        (lambda d: d["arrays"].pop("loadings"), "loadings"),
        (lambda d: d["meta"].update(tags=["ph", "ph"]), "repeat"),
    ],
)
def test_garbled_model_fields_are_refused(
    model: BatchModel, tmp_path: Path, edit: object, message: str
) -> None:
    path = tmp_path / "model.json"
    save_model(model, path)
    doc = json.loads(path.read_bytes())
    edit(doc)  # type: ignore[operator]
    data = json.dumps(doc).encode()
    path.write_bytes(data)
    with pytest.raises(InputError, match=message):
        load_model(path, expected_digest=model_digest(data))


def test_missing_model_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "nope.json", expected_digest="0" * 64)


def test_model_with_a_longer_upset_batch_left_out_round_trips(
    training_batches: list[list[Sample]], batch_maker: MakeBatch, tmp_path: Path
) -> None:
    """An upset batch that ran longer than the rest is left out; the saved model still loads.

    Regression: the recipe check kept the grid of all batches (including the longer upset one)
    while the model kept the grid of the reference batches, and the file could not be read back.
    """
    upset = batch_maker(999, duration_h=60.0)
    for sample in upset[20:200]:
        sample["dissolved_o2_mg_per_l"] += 25.0  # a long, large excursion: a process upset
    model = fit_model([*training_batches, upset], seed=3)
    assert model.excluded_batches == 1
    path = tmp_path / "model.json"
    loaded = load_model(path, expected_digest=save_model(model, path))
    assert loaded.recipe.slices == loaded.alignment.slices
