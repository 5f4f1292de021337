"""Site keys in a PKCS#11 token: a throwaway SoftHSM2 token (Debian package softhsm2) per test module.

The Ed25519 half signs inside the token and cannot be read out; the ML-DSA-65 half is sealed on disk
under an AES key in the token; ledger checkpoints signed this way verify offline with site.pub like
any other. A wrong PIN, a missing module and a tampered sealed half are clear errors.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aseptic.clock import SimClock
from aseptic.crypto import (
    ED25519,
    ED25519_ML_DSA_65,
    PKCS11_PIN_ENV,
    PKCS11_PIN_FILE_ENV,
    KeyStore,
    TokenConfig,
    read_public_key,
)
from aseptic.errors import ConfigError, InputError, SignatureError
from aseptic.ledger import Checkpoint, Ledger, verify_ledger

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN, SO_PIN = "4711-aseptic", "so-pin-0815"
LABEL, SECOND_LABEL = "aseptic-test", "aseptic-wrong-pin"
START = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)

pytestmark = [
    pytest.mark.skipif(
        not MODULE.is_file() or shutil.which("softhsm2-util") is None,
        reason="SoftHSM2 is not installed (Debian package softhsm2; `make system-deps` installs it)",
    ),
    pytest.mark.requirement("ASE-PQC"),
]


def write_secret(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text + "\n")
    return path


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two fresh tokens in a private token directory; SOFTHSM2_CONF and the PIN file set for the module.

    SoftHSM reads its configuration when the module is first initialised in a process, so every
    test here shares these tokens (python-pkcs11 loads a module once per process).
    """
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    for label in (LABEL, SECOND_LABEL):
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
            env=env,
            check=True,
            capture_output=True,
        )
    pin_file = write_secret(root / "pin", PIN)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        patch.delenv(PKCS11_PIN_ENV, raising=False)
        patch.setenv(PKCS11_PIN_FILE_ENV, str(pin_file))
        yield root


def token_store(data_dir: Path, label: str = LABEL) -> KeyStore:
    return KeyStore.open(data_dir, token=TokenConfig(MODULE, label))


def test_hybrid_site_key_in_the_token_signs_checkpoints_that_verify_offline(
    softhsm: Path, tmp_path: Path
) -> None:
    site_key = token_store(tmp_path).load_or_create("site", ED25519_ML_DSA_65)
    assert site_key.in_token and site_key.algorithm == ED25519_ML_DSA_65
    clock = SimClock(START)
    with Ledger.open(tmp_path, site_key=site_key, clock=clock) as ledger:
        ledger.append_finding({"detector": "cusum", "score": 7.25})
        ledger.checkpoint()
        clock.advance(60)
        ledger.append_finding({"detector": "cusum", "score": 8.5})
        last = ledger.checkpoint()
    anchor = read_public_key(tmp_path / "site.pub")
    assert anchor == site_key.public
    report = verify_ledger(tmp_path, anchor)
    assert (report.size, report.checkpoints, report.discrepancies) == (2, 2, [])
    Checkpoint.from_note(last.to_note()).verify(anchor)
    # A later process (a fresh store over the same directory) finds the key in the token by itself.
    reloaded = KeyStore.open(tmp_path).load("site")
    assert reloaded.in_token and reloaded.key_id == site_key.key_id
    message = b"checkpoint 3"
    reloaded.public.verify(reloaded.sign(message), message, what="checkpoint 3")


def test_private_key_is_not_extractable_and_not_on_disk(softhsm: Path, tmp_path: Path) -> None:
    keys = token_store(tmp_path)
    key = keys.load_or_create("site", ED25519_ML_DSA_65)
    assert key._private.is_extractable is False  # type: ignore[attr-defined]  # the token's view
    with pytest.raises(ConfigError, match="held in a PKCS#11 token and cannot be exported"):
        key.to_pem()
    data = (tmp_path / "keys" / "site.key").read_bytes()
    assert data.startswith(b"aseptic-pkcs11-key/v1\n") and b"PRIVATE KEY" not in data
    assert b"ed25519: token\n" in data
    assert keys.is_encrypted("site")


