"""A data directory with two batches logged by the real custody pipeline, for bundle, witness,
lineage, crash and tamper tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aseptic.clock import SimClock
from aseptic.config import Settings, settings_from_mapping
from aseptic.crypto import SITE_KEY, KeyStore, SigningKey, read_public_key
from aseptic.ledger import LeafKind, Ledger, export_bundle
from aseptic.service import CustodyPipeline
from aseptic.telemetry import Quality, Reading

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BATCH_1 = "site-01-fermenter-01-0001"
BATCH_2 = "site-01-fermenter-01-0002"


def settings() -> Settings:
    return settings_from_mapping({"telemetry": {"readings_per_envelope": 4}})


def readings(n: int, start: int = 0) -> list[Reading]:
    return [
        Reading("temperature_k", T0 + timedelta(minutes=i), 298.0 + 0.01 * i, Quality.GOOD, "s/u/TIC-101")
        for i in range(start, start + n)
    ]


@dataclass
class EvidenceSite:
    data_dir: Path
    clock: SimClock

    @property
    def site_key(self) -> SigningKey:
        return KeyStore(self.data_dir / "keys").load(SITE_KEY)

    @property
    def site_pub(self) -> Path:
        return self.data_dir / "site.pub"

    def open(self) -> Ledger:
        return Ledger.open(self.data_dir, site_key=self.site_key, clock=self.clock, create=False)

    def export(self, out: Path, batch: str = BATCH_1) -> dict[str, Any]:
        with self.open() as ledger:
            export_bundle(ledger, self.data_dir, batch, out, clock=self.clock, actor="test")
        document: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return document


def build_site(data_dir: Path) -> EvidenceSite:
    """Batch 1: a model manifest, 12 readings (3 envelopes), a replayed envelope (quarantine), a
    finding, a decision; a checkpoint; batch 2: 8 readings; an e-signature naming batch 1 after it."""
    clock = SimClock(T0 + timedelta(days=1))
    pipeline = CustodyPipeline(data_dir, settings(), clock, collector_id="collector-01")
    model_file = data_dir / "models" / "model.json"
    model_file.parent.mkdir(parents=True, exist_ok=True)
    model_file.write_text('{"weights": [1, 2, 3]}\n', encoding="utf-8")
    model = pipeline.record_model(model_file, name="batch-mspc", version="1.0")
    pipeline.start_batch(BATCH_1, models=(model,))
    for reading in readings(12):
        pipeline.add_reading(reading)
    assert pipeline.last_accepted_raw is not None
    pipeline.ingest_raw(pipeline.last_accepted_raw)  # a replay: quarantined, logged
    pipeline.ledger.append_finding(
        {"batch_id": BATCH_1, "detector": "cusum", "kind": "finding", "score": 9.5}
    )
    pipeline.ledger.append_entry(
        LeafKind.DECISION,
        {
            "action": "write_setpoint",
            "decision": "allow",
            "entry": "access_decision",
            "principal": "User::ana",
        },
    )
    clock.advance(60)
    pipeline.ledger.checkpoint()
    pipeline.end_batch()
    clock.advance(60)
    pipeline.start_batch(BATCH_2, models=(model,))
    for reading in readings(8, start=12):
        pipeline.add_reading(reading)
    pipeline.end_batch()
    pipeline.ledger.append_entry(
        LeafKind.SIGNATURE,
        {"entry": "e_signature", "meaning": "approved", "record": f"batch/{BATCH_1}", "signer": "qa"},
    )
    clock.advance(60)
    pipeline.close()
    assert read_public_key(data_dir / "site.pub") == KeyStore(data_dir / "keys").load(SITE_KEY).public
    return EvidenceSite(data_dir, clock)
