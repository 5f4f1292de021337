"""A quarantine event whose fields were given other JSON types is tamper evidence in the report,
never a crash of the verifier (a traceback would stop the audit at the first such row)."""

from __future__ import annotations

import pytest
from ledger_support import Site

from aseptic.ledger import LedgerTampered, verify_ledger

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "P11-11.10a")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('"time":"2026-01-01T00:00:00.000000Z"', '"time":5', "time"),
        ('"size":4', '"size":"4"', "size"),
        ('"authenticated":false', '"authenticated":0', "authenticated"),
    ],
)
def test_a_quarantine_field_of_another_type_is_a_named_discrepancy(
    built: Site, old: str, new: str, field: str
) -> None:
    with built.db() as conn:
        changed = conn.execute(
            "UPDATE quarantine SET payload = CAST(replace(CAST(payload AS TEXT), ?, ?) AS BLOB)"
            " WHERE leaf = 5",
            (old, new),
        )
        assert changed.rowcount == 1
    with pytest.raises(LedgerTampered) as caught:
        verify_ledger(built.data_dir, built.site_key.public)
    problems = [d for d in caught.value.report.discrepancies if (d.table, d.row) == ("quarantine", "leaf 5")]
    assert any(f"field {field!r}" in str(d) for d in problems), caught.value.report.discrepancies
