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


# -- model deploy (verify, policy deploy_model with the two-person rule, ledger) and model record --


def _ledger_json(data_dir: Path) -> list[dict[str, object]]:
    import sqlite3

    with sqlite3.connect(data_dir / "ledger.db") as conn:
        rows = conn.execute(
            "SELECT leaf, payload FROM audit UNION ALL SELECT leaf, payload FROM decisions"
            " UNION ALL SELECT leaf, payload FROM findings ORDER BY leaf"
        ).fetchall()
    return [json.loads(payload) for _, payload in rows]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An initialised data directory with an enrolled administrator and a session file (shared:
    argon2id makes enrolment and login deliberately slow; tests count the entries they add)."""
    import pyotp

    tmp_path = tmp_path_factory.mktemp("site")
    data_dir = tmp_path / "site"
    code, _, err = aseptic("init", "--data-dir", str(data_dir))
    assert code == 0, err
    (tmp_path / "root.pw").write_text("root password 0123\n")
    code, out, err = aseptic(
        "user", "enrol", "root", "--token-file", str(data_dir / "enrolment-token"),
        "--password-file", str(tmp_path / "root.pw"), "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 0, err
    secret = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("secret"))
    session = tmp_path / "root.session"
    result = runner.invoke(
        __import__("aseptic.cli.main", fromlist=["app"]).app,
        ["user", "login", "root", "--out", str(session), "--password-file", str(tmp_path / "root.pw"),
         "--data-dir", str(data_dir)],
        input=pyotp.TOTP(secret).now() + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return data_dir, session


def test_deploy_without_a_two_person_grant_is_denied_and_the_decision_logged(
    model: Path, site: tuple[Path, Path]
) -> None:
    data_dir, session = site
    sign_model(model, data_dir)
    before = len([e for e in _ledger_json(data_dir) if e.get("action") == "deploy_model"])
    code, _, err = aseptic(
        "model", "deploy", str(model), "--reason", "new calibration", "--session-file", str(session),
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 1, err
    assert "may not deploy model" in err
    decisions = [e for e in _ledger_json(data_dir) if e.get("action") == "deploy_model"]
    assert len(decisions) == before + 1 and decisions[-1]["decision"] == "deny"
    assert decisions[-1]["resource"] == 'Model::"paa-soft-sensor.json"'
    assert not (data_dir / "deployed").exists()


def test_deploy_of_a_model_changed_by_one_byte_is_refused_with_a_ledger_entry(
    model: Path, site: tuple[Path, Path]
) -> None:
    data_dir, session = site
    sign_model(model, data_dir)
    data = bytearray(model.read_bytes())
    data[100] ^= 0x01
    model.write_bytes(bytes(data))
    before = _ledger_json(data_dir)
    code, _, err = aseptic(
        "model", "deploy", str(model), "--reason", "x", "--session-file", str(session),
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 1
    assert "SHA-256 expected" in err
    added = _ledger_json(data_dir)[len(before) :]
    assert [e["type"] for e in added] == ["provenance.load_refused"]  # it never got to the policy
    assert added[0]["purpose"] == "deployment" and added[0]["artifact"] == str(model)


def test_deploy_needs_a_reason(model: Path, site: tuple[Path, Path]) -> None:
    data_dir, session = site
    code, _, err = aseptic(
        "model", "deploy", str(model), "--session-file", str(session), "--data-dir", str(data_dir)
    )
    assert code == 2 and "--reason" in err


def test_model_record_shows_use_independence_criteria_and_history(
    model: Path, site: tuple[Path, Path], tmp_path: Path
) -> None:
    data_dir, session = site
    sign_model(model, data_dir, "--param", "training_seed=20190601", "--param", "test_seed=20190602",
               "--metric", "r2=0.9997")  # fmt: skip
    aseptic(
        "model",
        "deploy",
        str(model),
        "--reason",
        "r",
        "--session-file",
        str(session),
        "--data-dir",
        str(data_dir),
    )
    out = tmp_path / "record.md"
    code, _, err = aseptic(
        "model", "record", str(model), "--out", str(out), "--accept", "rmse_mg_per_l<=50",
        "--accept", "r2>=0.9999", "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 0, err
    text = out.read_text()
    assert "PAA feed control" in text
    assert "independent: simulated with distinct seeds" in text
    assert "| rmse_mg_per_l | 21.5 | rmse_mg_per_l <= 50 | pass |" in text
    assert "| r2 | 0.9997 | r2 >= 0.9999 | FAIL |" in text
    assert "signed: version 1.0.0" in text
    assert 'deploy deny for User::"root"' in text
    assert "bins 800-860" in text  # the explanation of an example prediction
    html_out = tmp_path / "record.html"
    code, _, err = aseptic("model", "record", str(model), "--out", str(html_out), "--data-dir", str(data_dir))
    assert code == 0, err
    page = html_out.read_text()
    assert page.startswith("<!doctype html>") and "no acceptance criteria were given" in page
    assert "&quot;root&quot;" in page  # values are escaped


def test_model_record_refuses_a_tampered_model(model: Path, data_dir: Path, tmp_path: Path) -> None:
    sign_model(model, data_dir)
    model.write_bytes(model.read_bytes() + b" ")
    code, _, err = aseptic(
        "model", "record", str(model), "--out", str(tmp_path / "r.md"), "--data-dir", str(data_dir)
    )
    assert code == 1 and "SHA-256 expected" in err


def test_deploy_of_an_older_build_than_the_deployed_one_is_refused_as_rollback(
    model: Path, site: tuple[Path, Path], tmp_path: Path
) -> None:
    data_dir, session = site
    sign_model(model, data_dir)  # the older build
    newer = tmp_path / "newer" / model.name
    newer.parent.mkdir()
    shutil.copy(model, newer)
    import time

    time.sleep(1.1)  # build times are whole seconds (RFC 3339)
    sign_model(newer, data_dir)
    deployed = data_dir / "deployed"
    deployed.mkdir(exist_ok=True)
    shutil.copy(newer, deployed / newer.name)
    shutil.copy(str(newer) + ".manifest.json", deployed / (newer.name + ".manifest.json"))
    try:
        code, _, err = aseptic(
            "model", "deploy", str(model), "--reason", "go back", "--session-file", str(session),
            "--data-dir", str(data_dir),
        )  # fmt: skip
    finally:
        shutil.rmtree(deployed)
    assert code == 1 and "rollback" in err