def test_ed25519_key_in_the_token(softhsm: Path, tmp_path: Path) -> None:
    key = token_store(tmp_path).load_or_create("collector-01", ED25519)
    assert key.in_token and len(key.sign(b"envelope")) == 64
    key.public.verify(key.sign(b"envelope"), b"envelope", what="envelope 1")
    with pytest.raises(SignatureError):
        key.public.verify(key.sign(b"envelope"), b"envelopf", what="envelope 1")


def test_exportable_key_is_sealed_under_the_token(softhsm: Path, tmp_path: Path) -> None:
    ca = token_store(tmp_path).load_or_create("ca", exportable=True)
    assert not ca.in_token and ca.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----")
    data = (tmp_path / "keys" / "ca.key").read_bytes()
    assert b"ed25519: sealed\n" in data and b"PRIVATE KEY" not in data
    assert KeyStore.open(tmp_path).load("ca").key_id == ca.key_id


def test_x509_key_is_sealed_under_the_token(softhsm: Path, tmp_path: Path) -> None:
    """The TLS CA's ECDSA P-256 key (ADR 0380) in a token-backed store: sealed under the token's AES key."""
    key = token_store(tmp_path).load_or_create_x509_key("tls-ca")
    data = (tmp_path / "keys" / "tls-ca.key").read_bytes()
    assert b"algorithm: ecdsa-p256\n" in data and b"ed25519: sealed\n" in data and b"PRIVATE KEY" not in data
    assert KeyStore.open(tmp_path).load_x509_key("tls-ca").private_numbers() == key.private_numbers()


def test_tampered_sealed_half_is_detected(softhsm: Path, tmp_path: Path) -> None:
    token_store(tmp_path).load_or_create("site", ED25519_ML_DSA_65)
    path = tmp_path / "keys" / "site.key"
    path.write_bytes(path.read_bytes().replace(b"ed25519+ml-dsa-65", b"ed25519+ml-dsa-66", 1))
    with pytest.raises(InputError, match="does not decrypt with the token's key"):
        KeyStore.open(tmp_path).load("site")


def test_rotation_in_the_token_keeps_the_retired_key_usable(softhsm: Path, tmp_path: Path) -> None:
    keys = token_store(tmp_path)
    old = keys.load_or_create("site", ED25519_ML_DSA_65)
    new = keys.rotate("site")
    assert new.in_token and new.key_id != old.key_id and new.algorithm == old.algorithm
    retired = keys.load_retired("site", old.key_id)
    retired.public.verify(retired.sign(b"old evidence"), b"old evidence", what="countersign")


def test_wrong_pin_is_a_clear_error(softhsm: Path, tmp_path: Path) -> None:
    wrong = write_secret(softhsm / "wrong-pin", "0000-not-it")
    token = TokenConfig(MODULE, SECOND_LABEL)
    expected = f"the PIN from {wrong} is wrong for PKCS#11 token '{SECOND_LABEL}'"
    with pytest.raises(ConfigError, match=expected) as info:
        KeyStore.open(tmp_path, token=token, environ={PKCS11_PIN_FILE_ENV: str(wrong)})
    assert "0000-not-it" not in str(info.value) and "0000-not-it" not in (info.value.hint or "")
    assert not (tmp_path / "keys" / "pkcs11.json").exists()  # the store was not pointed at it


def test_pin_file_readable_by_others_is_refused(softhsm: Path, tmp_path: Path) -> None:
    loose = write_secret(softhsm / "loose-pin", PIN)
    loose.chmod(0o644)
    with pytest.raises(ConfigError, match="group or others can access it"):
        KeyStore.open(tmp_path, token=TokenConfig(MODULE, LABEL), environ={PKCS11_PIN_FILE_ENV: str(loose)})


def test_no_pin_configured_is_a_clear_error(softhsm: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"no PIN for PKCS#11 token '{LABEL}'"):
        KeyStore.open(tmp_path, token=TokenConfig(MODULE, LABEL), environ={})


