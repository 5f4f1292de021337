"""One worker task of the campaign: every scenario's batch of one seed, simulated in lock step.

A group is (PAA mode, batch duration, seed, scenarios). Fleet batch 0 is the clean companion; batch
``i`` runs scenario ``i - 1``. Per sample, before the fleet steps: attacked setpoints and controller
gains are written for the coming sample, firmware and models are swapped when their step is due;
sensor primitives on the loop path sit in the fleet as measurement tampers. After the step, the
platform watches see the sample. Afterwards each batch's published samples (view-path primitives
applied in order, hidden setpoints restored) are scored by the streaming detection engine.

Scoring skips the clean prefix exactly: the detectors are causal and an attacked batch equals its
clean companion sample for sample until its first malicious step, so the engine's state there is
the clean batch's. The clean batch is scored once, its engine pickled at each prefix length an
attacked batch needs, and each attacked batch resumes from that snapshot. The prefix length is
measured (the first sample that differs), never assumed.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from aseptic.campaign._custody import CustodyWatch
from aseptic.campaign._model import GuardKit, ModelWatch, spectrum_tamper
from aseptic.campaign._plan import SAMPLE_H, SENSOR_PRIMITIVES, Group, watch_keys
from aseptic.campaign._platform import (
    ANALYTICS_TRAINING_H,
    AccessWatch,
    AlarmAudit,
    FirmwareWatch,
    GatewayWatch,
)
from aseptic.campaign._primitives import Attack, apply_attacks
from aseptic.campaign._scenario import Scenario, Step
from aseptic.campaign._shapes import SetpointChange
from aseptic.campaign._steps import build_attack, recipe_setpoints
from aseptic.clock import SimClock
from aseptic.detect import Detector, Engine, alarm_episodes
from aseptic.twin import TAGS_BY_NAME, PlantFleet

__all__ = ["init_worker", "run_group", "scoring_stop_h"]

# Controlled variables and their specification (the validated range of their setpoint).
_SPEC = {"temperature_k": "temperature_sp_k", "ph": "ph_sp", "paa_mg_per_l": "paa_sp_mg_per_l"}
_START = datetime(2026, 1, 1, tzinfo=UTC)

_DETECTORS: list[Detector] = []
_KIT: GuardKit | None = None
_BLOCK = True
_REUSE = True
_FLEET_PREFIX = True  # False: every batch compared sample by sample (the session-3 code; tests)

SCORING = ("block", "sample")


def init_worker(
    detectors: list[Detector], kit: GuardKit | None, scoring: str = "block", reuse: bool = True
) -> None:
    """Give this process the fitted detectors and the guard kit (a pool initializer).

    ``scoring``: ``"block"`` scores each stretch of samples with ``Engine.push_block`` (vectorised,
    the same verdicts bit for bit); ``"sample"`` calls ``push_sample`` per sample (the reference
    path, kept for the benchmark baseline and the equivalence test). ``reuse``: the custody watch
    reuses the outcome of a ledger verification of byte-identical files and the access watches the
    Cedar decision of an identical request (ADR 0370); False runs every one (the reference path).
    """
    global _DETECTORS, _KIT, _BLOCK, _REUSE
    if scoring not in SCORING:
        raise ValueError(f"scoring must be one of {SCORING}, got {scoring!r}")
    _DETECTORS, _KIT, _BLOCK, _REUSE = detectors, kit, scoring == "block", reuse


@dataclass
class _Batch:
    """What one fleet batch carries: its attacks, watches, and what was seen."""

    key: str
    loop: list[Attack]
    view: list[Attack]
    setpoints: list[SetpointChange]
    gains: list[Step]
    watches: dict[str, Any]
    alarm: AlarmAudit | None
    rows: int = 0
    out_of_spec: int = 0


def _batch(scenario: Scenario | None, group: Group) -> _Batch:
    steps = scenario.steps if scenario is not None else ()
    b = _Batch(scenario.id if scenario else "", [], [], [], [], {}, None)
    for step in steps:
        if step.primitive in SENSOR_PRIMITIVES or step.primitive == "setpoint_tamper":
            attack = build_attack(step, group.duration_h)
            if isinstance(attack, SetpointChange):
                b.setpoints.append(attack)
            elif step.params.get("path", "view") == "loop":
                b.loop.append(attack)
            else:
                b.view.append(attack)
        elif step.primitive == "controller_tuning":
            b.gains.append(step)
    return b


def _make_watch(
    key: str, steps: Sequence[Step], fleet: PlantFleet, b: int, seed: int, watched: tuple[float, float, float]
) -> Any:
    if key == "firmware":
        return FirmwareWatch(fleet, b, [s for s in steps if s.primitive == "firmware_swap"])
    if key == "gateway":
        return GatewayWatch(steps)
    if key == "custody":
        mine = [s for s in steps if s.primitive in ("ransomware_encrypt", "ledger_tamper")]
        return CustodyWatch(mine, "collector-01", seed, (watched[0], watched[1]), reuse_verification=_REUSE)
    identity = key.split(":", 1)[1]
    mine = [s for s in steps if s.primitive in ("historian_bulk_read", "data_export")]
    return AccessWatch(mine, identity, f"B-{seed}", watched[2], reuse=_REUSE)


def _custody_window(scenarios: Sequence[Scenario]) -> tuple[float, float]:
    """The window in which every custody batch of a group verifies its ledger at each check: from 2 h
    before the first ransomware/ledger step to 1 h past the last one's longest horizon."""
    custody = [
        (st.at_h, max((e.within_h for e in s.expected), default=2.0))
        for s in scenarios
        for st in s.steps
        if st.primitive in ("ransomware_encrypt", "ledger_tamper")
    ]
    if not custody:
        return (math.inf, -math.inf)
    return (min(a for a, _ in custody) - 2.0, max(a + w for a, w in custody) + 1.0)


