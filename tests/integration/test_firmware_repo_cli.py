"""``aseptic firmware repo init|add|publish|refresh|rotate-root`` and ``aseptic firmware update DEVICE``
end to end on a real data directory: role keys sealed in the key store, and every attack on an update
(rollback, freeze, mix-and-match, one byte changed, a forged root) a clear error, exit 1, a Finding
and a ledger entry."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aseptic.crypto import PASSPHRASE_FILE_ENV, KeyStore
from aseptic.provenance import TufRepository
from aseptic.twin import factory_image

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-PROVENANCE")]

runner = CliRunner()
V1 = factory_image("TIC-101", "4.2.1")
V2 = factory_image("TIC-101", "4.3.0")


def aseptic(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    from aseptic.cli.main import app

    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def ok(*args: str) -> dict[str, Any]:
    code, out, err = aseptic(*args, "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def findings(data_dir: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        rows = conn.execute("SELECT payload FROM findings ORDER BY leaf").fetchall()
    return [json.loads(row[0]) for row in rows]


def refusals(data_dir: Path) -> list[dict[str, Any]]:
    return [f for f in findings(data_dir) if f.get("type") == "provenance.load_refused"]


def add_image(tmp_path: Path, data: Path, data_bytes: bytes, version: str) -> None:
    image = tmp_path / version / "TIC-101.fw"
    image.parent.mkdir()
    image.write_bytes(data_bytes)
    ok("firmware", "sign", str(image), "--data-dir", str(data), "--version", version)
    ok("firmware", "repo", "add", str(image), "--data-dir", str(data))
    ok("firmware", "repo", "publish", "--data-dir", str(data))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose repository published V1 (copied to v1/), then V2 (in D/tuf).

    Built once (each CLI call costs about a second); every test works on a copy.
    """
    root = tmp_path_factory.mktemp("firmware-repo")
    data = root / "data"
    probe = root / "probe.fw"
    probe.write_bytes(V1)
    ok("firmware", "sign", str(probe), "--data-dir", str(data))  # initialises D (keys, ledger)
    ok("firmware", "repo", "init", "--data-dir", str(data))
    add_image(root, data, V1, "4.2.1")
    shutil.copytree(data / "tuf", root / "v1")
    add_image(root, data, V2, "4.3.0")
    return root


@pytest.fixture
def site(template: Path, tmp_path: Path) -> Path:
    for name in ("data", "v1", "4.2.1", "4.3.0"):
        shutil.copytree(template / name, tmp_path / name)
    return tmp_path / "data"


def update(data: Path, *extra: str) -> tuple[int, str, str]:
    return aseptic("firmware", "update", "TIC-101", "--data-dir", str(data), *extra)


def test_repo_keys_are_sealed_and_a_device_updates_to_the_newest_image(site: Path, tmp_path: Path) -> None:
    keys = KeyStore.open(site)
    assert all(keys.is_encrypted(f"tuf-{role}") for role in ("root", "targets", "snapshot", "timestamp"))
    assert not list((site / "tuf").rglob("*.key")) and not list((site / "tuf").rglob("*.pem"))
    result = ok("firmware", "update", "TIC-101", "--data-dir", str(site), "--out", str(tmp_path / "out.fw"))
    assert (tmp_path / "out.fw").read_bytes() == V2
    assert (result["targets_version"], result["root_version"]) == (3, 1)
    assert refusals(site) == []


def test_repo_init_without_a_key_passphrase_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    probe = tmp_path / "probe.fw"
    probe.write_bytes(V1)
    ok("firmware", "sign", str(probe), "--data-dir", str(data))
    code, _, err = aseptic(
        "firmware", "repo", "init", "--data-dir", str(data), env={PASSPHRASE_FILE_ENV: None}
    )
    assert code == 2 and "passphrase" in err
    assert not list((data / "keys").glob("tuf-*"))


