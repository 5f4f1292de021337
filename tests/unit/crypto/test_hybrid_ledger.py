"""A site whose key store holds a hybrid site key signs ledger checkpoints with both halves, and the
ledger's verifier checks both: no ledger code knows the algorithm, it dispatches on the name."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aseptic.clock import SimClock
from aseptic.crypto import ED25519, ED25519_ML_DSA_65, KeyStore, SigningKey, read_public_key
from aseptic.errors import ConfigError, SignatureError
from aseptic.ledger import Checkpoint, Ledger, LedgerTampered, verify_ledger
from aseptic.telemetry import EdgeSigner, Envelope, Ingestor, IngestVerifier, Quality, Quarantine, Reading
from aseptic.twin.tags import TAGS

pytestmark = pytest.mark.requirement("ASE-PQC")

START = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)


def build(data_dir: Path, site_key: SigningKey) -> None:
    clock = SimClock(START)
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as ledger:
        ledger.append_key("collector-01", SigningKey.generate(ED25519_ML_DSA_65).public)
        ledger.append_finding({"detector": "cusum", "score": 7.25})
        ledger.checkpoint()
        clock.advance(60)
        ledger.append_finding({"detector": "cusum", "score": 8.5})
        ledger.checkpoint()


def test_hybrid_site_key_signs_checkpoints_that_verify_offline(tmp_path: Path) -> None:
    site_key = KeyStore.open(tmp_path).load_or_create("site", ED25519_ML_DSA_65)
    build(tmp_path, site_key)
    anchor = read_public_key(tmp_path / "site.pub")
    assert anchor == site_key.public and anchor.algorithm == ED25519_ML_DSA_65
    report = verify_ledger(tmp_path, anchor)
    assert (report.size, report.checkpoints, report.discrepancies) == (3, 2, [])
    with Ledger.open(tmp_path, site_key=site_key, clock=SimClock(START.replace(hour=7))) as ledger:
        checkpoints = ledger.checkpoints()
    assert [c.algorithm for c in checkpoints] == [ED25519_ML_DSA_65, ED25519_ML_DSA_65]
    exported = Checkpoint.from_note(checkpoints[-1].to_note())
    exported.verify(anchor)


def test_stored_hybrid_checkpoint_with_a_flipped_ml_dsa_bit_is_reported(tmp_path: Path) -> None:
    site_key = SigningKey.generate(ED25519_ML_DSA_65)
    build(tmp_path, site_key)
    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        (signature,) = conn.execute("SELECT signature FROM checkpoints WHERE id = 2").fetchone()
        tampered = bytearray(signature)
        tampered[-100] ^= 1
        conn.execute("UPDATE checkpoints SET signature = ? WHERE id = 2", (bytes(tampered),))
    conn.close()
    with pytest.raises(LedgerTampered, match="ML-DSA-65 half does not verify"):
        verify_ledger(tmp_path, site_key.public)


def test_hybrid_checkpoint_stripped_to_its_ed25519_half_is_refused(tmp_path: Path) -> None:
    site_key = SigningKey.generate(ED25519_ML_DSA_65)
    build(tmp_path, site_key)
    with Ledger.open(tmp_path, site_key=site_key, clock=SimClock(START.replace(hour=7))) as ledger:
        latest = ledger.checkpoints()[-1]
    ed_half = latest.signature[4 + len(ED25519_ML_DSA_65) + 4 :][:64]
    with pytest.raises(SignatureError, match="downgrade refused"):
        Checkpoint.from_body(latest.body, ed_half).verify(site_key.public)


def test_rotated_site_key_cannot_silently_continue_an_existing_ledger(tmp_path: Path) -> None:
    # Until the ledger logs key retirements (a later step), a new site key must not be accepted.
    keys = KeyStore.open(tmp_path)
    build(tmp_path, keys.load_or_create("site", ED25519))
    rotated = keys.rotate("site", ED25519_ML_DSA_65)
    with pytest.raises(ConfigError, match="site.pub holds key ed25519:"):
        Ledger.open(tmp_path, site_key=rotated, clock=SimClock(START.replace(hour=7)))
    assert keys.retired("site")[0].algorithm == ED25519


def test_hybrid_collector_envelopes_are_ingested_and_a_tampered_one_is_quarantined(tmp_path: Path) -> None:
    collector, site_key = SigningKey.generate(ED25519_ML_DSA_65), SigningKey.generate(ED25519_ML_DSA_65)
    clock = SimClock(START + timedelta(days=1))
    signer = EdgeSigner("collector-01", collector)
    envelopes = [
        signer.seal(
            [
                Reading(spec.name, START + timedelta(minutes=i), spec.low, Quality.GOOD, "fermenter-01/x")
                for spec in TAGS
            ]
        )
        for i in range(2)
    ]
    tampered = bytearray(envelopes[1].to_bytes())
    tampered[-50] ^= 1  # inside the ML-DSA-65 half of the trailing signature block
    with Ledger.open(tmp_path, site_key=site_key, clock=clock) as ledger:
        ledger.append_key("collector-01", collector.public)
        quarantine = Quarantine.open(tmp_path, clock=clock, max_stored_bytes=1 << 20)
        ingestor = Ingestor(
            IngestVerifier({"collector-01": collector.public}, clock=clock), ledger, quarantine
        )
        first = ingestor.ingest(envelopes[0].to_bytes())
        rejected = ingestor.ingest(bytes(tampered))
        second = ingestor.ingest(envelopes[1].to_bytes())
        ledger.checkpoint()
    assert isinstance(first, Envelope) and isinstance(second, Envelope)
    assert not isinstance(rejected, Envelope)
    assert "the ML-DSA-65 half does not verify" in str(rejected)
    report = verify_ledger(tmp_path, site_key.public, require_signatures=True)
    assert (report.envelope_signatures, report.discrepancies) == (2, [])
