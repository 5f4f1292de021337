"""Where a restarted verifier resumes: the last envelope of each source in the log, counting an
envelope refused for its content alone (its quarantine event stands in its place), and nothing else."""

from __future__ import annotations

import dataclasses

import pytest
from ledger_support import SOURCE, Site, make_envelopes, quarantine_event

from aseptic.errors import IntegrityError
from aseptic.telemetry import QuarantineEvent

pytestmark = pytest.mark.requirement("ASE-CUSTODY")


def refusal(
    reason: str, sequence: int, digest: bytes, *, authenticated: bool = True, source: str = SOURCE
) -> QuarantineEvent:
    return dataclasses.replace(
        quarantine_event(f"refused: {reason}"),
        reason=reason,
        source=source,
        sequence=sequence,
        digest=digest.hex(),
        authenticated=authenticated,
    )


def test_a_content_refusal_after_the_last_envelope_is_the_head(site: Site) -> None:
    one, two = make_envelopes(site.collector_key, 2)
    with site.open() as ledger:
        ledger.append_envelope(one, one.to_bytes())
        ledger.append_quarantine(refusal("out_of_range", 2, two.digest))
        assert ledger.chain_heads() == {SOURCE: (2, two.digest)}
        # Claims that never moved a chain: a replay, a gap, and a content reason without a signature.
        ledger.append_quarantine(refusal("replay", 1, one.digest))
        ledger.append_quarantine(refusal("gap", 7, b"\x07" * 32))
        ledger.append_quarantine(refusal("clock_skew", 9, b"\x09" * 32, authenticated=False))
        ledger.append_quarantine(refusal("clock_skew", 3, b"\x03" * 32, source="other-collector"))
        assert ledger.chain_heads() == {SOURCE: (2, two.digest), "other-collector": (3, b"\x03" * 32)}


def test_a_logged_envelope_after_a_content_refusal_is_the_head(site: Site) -> None:
    one, two, three = make_envelopes(site.collector_key, 3)
    with site.open() as ledger:
        ledger.append_envelope(one, one.to_bytes())
        ledger.append_quarantine(refusal("non_finite", 2, two.digest))
        ledger.append_envelope(three, three.to_bytes())
        assert ledger.chain_heads() == {SOURCE: (3, three.digest)}


@pytest.mark.sqlite_only  # bytes written into the SQLite file itself
def test_an_altered_in_chain_event_is_integrity_error_naming_its_leaf(site: Site) -> None:
    (one,) = make_envelopes(site.collector_key, 1)
    with site.open() as ledger:
        ledger.append_envelope(one, one.to_bytes())
        ledger.append_quarantine(refusal("unknown_tag", 2, b"\x02" * 32))
    with site.db() as conn:
        conn.execute(
            "UPDATE quarantine SET payload = CAST(replace(CAST(payload AS TEXT), '0202', 'zz') AS BLOB)"
        )
    with (
        site.open() as ledger,
        pytest.raises(IntegrityError, match="quarantine event at leaf 1 is not valid"),
    ):
        ledger.chain_heads()