def _analytics_training_h(scenarios: Sequence[Scenario]) -> float:
    """The access baseline every access batch of a group learns from: the first 24 h, or the first
    half of the time before the group's earliest access step if that comes sooner."""
    steps = [
        st.at_h for s in scenarios for st in s.steps if st.primitive in ("historian_bulk_read", "data_export")
    ]
    return min([ANALYTICS_TRAINING_H, *(0.5 * a for a in steps)])


def run_group(group: Group) -> list[dict[str, Any]]:
    """Simulate and score the group; one result per fleet batch (clean companion first)."""
    members: list[Scenario | None] = [None, *group.scenarios]
    n = len(members)
    probe = [_batch(s, group) for s in members]

    def tamper_of(b: _Batch) -> Callable[[float, Mapping[str, float]], Mapping[str, float]] | None:
        if not b.loop:
            return None
        attacks = b.loop
        return lambda t, measured: apply_attacks(attacks, t, measured)

    fleet = PlantFleet(
        [group.seed] * n,
        durations_h=[group.duration_h] * n,
        paa_control=group.mode,
        measurement_tampers=[tamper_of(b) for b in probe],
        spectrum_tampers=[spectrum_tamper(s.steps) if s is not None else None for s in members],
    )
    batches = probe
    watched = (*_custody_window(group.scenarios), _analytics_training_h(group.scenarios))
    for i, scenario in enumerate(members):
        steps = scenario.steps if scenario is not None else ()
        keys = watch_keys(scenario) if scenario is not None else [k for k in group.watches if k != "alarm"]
        batches[i].watches = {key: _make_watch(key, steps, fleet, i, group.seed, watched) for key in keys}
        if group.mode == "softsensor":
            if _KIT is None:
                raise RuntimeError("a soft-sensor group needs the guard kit (init_worker)")
            batches[i].watches["model"] = ModelWatch(fleet, i, steps, _KIT)
        suppress = [s for s in steps if s.primitive == "alarm_suppress"]
        if suppress or (scenario is None and "alarm" in group.watches):
            batches[i].alarm = AlarmAudit(suppress)
    recipe = recipe_setpoints()
    spec = {tag: TAGS_BY_NAME[sp].validated for tag, sp in _SPEC.items()}
    rows: list[dict[str, np.ndarray]] = []
    while not fleet.finished:
        t_next = fleet.time_h + fleet.sample_time_h
        active = fleet.active
        for i, b in enumerate(batches):
            if not active[i]:
                continue
            for watch in b.watches.values():
                watch.before_step(t_next)
            gate = b.watches.get("gateway")
            for attack in b.setpoints:
                if gate is not None and gate.allowed.get(attack.tag) is False:
                    continue  # the gateway refused the write: the controller keeps the recipe value
                fleet.write_setpoint(i, attack.tag, attack.setpoint_at(t_next, recipe[attack.tag]))
            for step in b.gains:
                end = step.at_h + step.duration_h if step.duration_h is not None else math.inf
                on = step.at_h <= t_next < end
                fleet.set_controller_gain(
                    i, str(step.params["loop"]), float(step.params["gain_factor"]) if on else 1.0
                )
        row = fleet.step()
        rows.append(row)
        truth = fleet.true_states()
        t = fleet.time_h
        for i, b in enumerate(batches):
            if not active[i]:
                continue
            b.rows += 1
            if any(r is not None and not (r[0] <= truth[tag][i] <= r[1]) for tag, r in spec.items()):
                b.out_of_spec += 1
            if b.watches:
                sample = {name: float(values[i]) for name, values in row.items()}
                for key, watch in b.watches.items():
                    watch.observe(t, row if key == "model" else sample)
    truth = fleet.true_states()
    for b in batches:
        for watch in b.watches.values():
            watch.close()
    stops = [math.inf] + [scoring_stop_h(s) for s in group.scenarios]
    scored = _score_process(*_stretches(rows, batches, stops)) if group.mode == "true" else [None] * n
    results = []
    for i, b in enumerate(batches):
        findings: list[tuple[float, str]] = []
        episodes = 0
        process: list[tuple[float, str, str]] = []
        outcome = scored[i]
        if outcome is not None:
            process, episodes = outcome
            findings += [(t, d) for t, d, _ in process]
        impact: dict[str, Any] = {}
        watch_findings: dict[str, list[tuple[float, str]]] = {}
        for key, watch in b.watches.items():
            watch_findings[key] = list(watch.findings)
            findings += watch.findings
            impact.update(watch.impact)
        if b.alarm is not None:
            b.alarm.audit(process, b.rows * SAMPLE_H)
            watch_findings["alarm"] = list(b.alarm.findings)
            findings += b.alarm.findings
            impact.update(b.alarm.impact)
        results.append(
            {
                "key": b.key,
                "seed": group.seed,
                "mode": group.mode,
                "duration_h": group.duration_h,
                "hours": b.rows * SAMPLE_H,
                "episodes": episodes,
                "findings": sorted(findings),
                "watch_findings": watch_findings,
                "titre_g_per_l": float(truth["penicillin_g_per_l"][i]),
                "harvest_kg": float(truth["penicillin_g_per_l"][i] * truth["volume_l"][i] / 1000.0),
                "minutes_out_of_spec": b.out_of_spec * SAMPLE_H * 60.0,
                "platform_impact": impact,
            }
        )
    return results


