"""``Ledger.append_findings``: many canonical JSON leaves in one transaction, all or nothing."""

from __future__ import annotations

import pytest
from ledger_support import Site

from aseptic.errors import InputError
from aseptic.ledger import LeafKind, hash_entry, verify_ledger

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
