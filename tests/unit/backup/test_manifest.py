"""The backup manifest: canonical bytes, the site key's signature over them, strict decoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from aseptic.backup import BackupManifest, FileEntry, LedgerSnapshot
from aseptic.backup._manifest import decode_manifest, sign_manifest, verify_manifest_signature
from aseptic.crypto import SigningKey
from aseptic.errors import IntegrityError, SignatureError

KEY = SigningKey.generate()

pytestmark = pytest.mark.requirement("A11-7", "A11-17")


def manifest(**change: object) -> BackupManifest:
    fields: dict[str, object] = {
        "created": datetime(2026, 1, 1, tzinfo=UTC),
        "origin": "site-01",
        "site_key": KEY.public,
        "files": (
            FileEntry("ledger.db", 4096, "ab" * 32, 0o644),
            FileEntry("keys/site.key", 119, "cd" * 32, 0o600),
        ),
        "ledger": LedgerSnapshot("sqlite", 7, "ef" * 32, None),
        "config": None,
    }
    fields.update(change)
    return BackupManifest(**fields)  # type: ignore[arg-type]


def test_manifest_round_trips_and_its_signature_verifies() -> None:
    value = manifest()
    data = value.to_bytes()
    verify_manifest_signature(data, sign_manifest(value, KEY), KEY.public)
    assert decode_manifest(data) == value


def test_edited_manifest_fails_the_signature() -> None:
    value = manifest()
    signature = sign_manifest(value, KEY)
    edited = manifest(files=(FileEntry("ledger.db", 4096, "00" * 32, 0o644),)).to_bytes()
    with pytest.raises(SignatureError, match="does not verify"):
        verify_manifest_signature(edited, signature, KEY.public)


def test_signature_by_another_key_names_both_keys() -> None:
    other = SigningKey.generate()
    with pytest.raises(
        SignatureError, match=f"signed by key {other.key_id}.*trusted site key is {KEY.key_id}"
    ):
        verify_manifest_signature(manifest().to_bytes(), sign_manifest(manifest(), other), KEY.public)


@pytest.mark.parametrize("text", [b"", b"ed25519 only-two", b"ed25519 ed25519:00 zz\n"])
def test_malformed_signature_file_is_refused(text: bytes) -> None:
    with pytest.raises(SignatureError):
        verify_manifest_signature(manifest().to_bytes(), text, KEY.public)


def test_non_canonical_or_foreign_manifest_is_refused() -> None:
    pretty = json.dumps(json.loads(manifest().to_bytes()), indent=2).encode()
    with pytest.raises(IntegrityError, match="not canonical"):
        decode_manifest(pretty)
    other_format = json.loads(manifest().to_bytes())
    other_format["format"] = "tarball/9"
    with pytest.raises(IntegrityError, match="format"):
        decode_manifest(json.dumps(other_format, sort_keys=True, separators=(",", ":")).encode())
