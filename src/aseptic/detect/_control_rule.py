"""Control-rule consistency: a pump or valve in a state its level rule does not allow (learned from data).

Water networks (and many continuous units) run their pumps and valves on level rules in the PLC:
PU2 starts when tank T1 falls to about 1 m and stops at about 4.5 m. An attacker who spoofs the
level the PLC reads (ATT&CK for ICS T0856), or who commands the pump directly (T0831, T0855),
leaves a trace the statistics of single samples miss: a pump that keeps running after its tank
went past the stop level, a pump that stays off after its tank ran below the start level.

The rules are learned from normal data, no plant drawing needed:

- a *status* variable is one whose finite values are 0 and 1 only, switching at least
  ``min_switches`` times each way;
- its *controlling level* is the candidate (``levels``: the variables the PLC's rules may act on,
  e.g. the tank levels; left open, a flow that is constant while a pump runs would look like a
  perfect rule) whose values in the sample before a switch are most concentrated (the larger of
  the two sds, at switch-on and at switch-off, over the variable's sd); kept only if that ratio
  is at most ``max_concentration``: a pump run on a timer or on demand has no level rule;
- the rule's direction and levels: a *filling* pump (it switches off at higher levels than it
  switches on) runs only up to its *stop* level (the highest level seen while it ran) and stays
  off only down to its *start* level (the lowest seen while it was off); a *draining* one mirrors.

Score, causally per row: a rule is broken by how far the level is past the stop level while the
status is on, or past the start level while it is off, in level sds. The PLC would have switched
there, so the breach is remembered for as long as the status stays unchanged (a running pump that
should have stopped is wrong for the whole run, also after the level has come back). Statistic
``rule``: the largest remembered breach over rules (0 when every rule holds). The ``Ensemble``
sets its limit on held-out normal data like any other member's.

A missing status neither ends nor starts a run; a missing level adds no breach.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aseptic.detect._detector import FloatArray
from aseptic.detect._tabular import (
    NotFitted,
    State,
    array_of,
    check_columns,
    check_matrix,
    meta_columns,
    meta_float,
    meta_int,
)
from aseptic.errors import InputError

__all__ = ["ControlRule", "ControlRuleDetector", "learn_control_rules"]

SD_FLOOR = 1e-6
RULE_FIELDS = 7


@dataclass(frozen=True)
class ControlRule:
    """Status ``status`` (column index) runs only until ``level`` passes ``stop``, and stays off only until
    it passes ``start``; ``direction`` +1 for a filling pump (stop above start), -1 for a draining one."""

    status: int
    level: int
    direction: int
    stop: float
    start: float
    sd: float
    concentration: float  # switching-level sd over level sd (smaller: a sharper rule)


def _switches(s: FloatArray) -> tuple[np.ndarray, np.ndarray]:
    """Rows after which the status switches off / on (consecutive finite samples only)."""
    prev, cur = s[:-1], s[1:]
    both = np.isfinite(prev) & np.isfinite(cur)
    off = np.flatnonzero(both & (prev == 1.0) & (cur == 0.0))
    on = np.flatnonzero(both & (prev == 0.0) & (cur == 1.0))
    return off, on


def _is_status(s: FloatArray) -> bool:
    finite = s[np.isfinite(s)]
    return finite.size > 0 and bool(np.all((finite == 0.0) | (finite == 1.0)))


def learn_control_rules(
    x: FloatArray,
    candidates: Sequence[int],
    *,
    min_switches: int,
    max_concentration: float,
) -> list[ControlRule]:
    """The level rule of every status variable of ``x`` that has one (see the module docstring)."""
    rules: list[ControlRule] = []
    for j in range(x.shape[1]):
        s = x[:, j]
        if j in candidates or not _is_status(s):
            continue
        off, on = _switches(s)
        if min(off.size, on.size) < min_switches:
            continue
        best: ControlRule | None = None
        for k in candidates:
            level = x[:, k]
            sd = float(np.nanstd(level))
            at_off, at_on = level[off], level[on]
            at_off, at_on = at_off[np.isfinite(at_off)], at_on[np.isfinite(at_on)]
            if sd <= SD_FLOOR or min(at_off.size, at_on.size) < min_switches:
                continue
            concentration = max(float(np.std(at_off)), float(np.std(at_on))) / sd
            running, stopped = level[s == 1.0], level[s == 0.0]
            running, stopped = running[np.isfinite(running)], stopped[np.isfinite(stopped)]
            if concentration > max_concentration or not (running.size and stopped.size):
                continue
            if best is None or concentration < best.concentration:
                if float(np.mean(at_off)) >= float(np.mean(at_on)):
                    rule = (1, float(running.max()), float(stopped.min()))
                else:
                    rule = (-1, float(running.min()), float(stopped.max()))
                best = ControlRule(j, k, *rule, sd, concentration)
        if best is not None:
            rules.append(best)
    return rules


def _breaches(x: FloatArray, rules: Sequence[ControlRule]) -> FloatArray:
    """Per row and rule, the breach remembered since the status last changed (level sds, >= 0)."""
    n = x.shape[0]
    out = np.zeros((n, len(rules)))
    for r, rule in enumerate(rules):
        s, level = x[:, rule.status], x[:, rule.level]
        past = np.where(s == 1.0, level - rule.stop, rule.start - level)
        breach = rule.direction * past / rule.sd
        breach = np.where(np.isfinite(breach) & np.isfinite(s), np.maximum(breach, 0.0), 0.0)
        held, state = 0.0, np.nan
        for t in range(n):
            if np.isfinite(s[t]) and s[t] != state:
                held, state = 0.0, float(s[t])
            held = max(held, float(breach[t]))
            out[t, r] = held
    return out


class ControlRuleDetector(NotFitted):
    """Pumps and valves against the level rules learned from normal data; statistic ``rule``."""

    kind = "rule"
    statistics = ("rule",)

    def __init__(
        self,
        *,
        levels: Sequence[str],
        min_switches: int = 20,
        max_concentration: float = 0.35,
        seed: int = 0,
        name: str = "rule",
    ) -> None:
        if min_switches < 2 or not 0 < max_concentration <= 1:
            raise ValueError(
                f"min_switches must be >= 2 and max_concentration in (0, 1] (got {min_switches}, "
                f"{max_concentration})"
            )
        if not levels:
            raise ValueError("a control-rule detector needs the level variables its rules may act on")
        self._levels = tuple(levels)
        self._min_switches = min_switches
        self._max_concentration = max_concentration
        self._seed = seed
        self._name = name
        self._columns: tuple[str, ...] = ()
        self._rules: tuple[ControlRule, ...] = ()

    @property
    def rules(self) -> tuple[ControlRule, ...]:
        return self._rules

    def describe(self) -> list[str]:
        """Each learned rule in words (for docs and reports)."""
        c = self._columns
        return [
            f"{c[r.status]} ({'fills' if r.direction > 0 else 'drains'} on {c[r.level]}) stops at "
            f"{r.stop:g}, starts at {r.start:g} "
            f"(switching spread {r.concentration:.2f} sd)"
            for r in self._rules
        ]

    def spawn(self) -> ControlRuleDetector:
        return ControlRuleDetector(
            levels=self._levels,
            min_switches=self._min_switches,
            max_concentration=self._max_concentration,
            seed=self._seed,
            name=self._name,
        )

    def fit(self, x: FloatArray, columns: Sequence[str]) -> None:
        """Learn the rules (possibly none: the statistic is then 0 everywhere)."""
        arr = check_matrix(x, min_rows=2, what=f"training data of {self._name!r}")
        names = check_columns(columns, arr.shape[1])
        missing = sorted(set(self._levels) - set(names))
        if missing:
            raise InputError(f"detector {self._name!r}: the data has no level variable(s) {missing}")
        candidates = [k for k, c in enumerate(names) if c in set(self._levels)]
        self._rules = tuple(
            learn_control_rules(
                arr, candidates, min_switches=self._min_switches, max_concentration=self._max_concentration
            )
        )
        self._columns = names

    def score(self, x: FloatArray) -> dict[str, FloatArray]:
        arr = self._require_fitted(x)
        b = _breaches(arr, self._rules)
        return {"rule": b.max(axis=1) if b.shape[1] else np.zeros(arr.shape[0])}

    def contributions(self, x: FloatArray, statistic: str) -> FloatArray:
        """The breach of each rule, half to its status and half to its level variable."""
        if statistic not in self.statistics:
            raise self._unknown(statistic, self.statistics)
        arr = self._require_fitted(x)
        b = _breaches(arr, self._rules)
        out = np.zeros(arr.shape)
        for r, rule in enumerate(self._rules):
            out[:, rule.status] += 0.5 * b[:, r]
            out[:, rule.level] += 0.5 * b[:, r]
        return out

    def expected(self, x: FloatArray) -> FloatArray | None:
        """The status each broken rule expects (the other state); NaN where no rule is broken."""
        arr = self._require_fitted(x)
        b = _breaches(arr, self._rules)
        out = np.full(arr.shape, np.nan)
        for r, rule in enumerate(self._rules):
            broken = b[:, r] > 0
            out[broken, rule.status] = 1.0 - arr[broken, rule.status]
        return out

    def state(self) -> State:
        meta = {
            "columns": list(self._columns),
            "levels": list(self._levels),
            "max_concentration": self._max_concentration,
            "min_switches": self._min_switches,
            "name": self._name,
            "seed": self._seed,
        }
        rules = np.array(
            [[r.status, r.level, r.direction, r.stop, r.start, r.sd, r.concentration] for r in self._rules],
            dtype=np.float64,
        ).reshape(len(self._rules), RULE_FIELDS)
        return meta, {"rules": rules}

    @classmethod
    def from_state(cls, meta: dict[str, object], arrays: dict[str, FloatArray]) -> ControlRuleDetector:
        columns = meta_columns(meta)
        levels = meta["levels"]
        if not (isinstance(levels, list) and levels and all(isinstance(v, str) for v in levels)):
            raise ValueError("levels must be a non-empty list of names")
        det = cls(
            levels=[str(v) for v in levels],
            min_switches=meta_int(meta, "min_switches", minimum=2),
            max_concentration=meta_float(meta, "max_concentration"),
            seed=meta_int(meta, "seed"),
            name=str(meta["name"]),
        )
        raw = arrays["rules"]
        table = array_of(arrays, "rules", (raw.shape[0] if raw.ndim == 2 else -1, RULE_FIELDS))
        p = len(columns)
        rules = []
        for status, level, direction, stop, start, sd, conc in table:
            if not (0 <= status < p and 0 <= level < p and status == int(status) and level == int(level)):
                raise ValueError("a rule names a column outside the detector's columns")
            if direction not in (1.0, -1.0) or not (np.isfinite([stop, start, conc]).all() and sd > 0):
                raise ValueError("a rule has a bad direction, a non-finite level or a non-positive sd")
            rules.append(
                ControlRule(
                    int(status), int(level), int(direction), float(stop), float(start), float(sd), float(conc)
                )
            )
        det._rules = tuple(rules)
        det._columns = columns
        return det
