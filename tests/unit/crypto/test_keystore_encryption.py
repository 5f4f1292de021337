"""Keys at rest: sealed under a passphrase, no plaintext key material on disk, wrong or missing
passphrases refused without leaking them, old plaintext stores still load, rotation keeps old keys."""

from __future__ import annotations

import base64
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from aseptic.crypto import (
    ED25519,
    ED25519_ML_DSA_65,
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    KeyStore,
    Passphrase,
    SigningKey,
    _sealed,  # the KDF cost knob, lowered for speed (see cheap_kdf)
    passphrase_from_environment,
)
from aseptic.errors import AsepticError, ConfigError, InputError

pytestmark = pytest.mark.requirement("ASE-PQC")

SECRET = "correct horse battery staple 42"
PASSPHRASE = Passphrase(SECRET.encode(), source="the test")
WRONG = Passphrase(b"incorrect horse battery staple", source="the test")


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: Any) -> None:
    """Files record their scrypt cost, so a cheaper one exercises the same code; one test pins the default."""
    monkeypatch.setattr(_sealed, "SCRYPT_N", 2**14)


def store(tmp_path: Path, passphrase: Passphrase | None = PASSPHRASE) -> KeyStore:
    # Without a passphrase, writing keys needs the recorded opt-in (ADR 0230).
    return KeyStore.open(
        tmp_path, passphrase=passphrase, environ={}, insecure_no_passphrase=passphrase is None
    )


def secrets_of(key: SigningKey) -> list[bytes]:
    """Every private component, raw: the Ed25519 seed and, if hybrid, the ML-DSA-65 seed."""
    pem = key.to_pem()
    found = []
    for block in re.findall(rb"-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----\n", pem, re.DOTALL):
        private = serialization.load_pem_private_key(block, password=None)
        assert isinstance(private, Ed25519PrivateKey | MLDSA65PrivateKey)
        found.append(private.private_bytes_raw())
    return found


def assert_no_secret_in(text: str) -> None:
    assert SECRET not in text
    assert SECRET[:12] not in text


@pytest.mark.parametrize("algorithm", [ED25519, ED25519_ML_DSA_65])
def test_encrypted_key_file_holds_no_plaintext_key_material(tmp_path: Path, algorithm: str) -> None:
    key = store(tmp_path).load_or_create("site", algorithm)
    data = (tmp_path / "keys" / "site.key").read_bytes()
    assert data.startswith(b"aseptic-sealed-key/v1\n")
    assert b"PRIVATE KEY" not in data
    for secret in secrets_of(key):
        for form in (secret, secret.hex().encode(), base64.b64encode(secret), base64.b64encode(secret[:24])):
            assert form not in data
    assert key.to_pem() not in data
    assert stat.S_IMODE((tmp_path / "keys" / "site.key").stat().st_mode) == 0o600
    assert f"algorithm: {algorithm}\n".encode() in data


@pytest.mark.parametrize("algorithm", [ED25519, ED25519_ML_DSA_65])
def test_encrypted_key_round_trips_with_the_passphrase(tmp_path: Path, algorithm: str) -> None:
    key = store(tmp_path).load_or_create("site", algorithm)
    again = store(tmp_path).load("site")
    assert again.key_id == key.key_id and again.algorithm == algorithm
    key.public.verify(again.sign(b"m"), b"m", what="m")
    assert store(tmp_path).is_encrypted("site")


