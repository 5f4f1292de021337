"""``Ledger.append_findings``: many canonical JSON leaves in one transaction, all or nothing."""

from __future__ import annotations

import pytest
from ledger_support import Site

from aseptic.errors import InputError
from aseptic.ledger import LeafKind, LedgerTampered, hash_entry, verify_ledger

pytestmark = pytest.mark.requirement("ASE-CUSTODY")


def test_append_findings_gives_consecutive_leaves_that_verify(site: Site) -> None:
    with site.open() as ledger:
        ledger.append_finding({"first": 1})
        indexes = ledger.append_findings([{"n": n} for n in range(5)])
        assert indexes == range(1, 6)
        assert ledger.leaf_hash(3) == hash_entry(LeafKind.FINDING, b'{"n":2}')
        ledger.checkpoint()
    assert verify_ledger(site.data_dir, site.site_key.public).size == 6


def test_append_findings_with_one_bad_payload_logs_none(site: Site) -> None:
    with site.open() as ledger:
        with pytest.raises(InputError, match="not canonical"):
            ledger.append_findings([{"n": 1}, b'{"b": 1}'])
        assert ledger.size == 0
        assert ledger.append_findings([{"n": 1}]) == range(0, 1)


def test_append_findings_inside_a_failed_batch_is_undone(site: Site) -> None:
    with site.open() as ledger:
        with pytest.raises(RuntimeError), ledger.batch():
            ledger.append_findings([{"n": 1}, {"n": 2}])
            raise RuntimeError("caller failed after appending")
        assert ledger.size == 0
    with site.open() as reopened:
        assert reopened.size == 0


def test_append_canonical_entries_spanning_several_multi_row_inserts_verify(site: Site) -> None:
    # 1 + 100 rows: inserts of 64, 32, 4 rows (the powers of two the SQLite store splits them into).
    payloads = [b'{"n":%d}' % n for n in range(100)]
    with site.open() as ledger:
        ledger.append_finding({"first": 1})
        assert ledger.append_canonical_entries(LeafKind.DECISION, payloads) == range(1, 101)
        assert ledger.entries(LeafKind.DECISION) == list(enumerate(payloads, start=1))
        assert ledger.leaf_hash(100) == hash_entry(LeafKind.DECISION, b'{"n":99}')
        ledger.checkpoint()
    assert verify_ledger(site.data_dir, site.site_key.public).size == 101


def test_append_canonical_entries_that_are_not_canonical_fail_verification(site: Site) -> None:
    # The fast path trusts its caller; verification does not.
    with site.open() as ledger:
        ledger.append_canonical_entries(LeafKind.DECISION, [b'{"b": 1}'])
        ledger.checkpoint()
    with pytest.raises(LedgerTampered) as caught:
        verify_ledger(site.data_dir, site.site_key.public)
    assert any("not a valid decision entry" in d.problem for d in caught.value.report.discrepancies)


def test_append_canonical_entries_refuses_a_kind_that_is_not_json(site: Site) -> None:
    with site.open() as ledger, pytest.raises(InputError, match="not JSON entries"):
        ledger.append_canonical_entries(LeafKind.ENVELOPE, [b"{}"])
