"""Reading proofs: the Merkle tree is RFC 9162's, every reading of every size proves, tampering fails."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telemetry_support import SOURCE, catalogue_readings, fixed_key

from aseptic.errors import ProofError
from aseptic.telemetry import Envelope, Quality, Reading, ReadingProof, reading_leaf_bytes, verify_reading

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "ALCOA-ORIGINAL", "P11-11.10a")

KEY = fixed_key(3)


def seal(readings: list[Reading]) -> Envelope:
    return Envelope.seal(source=SOURCE, sequence=9, previous_digest=b"\x11" * 32, readings=readings, key=KEY)


def rfc9162_root(leaves: list[bytes]) -> bytes:
    """MTH from RFC 9162 §2.1.1, written recursively as the RFC states it (reference for the tests)."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + rfc9162_root(leaves[:k]) + rfc9162_root(leaves[k:])).digest()


def rfc9162_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) from RFC 9162 §2.1.3.1."""
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*rfc9162_path(m, leaves[:k]), rfc9162_root(leaves[k:])]
    return [*rfc9162_path(m - k, leaves[k:]), rfc9162_root(leaves[:k])]


def digest_from_root(envelope: Envelope, root: bytes) -> bytes:
    source = envelope.source.encode()
    return hashlib.sha256(
        b"ASEV\x00\x01"
        + bytes([len(source)])
        + source
        + envelope.sequence.to_bytes(8, "big")
        + envelope.previous_digest
        + envelope.reading_count.to_bytes(4, "big")
        + root
    ).digest()


@pytest.mark.parametrize("size", range(1, 70))
def test_every_reading_proves_for_tree_size(size: int) -> None:
    envelope = seal(catalogue_readings(size, seed=size))
    leaves = [reading_leaf_bytes(r) for r in envelope.readings]
    assert envelope.digest == digest_from_root(envelope, rfc9162_root(leaves))
    for index, reading in enumerate(envelope.readings):
        proof = envelope.reading_proof(index)
        assert list(proof.path) == rfc9162_path(index, leaves)
        verify_reading(reading, index, proof, envelope.digest)
        verify_reading(leaves[index], index, proof, envelope.digest)


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 600), data=st.data())
def test_reading_proofs_for_larger_envelopes(size: int, data: st.DataObject) -> None:
    envelope = seal(catalogue_readings(size, seed=size))
    index = data.draw(st.integers(0, size - 1))
    verify_reading(envelope.readings[index], index, envelope.reading_proof(index), envelope.digest)


def test_proof_survives_encoding() -> None:
    envelope = Envelope.from_bytes(seal(catalogue_readings(250)).to_bytes())
    verify_reading(envelope.readings[137], 137, envelope.reading_proof(137), envelope.digest)


@pytest.fixture
def proven() -> tuple[Envelope, int, ReadingProof]:
    envelope = seal(catalogue_readings(37))
    return envelope, 21, envelope.reading_proof(21)


def test_altered_reading_value_fails(proven: tuple[Envelope, int, ReadingProof]) -> None:
    envelope, index, proof = proven
    reading = envelope.readings[index]
    forged = Reading(
        reading.tag, reading.time, math.nextafter(reading.value, math.inf), reading.quality, reading.source
    )
    with pytest.raises(
        ProofError, match=rf"reading {index} of envelope 9 from 'collector-01' does not prove: expected"
    ):
        verify_reading(forged, index, proof, envelope.digest)


def test_altered_reading_quality_tag_or_source_fails(proven: tuple[Envelope, int, ReadingProof]) -> None:
    envelope, index, proof = proven
    r = envelope.readings[index]
    for forged in (
        Reading(r.tag, r.time, r.value, Quality.UNCERTAIN, r.source),
        Reading("ph" if r.tag != "ph" else "volume_l", r.time, r.value, r.quality, r.source),
        Reading(r.tag, r.time, r.value, r.quality, r.source + "x"),
    ):
        with pytest.raises(ProofError, match="does not prove"):
            verify_reading(forged, index, proof, envelope.digest)


def test_proof_at_another_index_fails(proven: tuple[Envelope, int, ReadingProof]) -> None:
    envelope, index, proof = proven
    with pytest.raises(ProofError):
        verify_reading(envelope.readings[index], index + 1, proof, envelope.digest)
    with pytest.raises(ProofError, match="outside an envelope of 37 readings"):
        verify_reading(envelope.readings[index], 37, proof, envelope.digest)


def test_proof_with_flipped_bit_fails(proven: tuple[Envelope, int, ReadingProof]) -> None:
    envelope, index, proof = proven
    reading = envelope.readings[index]
    for k, node in enumerate(proof.path):
        for bit in (0, 7, 255):
            flipped = bytearray(node)
            flipped[bit // 8] ^= 1 << (bit % 8)
            path = (*proof.path[:k], bytes(flipped), *proof.path[k + 1 :])
            with pytest.raises(ProofError):
                verify_reading(reading, index, replace(proof, path=path), envelope.digest)


def test_proof_with_altered_header_fails(proven: tuple[Envelope, int, ReadingProof]) -> None:
    envelope, index, proof = proven
    reading = envelope.readings[index]
    for forged in (
        replace(proof, sequence=10),
        replace(proof, source="collector-02"),
        replace(proof, previous_digest=b"\x12" * 32),
        replace(proof, reading_count=38),
    ):
        with pytest.raises(ProofError):
            verify_reading(reading, index, forged, envelope.digest)


def test_truncated_or_padded_path_fails(proven: tuple[Envelope, int, ReadingProof]) -> None:
    envelope, index, proof = proven
    reading = envelope.readings[index]
    with pytest.raises(ProofError, match="too short"):
        verify_reading(reading, index, replace(proof, path=proof.path[:-1]), envelope.digest)
    with pytest.raises(ProofError, match="too long"):
        verify_reading(reading, index, replace(proof, path=(*proof.path, bytes(32))), envelope.digest)
    with pytest.raises(ProofError, match="32 bytes"):
        verify_reading(
            reading, index, replace(proof, path=(proof.path[0][:31], *proof.path[1:])), envelope.digest
        )


def test_proof_against_another_envelope_fails(proven: tuple[Envelope, int, ReadingProof]) -> None:
    envelope, index, proof = proven
    other = seal(catalogue_readings(37, seed=99))
    with pytest.raises(ProofError):
        verify_reading(envelope.readings[index], index, proof, other.digest)


def test_single_reading_envelope_has_an_empty_path() -> None:
    envelope = seal(catalogue_readings(1))
    proof = envelope.reading_proof(0)
    assert proof.path == ()
    verify_reading(envelope.readings[0], 0, proof, envelope.digest)
    with pytest.raises(IndexError):
        envelope.reading_proof(1)
