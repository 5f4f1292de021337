"""Hybrid ed25519+ml-dsa-65 signatures: both halves must verify, and no half can be stripped,
swapped, relabelled or downgraded. Known-answer vectors beside the tampered ones."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.backends.openssl.backend import backend
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import aseptic.crypto
from aseptic.crypto import (
    ED25519,
    ED25519_ML_DSA_65,
    KeyStore,
    PublicKey,
    SigningKey,
    is_pqc_backend_available,
    key_id_of,
    read_public_key,
    require_pqc_backend,
)
from aseptic.errors import ConfigError, InputError, SignatureError

pytestmark = pytest.mark.requirement("ASE-PQC")

VECTOR = json.loads((Path(__file__).parent / "vectors" / "ed25519-ml-dsa-65.json").read_text())
MESSAGE = b"aseptic-checkpoint/v1\norigin: site-01\nsize: 7\n"
# Frame offsets of the hybrid signature: name frame, Ed25519 frame, ML-DSA-65 frame.
NAME_END = 4 + len(ED25519_ML_DSA_65)
ED_START, ED_END = NAME_END + 4, NAME_END + 4 + 64
ML_START = ED_END + 4

# RFC 8032 section 7.1, TEST 1 (empty message).
RFC8032_SECRET = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
RFC8032_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
RFC8032_SIGNATURE = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def vector_key() -> SigningKey:
    return SigningKey(
        Ed25519PrivateKey.from_private_bytes(bytes.fromhex(VECTOR["ed25519_seed"])),
        MLDSA65PrivateKey.from_seed_bytes(bytes.fromhex(VECTOR["ml_dsa_65_seed"])),
    )


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate(ED25519_ML_DSA_65)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_public_api_is_pinned() -> None:
    assert sorted(aseptic.crypto.__all__) == sorted(
        [
            "ALGORITHMS",
            "ECDSA_P256",
            "ED25519",
            "ED25519_ML_DSA_65",
            "PASSPHRASE_ENV",
            "PASSPHRASE_FILE_ENV",
            "PKCS11_PIN_ENV",
            "PKCS11_PIN_FILE_ENV",
            "ApplicationIdentity",
            "ApplicationRole",
            "KeyId",
            "KeyStore",
            "Passphrase",
            "PkiDirectory",
            "SITE_KEY",
            "PublicKey",
            "SigningKey",
            "TokenConfig",
            "TrustList",
            "add_to_trust_list",
            "generate_application_certificate",
            "is_pqc_backend_available",
            "key_id_of",
            "load_certificate_file",
            "passphrase_from_environment",
            "read_public_key",
            "require_pqc_backend",
            "subject_common_name",
            "thumbprint",
            "verify_application_certificate",
        ]
    )


def test_ed25519_known_answer_rfc8032() -> None:
    key = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_SECRET)))
    assert key.public.raw.hex() == RFC8032_PUBLIC
    assert key.sign(b"").hex() == RFC8032_SIGNATURE
    PublicKey.from_raw(ED25519, bytes.fromhex(RFC8032_PUBLIC)).verify(
        bytes.fromhex(RFC8032_SIGNATURE), b"", what="RFC 8032 test 1"
    )


def test_hybrid_known_answer_keys_and_stored_signature_still_verify() -> None:
    key = vector_key()
    assert key.algorithm == VECTOR["algorithm"] == ED25519_ML_DSA_65
    assert key.public.raw.hex() == VECTOR["public_key"]
    assert key.key_id == VECTOR["key_id"] == "ed25519+ml-dsa-65:a3b1f9b336636d50"
    public = PublicKey.from_raw(ED25519_ML_DSA_65, bytes.fromhex(VECTOR["public_key"]))
    public.verify(bytes.fromhex(VECTOR["signature"]), bytes.fromhex(VECTOR["message"]), what="vector")


def test_stored_vector_with_a_flipped_message_bit_fails() -> None:
    public = vector_key().public
    with pytest.raises(SignatureError, match="Ed25519 and ML-DSA-65 halves do not verify"):
        public.verify(bytes.fromhex(VECTOR["signature"]), flip(bytes.fromhex(VECTOR["message"]), 3), what="v")


def test_hybrid_round_trip_and_layout(key: SigningKey) -> None:
    signature = key.sign(MESSAGE)
    assert len(signature) == NAME_END + 4 + 64 + 4 + 3309
    assert signature[:NAME_END] == struct.pack(">I", 17) + b"ed25519+ml-dsa-65"
    assert len(key.public.raw) == 4 + 32 + 4 + 1952
    key.public.verify(signature, MESSAGE, what="checkpoint 7")
    PublicKey.from_raw(key.algorithm, key.public.raw).verify(signature, MESSAGE, what="checkpoint 7")


def test_flipped_bit_in_the_ed25519_half_fails_and_says_so(key: SigningKey) -> None:
    signature = flip(key.sign(MESSAGE), ED_START + 5)
    with pytest.raises(SignatureError, match=r"checkpoint 7: .* the Ed25519 half does not verify") as info:
        key.public.verify(signature, MESSAGE, what="checkpoint 7")
    assert "ML-DSA" not in str(info.value)


def test_flipped_bit_in_the_ml_dsa_half_fails_and_says_so(key: SigningKey) -> None:
    signature = flip(key.sign(MESSAGE), ML_START + 100)
    with pytest.raises(SignatureError, match="the ML-DSA-65 half does not verify") as info:
        key.public.verify(signature, MESSAGE, what="checkpoint 7")
    assert str(key.key_id) in str(info.value)


def test_ed25519_only_signature_presented_as_hybrid_is_a_refused_downgrade(key: SigningKey) -> None:
    # Same Ed25519 private half, signing the bare message as a plain Ed25519 key would.
    plain = SigningKey(key._private).sign(MESSAGE)
    with pytest.raises(SignatureError, match="downgrade refused"):
        key.public.verify(plain, MESSAGE, what="checkpoint 7")


def test_hybrid_signature_with_ml_dsa_half_stripped_is_refused(key: SigningKey) -> None:
    signature = key.sign(MESSAGE)
    with pytest.raises(SignatureError, match="not an ed25519\\+ml-dsa-65 signature"):
        key.public.verify(signature[:ED_END], MESSAGE, what="checkpoint 7")
    with pytest.raises(SignatureError, match="not an ed25519\\+ml-dsa-65 signature"):
        key.public.verify(signature[ED_START:ED_END], MESSAGE, what="checkpoint 7")


def test_stripped_ed25519_half_does_not_verify_as_a_plain_ed25519_signature(key: SigningKey) -> None:
    # Non-separability: the halves sign a domain-separated representative, not the bare message.
    ed_half = key.sign(MESSAGE)[ED_START:ED_END]
    ed_only = SigningKey(key._private).public
    with pytest.raises(SignatureError, match="ed25519 signature does not verify"):
        ed_only.verify(ed_half, MESSAGE, what="checkpoint 7")


def test_ml_dsa_half_swapped_from_another_message_fails(key: SigningKey) -> None:
    mine, other = key.sign(MESSAGE), key.sign(MESSAGE + b"root: 00\n")
    spliced = mine[:ML_START] + other[ML_START:]
    with pytest.raises(SignatureError, match="the ML-DSA-65 half does not verify"):
        key.public.verify(spliced, MESSAGE, what="checkpoint 7")


def test_ml_dsa_half_swapped_from_another_key_fails(key: SigningKey) -> None:
    intruder = SigningKey(key._private, MLDSA65PrivateKey.generate())
    spliced = key.sign(MESSAGE)[:ML_START] + intruder.sign(MESSAGE)[ML_START:]
    with pytest.raises(SignatureError, match="the ML-DSA-65 half does not verify"):
        key.public.verify(spliced, MESSAGE, what="checkpoint 7")


def test_signature_relabelled_with_another_algorithm_name_is_refused(key: SigningKey) -> None:
    signature = key.sign(MESSAGE)
    relabelled = struct.pack(">I", 17) + b"ed25519+ml-dsa-87" + signature[NAME_END:]
    with pytest.raises(SignatureError, match="names algorithm 'ed25519\\+ml-dsa-87'"):
        key.public.verify(relabelled, MESSAGE, what="checkpoint 7")


def test_trailing_bytes_after_a_hybrid_signature_are_refused(key: SigningKey) -> None:
    with pytest.raises(SignatureError, match="trailing bytes"):
        key.public.verify(key.sign(MESSAGE) + b"\x00", MESSAGE, what="checkpoint 7")


def test_hybrid_signature_presented_to_the_ed25519_key_fails(key: SigningKey) -> None:
    ed_only = SigningKey(key._private).public
    with pytest.raises(SignatureError, match="ed25519 signature does not verify"):
        ed_only.verify(key.sign(MESSAGE), MESSAGE, what="checkpoint 7")


@pytest.mark.parametrize("algorithm", ["ed25519+ml-dsa-44", "ml-dsa-65", "ED25519", "rsa-pkcs1", ""])
def test_unknown_algorithm_names_are_refused(algorithm: str, key: SigningKey) -> None:
    with pytest.raises(InputError, match="unknown signature algorithm"):
        PublicKey.from_raw(algorithm, key.public.raw)
    with pytest.raises(ConfigError, match="unknown signature algorithm"):
        SigningKey.generate(algorithm)
    with pytest.raises(InputError, match="unknown signature algorithm"):
        PublicKey(algorithm, key.public.raw).verify(key.sign(MESSAGE), MESSAGE, what="m")


def test_hybrid_public_key_of_the_wrong_layout_is_refused(key: SigningKey) -> None:
    with pytest.raises(InputError, match="not an ed25519\\+ml-dsa-65 public key"):
        PublicKey.from_raw(ED25519_ML_DSA_65, key.public.raw[:-1])
    with pytest.raises(InputError, match="not an ed25519\\+ml-dsa-65 public key"):
        PublicKey.from_raw(ED25519_ML_DSA_65, bytes(32))


def test_key_ids_differ_per_algorithm_and_follow_the_format(key: SigningKey) -> None:
    ed_only = SigningKey(key._private)
    assert ed_only.key_id.startswith("ed25519:") and key.key_id.startswith("ed25519+ml-dsa-65:")
    assert ed_only.key_id != key.key_id
    assert key.key_id == key_id_of(ED25519_ML_DSA_65, key.public.raw)
    assert len(key.key_id.split(":")[1]) == 16
    assert key_id_of(ED25519, b"\x01" * 32) != key_id_of(ED25519_ML_DSA_65, b"\x01" * 32)


def test_hybrid_pem_round_trips_and_repr_hides_secrets(key: SigningKey) -> None:
    pem = key.to_pem()
    assert pem.count(b"-----BEGIN PRIVATE KEY-----") == 2
    loaded = SigningKey.from_pem(pem, source="site.key")
    assert loaded.key_id == key.key_id
    loaded.public.verify(key.sign(MESSAGE), MESSAGE, what="m")
    assert repr(key) == f"SigningKey({key.key_id})"


def test_pem_with_keys_in_the_wrong_order_is_refused(key: SigningKey) -> None:
    first, second = key.to_pem().split(b"-----END PRIVATE KEY-----\n")[:2]
    swapped = second + b"-----END PRIVATE KEY-----\n" + first + b"-----END PRIVATE KEY-----\n"
    with pytest.raises(InputError, match="site.key: expected an Ed25519 private key first"):
        SigningKey.from_pem(swapped, source="site.key")


def test_key_store_creates_hybrid_keys_and_their_public_file(tmp_path: Path) -> None:
    store = KeyStore.open(tmp_path)
    key = store.load_or_create("site", ED25519_ML_DSA_65)
    assert store.load("site").key_id == key.key_id
    assert read_public_key(tmp_path / "keys" / "site.pub") == key.public == store.public("site")


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=512))
def test_hybrid_signatures_verify_for_any_message(message: bytes) -> None:
    key = vector_key()
    key.public.verify(key.sign(message), message, what="m")


def test_pqc_backend_check_passes_here() -> None:
    assert is_pqc_backend_available()
    require_pqc_backend()


def test_missing_ml_dsa_backend_fails_at_start_up_with_a_clear_message(monkeypatch: Any) -> None:
    monkeypatch.setattr(backend, "mldsa_supported", lambda: False)
    with pytest.raises(
        ConfigError, match="ML-DSA-65 is not available in cryptography .* with OpenSSL"
    ) as info:
        require_pqc_backend()
    assert info.value.hint is not None and "OpenSSL" in info.value.hint
    with pytest.raises(ConfigError, match="ML-DSA-65 is not available"):
        SigningKey.generate(ED25519_ML_DSA_65)
    SigningKey.generate(ED25519)  # Ed25519 does not need it


def test_hybrid_verification_without_ml_dsa_fails_closed(monkeypatch: Any) -> None:
    key = vector_key()
    signature = key.sign(MESSAGE)
    monkeypatch.setattr(backend, "mldsa_supported", lambda: False)
    with pytest.raises(ConfigError, match="ML-DSA-65 is not available"):
        key.public.verify(signature, MESSAGE, what="m")


def test_broken_ml_dsa_backend_fails_the_self_test(monkeypatch: Any) -> None:
    monkeypatch.setattr(aseptic.crypto._backend, "_SELF_TEST_PUBLIC_SHA256", "00" * 32)
    with pytest.raises(ConfigError, match="self-test failed"):
        require_pqc_backend()


VECTOR_PUBLIC = PublicKey.from_raw(ED25519_ML_DSA_65, bytes.fromhex(VECTOR["public_key"]))
VECTOR_SIGNATURE = bytes.fromhex(VECTOR["signature"])
VECTOR_MESSAGE = bytes.fromhex(VECTOR["message"])


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(VECTOR_SIGNATURE) - 1), mask=st.integers(1, 255))
def test_any_changed_byte_anywhere_in_a_hybrid_signature_is_refused(index: int, mask: int) -> None:
    tampered = bytearray(VECTOR_SIGNATURE)
    tampered[index] ^= mask
    with pytest.raises(SignatureError):
        VECTOR_PUBLIC.verify(bytes(tampered), VECTOR_MESSAGE, what="vector")


@settings(max_examples=200, deadline=None)
@given(length=st.integers(0, len(VECTOR_SIGNATURE) - 1))
def test_truncated_hybrid_signature_is_refused_at_every_length(length: int) -> None:
    with pytest.raises(SignatureError):
        VECTOR_PUBLIC.verify(VECTOR_SIGNATURE[:length], VECTOR_MESSAGE, what="vector")


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=4096))
def test_garbage_signature_is_a_signature_error_never_a_crash(garbage: bytes) -> None:
    with pytest.raises(SignatureError):
        VECTOR_PUBLIC.verify(garbage, VECTOR_MESSAGE, what="vector")


def test_a_public_key_path_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    # e.g. `aseptic ledger verify --site-key DIR`: before, an IsADirectoryError traceback.
    with pytest.raises(ConfigError, match=f"cannot read public key file {tmp_path}"):
        read_public_key(tmp_path)
