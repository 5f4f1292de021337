"""Keys: signatures verify, tampering and foreign keys fail, secrets stay out of repr."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from aseptic.crypto import ED25519, KeyStore, PublicKey, SigningKey, read_public_key
from aseptic.errors import ConfigError, InputError, SignatureError

pytestmark = pytest.mark.requirement("ASE-PQC")


def test_signature_verifies() -> None:
    key = SigningKey.generate()
    key.public.verify(key.sign(b"checkpoint"), b"checkpoint", what="checkpoint 1")


def test_flipped_message_bit_fails() -> None:
    key = SigningKey.generate()
    signature = key.sign(b"checkpoint")
    with pytest.raises(SignatureError, match="checkpoint 1"):
        key.public.verify(signature, b"checkpoinu", what="checkpoint 1")


def test_signature_by_another_key_fails() -> None:
    key, other = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(SignatureError, match=str(key.key_id)):
        key.public.verify(other.sign(b"m"), b"m", what="m")


def test_wrong_length_public_key_is_refused() -> None:
    with pytest.raises(InputError, match="32 bytes"):
        PublicKey.from_raw(ED25519, b"\x00" * 31)


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(InputError, match="unknown signature algorithm"):
        PublicKey.from_raw("rsa-pkcs1", b"\x00" * 32)


def test_repr_does_not_leak_the_private_key() -> None:
    key = SigningKey.generate()
    assert "PRIVATE" not in repr(key)
    assert key.to_pem().decode() not in repr(key)


def test_key_store_creates_owner_only_files(tmp_path: Path) -> None:
    store = KeyStore.open(tmp_path)
    key = store.load_or_create("site")
    mode = stat.S_IMODE((tmp_path / "keys" / "site.key").stat().st_mode)
    assert mode == 0o600
    assert store.load_or_create("site").key_id == key.key_id
    assert read_public_key(tmp_path / "keys" / "site.pub") == key.public


def test_corrupt_key_file_names_the_file(tmp_path: Path) -> None:
    store = KeyStore.open(tmp_path)
    (tmp_path / "keys" / "site.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n")
    with pytest.raises(InputError, match="site.key"):
        store.load("site")


def test_missing_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no key 'site'"):
        KeyStore.open(tmp_path).load("site")


def test_bad_key_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not allowed"):
        KeyStore.open(tmp_path).load_or_create("../escape")


def test_malformed_public_key_file(tmp_path: Path) -> None:
    path = tmp_path / "site.pub"
    path.write_text("ed25519 zz\n", encoding="ascii")
    with pytest.raises(ConfigError, match="malformed"):
        read_public_key(path)
