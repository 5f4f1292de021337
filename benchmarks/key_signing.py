"""Signing with the site key: in a PKCS#11 token (SoftHSM2) vs in memory, and loading a key.

Starts a throwaway SoftHSM2 token in a temporary directory (Debian package softhsm2), creates
Ed25519 and hybrid keys in it through ``KeyStore``, and times ``SigningKey.sign`` against the same
algorithms with passphrase-sealed in-memory keys, in the same run. Also times ``KeyStore.load``
of each kind (scrypt at the default cost for sealed files).

    nice .venv/bin/python -m benchmarks.key_signing --signatures 500
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pkcs11

from aseptic.crypto import (
    ED25519,
    ED25519_ML_DSA_65,
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    PKCS11_PIN_ENV,
    KeyStore,
    Passphrase,
    SigningKey,
    TokenConfig,
)

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "benchmark-pin-1"
MESSAGE = b"\x5a" * 200


def rate(key: SigningKey, count: int) -> tuple[float, float]:
    """(mean µs per signature, signatures per second)."""
    key.sign(MESSAGE)  # warm up
    start = time.perf_counter()
    for _ in range(count):
        key.sign(MESSAGE)
    elapsed = time.perf_counter() - start
    return elapsed / count * 1e6, count / elapsed


def raw_token_rate(label: str, object_label: str, count: int) -> tuple[float, float]:
    """The baseline: python-pkcs11 ``sign`` on the same token key, no Aseptic code in the loop."""
    # The process is already logged in (PKCS#11 logs in per application), so a plain session sees it.
    session = pkcs11.lib(str(MODULE)).get_token(token_label=label).open()
    key = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=object_label)
    key.sign(MESSAGE, mechanism=pkcs11.Mechanism.EDDSA)
    start = time.perf_counter()
    for _ in range(count):
        key.sign(MESSAGE, mechanism=pkcs11.Mechanism.EDDSA)
    elapsed = time.perf_counter() - start
    return elapsed / count * 1e6, count / elapsed


def timed_load(store: KeyStore, name: str) -> float:
    start = time.perf_counter()
    store.load(name)
    return (time.perf_counter() - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signatures", type=int, default=500)
    args = parser.parse_args()
    if not MODULE.is_file() or shutil.which("softhsm2-util") is None:
        raise SystemExit("SoftHSM2 is not installed (apt-get install softhsm2)")
    for name in (PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, "ASEPTIC_INSECURE_TEST_KDF"):
        os.environ.pop(name, None)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "tokens").mkdir()
        conf = root / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        os.environ[PKCS11_PIN_ENV] = PIN
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", PIN, "--so-pin", PIN],
            check=True,
            capture_output=True,
        )
        token = KeyStore.open(root / "token", token=TokenConfig(MODULE, "bench"))
        sealed = KeyStore.open(root / "sealed", passphrase=Passphrase(b"benchmark passphrase 0123"))
        print(f"{args.signatures} signatures of a {len(MESSAGE)}-byte message each")
        print(
            "| algorithm | in memory (sealed at rest): µs / sig/s | in the token: µs / sig/s "
            "| raw python-pkcs11 Ed25519: µs / sig/s | load sealed / token (ms) |"
        )
        print("|---|---|---|---|---|")
        for algorithm in (ED25519, ED25519_ML_DSA_65):
            name = algorithm.replace("+", "-")
            memory_key = sealed.load_or_create(name, algorithm)
            token_key = token.load_or_create(name, algorithm)
            assert token_key.in_token and not memory_key.in_token
            mem_us, mem_rate = rate(memory_key, args.signatures)
            tok_us, tok_rate = rate(token_key, args.signatures)
            raw_us, raw_rate = raw_token_rate("bench", f"aseptic:{name}", args.signatures)
            load_sealed = timed_load(sealed, name)
            load_token = timed_load(KeyStore.open(root / "token"), name)
            print(
                f"| `{algorithm}` | {mem_us:,.0f} / {mem_rate:,.0f} | {tok_us:,.0f} / {tok_rate:,.0f} "
                f"| {raw_us:,.0f} / {raw_rate:,.0f} | {load_sealed:,.0f} / {load_token:,.0f} |"
            )


if __name__ == "__main__":
    main()
