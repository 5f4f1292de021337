"""A decision's ledger entry as canonical JSON bytes, encoded from cached parts (ADR 0260).

``canonical_json(decision.to_json())`` builds a dictionary of eleven fields, sorts its keys and
escapes every string, for every decision: about a tenth of a raw Cedar call, paid by the decision
log's writer while it holds the GIL. The entry has a fixed layout, and most of its parts repeat:
a site has a handful of contexts and of (outcome, deciding policies) pairs, one policy set digest.
So the parts are encoded once each (``functools.lru_cache``) and joined in key order; only the
principal, the resource and the time are encoded per decision.

The bytes are exactly ``canonical_json(decision.to_json())`` (a property test holds this), and
``verify_ledger`` re-checks the canonical form of every stored entry, so a slip here could not pass
as evidence unnoticed.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime

from aseptic.trust._request import Decision, RequestContext

__all__ = ["encode_decision"]


def encode_decision(decision: Decision) -> bytes:
    """The canonical JSON bytes of ``decision.to_json()`` (its ``decision`` ledger leaf payload)."""
    request = decision.request
    context = request.context
    outcome, policies, reasons = _outcome_parts(
        decision.allowed, decision.errors, decision.policy_ids, decision.reasons, decision.policy_digest
    )
    grant = "" if decision.grant_id is None else f'"grant":{_text(decision.grant_id)},'
    principal, resource = request.principal, request.resource
    return (
        f'{{"action":{_text(request.action)},"context":{_context_part(context)},{outcome},{grant}'
        f'{policies},"principal":{_text(f"{principal.type}::{_QUOTE}{principal.id}{_QUOTE}")},'
        f'{reasons},"resource":{_text(f"{resource.type}::{_QUOTE}{resource.id}{_QUOTE}")},'
        f'"time":"{_time_text(context.time)}"}}'
    ).encode()


def _time_text(when: datetime) -> str:
    """``when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"`` for a UTC time (a
    context's): the text up to the minute is kept from the previous call (decisions arrive in time
    order, so it changes once a minute), the seconds are formatted here. ``isoformat`` with its
    ``replace`` costs about half of the whole entry's encoding otherwise."""
    global _minute
    key = (when.year, when.month, when.day, when.hour, when.minute)
    kept = _minute
    if kept[0] == key:
        head = kept[1]
    else:
        head = when.replace(tzinfo=None).isoformat(timespec="minutes")
        _minute = (key, head)  # one tuple, swapped whole: safe for concurrent callers
    return "%s:%02d.%06dZ" % (head, when.second, when.microsecond)  # noqa: UP031 - fastest here


_minute: tuple[tuple[int, int, int, int, int], str] = ((0, 0, 0, 0, 0), "")


_QUOTE = '"'


# What ``json.dumps(value, ensure_ascii=False)`` (canonical_json's setting) writes for a string: the
# same C function, without building an encoder object per call.
_text = json.encoder.encode_basestring


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _context_part(context: RequestContext) -> str:
    return _context_json(
        context.batch_state,
        context.firmware_attested,
        context.source_zone,
        context.conduit,
        context.time.hour,
        context.elevated,
        context.within_validated_range,
    )


@functools.lru_cache(maxsize=4096)
def _context_json(
    batch_state: str,
    firmware_attested: bool,
    source_zone: str,
    conduit: str,
    hour_utc: int,
    elevated: bool,
    within_validated_range: bool,
) -> str:
    return _json(
        {
            "batch_state": batch_state,
            "firmware_attested": firmware_attested,
            "source_zone": source_zone,
            "conduit": conduit,
            "hour_utc": hour_utc,
            "elevated": elevated,
            "within_validated_range": within_validated_range,
        }
    )


@functools.lru_cache(maxsize=4096)
def _outcome_parts(
    allowed: bool,
    errors: tuple[str, ...],
    policy_ids: tuple[str, ...],
    reasons: tuple[str, ...],
    digest: str,
) -> tuple[str, str, str]:
    """``"decision"`` to ``"errors"``, ``"policy_ids"`` and ``"policy_set"``, and ``"reasons"``."""
    verdict = "allow" if allowed else "deny"
    outcome = f'"decision":"{verdict}","entry":"access_decision","errors":{_json(errors)}'
    policies = f'"policy_ids":{_json(policy_ids)},"policy_set":{_text(digest)}'
    return outcome, policies, f'"reasons":{_json(reasons)}'
