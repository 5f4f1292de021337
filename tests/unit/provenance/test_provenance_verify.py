"""verify_artifact: the attacks on a model or firmware artifact and its manifest are refused."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from provenance_support import make_spec

from aseptic.crypto import ED25519_ML_DSA_65, SigningKey
from aseptic.errors import ConfigError, InputError, IntegrityError, SignatureError
from aseptic.provenance import (
    ArtifactKind,
    manifest_path_for,
    sign_artifact,
    verify_artifact,
    verify_artifact_manifest,
    write_manifest,
)
from aseptic.twin import default_soft_sensor, factory_image


def sign_beside(path: Path, key: SigningKey, kind: ArtifactKind = ArtifactKind.MODEL) -> Path:
    manifest = sign_artifact(path, make_spec(kind), key)
    write_manifest(manifest, manifest_path_for(path))
    return manifest_path_for(path)


def edit_envelope(manifest: Path, **changes: object) -> None:
    document = json.loads(manifest.read_text())
    document.update(changes)
    manifest.write_text(json.dumps(document))


def test_signed_file_verifies(model_file: Path, site_key: SigningKey) -> None:
    sign_beside(model_file, site_key)
    verify_artifact(model_file, None, [site_key.public])
    verified = verify_artifact_manifest(model_file, None, [site_key.public], kind=ArtifactKind.MODEL)
    assert (verified.key_id, verified.statement.name, verified.statement.version) == (
        site_key.key_id,
        "paa-soft-sensor",
        "1.2.0",
    )


def test_signed_directory_verifies(model_dir: Path, site_key: SigningKey) -> None:
    sign_beside(model_dir, site_key)
    verified = verify_artifact_manifest(model_dir, None, [site_key.public])
    assert sorted(verified.statement.files) == ["config.json", "weights/layer0.bin"]


def test_artifact_with_a_flipped_byte_is_refused_naming_the_file(
    model_dir: Path, site_key: SigningKey
) -> None:
    sign_beside(model_dir, site_key)
    target = model_dir / "weights" / "layer0.bin"
    data = bytearray(target.read_bytes())
    data[500] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(
        IntegrityError, match=r"file 'weights/layer0.bin': SHA-256 expected [0-9a-f]{64}, computed"
    ):
        verify_artifact(model_dir, None, [site_key.public])


def test_missing_manifest_is_an_input_error(model_file: Path, site_key: SigningKey) -> None:
    with pytest.raises(InputError, match="no manifest"):
        verify_artifact(model_file, None, [site_key.public])


def test_manifest_swapped_from_another_artifact_is_refused(tmp_path: Path, site_key: SigningKey) -> None:
    good, evil = tmp_path / "model.json", tmp_path / "evil" / "model.json"
    evil.parent.mkdir()
    good.write_bytes(b"approved model")
    evil.write_bytes(b"poisoned model")
    shutil.copy(sign_beside(good, site_key), manifest_path_for(evil))
    with pytest.raises(IntegrityError, match="SHA-256 expected"):
        verify_artifact(evil, None, [site_key.public])


def test_manifest_of_another_file_name_is_refused(tmp_path: Path, site_key: SigningKey) -> None:
    good, renamed = tmp_path / "a.bin", tmp_path / "b.bin"
    good.write_bytes(b"model")
    renamed.write_bytes(b"model")
    shutil.copy(sign_beside(good, site_key), manifest_path_for(renamed))
    with pytest.raises(IntegrityError, match="the manifest is for file 'a.bin', not 'b.bin'"):
        verify_artifact(renamed, None, [site_key.public])


def test_manifest_with_its_signature_stripped_is_refused(model_file: Path, site_key: SigningKey) -> None:
    edit_envelope(sign_beside(model_file, site_key), signatures=[])
    with pytest.raises(SignatureError, match="unsigned"):
        verify_artifact(model_file, None, [site_key.public])


def test_manifest_signed_by_an_unknown_key_is_refused(model_file: Path, site_key: SigningKey) -> None:
    sign_beside(model_file, SigningKey.generate())
    with pytest.raises(SignatureError, match="is not trusted"):
        verify_artifact(model_file, None, [site_key.public])


def test_manifest_signed_by_a_retired_key_is_refused(model_file: Path, site_key: SigningKey) -> None:
    sign_beside(model_file, site_key)
    with pytest.raises(SignatureError, match="retired"):
        verify_artifact(model_file, None, [site_key.public], retired=[site_key.key_id])


def test_manifest_with_its_payload_type_changed_is_refused(model_file: Path, site_key: SigningKey) -> None:
    edit_envelope(sign_beside(model_file, site_key), payloadType="application/json")
    with pytest.raises(SignatureError, match="does not verify"):
        verify_artifact(model_file, None, [site_key.public])


def test_manifest_with_a_rewritten_subject_digest_is_refused(model_file: Path, site_key: SigningKey) -> None:
    manifest = sign_beside(model_file, site_key)
    model_file.write_bytes(b"replacement model")
    document = json.loads(manifest.read_text())
    payload = base64.b64decode(document["payload"]).replace(
        b'"name":"model.json"', b'"name":"model.json","x":1'
    )
    edit_envelope(manifest, payload=base64.b64encode(payload).decode())
    with pytest.raises(SignatureError):
        verify_artifact(model_file, None, [site_key.public])


def test_extra_file_in_a_directory_artifact_is_refused(model_dir: Path, site_key: SigningKey) -> None:
    sign_beside(model_dir, site_key)
    (model_dir / "weights" / "backdoor.bin").write_bytes(b"\x00")
    with pytest.raises(IntegrityError, match="extra 'weights/backdoor.bin'"):
        verify_artifact(model_dir, None, [site_key.public])


def test_missing_file_in_a_directory_artifact_is_refused(model_dir: Path, site_key: SigningKey) -> None:
    sign_beside(model_dir, site_key)
    (model_dir / "config.json").unlink()
    with pytest.raises(IntegrityError, match="missing 'config.json'"):
        verify_artifact(model_dir, None, [site_key.public])


def test_directory_replaced_by_a_file_is_refused(
    model_dir: Path, tmp_path: Path, site_key: SigningKey
) -> None:
    manifest = sign_beside(model_dir, site_key)
    shutil.rmtree(model_dir)
    model_dir.write_bytes(b"config")
    with pytest.raises(IntegrityError, match="describes a directory"):
        verify_artifact(model_dir, manifest, [site_key.public])


def test_symlink_in_a_directory_artifact_is_refused(
    model_dir: Path, tmp_path: Path, site_key: SigningKey
) -> None:
    sign_beside(model_dir, site_key)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"bytes from elsewhere")
    os.symlink(outside, model_dir / "link.bin")
    with pytest.raises(InputError, match="links are refused"):
        verify_artifact(model_dir, None, [site_key.public])


def test_firmware_manifest_is_refused_for_a_model(model_file: Path, site_key: SigningKey) -> None:
    sign_beside(model_file, site_key, ArtifactKind.FIRMWARE)
    with pytest.raises(IntegrityError, match="is for a firmware, not a model"):
        verify_artifact(model_file, None, [site_key.public], kind=ArtifactKind.MODEL)


def test_truncated_manifest_is_an_input_error(model_file: Path, site_key: SigningKey) -> None:
    manifest = sign_beside(model_file, site_key)
    manifest.write_bytes(manifest.read_bytes()[:100])
    with pytest.raises(InputError, match="not JSON"):
        verify_artifact(model_file, None, [site_key.public])


def test_no_trusted_keys_fails_closed(model_file: Path, site_key: SigningKey) -> None:
    sign_beside(model_file, site_key)
    with pytest.raises(ConfigError):
        verify_artifact(model_file, None, [])


def test_soft_sensor_model_bytes_sign_and_verify_and_a_changed_coefficient_is_refused(
    tmp_path: Path, site_key: SigningKey
) -> None:
    sensor = default_soft_sensor()
    path = tmp_path / "paa-soft-sensor.json"
    path.write_bytes(sensor.to_bytes())
    verified_manifest = sign_artifact(path, make_spec(), site_key)
    assert verified_manifest.statement.files == {"paa-soft-sensor.json": sensor.digest}
    write_manifest(verified_manifest, manifest_path_for(path))
    verify_artifact(path, None, [site_key.public], kind=ArtifactKind.MODEL)
    document = json.loads(path.read_bytes())
    document["pls"]["coef"][0] *= 1.01  # a subtle model manipulation (ATLAS AML.T0018)
    path.write_bytes(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(IntegrityError, match=f"expected {sensor.digest}"):
        verify_artifact(path, None, [site_key.public], kind=ArtifactKind.MODEL)


def test_firmware_image_signed_with_a_hybrid_key_verifies_and_a_flipped_byte_is_refused(
    tmp_path: Path,
) -> None:
    key = SigningKey.generate(ED25519_ML_DSA_65)
    path = tmp_path / "fermenter-01-2.4.1.bin"
    path.write_bytes(factory_image("fermenter-01", "2.4.1"))
    sign_beside(path, key, ArtifactKind.FIRMWARE)
    verify_artifact(path, None, [key.public], kind=ArtifactKind.FIRMWARE)
    image = bytearray(path.read_bytes())
    image[-1] ^= 0x80
    path.write_bytes(bytes(image))
    with pytest.raises(IntegrityError, match="'fermenter-01-2.4.1.bin': SHA-256 expected"):
        verify_artifact(path, None, [key.public], kind=ArtifactKind.FIRMWARE)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flipped_byte_in_any_file_of_a_directory_is_refused_naming_that_file(
    model_dir: Path, site_key: SigningKey, data: st.DataObject
) -> None:
    manifest = model_dir.with_name(model_dir.name + ".manifest.json")
    if not manifest.exists():
        sign_beside(model_dir, site_key)
    name = data.draw(st.sampled_from(["config.json", "weights/layer0.bin"]))
    target = model_dir / name
    original = target.read_bytes()
    position = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    flipped = bytearray(original)
    flipped[position] ^= 1 << bit
    target.write_bytes(bytes(flipped))
    try:
        with pytest.raises(IntegrityError, match=f"file '{name}': SHA-256 expected"):
            verify_artifact(model_dir, None, [site_key.public])
    finally:
        target.write_bytes(original)
    verify_artifact(model_dir, None, [site_key.public])