def test_missing_module_is_a_config_error(tmp_path: Path) -> None:
    missing = TokenConfig(tmp_path / "libnothere.so", LABEL)
    with pytest.raises(ConfigError, match="PKCS#11 module .*libnothere.so does not exist"):
        KeyStore.open(tmp_path, token=missing, environ={PKCS11_PIN_ENV: PIN})


def test_unknown_token_label_is_a_config_error(softhsm: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no PKCS#11 token labelled 'no-such-token'"):
        KeyStore.open(tmp_path, token=TokenConfig(MODULE, "no-such-token"))


def test_a_token_store_without_its_configuration_file_says_so(softhsm: Path, tmp_path: Path) -> None:
    token_store(tmp_path).load_or_create("site")
    (tmp_path / "keys" / "pkcs11.json").unlink()
    with pytest.raises(ConfigError, match="is held in a PKCS#11 token, and .*pkcs11.json is missing"):
        KeyStore.open(tmp_path).load("site")


def test_a_store_cannot_be_repointed_at_another_token(softhsm: Path, tmp_path: Path) -> None:
    token_store(tmp_path).load_or_create("site")
    with pytest.raises(ConfigError, match="already uses PKCS#11 token"):
        token_store(tmp_path, SECOND_LABEL)


def test_aseptic_init_creates_the_keys_in_the_token(softhsm: Path, tmp_path: Path) -> None:
    """The CLI end to end, in its own process: no passphrase at all, keys in the token."""
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASEPTIC_KEY_PASSPHRASE")}
    token_options = ["--pkcs11-module", str(MODULE), "--token-label", LABEL]
    result = subprocess.run(
        [sys.executable, "-m", "aseptic.cli", "init", "--data-dir", str(data_dir), *token_options],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert PIN not in result.stdout + result.stderr
    config = json.loads((data_dir / "keys" / "pkcs11.json").read_text())
    assert config == {"module": str(MODULE), "token_label": LABEL, "pin_file": None}
    for name in ("site", "session"):
        assert (data_dir / "keys" / f"{name}.key").read_bytes().startswith(b"aseptic-pkcs11-key/v1\n")
    assert b"ed25519: sealed\n" in (data_dir / "keys" / "tls-ca.key").read_bytes()  # P-256, ADR 0380
    site = KeyStore.open(data_dir).load("site")
    assert site.in_token and site.algorithm == ED25519_ML_DSA_65
    assert read_public_key(data_dir / "site.pub") == site.public
    report = verify_ledger(data_dir, site.public)
    assert report.discrepancies == []
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        payloads = [json.loads(row[0]) for row in conn.execute("SELECT payload FROM audit")]
    conn.close()
    [entry] = [p for p in payloads if p.get("record") == "key-store:protection"]
    assert entry["new"] == f"pkcs11 token '{LABEL}' ({MODULE})"


def test_tuf_role_keys_sign_inside_the_token_and_a_client_verifies_them(
    softhsm: Path, tmp_path: Path
) -> None:
    from aseptic.provenance import FirmwareUpdateClient, TufRepository
    from aseptic.twin import factory_image

    keys = token_store(tmp_path / "site")
    now = datetime.now(UTC)  # python-tuf checks expiry against the wall clock
    repo = TufRepository.init(tmp_path / "repo", keys, now=now)
    for role in ("root", "targets", "snapshot", "timestamp"):
        assert keys.load(f"tuf-{role}").in_token
        assert (
            (tmp_path / "site" / "keys" / f"tuf-{role}.key")
            .read_bytes()
            .startswith(b"aseptic-pkcs11-key/v1\n")
        )
    image = factory_image("TIC-101", "4.2.1")
    repo.publish({"TIC-101.fw": image}, now=now)
    assert repo.rotate(("root",), now=now) == 2
    client = FirmwareUpdateClient(tmp_path / "dev", repo.directory, trusted_root=repo.trusted_root())
    assert client.fetch("TIC-101.fw", now=now) == image
    assert client.trusted_versions()["root"] == 2
