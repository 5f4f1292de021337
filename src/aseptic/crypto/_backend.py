"""The start-up check that the post-quantum half of hybrid signatures can actually run.

ML-DSA comes from pyca ``cryptography`` and the OpenSSL it is built with (OpenSSL 3.5 or later).
A wheel or a distribution OpenSSL without it would make every hybrid signature fail at the first
checkpoint; ``require_pqc_backend`` says so at start-up instead, then runs a known-answer self-test
(key generation from a fixed seed, sign, verify) so a broken backend is caught too.
"""

from __future__ import annotations

import functools
import hashlib

import cryptography
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.backends.openssl.backend import backend
from cryptography.hazmat.primitives.asymmetric import mldsa

from aseptic.errors import ConfigError

__all__ = ["is_pqc_backend_available", "require_pqc_backend"]

# FIPS 204 ML-DSA.KeyGen is deterministic in its 32-byte seed: SHA-256 of the ML-DSA-65 public key
# derived from the seed 00 01 02 .. 1f. Computed with cryptography 50.0.2 / OpenSSL 4.0.3 and
# cross-checked once against an independent pure-Python FIPS 204 implementation (dilithium-py 1.5.1,
# ML_DSA_65.key_derive), which gave the same digest (docs/crypto.md, "Known answers").
_SELF_TEST_SEED = bytes(range(32))
_SELF_TEST_PUBLIC_SHA256 = "d666806e11cee19a7c989f7445f90dd419cf4d2d51db8c0fdb4c0f0a542238c9"


def is_pqc_backend_available() -> bool:
    """Whether the installed cryptography/OpenSSL offers ML-DSA (no self-test)."""
    try:
        return bool(backend.mldsa_supported())
    except AttributeError:  # a cryptography release that predates ML-DSA
        return False


def _versions() -> str:
    return f"cryptography {cryptography.__version__} with {backend.openssl_version_text()}"


def require_pqc_backend() -> None:
    """Fail at start-up, with a clear message, if ML-DSA-65 is unavailable or broken.

    Raises:
        ConfigError: the installed cryptography/OpenSSL has no ML-DSA, or its self-test failed.
    """
    hint = (
        "install the pinned cryptography wheel (constraints.txt), which bundles an OpenSSL with "
        "ML-DSA (3.5 or later); hybrid ed25519+ml-dsa-65 signatures cannot be made or checked without it"
    )
    if not is_pqc_backend_available():
        raise ConfigError(f"ML-DSA-65 is not available in {_versions()}", hint=hint)
    problem = _self_test_problem(_SELF_TEST_PUBLIC_SHA256)
    if problem is not None:
        raise ConfigError(f"ML-DSA-65 self-test failed in {_versions()}: {problem}", hint=hint)


@functools.cache
def _self_test_problem(expected_sha256: str) -> str | None:
    """What is wrong with ML-DSA-65 here, or None; run once per process (keyed on the expectation)."""
    try:
        private = mldsa.MLDSA65PrivateKey.from_seed_bytes(_SELF_TEST_SEED)
        public = private.public_key()
        message = b"aseptic ML-DSA-65 start-up self-test"
        public.verify(private.sign(message), message)
        digest = hashlib.sha256(public.public_bytes_raw()).hexdigest()
    except (UnsupportedAlgorithm, InvalidSignature, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if digest != expected_sha256:
        return (
            f"the public key from the fixed seed has SHA-256 {digest}, expected {expected_sha256} "
            "(FIPS 204 key generation)"
        )
    return None