def scoring_stop_h(scenario: Scenario) -> float:
    """Until when a batch of ``scenario`` is scored: its last step's end plus its longest detection
    horizon (a Finding after that is not a detection of the scenario), or the batch's end."""
    horizon = max((e.within_h for e in scenario.expected), default=2.0)
    ends = [s.at_h + s.duration_h if s.duration_h is not None else math.inf for s in scenario.steps]
    return max(ends) + horizon


def _hidden(b: _Batch) -> list[SetpointChange]:
    gate = b.watches.get("gateway")
    return [a for a in b.setpoints if a.hidden and (gate is None or gate.allowed.get(a.tag) is not False)]


def _published(
    rows: Sequence[dict[str, np.ndarray]], i: int, b: _Batch, start: int = 0, stop_h: float = math.inf
) -> list[dict[str, float]]:
    """Batch ``i``'s published samples from ``start`` up to batch time ``stop_h``: view-path
    primitives applied in order, hidden setpoints shown at their recipe value."""
    out = []
    hidden = _hidden(b)
    recipe = recipe_setpoints()
    for row in rows[start : b.rows]:
        values = {name: float(v[i]) for name, v in row.items()}
        if not b.view and values["batch_time_h"] > stop_h + 1e-9:
            break  # the fleet's batch time only grows; a view primitive could change it: filtered below
        for attack in hidden:
            values[attack.tag] = recipe[attack.tag]
        sample = apply_attacks(b.view, values["batch_time_h"], values) if b.view else values
        if sample["batch_time_h"] <= stop_h + 1e-9:
            out.append(sample)
    return out


