"""Verify-before-load: every refusal is an error, a Finding and a ledger entry; nothing is decoded."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest
from provenance_support import make_spec

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.detect import load_model
from aseptic.errors import ConfigError, InputError, IntegrityError, SignatureError
from aseptic.ledger import LeafKind, Ledger
from aseptic.provenance import (
    ArtifactKind,
    LedgerFindingSink,
    LoadRefusal,
    load_verified,
    manifest_path_for,
    sign_artifact,
    verify_format,
    write_manifest,
)
from aseptic.twin import default_soft_sensor, factory_image, load_soft_sensor

pytestmark = pytest.mark.requirement("ASE-PROVENANCE")

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class ListSink:
    def __init__(self) -> None:
        self.refusals: list[LoadRefusal] = []

    def record_refusal(self, refusal: LoadRefusal) -> None:
        self.refusals.append(refusal)


def sign(path: Path, key: SigningKey, kind: ArtifactKind = ArtifactKind.MODEL) -> None:
    write_manifest(sign_artifact(path, make_spec(kind), key), manifest_path_for(path))


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def sensor_file(tmp_path: Path, site_key: SigningKey) -> Path:
    path = tmp_path / "paa-soft-sensor.json"
    path.write_bytes(default_soft_sensor().to_bytes())
    sign(path, site_key)
    return path


def test_a_signed_soft_sensor_loads_and_is_the_same_model(sensor_file: Path, site_key: SigningKey) -> None:
    sink = ListSink()
    loaded = load_soft_sensor(sensor_file, [site_key.public], now=NOW, sink=sink)
    assert loaded.value.digest == default_soft_sensor().digest
    assert loaded.manifest.key_id == site_key.key_id
    assert sink.refusals == []


def test_soft_sensor_changed_by_one_byte_is_refused_with_a_finding_and_a_ledger_entry(
    sensor_file: Path, site_key: SigningKey, tmp_path: Path
) -> None:
    flip_one_byte(sensor_file)
    with Ledger.open(tmp_path / "data", site_key=site_key, clock=SimClock(NOW)) as ledger:
        sink = LedgerFindingSink(ledger)
        with pytest.raises(IntegrityError, match="SHA-256 expected"):
            load_soft_sensor(sensor_file, [site_key.public], now=NOW, sink=sink)
        assert len(sink.leaves) == 1
        ((leaf, data),) = ledger.entries(LeafKind.FINDING)
    entry = json.loads(data)
    assert leaf == sink.leaves[0]
    assert entry["type"] == "provenance.load_refused"
    assert entry["error"] == "IntegrityError"
    assert entry["technique"] == "AML.T0018"
    assert entry["artifact"] == str(sensor_file)
    assert "SHA-256 expected" in entry["message"]


@pytest.mark.parametrize(
    ("tamper", "error", "text"),
    [
        ("no-manifest", InputError, "no manifest"),
        ("unsigned", SignatureError, "no signature"),
        ("unknown-key", SignatureError, "not trusted"),
        ("retired-key", SignatureError, "retired"),
        ("truncated-manifest", InputError, "not JSON"),
        ("firmware-manifest", IntegrityError, "not a model"),
    ],
)
def test_bad_manifests_are_refused_and_recorded(
    sensor_file: Path, site_key: SigningKey, tamper: str, error: type[Exception], text: str
) -> None:
    manifest = manifest_path_for(sensor_file)
    retired: list[str] = []
    trusted = [site_key.public]
    if tamper == "no-manifest":
        manifest.unlink()
    elif tamper == "unsigned":
        envelope = json.loads(manifest.read_bytes())
        envelope["signatures"] = []
        manifest.write_text(json.dumps(envelope))
    elif tamper == "unknown-key":
        trusted = [SigningKey.generate().public]
    elif tamper == "retired-key":
        retired = [site_key.key_id]
        trusted = [site_key.public, SigningKey.generate().public]
    elif tamper == "truncated-manifest":
        manifest.write_bytes(manifest.read_bytes()[:100])
    elif tamper == "firmware-manifest":
        sign(sensor_file, site_key, ArtifactKind.FIRMWARE)
    sink = ListSink()
    with pytest.raises(error, match=text):
        load_soft_sensor(sensor_file, trusted, now=NOW, sink=sink, retired=retired)
    assert len(sink.refusals) == 1
    assert sink.refusals[0].error == error.__name__


def test_no_trusted_keys_fails_closed(sensor_file: Path) -> None:
    sink = ListSink()
    with pytest.raises(ConfigError, match="no trusted keys"):
        load_soft_sensor(sensor_file, [], now=NOW, sink=sink)
    assert len(sink.refusals) == 1


def test_a_pickle_dressed_as_json_is_refused_even_with_a_valid_manifest(
    tmp_path: Path, site_key: SigningKey
) -> None:
    path = tmp_path / "model.json"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    sign(path, site_key)  # signing does not check formats; loading does
    sink = ListSink()
    with pytest.raises(IntegrityError, match="not a .json file"):
        load_verified(path, [site_key.public], kind=ArtifactKind.MODEL, decode=bytes, now=NOW, sink=sink)
    assert sink.refusals[0].error == "IntegrityError"


def test_pickles_and_unknown_extensions_are_never_loaded() -> None:
    with pytest.raises(InputError, match="executes code"):
        verify_format("model.pkl", b"\x80\x04.")
    with pytest.raises(InputError, match="unknown artifact extension"):
        verify_format("model.weights", b"abc")
    with pytest.raises(IntegrityError, match="signature"):
        verify_format("image.fw", b"MZ\x90\x00")
    verify_format("image.fw", factory_image("TIC-101", "4.2.1"))
    verify_format("model.safetensors", b"\x02\x00\x00\x00\x00\x00\x00\x00{}")


def test_a_verified_file_that_is_not_a_soft_sensor_is_refused(tmp_path: Path, site_key: SigningKey) -> None:
    path = tmp_path / "other.json"
    path.write_bytes(b'{"format":"something-else"}')
    sign(path, site_key)
    sink = ListSink()
    with pytest.raises(InputError, match="format"):
        load_soft_sensor(path, [site_key.public], now=NOW, sink=sink)
    assert sink.refusals[0].purpose == "PAA soft sensor in the control loop"


def test_firmware_image_changed_by_one_byte_is_refused_with_a_finding_and_a_ledger_entry(
    tmp_path: Path, site_key: SigningKey
) -> None:
    path = tmp_path / "TIC-101-4.2.1.fw"
    path.write_bytes(factory_image("TIC-101", "4.2.1"))
    sign(path, site_key, ArtifactKind.FIRMWARE)
    loaded = load_verified(path, [site_key.public], kind=ArtifactKind.FIRMWARE, decode=bytes, now=NOW)
    assert loaded.data == path.read_bytes()
    flip_one_byte(path)
    with Ledger.open(tmp_path / "data", site_key=site_key, clock=SimClock(NOW)) as ledger:
        with pytest.raises(IntegrityError, match="SHA-256 expected"):
            load_verified(
                path, [site_key.public], kind=ArtifactKind.FIRMWARE, decode=bytes, now=NOW,
                sink=LedgerFindingSink(ledger),
            )  # fmt: skip
        ((_, data),) = ledger.entries(LeafKind.FINDING)
    entry = json.loads(data)
    assert entry["technique"] == "T0839" and entry["artifact_kind"] == "firmware"


def test_directory_artifacts_decode_the_named_entry(model_dir: Path, site_key: SigningKey) -> None:
    # the model_dir fixture holds a .bin and a .json
    sign(model_dir, site_key)
    loaded = load_verified(
        model_dir, [site_key.public], kind=ArtifactKind.MODEL, decode=json.loads, now=NOW, entry="config.json"
    )
    assert loaded.value == {"alpha": 0.01}
    assert set(loaded.files) == {"config.json", "weights/layer0.bin"}
    with pytest.raises(InputError, match="no file"):
        load_verified(model_dir, [site_key.public], kind=ArtifactKind.MODEL, decode=bytes, now=NOW)


def test_detector_model_store_verifies_the_manifest_when_keys_are_configured(
    tmp_path: Path, site_key: SigningKey
) -> None:
    model_path = _trained_detector(tmp_path)
    sign(model_path, site_key)
    model = load_model(model_path, trusted_keys=[site_key.public], now=NOW)
    assert model is not None
    flip_one_byte(model_path)
    sink = ListSink()
    with pytest.raises(IntegrityError):
        load_model(model_path, trusted_keys=[site_key.public], now=NOW, sink=sink)
    assert sink.refusals[0].purpose == "detector model"
    # Without a trust anchor configured the .sha256 sidecar check still refuses it.
    with pytest.raises(IntegrityError, match="does not match"):
        load_model(model_path)


def _trained_detector(tmp_path: Path) -> Path:
    from aseptic.detect import fit_model, save_model
    from aseptic.twin import simulate_batches

    batches = simulate_batches(4, 500, duration_h=30.0, paa_control="true")
    samples = [
        [
            dict(zip(b.tags, row, strict=True))
            for row in zip(*[v.tolist() for v in b.tags.values()], strict=True)
        ]
        for b in batches
    ]
    model = fit_model(samples, seed=1)
    path = tmp_path / "batch-mspc.json"
    save_model(model, path)
    return path


def test_rollback_to_an_older_signed_build_is_refused(sensor_file: Path, site_key: SigningKey) -> None:
    from datetime import timedelta

    from aseptic.errors import RollbackError
    from aseptic.provenance import built_at

    sink = ListSink()
    current = load_soft_sensor(sensor_file, [site_key.public], now=NOW)
    newer_in_use = built_at(current.manifest) + timedelta(days=30)
    with pytest.raises(RollbackError, match="rollback"):
        load_verified(
            sensor_file, [site_key.public], kind=ArtifactKind.MODEL, decode=bytes, now=NOW, sink=sink,
            not_built_before=newer_in_use,
        )  # fmt: skip
    assert sink.refusals[0].error == "RollbackError"
    load_verified(sensor_file, [site_key.public], kind=ArtifactKind.MODEL, decode=bytes, now=NOW,
                  not_built_before=built_at(current.manifest))  # fmt: skip
