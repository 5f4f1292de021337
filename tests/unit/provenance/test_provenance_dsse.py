"""DSSE: the PAE known answer, signatures over type and payload, trust and retirement policy."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aseptic.crypto import ED25519_ML_DSA_65, SigningKey
from aseptic.errors import ConfigError, InputError, SignatureError
from aseptic.provenance import IN_TOTO_PAYLOAD_TYPE, DsseEnvelope, DsseSignature, pae
from aseptic.provenance._dsse import sign_envelope


def test_pae_matches_the_dsse_specification_example() -> None:
    # secure-systems-lab/dsse protocol.md, "Test vectors".
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_envelope_round_trips_through_json(site_key: SigningKey) -> None:
    envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b'{"a":1}', site_key)
    again = DsseEnvelope.from_json(envelope.to_json(), source="test")
    assert again == envelope
    assert again.verify([site_key.public], what="test") == site_key.key_id


def test_changed_payload_type_fails_the_signature(site_key: SigningKey) -> None:
    envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b'{"a":1}', site_key)
    changed = dataclasses.replace(envelope, payload_type="application/json")
    with pytest.raises(SignatureError, match="does not verify"):
        changed.verify([site_key.public], what="test")


@settings(max_examples=50, deadline=None)
@given(position=st.integers(min_value=0, max_value=6), bit=st.integers(min_value=0, max_value=7))
def test_payload_with_any_flipped_bit_fails(position: int, bit: int) -> None:
    key = SigningKey.generate()
    envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b'{"a":1}', key)
    payload = bytearray(envelope.payload)
    payload[position] ^= 1 << bit
    with pytest.raises(SignatureError):
        dataclasses.replace(envelope, payload=bytes(payload)).verify([key.public], what="test")


def test_unsigned_envelope_is_refused(site_key: SigningKey) -> None:
    envelope = dataclasses.replace(sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", site_key), signatures=())
    with pytest.raises(SignatureError, match="no signature"):
        envelope.verify([site_key.public], what="test")


def test_signature_by_an_unknown_key_is_refused(site_key: SigningKey) -> None:
    stranger = SigningKey.generate()
    envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", stranger)
    with pytest.raises(SignatureError, match=f"key {stranger.key_id} is not trusted"):
        envelope.verify([site_key.public], what="test")


def test_signature_relabelled_with_the_trusted_key_id_fails(site_key: SigningKey) -> None:
    stranger = SigningKey.generate()
    forged = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", stranger)
    relabelled = dataclasses.replace(
        forged, signatures=(DsseSignature(site_key.key_id, forged.signatures[0].sig),)
    )
    with pytest.raises(SignatureError, match="does not verify"):
        relabelled.verify([site_key.public], what="test")


def test_signature_by_a_retired_key_is_refused_even_if_trusted(site_key: SigningKey) -> None:
    envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", site_key)
    with pytest.raises(SignatureError, match="retired"):
        envelope.verify([site_key.public], retired=[site_key.key_id], what="test")


def test_a_bad_trusted_signature_is_not_outvoted_by_a_good_one(site_key: SigningKey) -> None:
    good = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", site_key).signatures[0]
    bad = DsseSignature(site_key.key_id, bytes(64))
    envelope = DsseEnvelope(IN_TOTO_PAYLOAD_TYPE, b"{}", (good, bad))
    with pytest.raises(SignatureError):
        envelope.verify([site_key.public], what="test")


def test_empty_trust_set_fails_closed(site_key: SigningKey) -> None:
    envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", site_key)
    with pytest.raises(ConfigError, match="no trusted keys"):
        envelope.verify([], what="test")


def test_hybrid_key_signs_and_a_stripped_ml_dsa_half_is_refused() -> None:
    key = SigningKey.generate(ED25519_ML_DSA_65)
    envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", key)
    assert envelope.verify([key.public], what="test") == key.key_id
    downgraded = DsseSignature(key.key_id, envelope.signatures[0].sig[:64])
    with pytest.raises(SignatureError, match="downgrade"):
        dataclasses.replace(envelope, signatures=(downgraded,)).verify([key.public], what="test")


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"payload": "e30=", "signatures": []},
        {"payloadType": IN_TOTO_PAYLOAD_TYPE, "payload": "not base64!", "signatures": []},
        {"payloadType": IN_TOTO_PAYLOAD_TYPE, "payload": "e30=", "signatures": [{"keyid": "k"}]},
        {"payloadType": IN_TOTO_PAYLOAD_TYPE, "payload": "e30=", "signatures": "none"},
    ],
)
def test_malformed_envelope_is_an_input_error(document: object) -> None:
    with pytest.raises(InputError):
        DsseEnvelope.from_json(document, source="test")
