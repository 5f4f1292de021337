"""Secure by default (ADR 0230): `aseptic init`, and the auto-init of a command that finds an empty
data directory, refuse to write private keys unencrypted unless a passphrase (or token) is configured
or `--insecure-no-passphrase` is given, which is recorded in the store and in the log."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aseptic.crypto import PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, KeyStore

pytestmark = pytest.mark.requirement("ASE-PQC")

runner = CliRunner()
NO_PASSPHRASE: dict[str, str | None] = {PASSPHRASE_FILE_ENV: None, PASSPHRASE_ENV: None}


def aseptic(*args: str, env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
    from aseptic.cli.main import app

    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def audit_payloads(data_dir: Path) -> list[dict[str, object]]:
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        rows = conn.execute("SELECT payload FROM audit ORDER BY leaf").fetchall()
    conn.close()
    return [json.loads(row[0]) for row in rows]


def test_init_without_a_passphrase_refuses_and_writes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    code, _, err = aseptic("init", "--data-dir", str(data_dir), "--algorithm", "ed25519", env=NO_PASSPHRASE)
    assert code == 2
    assert "refusing to write the site's private keys unencrypted" in err
    assert "ASEPTIC_KEY_PASSPHRASE_FILE" in err and "--insecure-no-passphrase" in err
    assert not (data_dir / "keys" / "site.key").exists() and not (data_dir / "ledger.db").exists()


def test_auto_init_of_an_empty_data_dir_refuses_too(tmp_path: Path) -> None:
    data_dir = tmp_path / "empty"
    data_dir.mkdir()
    code, _, err = aseptic("user", "list", "--data-dir", str(data_dir), env=NO_PASSPHRASE)
    assert code == 2 and "refusing to write the site's private keys unencrypted" in err
    assert not (data_dir / "keys" / "site.key").exists()


def test_insecure_no_passphrase_is_warned_recorded_and_logged(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    args = ("init", "--data-dir", str(data_dir), "--algorithm", "ed25519", "--insecure-no-passphrase")
    code, _, err = aseptic(*args, env=NO_PASSPHRASE)
    assert code == 0, err
    assert "warning: --insecure-no-passphrase: private keys are written UNENCRYPTED" in err
    assert (data_dir / "keys" / "INSECURE-NO-PASSPHRASE").is_file()
    assert (data_dir / "keys" / "site.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    [entry] = [p for p in audit_payloads(data_dir) if p.get("record") == "key-store:protection"]
    assert entry["new"] == "UNENCRYPTED (--insecure-no-passphrase)" and entry["why"]


def test_init_with_a_passphrase_seals_every_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    code, _, err = aseptic("init", "--data-dir", str(data_dir), "--algorithm", "ed25519")
    assert code == 0, err
    keys = KeyStore.open(data_dir)
    for name in ("site", "session", "tls-ca"):
        assert keys.is_encrypted(name), name
    assert not keys.has("ca")  # the legacy Ed25519 CA key: new sites have a P-256 one (ADR 0380)
    assert keys.load_x509_key("tls-ca").curve.name == "secp256r1"
    assert not (data_dir / "keys" / "INSECURE-NO-PASSPHRASE").exists()
    # The default adds no leaf: only a departure from it (plaintext, token) is logged.
    assert not [p for p in audit_payloads(data_dir) if p.get("record") == "key-store:protection"]


def test_pkcs11_token_label_without_a_module_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = aseptic("init", "--data-dir", str(tmp_path / "d"), "--token-label", "hsm")
    assert code == 2 and "--token-label needs --pkcs11-module" in err


def test_demo_makes_its_own_passphrase_file_and_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aseptic.cli._demo import _ensure_demo_passphrase

    monkeypatch.delenv(PASSPHRASE_FILE_ENV)
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    _ensure_demo_passphrase(tmp_path / "out")
    path = tmp_path / "out" / "key-passphrase"
    assert os.environ[PASSPHRASE_FILE_ENV] == str(path.resolve())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_text().strip()) >= 32
    first = path.read_text()
    monkeypatch.delenv(PASSPHRASE_FILE_ENV)
    _ensure_demo_passphrase(tmp_path / "out")  # a second run keeps the passphrase its keys need
    assert path.read_text() == first
    keys = KeyStore.open(tmp_path / "out" / "data")
    keys.load_or_create("site")
    assert keys.is_encrypted("site")
