"""``aseptic model sign|verify`` and ``aseptic firmware sign|verify`` end to end on a real data directory."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aseptic.crypto import ED25519_ML_DSA_65, KeyStore
from aseptic.twin import default_soft_sensor, factory_image

runner = CliRunner()


def aseptic(*args: str) -> tuple[int, str, str]:
    from aseptic.cli.main import app

    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, " ".join(result.stderr.split())  # rich wraps long lines


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "paa-soft-sensor.json"
    path.write_bytes(default_soft_sensor().to_bytes())
    return path


def sign_model(model: Path, data_dir: Path, *extra: str) -> dict[str, object]:
    code, out, err = aseptic(
        "model", "sign", str(model), "--data-dir", str(data_dir), "--version", "1.0.0",
        "--intended-use", "PAA feed control", "--approver", "qa-lead", "--metric", "rmse_mg_per_l=21.5",
        "--param", "n_components=4", "--json", *extra,
    )  # fmt: skip
    assert code == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def test_model_sign_then_verify_exits_0_and_the_ledger_still_verifies(model: Path, data_dir: Path) -> None:
    signed = sign_model(model, data_dir)
    assert signed["manifest"] == str(model) + ".manifest.json"
    assert signed["ledger_leaf"] == 0
    code, out, err = aseptic("model", "verify", str(model), "--data-dir", str(data_dir), "--json")
    assert code == 0, err
    verified = json.loads(out)
    assert verified["verified"] is True
    assert verified["name"] == "paa-soft-sensor.json"
    assert verified["manifest_sha256"] == signed["manifest_sha256"]
    code, _, err = aseptic("ledger", "verify", "--data-dir", str(data_dir))
    assert code == 0, err


def test_model_with_a_flipped_byte_exits_1_naming_the_file(model: Path, data_dir: Path) -> None:
    sign_model(model, data_dir)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x04
    model.write_bytes(bytes(data))
    code, _, err = aseptic("model", "verify", str(model), "--data-dir", str(data_dir))
    assert code == 1
    assert "file 'paa-soft-sensor.json': SHA-256 expected" in err


def test_model_without_a_manifest_exits_2(model: Path, data_dir: Path) -> None:
    sign_model(model, data_dir)
    model.with_name(model.name + ".manifest.json").unlink()
    code, _, err = aseptic("model", "verify", str(model), "--data-dir", str(data_dir))
    assert code == 2
    assert "no manifest" in err


def test_manifest_signed_by_another_site_exits_1(model: Path, tmp_path: Path, data_dir: Path) -> None:
    sign_model(model, tmp_path / "other-site")
    aseptic("ledger", "init", "--data-dir", str(data_dir))
    code, _, err = aseptic("model", "verify", str(model), "--data-dir", str(data_dir))
    assert code == 1
    assert "not signed by a trusted key" in err


def test_manifest_signed_by_a_rotated_out_site_key_exits_1(model: Path, data_dir: Path) -> None:
    sign_model(model, data_dir)
    old = KeyStore.open(data_dir).load("site")
    KeyStore.open(data_dir).rotate("site")
    new = KeyStore.open(data_dir).load("site")
    (data_dir / "site.pub").write_text(f"{new.algorithm} {new.public.raw.hex()}\n")
    code, _, err = aseptic("model", "verify", str(model), "--data-dir", str(data_dir))
    assert code == 1
    assert f"key {old.key_id} is retired" in err


def test_manifest_with_signatures_stripped_exits_1(model: Path, data_dir: Path) -> None:
    signed = sign_model(model, data_dir)
    manifest = Path(str(signed["manifest"]))
    document = json.loads(manifest.read_text())
    document["signatures"] = []
    manifest.write_text(json.dumps(document))
    code, _, err = aseptic("model", "verify", str(model), "--data-dir", str(data_dir))
    assert code == 1
    assert "unsigned" in err


def test_directory_model_with_an_extra_file_exits_1(tmp_path: Path, data_dir: Path) -> None:
    directory = tmp_path / "detector"
    directory.mkdir()
    (directory / "model.json").write_bytes(b'{"mean":[1,2]}')
    sign_model(directory, data_dir)
    code, _, err = aseptic("model", "verify", str(directory), "--data-dir", str(data_dir))
    assert code == 0, err
    (directory / "extra.pkl").write_bytes(b"cos\nsystem\n")
    code, _, err = aseptic("model", "verify", str(directory), "--data-dir", str(data_dir))
    assert code == 1
    assert "extra 'extra.pkl'" in err


def test_manifest_written_with_out_is_found_with_manifest(
    model: Path, tmp_path: Path, data_dir: Path
) -> None:
    elsewhere = tmp_path / "manifests" / "sensor.json"
    elsewhere.parent.mkdir()
    sign_model(model, data_dir, "--out", str(elsewhere))
    assert not model.with_name(model.name + ".manifest.json").exists()
    code, _, err = aseptic(
        "model", "verify", str(model), "--manifest", str(elsewhere), "--data-dir", str(data_dir)
    )
    assert code == 0, err


def test_training_leaves_outside_the_ledger_exit_2(model: Path, data_dir: Path) -> None:
    code, _, err = aseptic(
        "model", "sign", str(model), "--data-dir", str(data_dir), "--training-leaves", "0-9"
    )
    assert code == 2
    assert "not in a ledger of 0 leaves" in err


def test_training_leaves_are_referenced_by_the_ledger_root(model: Path, data_dir: Path) -> None:
    sign_model(model, data_dir)  # leaf 0: the first manifest
    sign_model(model, data_dir, "--training-leaves", "0-0")
    envelope = json.loads(model.with_name(model.name + ".manifest.json").read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    (dependency,) = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert dependency["uri"] == "urn:aseptic:ledger:site-01:leaves:0-0@1"
    assert len(dependency["annotations"]["ledgerRoot"]) == 64


def test_firmware_image_signed_with_a_hybrid_site_key_verifies_and_tampering_exits_1(
    tmp_path: Path, data_dir: Path
) -> None:
    KeyStore.open(data_dir).load_or_create("site", ED25519_ML_DSA_65)
    image = tmp_path / "fermenter-01.bin"
    image.write_bytes(factory_image("fermenter-01", "2.4.1"))
    code, out, err = aseptic(
        "firmware", "sign", str(image), "--data-dir", str(data_dir), "--version", "2.4.1"
    )
    assert code == 0, err
    assert "ed25519+ml-dsa-65:" in out
    code, _, err = aseptic("firmware", "verify", str(image), "--data-dir", str(data_dir))
    assert code == 0, err
    code, _, err = aseptic("model", "verify", str(image), "--data-dir", str(data_dir))
    assert code == 1
    assert "is for a firmware, not a model" in err
    shutil.copy(image, tmp_path / "good.bin")
    image.write_bytes(factory_image("fermenter-01", "6.6.6"))
    code, _, err = aseptic("firmware", "verify", str(image), "--data-dir", str(data_dir))
    assert code == 1
    assert "SHA-256 expected" in err


def test_verify_on_an_empty_data_directory_exits_2(model: Path, data_dir: Path) -> None:
    code, _, err = aseptic("model", "verify", str(model), "--data-dir", str(data_dir))
    assert code == 2
    assert "site.pub" in err


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--param", "no-equals-sign"), "expected NAME=VALUE"),
        (("--metric", "rmse=high"), "not a number"),
        (("--metric", "rmse=nan"), "finite"),
        (("--training-leaves", "a-b"), "expected FIRST-LAST"),
    ],
)
def test_bad_sign_options_exit_2(model: Path, data_dir: Path, option: tuple[str, str], message: str) -> None:
    code, _, err = aseptic("model", "sign", str(model), "--data-dir", str(data_dir), *option)
    assert code == 2
    assert message in err
    assert not model.with_name(model.name + ".manifest.json").exists()


def test_sign_of_a_missing_artifact_exits_2(tmp_path: Path, data_dir: Path) -> None:
    code, _, err = aseptic("firmware", "sign", str(tmp_path / "absent.bin"), "--data-dir", str(data_dir))
    assert code == 2
    assert "no such file or directory" in err


def test_auditor_verifies_with_an_exported_site_key_and_a_foreign_key_exits_1(
    model: Path, tmp_path: Path, data_dir: Path
) -> None:
    sign_model(model, data_dir)
    exported = tmp_path / "auditor" / "site.pub"
    exported.parent.mkdir()
    shutil.copy(data_dir / "site.pub", exported)
    empty = tmp_path / "auditor" / "data"
    code, _, err = aseptic(
        "model", "verify", str(model), "--site-key", str(exported), "--data-dir", str(empty)
    )
    assert code == 0, err
    assert not empty.exists()  # verify writes nothing
    aseptic("ledger", "init", "--data-dir", str(tmp_path / "other"))
    code, _, err = aseptic(
        "model",
        "verify",
        str(model),
        "--site-key",
        str(tmp_path / "other" / "site.pub"),
        "--data-dir",
        str(empty),
    )
    assert code == 1
    assert "is not trusted" in err
