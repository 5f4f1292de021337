"""The campaign's policy decision point: Cedar asked once per distinct request (ADR 0370).

An access watch asks the enforcement point about the same routine reads over and over: one
identity, six tags, a context whose only changing attribute Cedar sees is ``hour_utc``. A Cedar
decision is a function of what the engine is given (the request as Cedar reads it, the policy set,
the entity graph with the request's own entities), so the decision of a request identical in all of
these is the one Cedar gave before; only the request it is about (its timestamp) differs. The
enforcement point still logs every decision, with its own request, in the decision ledger.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from aseptic.trust import AccessRequest, Decision, PolicyDecisionPoint

__all__ = ["RepeatingDecisionPoint"]


class RepeatingDecisionPoint(PolicyDecisionPoint):
    """``PolicyDecisionPoint`` that reuses the decision of a request Cedar has already decided.

    The key is everything ``decide`` hands Cedar or checks itself: the request in Cedar's form (the
    context as Cedar sees it, ``elevated`` included), the request's extra entities and the active
    policy set's digest (the base entity graph is fixed at construction). ``reuse=False`` asks
    Cedar every time (the reference path).
    """

    def __init__(self, *args: Any, reuse: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reuse = reuse
        self._decided: dict[tuple[str, str, str], Decision] = {}
        self.asked = 0  # requests Cedar evaluated
        self.reused = 0

    def decide(self, request: AccessRequest, extra: Sequence[dict[str, Any]] = ()) -> Decision:
        """The decision for ``request``, from Cedar or from an identical request's decision.

        Raises:
            InputError: ``extra`` does not fit the schema or clashes with the base graph.
        """
        if not self._reuse:
            self.asked += 1
            return super().decide(request, extra)
        key = (
            json.dumps(request.to_cedar_request(), sort_keys=True),
            json.dumps(list(extra), sort_keys=True),
            self.bundle.digest,
        )
        known = self._decided.get(key)
        if known is not None:
            self.reused += 1
            return replace(known, request=request)
        self.asked += 1
        decision = super().decide(request, extra)
        self._decided[key] = decision
        return decision