def test_repo_add_refuses_an_image_changed_by_one_byte(site: Path, tmp_path: Path) -> None:
    image = tmp_path / "4.3.0" / "TIC-101.fw"
    data = bytearray(image.read_bytes())
    data[4096] ^= 0x01
    image.write_bytes(bytes(data))
    code, _, err = aseptic("firmware", "repo", "add", str(image), "--data-dir", str(site))
    assert code == 1 and "SHA-256 expected" in err
    assert TufRepository.open(site / "tuf", KeyStore.open(site)).staged() == ()
    (refusal,) = refusals(site)
    assert (refusal["artifact_kind"], refusal["purpose"]) == ("firmware", "TUF repository")


def test_update_refuses_a_rollback_to_older_signed_metadata(site: Path, tmp_path: Path) -> None:
    ok("firmware", "update", "TIC-101", "--data-dir", str(site))
    code, _, err = update(site, "--mirror", str(tmp_path / "v1"))
    assert code == 1 and "rollback" in err
    (refusal,) = refusals(site)
    assert (refusal["error"], refusal["technique"]) == ("RollbackError", "T0857")


def test_update_refuses_a_frozen_repository(site: Path, tmp_path: Path) -> None:
    shutil.copytree(site / "tuf", tmp_path / "frozen")
    repo = TufRepository.open(site / "tuf", KeyStore.open(site))
    stale = repo.sign_timestamp(
        version=99, snapshot_version=3, expires=datetime.now(UTC) - timedelta(hours=1)
    )
    (tmp_path / "frozen" / "metadata" / "timestamp.json").write_bytes(stale)
    code, _, err = update(site, "--mirror", str(tmp_path / "frozen"))
    assert code == 1 and "freeze" in err
    assert [r["error"] for r in refusals(site)] == ["IntegrityError"]


def test_update_refuses_mix_and_match_metadata(site: Path, tmp_path: Path) -> None:
    shutil.copytree(site / "tuf", tmp_path / "mixed")
    shutil.copy(
        tmp_path / "v1" / "metadata" / "targets.json", tmp_path / "mixed" / "metadata" / "targets.json"
    )
    code, _, err = update(site, "--mirror", str(tmp_path / "mixed"))
    assert code == 1 and "mix-and-match" in err
    assert len(refusals(site)) == 1


def test_update_refuses_an_image_changed_by_one_byte(site: Path, tmp_path: Path) -> None:
    shutil.copytree(site / "tuf", tmp_path / "tampered")
    image = tmp_path / "tampered" / "targets" / "TIC-101.fw"
    data = bytearray(image.read_bytes())
    data[-1] ^= 0x80
    image.write_bytes(bytes(data))
    code, _, err = update(site, "--mirror", str(tmp_path / "tampered"))
    assert code == 1 and "differs from the targets metadata" in err
    assert refusals(site)[0]["purpose"] == "firmware update"


def test_rotate_root_then_devices_that_trust_the_old_root_still_update(site: Path, tmp_path: Path) -> None:
    ok("firmware", "update", "TIC-101", "--data-dir", str(site))
    old_root = (site / "tuf" / "metadata" / "1.root.json").read_bytes()
    rotated = ok("firmware", "repo", "rotate-root", "--role", "timestamp", "--data-dir", str(site))
    assert rotated["root_version"] == 2
    roots = [f for f in findings(site) if f.get("type") == "provenance.tuf_root"]
    assert [(r["action"], r["root_version"]) for r in roots] == [("init", 1), ("rotate", 2)]
    refreshed = ok("firmware", "repo", "refresh", "--snapshot", "--data-dir", str(site))
    assert refreshed["root_version"] == 2
    result = ok("firmware", "update", "TIC-101", "--data-dir", str(site))
    assert (result["root_version"], result["timestamp_version"]) == (2, refreshed["timestamp_version"])
    (tmp_path / "anchor.json").write_bytes(old_root)
    shutil.rmtree(site / "tuf-clients")  # a device provisioned long ago with root version 1
    fresh = ok(
        "firmware",
        "update",
        "TIC-101",
        "--trusted-root",
        str(tmp_path / "anchor.json"),
        "--data-dir",
        str(site),
    )
    assert fresh["root_version"] == 2


def test_update_without_a_trusted_root_is_a_usage_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    probe = tmp_path / "probe.fw"
    probe.write_bytes(V1)
    ok("firmware", "sign", str(probe), "--data-dir", str(data))
    code, _, err = update(data)
    assert code == 2 and "no trusted TUF root" in err