def _same(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    for key, x in a.items():
        y = b.get(key, math.nan)
        if x != y and not (math.isnan(x) and math.isnan(y)):
            return False
    return True


def _fleet_prefixes(rows: Sequence[dict[str, np.ndarray]], lengths: Sequence[int]) -> list[int]:
    """Per fleet batch: how many leading samples equal batch 0's in every published value (NaN equal
    to NaN), compared on the fleet's arrays (what ``_same`` does per sample, for every batch at once)."""
    n = len(lengths)
    if not rows or n < 2:
        return [0] * n
    differs = np.zeros((len(rows), n), dtype=bool)
    for name in rows[0]:
        m = np.array([row[name] for row in rows], dtype=np.float64)
        first = m[:, :1]
        differs |= (m != first) & ~(np.isnan(m) & np.isnan(first))
    out = []
    for i, length in enumerate(lengths):
        limit = min(lengths[0], length)
        hits = np.flatnonzero(differs[:limit, i])
        out.append(int(hits[0]) if hits.size else limit)
    return out


def _stretches(
    rows: Sequence[dict[str, np.ndarray]], batches: Sequence[_Batch], stops_h: Sequence[float]
) -> tuple[list[dict[str, float]], list[tuple[int, list[dict[str, float]]]]]:
    """The clean batch's published samples, and per attacked batch its measured prefix (the first
    sample that differs from the clean batch's) with its published samples from there to its
    scoring stop. A batch published as the fleet stepped it (no view-path primitive, no hidden
    setpoint) is compared on the fleet's arrays and only its scored stretch is built; the others
    are built whole and compared sample by sample (ADR 0310)."""
    clean = _published(rows, 0, batches[0])
    fleet = _fleet_prefixes(rows, [b.rows for b in batches]) if _FLEET_PREFIX else None
    out = []
    for i, (b, stop) in enumerate(zip(batches[1:], stops_h[1:], strict=True), start=1):
        if fleet is not None and not b.view and not _hidden(b):
            p = fleet[i]
            out.append((p, _published(rows, i, b, p, stop)))
            continue
        attacked = _published(rows, i, b)
        p = 0
        limit = min(len(clean), len(attacked))
        while p < limit and _same(clean[p], attacked[p]):
            p += 1
        out.append((p, [x for x in attacked[p:] if x["batch_time_h"] <= stop + 1e-9]))
    return clean, out


def _engine() -> tuple[Engine, list[Any], list[bool]]:
    findings: list[Any] = []
    engine = Engine(_DETECTORS, findings.append, clock=SimClock(_START))
    engine.start_batch("campaign")
    return engine, findings, []


def _push(
    state: tuple[Engine, list[Any], list[bool]],
    samples: Sequence[Mapping[str, float]],
    *,
    block: bool | None = None,
) -> None:
    """Score ``samples`` in order, appending per sample whether any alarm is confirmed."""
    engine, _, flags = state
    if not samples:
        return
    if _BLOCK if block is None else block:
        flags.extend(engine.push_block(samples).alarmed.tolist())
        return
    for sample in samples:
        flags.append(bool(engine.push_sample(sample).confirmed))


def _result(state: tuple[Engine, list[Any], list[bool]]) -> tuple[list[tuple[float, str, str]], int]:
    _, findings, flags = state
    process = [(f.batch_time_h, f.detector, f.tags[0] if f.tags else "") for f in findings]
    return process, len(alarm_episodes(flags))


def _score_process(
    clean: Sequence[Mapping[str, float]], attacked: Sequence[tuple[int, Sequence[Mapping[str, float]]]]
) -> list[tuple[list[tuple[float, str, str]], int] | None]:
    """Score the clean batch fully and each attacked stretch resumed from the clean batch's engine
    at the stretch's prefix length."""
    wanted = sorted({p for p, _ in attacked})
    snapshots: dict[int, bytes] = {}
    state = _engine()
    done = 0
    for p in wanted:
        _push(state, clean[done:p])
        done = p
        snapshots[p] = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    _push(state, clean[done:])
    results: list[tuple[list[tuple[float, str, str]], int] | None] = [_result(state)]
    for p, stretch in attacked:
        resumed: tuple[Engine, list[Any], list[bool]] = pickle.loads(snapshots[p])  # noqa: S301 - our own bytes
        _push(resumed, stretch)
        results.append(_result(resumed))
    return results
