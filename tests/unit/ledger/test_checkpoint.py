"""Checkpoints: one canonical signed form, and any change to it breaks the signature."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from aseptic.crypto import SigningKey
from aseptic.errors import InputError, SignatureError
from aseptic.ledger import EMPTY_ROOT, Checkpoint
from aseptic.ledger._tree import Hash, hash_leaf

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "P11-11.10a")

TIME = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
ROOT = hash_leaf(b"root")


def signed(key: SigningKey) -> Checkpoint:
    return Checkpoint.sign(origin="site-01", size=42, root=ROOT, time=TIME, key=key)


def test_body_is_the_documented_text() -> None:
    key = SigningKey.generate()
    assert signed(key).body.decode() == (
        "aseptic-checkpoint/v1\n"
        "origin: site-01\n"
        "size: 42\n"
        f"root: {ROOT.hex()}\n"
        "time: 2026-03-04T05:06:07.890123Z\n"
        f"key: {key.key_id}\n"
        "algorithm: ed25519\n"
    )


def test_signed_checkpoint_verifies_and_round_trips_as_a_note() -> None:
    key = SigningKey.generate()
    checkpoint = signed(key)
    checkpoint.verify(key.public)
    again = Checkpoint.from_note(checkpoint.to_note())
    assert again == checkpoint
    again.verify(key.public)


@pytest.mark.parametrize(
    "change",
    [
        {"size": 41},
        {"root": EMPTY_ROOT},
        {"time": datetime(2026, 3, 4, 5, 6, 8, tzinfo=UTC)},
        {"origin": "site-02"},
        {"signature": bytes(64)},
    ],
    ids=["size", "root", "time", "origin", "signature"],
)
def test_checkpoint_with_altered_field_fails_signature(change: dict[str, object]) -> None:
    key = SigningKey.generate()
    forged = dataclasses.replace(signed(key), **change)  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match="does not verify"):
        forged.verify(key.public)


def test_checkpoint_signed_by_another_key_fails() -> None:
    checkpoint = signed(SigningKey.generate())
    trusted = SigningKey.generate().public
    with pytest.raises(SignatureError, match=f"trusted key is {trusted.key_id}"):
        checkpoint.verify(trusted)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("size: 42", "size: +42"),
        ("size: 42", "size: 042"),
        ("origin: site-01", "origin:  site-01"),
        ("time: 2026-03-04T05:06:07.890123Z", "time: 2026-03-04T05:06:07.890123+00:00"),
        ("algorithm: ed25519\n", "algorithm: ed25519\nextra: 1\n"),
    ],
)
def test_non_canonical_body_is_refused(old: str, new: str) -> None:
    key = SigningKey.generate()
    body = signed(key).body.decode().replace(old, new).encode()
    with pytest.raises(InputError):
        Checkpoint.from_body(body, b"sig")


def test_uppercase_root_is_not_canonical() -> None:
    key = SigningKey.generate()
    body = signed(key).body.decode().replace(ROOT.hex(), ROOT.hex().upper()).encode()
    with pytest.raises(InputError, match="canonical"):
        Checkpoint.from_body(body, b"sig")


def test_note_without_signature_line_is_refused() -> None:
    key = SigningKey.generate()
    with pytest.raises(InputError, match="signature"):
        Checkpoint.from_note(signed(key).body.decode())


def test_origin_must_be_a_site_id() -> None:
    with pytest.raises(ValueError, match="not a site id"):
        Checkpoint.sign(origin="site\nsize: 1", size=1, root=ROOT, time=TIME, key=SigningKey.generate())


def test_root_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="31 bytes"):
        Checkpoint.sign(origin="site-01", size=1, root=Hash(ROOT[:31]), time=TIME, key=SigningKey.generate())
