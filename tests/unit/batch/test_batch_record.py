"""The batch record read back from the log: window, phases, equipment, materials, findings, genealogy."""

from __future__ import annotations

import pytest
from batch_support import BATCH, T0, Site

from aseptic.batch import assemble_batch_record
from aseptic.errors import InputError
from aseptic.ledger import Historian

pytestmark = pytest.mark.requirement("P11-11.10e")


def test_record_lists_phases_equipment_materials_and_findings(site: Site) -> None:
    record = site.record()
    assert record.completed and record.last_leaf is not None and record.first_leaf < record.last_leaf
    assert [(p.phase, p.index) for p in record.phases] == [
        ("BATCH_GROWTH", 3),
        ("FED_BATCH_PRODUCTION", 4),
        ("HARVEST", 5),
    ]
    assert record.phases[0].start == T0 and record.phases[-1].end == record.end
    assert record.unit == "fermenter-01"
    assert record.devices == ("BATCH-01", "FIC-104", "TIC-101")
    assert record.materials == {"sugar_feed_l": pytest.approx(55.0)}  # 10 L/h over 5.5 h
    assert record.readings == {"phase_index": 12, "sugar_feed_l_per_h": 12, "temperature_k": 12}
    assert [(f.detector, f.technique, f.tags) for f in record.findings] == [
        ("cusum", "T0832", ("temperature_k",))
    ]
    assert any(name.startswith("envelopes/") for name in record.genealogy["inputs"])
    assert record.genealogy["outputs"] == [f"batch/{BATCH}"]


def test_record_digest_changes_when_the_window_gains_a_finding(site: Site) -> None:
    before = site.record().digest
    site.ledger.append_finding({"batch_id": BATCH, "detector": "late", "kind": "finding"})
    after = site.record()
    assert after.digest != before and len(after.findings) == 2


def test_unknown_batch_is_refused_with_a_hint(site: Site) -> None:
    with Historian.open(site.data_dir) as historian, pytest.raises(InputError, match="no lineage START"):
        assemble_batch_record(historian, "no-such-batch")