def test_default_kdf_cost_is_scrypt_n_2_17(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(_sealed, "SCRYPT_N", 2**17)
    store(tmp_path).load_or_create("site")
    assert b"kdf: scrypt\nn: 131072\nr: 8\np: 1\n" in (tmp_path / "keys" / "site.key").read_bytes()


def test_wrong_passphrase_is_refused_without_revealing_either(tmp_path: Path) -> None:
    store(tmp_path).load_or_create("site")
    with pytest.raises(ConfigError, match="does not decrypt this key") as info:
        store(tmp_path, WRONG).load("site")
    text = f"{info.value} {info.value.hint}"
    assert_no_secret_in(text)
    assert "incorrect horse" not in text
    assert "site.key" in text


def test_sealed_key_without_any_passphrase_says_which_variables_to_set(tmp_path: Path) -> None:
    store(tmp_path).load_or_create("site")
    with pytest.raises(ConfigError, match="is encrypted and no key passphrase is configured") as info:
        store(tmp_path, None).load("site")
    assert info.value.hint is not None and PASSPHRASE_FILE_ENV in info.value.hint


@pytest.mark.parametrize(
    ("old", "new"),
    [(b"algorithm: ed25519\n", b"algorithm: ed25519+ml-dsa-65\n"), (b"n: 16384\n", b"n: 32768\n")],
)
def test_edited_sealed_header_is_detected(tmp_path: Path, old: bytes, new: bytes) -> None:
    store(tmp_path).load_or_create("site")
    path = tmp_path / "keys" / "site.key"
    path.write_bytes(path.read_bytes().replace(old, new))
    with pytest.raises(ConfigError, match="or the file was altered"):
        store(tmp_path).load("site")


def test_flipped_ciphertext_byte_is_detected(tmp_path: Path) -> None:
    store(tmp_path).load_or_create("site")
    path = tmp_path / "keys" / "site.key"
    head, _, body = path.read_bytes().rpartition(b"ciphertext: ")
    raw = bytearray(base64.b64decode(body))
    raw[10] ^= 1
    path.write_bytes(head + b"ciphertext: " + base64.b64encode(bytes(raw)) + b"\n")
    with pytest.raises(ConfigError, match="or the file was altered"):
        store(tmp_path).load("site")


def test_crafted_kdf_cost_is_refused_before_deriving(tmp_path: Path) -> None:
    store(tmp_path).load_or_create("site")
    path = tmp_path / "keys" / "site.key"
    path.write_bytes(path.read_bytes().replace(b"n: 16384\n", b"n: 1073741824\n"))
    with pytest.raises(InputError, match="unsupported key-encryption parameters"):
        store(tmp_path).load("site")


def test_plaintext_key_files_from_before_still_load(tmp_path: Path) -> None:
    legacy = store(tmp_path, None).load_or_create("site")
    assert (tmp_path / "keys" / "site.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert store(tmp_path).load("site").key_id == legacy.key_id  # store now has a passphrase
    assert store(tmp_path, None).load("site").key_id == legacy.key_id
    assert not store(tmp_path).is_encrypted("site")


def test_passphrase_comes_from_the_environment_variable(tmp_path: Path) -> None:
    keys = KeyStore.open(tmp_path, environ={PASSPHRASE_ENV: SECRET})
    assert keys.encrypts_keys
    key = keys.load_or_create("site")
    assert store(tmp_path).load("site").key_id == key.key_id


def test_passphrase_comes_from_an_owner_only_file(tmp_path: Path) -> None:
    path = tmp_path / "passphrase"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, SECRET.encode() + b"\n")
    os.close(fd)
    passphrase = passphrase_from_environment({PASSPHRASE_FILE_ENV: str(path)})
    assert passphrase is not None and passphrase.secret == SECRET.encode()
    assert_no_secret_in(repr(passphrase) + str(passphrase))


def test_passphrase_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "passphrase"
    path.write_text(SECRET)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="group or others can access it") as info:
        passphrase_from_environment({PASSPHRASE_FILE_ENV: str(path)})
    assert_no_secret_in(str(info.value))


def test_no_passphrase_configured_refuses_to_write_an_unencrypted_key(tmp_path: Path) -> None:
    assert passphrase_from_environment({}) is None
    keys = KeyStore.open(tmp_path, environ={})
    assert not keys.encrypts_keys and not keys.allows_plaintext
    with pytest.raises(ConfigError, match="refusing to write key 'site' unencrypted") as info:
        keys.load_or_create("site")
    assert info.value.hint is not None and "--insecure-no-passphrase" in info.value.hint
    assert not (tmp_path / "keys" / "site.key").exists()
    assert not (tmp_path / "keys" / "site.pub").exists()


