"""In-loop ramps: how much of the attack reaches the published tags, against what no model explains.

    nice .venv/bin/python -m benchmarks.detect_inloop_snr [--batches 10] [--json]

Training seeds only (10000+, the twin bench's fit seeds; nothing here looks at test seeds 30000+).
The twin bench's in-loop ramp (0.03 K/h on temperature, 0.006 pH/h on pH, 100-140 h) and geometric
attack (2 x bias x 0.9^(end - t)) are run in the loop (``InLoopPlant``): the controller holds the
*measured* value at its setpoint, the true value drifts, and the only published trace is the
manipulated variable (cooling water, base flow) and what the process physics make of it.

Per batch the same seed is simulated several times (counterfactuals, possible only in a simulator):

- clean and attacked: the paired difference of a channel is the attack's **signal** with every
  disturbance and every noise draw identical, an upper bound for any detector;
- clean with an unmeasured disturbance of the twin removed (coolant inlet temperature, or the
  seven others, for the temperature loop; titrant concentration, or all eight, for pH): the paired
  difference is the part of the channel that disturbance causes, which no model of the published
  tags can remove because the disturbance is not published (**noise floor**).

Channels: the manipulated variable itself; the tracking error; for pH the charge balance of the
twin's own pH equation solved for the acid production it implies from the published pH, dosing and
feeds (``charge_demand``, in litres per hour of base); for temperature the twin's heat balance solved
for the heat of reaction, with the coolant inlet temperature taken from the simulator as if it
were measured (``heat_demand``, kJ/h: a what-if for a transmitter the plant does not have).
Windows are 2 h means (the goal's time to detect); noise is the robust standard deviation
(1.4826 x MAD) of the change between consecutive 2 h means after 30 h (a detector compares the
window with what came before); for the tracking error
(measurement - setpoint, whose clean reference is known: zero) it is the robust sd of the 2 h
means. ``snr_2h`` = median |signal in the first 2 h| / noise. Detecting 95 % of attacks within 2 h
at <= 0.5 false-alarm episodes per 100 batch-hours needs roughly snr >= 4 (one-sided 1 % per
2 h test: 2.3 sd, plus 1.6 sd for 95 % power).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any
from unittest import mock

import numpy as np

import aseptic.twin._plant as plant_module
from aseptic.campaign import Attack, Geometric, InLoopPlant, Ramp
from aseptic.twin import _kinetics as kin
from aseptic.twin._variation import BatchDraw, draw_batch

TRAIN_SEED = 10_000
START_H, ATTACK_H = 100.0, 40.0


# The twin bench's sizes (aseptic.bench._twin_scenarios): ramp slope per h, geometric end offset.
@dataclasses.dataclass(frozen=True)
class Loop:
    mv: str  # the manipulated variable the controller moves
    slope: float  # ramp, per h
    end: float  # geometric offset at the attack's end (2 x the bias)
    parity: int  # batch index parity the bench attacks this loop on


LOOPS = {
    "temperature_k": Loop("cooling_water_l_per_h", 0.03, 1.2, 0),
    "ph": Loop("base_flow_l_per_h", 0.006, 0.3, 1),
}
KINDS = ("ramp", "geometric")


def _attack(kind: str, tag: str, loop: Loop) -> list[Attack]:
    if kind == "ramp":
        return [Ramp(tag, START_H, ATTACK_H, loop.slope)]
    return [Geometric(tag, START_H, ATTACK_H, offset_end=loop.end, alpha_per_h=0.9)]


WINDOWS = ((0, 2), (2, 4), (4, 8), (8, 16), (16, 24), (24, 40))
# Unmeasured disturbance columns of the twin (aseptic.twin._variation): index into params[:8].
COUNTERFACTUALS = {
    "temperature_k": {
        "coolant inlet temperature": (kin.T_CIN,),
        "the seven others (coolant inlet measured)": tuple(c for c in range(8) if c != kin.T_CIN),
    },
    "ph": {"titrant concentration": (kin.ABC,), "all eight disturbances": tuple(range(8))},
}
# The twin's charge balance (aseptic.twin._kinetics._ph_rate): constants of the reference model.
GAMMA2, ABC_NOMINAL, DT_PH, KW = 2.5e-11, 0.033, 0.01, 1e-14
REFERENCE_VOLUME_L = 80_000.0

Series = dict[str, np.ndarray]


def simulate(
    seed: int, attacks: Sequence[Attack], zero: tuple[int, ...] = (), *, duration_h: float | None = None
) -> Series:
    """One in-loop batch as arrays of its published tags; ``zero``: disturbance columns removed.

    Also ``HIDDEN_COOLANT``: the coolant inlet temperature the batch ran with (not a published tag:
    it stands in for a transmitter the plant does not have, for the heat balance's what-if).
    """
    drawn: list[BatchDraw] = []

    def draw(*args: Any, **kwargs: Any) -> BatchDraw:
        d = draw_batch(*args, **kwargs)
        dist = d.disturbances.copy()
        dist[:, list(zero)] = 0.0
        drawn.append(dataclasses.replace(d, disturbances=dist))
        return drawn[-1]

    with mock.patch.object(plant_module, "draw_batch", draw):
        plant = InLoopPlant(seed, list(attacks), paa_control="true", duration_h=duration_h)
        rows = []
        while not plant.finished:
            rows.append(plant.step())
    out = {name: np.array([r[name] for r in rows]) for name in rows[0]}
    d = drawn[0]
    out[HIDDEN_COOLANT] = d.params[kin.T_CIN] + d.disturbances[: len(rows), kin.T_CIN]
    return out


HIDDEN_COOLANT = "coolant_inlet_k (hidden)"


def heat_demand(d: Series) -> np.ndarray:
    """The heat of reaction the twin's heat balance implies at each sample, in kJ/h, *if* the coolant
    inlet temperature were measured (``HIDDEN_COOLANT``): ``rho V cp dT/dt`` minus every other term
    of the twin's balance (feeds, evaporation, agitation, coil cooling and heating, ambient) from
    the published temperature, flows, volume, weight and agitator power."""
    temp, vol = d["temperature_k"], d["volume_l"]
    window = np.ones(25) / 25.0  # the broth density from load cell and level, smoothed over 5 h
    rho = np.convolve(1000.0 * d["weight_kg"] / vol, window, mode="same")
    rho_feed = 0.6 * kin.RHO_SUGAR + 0.4 * 1000.0  # 600 g/L sugar feed
    f_evp = vol * kin.ALPHA_EVP * (np.exp(2.5 * (temp - kin.T_0) / (kin.T_V - kin.T_0)) - 1.0)
    other = (
        d["sugar_feed_l_per_h"] * rho_feed * kin.C_PS * (kin.T_F - temp) / 1000.0
        + d["water_feed_l_per_h"] * 1000.0 * kin.C_PW * (kin.T_W - temp) / 1000.0
        - f_evp * rho * kin.C_PW / 1000.0
        - kin.DH_EVAP * f_evp
        + d["agitator_power_kw"]
        - _coil(d["cooling_water_l_per_h"], temp, d[HIDDEN_COOLANT], rho)
        - _coil(d["heating_water_l_per_h"], temp, np.full(temp.size, kin.T_H), rho)
        - kin.U_AMB * kin.A_COIL * (temp - kin.T_AIR)
    )
    capacity = vol / 1000.0 * kin.C_PW * rho
    out = np.full(temp.size, np.nan)
    out[1:] = capacity[:-1] * np.diff(temp) / np.diff(d["batch_time_h"]) - other[1:]
    return out


def _coil(flow: np.ndarray, temp: np.ndarray, inlet: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """The twin's coil heat transfer (``_kinetics._coil_heat``), vectorised."""
    f = np.maximum(flow, 0.0)
    den = f / 1000.0 + kin.ALPHA_1 * (f / 1000.0) ** kin.BETA_T * rho * kin.C_PS / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        heat = (kin.ALPHA_1 / 1000.0) * f ** (kin.BETA_T + 1.0) * (temp - inlet) / den
    result: np.ndarray = np.where(f > 0.0, heat, 0.0)
    return result


def charge_demand(d: Series) -> np.ndarray:
    """The acid production the twin's charge balance implies at each sample, in L/h of base.

    ``d[H+]/dt = gamma1 acid + gamma2 F + (h_dosed - h)`` (the twin's pH equation) solved for the
    acid term with the published pH, volume, dosing and feeds (the discharge leaves: negative).
    """
    h = 10.0 ** -d["ph"]
    vol = d["volume_l"]
    fa, fb = d["acid_flow_l_per_h"], d["base_flow_l_per_h"]
    feeds = d["sugar_feed_l_per_h"] + d["oil_feed_l_per_h"] + d["water_feed_l_per_h"]
    f_ph = feeds + fa + fb - d["discharge_kg_per_h"]
    net = h - KW / h
    # The flows published at sample k acted over (k-1, k].
    dosed = (net[:-1] * vol[:-1] + ABC_NOMINAL * (fa[1:] - fb[1:]) * DT_PH) / (
        vol[:-1] + (fa[1:] + fb[1:]) * DT_PH
    )
    h_dosed = 0.5 * (dosed + np.sqrt(dosed * dosed + 4.0 * KW))
    step_h = np.diff(d["batch_time_h"])
    out = np.full(h.size, np.nan)
    out[1:] = np.diff(h) / step_h - GAMMA2 * f_ph[1:] - (h_dosed - h[:-1])
    scale: np.ndarray = out * REFERENCE_VOLUME_L / (ABC_NOMINAL * DT_PH)
    return scale


def _mean(t: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    sel = (t > lo) & (t <= hi) & np.isfinite(y)
    return float(y[sel].mean()) if sel.any() else float("nan")


def _change_sd(t: np.ndarray, y: np.ndarray) -> float:
    """Robust sd of the change between consecutive 2 h means after 30 h."""
    means = np.array([_mean(t, y, x, x + 2.0) for x in np.arange(30.0, float(t.max()) - 2.0, 2.0)])
    change = np.diff(means[np.isfinite(means)])
    return float(1.4826 * np.median(np.abs(change - np.median(change))))


def _level_sd(t: np.ndarray, y: np.ndarray) -> float:
    """Robust sd of the 2 h means after 30 h (for a channel whose clean reference is known: 0)."""
    means = np.array([_mean(t, y, x, x + 2.0) for x in np.arange(30.0, float(t.max()) - 2.0, 2.0)])
    means = means[np.isfinite(means)]
    return float(1.4826 * np.median(np.abs(means - np.median(means))))


def _spread(name: str, t: np.ndarray, y: np.ndarray) -> float:
    return _level_sd(t, y) if name.endswith(TRACKING) else _change_sd(t, y)


TRACKING = " - setpoint (tracking error)"
SETPOINT = {"temperature_k": "temperature_sp_k", "ph": "ph_sp"}


def _channels(tag: str, d: Series) -> dict[str, np.ndarray]:
    out = {LOOPS[tag].mv: d[LOOPS[tag].mv], tag + TRACKING: d[tag] - d[SETPOINT[tag]]}
    if tag == "ph":
        out["charge balance demand"] = charge_demand(d)
    else:
        out["heat balance demand, coolant inlet known (what-if)"] = heat_demand(d)
    return out


def measure(batches: int, progress: Callable[[str], None]) -> dict[str, Any]:
    """Signal and noise per loop and channel over ``batches`` training seeds (parity as the bench)."""
    report: dict[str, Any] = {"seeds": [TRAIN_SEED, TRAIN_SEED + batches - 1], "loops": {}}
    for tag, spec in LOOPS.items():
        seeds = [TRAIN_SEED + i for i in range(batches) if i % 2 == spec.parity]
        signal: dict[str, dict[str, list[list[float]]]] = {}
        noise: dict[str, dict[str, list[float]]] = {}
        injected: dict[str, list[float]] = {k: [] for k in KINDS}
        for seed in seeds:
            progress(f"{tag} seed {seed}")
            clean = simulate(seed, [])
            t = clean["batch_time_h"]
            clean_ch = _channels(tag, clean)
            for kind in KINDS:
                hit = simulate(seed, _attack(kind, tag, spec))
                n = min(t.size, hit["batch_time_h"].size)
                for name, y in _channels(tag, hit).items():
                    diff = y[:n] - clean_ch[name][:n]
                    row = [_mean(t[:n], diff, START_H + a, START_H + b) for a, b in WINDOWS]
                    signal.setdefault(kind, {}).setdefault(name, []).append(row)
                # The offset the attack adds to the measurement 1 h in (the true value moves the
                # other way).
                offset = spec.slope * 1.0 if kind == "ramp" else spec.end * 0.9**39.0
                injected[kind].append(offset)
            for name, y in clean_ch.items():
                noise.setdefault("clean (model-free change detector)", {}).setdefault(name, []).append(
                    _spread(name, t, y)
                )
            for label, cols in COUNTERFACTUALS[tag].items():
                quiet = simulate(seed, [], zero=cols)
                n = min(t.size, quiet["batch_time_h"].size)
                for name, y in _channels(tag, quiet).items():
                    noise.setdefault(f"{label} (unmeasured)", {}).setdefault(name, []).append(
                        _spread(name, t[:n], clean_ch[name][:n] - y[:n])
                    )
        loop: dict[str, Any] = {"seeds": seeds, "windows_h": [list(w) for w in WINDOWS], "channels": {}}
        for name in signal["ramp"]:
            entry: dict[str, Any] = {"signal": {}, "noise": {}, "snr_2h": {}}
            for kind in KINDS:
                rows = np.array(signal[kind][name])
                entry["signal"][kind] = [round(float(v), 4) for v in np.median(rows, axis=0)]
            for label, values in noise.items():
                if name in values:
                    entry["noise"][label] = round(statistics.median(values[name]), 5)
            for kind in KINDS:
                first = abs(float(np.median(np.array(signal[kind][name])[:, 0])))
                entry["snr_2h"][kind] = {
                    label: round(first / sd, 2) if sd > 0 else None for label, sd in entry["noise"].items()
                }
            loop["channels"][name] = entry
        loop["injected_offset_at_1h"] = {k: round(statistics.median(v), 4) for k, v in injected.items()}
        report["loops"][tag] = loop
    return report


def _print(report: dict[str, Any]) -> None:
    first, last = report["seeds"]
    print(f"training seeds {first}-{last}; signal: paired attacked - clean, 2 h means")
    for tag, loop in report["loops"].items():
        print(f"\n{tag} (seeds {loop['seeds']}), injected offset at 1 h: {loop['injected_offset_at_1h']}")
        for name, entry in loop["channels"].items():
            print(f"  {name}")
            heads = " ".join(f"{a}-{b}h" for a, b in loop["windows_h"])
            for kind, row in entry["signal"].items():
                print(f"    signal {kind:9s} [{heads}]: {row}")
            for label, sd in entry["noise"].items():
                snr = {kind: entry["snr_2h"][kind][label] for kind in entry["snr_2h"]}
                print(f"    noise  {label}: {sd}  -> snr_2h {snr}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10, help="training seeds 10000.. (half per loop)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.batches < 2:
        parser.error("--batches must be at least 2 (one seed per loop)")
    t0 = time.perf_counter()
    report = measure(args.batches, lambda msg: print(msg, file=sys.stderr, flush=True))
    report["elapsed_s"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        _print(report)
        print(f"\n{report['elapsed_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
