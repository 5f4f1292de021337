"""A decision's ledger entry, encoded from cached parts, is byte for byte the canonical JSON of its
dictionary (``canonical_json(decision.to_json())``) for any decision, including awkward text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from aseptic.ledger import canonical_json
from aseptic.trust import ACTIONS, BATCH_STATES, AccessRequest, Decision, EntityRef, RequestContext
from aseptic.trust._decision_entry import encode_decision

_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,20}", fullmatch=True)
_TEXT = st.text(max_size=30)  # quotes, backslashes, control characters, non-ASCII, surrogates excluded
_TEXTS = st.lists(_TEXT, max_size=3).map(tuple)


@st.composite
def decisions(draw: st.DrawFn) -> Decision:
    context = RequestContext(
        draw(st.sampled_from(BATCH_STATES)),
        draw(st.booleans()),
        draw(_TEXT),
        draw(_TEXT),
        datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=draw(st.integers(0, 10**14))),
        draw(st.booleans()),
        draw(st.booleans()),
    )
    request = AccessRequest(
        EntityRef(draw(st.sampled_from(("User", "Device", "Service"))), draw(_IDS)),
        draw(st.sampled_from(ACTIONS)),
        EntityRef(draw(st.sampled_from(("Tag", "Batch", "Site"))), draw(_IDS)),
        context,
    )
    return Decision(
        draw(st.booleans()),
        request,
        draw(_TEXTS),
        draw(_TEXTS),
        draw(_TEXTS),
        draw(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
        draw(st.none() | _IDS),
    )


@given(decisions())
def test_encoded_decision_is_the_canonical_json_of_its_entry(decision: Decision) -> None:
    assert encode_decision(decision) == canonical_json(decision.to_json())


def test_encoded_decision_with_a_tampered_field_differs() -> None:
    context = RequestContext("running", True, "control", "write-gateway", datetime(2026, 3, 1, tzinfo=UTC))
    request = AccessRequest(EntityRef("User", "alice"), "write_setpoint", EntityRef("Tag", "ph_sp"), context)
    allow = Decision(True, request, ("p",), ("permitted by p",), (), "0" * 64)
    deny = Decision(False, request, ("p",), ("permitted by p",), (), "0" * 64)
    assert encode_decision(allow) != encode_decision(deny)
    assert b'"decision":"deny"' in encode_decision(deny)


def test_times_in_one_minute_and_across_minutes_encode_as_canonical_json() -> None:
    base = datetime(2026, 1, 1, 23, 59, tzinfo=UTC)
    times = [base, base + timedelta(seconds=7, microseconds=5), base + timedelta(seconds=61), base]
    for when in times:
        context = RequestContext("running", True, "control", "write-gateway", when)
        request = AccessRequest(EntityRef("User", "alice"), "read_tag", EntityRef("Tag", "t"), context)
        decision = Decision(True, request, ("p",), ("permitted by p",), (), "0" * 64)
        assert encode_decision(decision) == canonical_json(decision.to_json())