def test_insecure_opt_in_is_recorded_in_the_store_and_kept(tmp_path: Path) -> None:
    KeyStore.open(tmp_path, environ={}, insecure_no_passphrase=True).load_or_create("site")
    note = (tmp_path / "keys" / "INSECURE-NO-PASSPHRASE").read_text()
    assert "UNENCRYPTED" in note
    # Later openers (the service, other commands) honour the recorded choice without the flag.
    reopened = KeyStore.open(tmp_path, environ={})
    assert reopened.allows_plaintext
    reopened.load_or_create("collector-01")
    assert (tmp_path / "keys" / "collector-01.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_rotation_without_a_passphrase_is_refused_for_a_legacy_plaintext_store(tmp_path: Path) -> None:
    KeyStore.open(tmp_path, environ={}, insecure_no_passphrase=True).load_or_create("site")
    (tmp_path / "keys" / "INSECURE-NO-PASSPHRASE").unlink()  # a store from before ADR 0230
    keys = KeyStore.open(tmp_path, environ={})
    assert keys.load("site").algorithm == ED25519  # old plaintext keys keep loading
    with pytest.raises(ConfigError, match="refusing to write key 'site' unencrypted"):
        keys.rotate("site")


def test_test_kdf_switch_lowers_the_cost_only_to_the_documented_minimum(tmp_path: Path) -> None:
    keys = KeyStore.open(tmp_path, passphrase=PASSPHRASE, environ={"ASEPTIC_INSECURE_TEST_KDF": "1"})
    keys.load_or_create("site")
    assert b"\nn: 16384\n" in (tmp_path / "keys" / "site.key").read_bytes()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({PASSPHRASE_ENV: SECRET, PASSPHRASE_FILE_ENV: "/p"}, "both"),
        ({PASSPHRASE_ENV: "short"}, "at least 12 are required"),
        ({PASSPHRASE_FILE_ENV: "/nonexistent/passphrase"}, "cannot read the key passphrase file"),
    ],
)
def test_unusable_passphrase_settings_are_refused_without_echoing_them(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        passphrase_from_environment(environ)
    text = f"{info.value} {info.value.hint}"
    assert_no_secret_in(text)
    assert "short" not in text.replace("shorter", "")


def test_rotation_retires_the_old_key_and_keeps_it_loadable(tmp_path: Path) -> None:
    keys = store(tmp_path)
    old = keys.load_or_create("site")
    new = keys.rotate("site")
    assert new.key_id != old.key_id and new.algorithm == old.algorithm
    assert keys.load("site").key_id == new.key_id and keys.public("site") == new.public
    assert keys.retired("site") == (old.public,)
    retired = keys.load_retired("site", old.key_id)
    assert retired.key_id == old.key_id
    retired_file = tmp_path / "keys" / "retired" / f"site.ed25519.{old.key_id.split(':')[1]}.key"
    assert retired_file.is_file() and _sealed.is_sealed(retired_file.read_bytes())
    assert stat.S_IMODE(retired_file.stat().st_mode) == 0o600


def test_rotation_to_a_hybrid_key_and_again_keeps_every_old_key(tmp_path: Path) -> None:
    keys = store(tmp_path)
    first = keys.load_or_create("site")
    second = keys.rotate("site", ED25519_ML_DSA_65)
    third = keys.rotate("site")
    assert (second.algorithm, third.algorithm) == (ED25519_ML_DSA_65, ED25519_ML_DSA_65)
    assert set(keys.retired("site")) == {first.public, second.public}
    assert keys.load_retired("site", second.key_id).key_id == second.key_id
    assert keys.load("site").key_id == third.key_id


def test_retired_keys_of_a_similar_name_are_not_mixed_up(tmp_path: Path) -> None:
    keys = store(tmp_path, None)
    keys.load_or_create("site")
    keys.load_or_create("site.b")
    keys.rotate("site.b")
    assert keys.retired("site") == ()
    assert len(keys.retired("site.b")) == 1


def test_rotating_a_missing_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no key 'site'"):
        store(tmp_path).rotate("site")


def test_unknown_retired_key_is_a_config_error(tmp_path: Path) -> None:
    keys = store(tmp_path, None)
    keys.load_or_create("site")
    with pytest.raises(ConfigError, match="no retired key ed25519:0000000000000000"):
        keys.load_retired("site", "ed25519:0000000000000000")
    with pytest.raises(ConfigError, match="is not a key id"):
        keys.load_retired("site", "../../etc/passwd")


def test_every_key_store_error_is_an_aseptic_error_never_a_traceback(tmp_path: Path) -> None:
    store(tmp_path).load_or_create("site")
    path = tmp_path / "keys" / "site.key"
    for damage in (
        b"",
        b"aseptic-sealed-key/v1\n",
        b"aseptic-sealed-key/v1\n\xff\n",
        path.read_bytes()[:-20],
    ):
        path.write_bytes(damage)
        with pytest.raises(AsepticError):
            store(tmp_path).load("site")


def test_every_caller_honours_the_passphrase_environment(tmp_path: Path, monkeypatch: Any) -> None:
    # cli/_ledger.py builds ``KeyStore(data_dir / "keys")`` directly; it must read the same variables.
    monkeypatch.setenv(PASSPHRASE_ENV, SECRET)
    monkeypatch.delenv(PASSPHRASE_FILE_ENV, raising=False)
    key = KeyStore.open(tmp_path).load_or_create("site")
    assert KeyStore.open(tmp_path).is_encrypted("site")
    assert KeyStore(tmp_path / "keys").load("site").key_id == key.key_id
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(ConfigError, match="no key passphrase is configured"):
        KeyStore(tmp_path / "keys").load("site")


def test_plaintext_store_is_sealed_in_place_including_retired_keys(tmp_path: Path) -> None:
    plain = store(tmp_path, None)
    site = plain.load_or_create("site", ED25519_ML_DSA_65)
    collector = plain.load_or_create("collector-01")
    rotated = plain.rotate("collector-01")
    keys = store(tmp_path)
    sealed = keys.seal_plaintext_keys()
    assert sealed == (
        "collector-01.key",
        "site.key",
        f"retired/collector-01.ed25519.{collector.key_id.split(':')[1]}.key",
    )
    for path in (tmp_path / "keys").rglob("*.key"):
        data = path.read_bytes()
        assert _sealed.is_sealed(data) and b"PRIVATE KEY" not in data
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.load("site").key_id == site.key_id
    assert keys.load("collector-01").key_id == rotated.key_id
    assert keys.load_retired("collector-01", collector.key_id).key_id == collector.key_id
    assert keys.seal_plaintext_keys() == ()
    with pytest.raises(ConfigError, match="is encrypted and no key passphrase"):
        store(tmp_path, None).load("site")


def test_sealing_without_a_passphrase_is_refused(tmp_path: Path) -> None:
    store(tmp_path, None).load_or_create("site")
    with pytest.raises(ConfigError, match="cannot seal keys: no key passphrase"):
        store(tmp_path, None).seal_plaintext_keys()


def test_x509_key_is_p256_sealed_and_reloads(tmp_path: Path) -> None:
    """The TLS CA's key (ADR 0380): ECDSA P-256, sealed like every key, never a signing key."""
    key = store(tmp_path).load_or_create_x509_key("tls-ca")
    assert key.curve.name == "secp256r1"
    data = (tmp_path / "keys" / "tls-ca.key").read_bytes()
    assert _sealed.is_sealed(data) and b"algorithm: ecdsa-p256\n" in data and b"PRIVATE KEY" not in data
    assert stat.S_IMODE((tmp_path / "keys" / "tls-ca.key").stat().st_mode) == 0o600
    again = store(tmp_path).load_or_create_x509_key("tls-ca")
    assert again.private_numbers() == key.private_numbers()
    with pytest.raises(InputError, match="expected an Ed25519 private key first"):
        store(tmp_path).load("tls-ca")  # an X.509 key does not load as an evidence signing key
    store(tmp_path).load_or_create("site")
    with pytest.raises(InputError, match="holds an ed25519 key, not an ecdsa-p256"):
        store(tmp_path).load_x509_key("site")


def test_plaintext_x509_key_is_sealed_in_place(tmp_path: Path) -> None:
    key = store(tmp_path, None).load_or_create_x509_key("tls-ca")
    assert (tmp_path / "keys" / "tls-ca.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    keys = store(tmp_path)
    assert keys.seal_plaintext_keys() == ("tls-ca.key",)
    assert _sealed.is_sealed((tmp_path / "keys" / "tls-ca.key").read_bytes())
    assert keys.load_x509_key("tls-ca").private_numbers() == key.private_numbers()
