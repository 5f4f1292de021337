"""benchmarks/detect_inloop_snr.py: the charge balance it reads from the published tags, and its
counterfactual runs (a disturbance removed for one run only)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from aseptic.twin import _kinetics as kin

# benchmarks/ is not a package on the test path (pytest runs with src/ only): load the file.
_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "detect_inloop_snr.py"
_SPEC = importlib.util.spec_from_file_location("detect_inloop_snr", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
snr = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = snr
_SPEC.loader.exec_module(snr)
_change_sd, charge_demand, simulate = snr._change_sd, snr.charge_demand, snr.simulate

SEED, HOURS = 10_001, 30.0


def test_charge_balance_explains_the_base_flow_through_a_discharge() -> None:
    """The pH loop limit-cycles and the recipe's discharge (100-102 h, 4,000 kg/h) upsets it; the acid
    production the twin's charge balance implies from the published pH, dosing and feeds moves less
    than the base flow and does not jump during the discharge. A wrong balance (the discharge's sign,
    the wrong sample of the dosing) does."""
    d = simulate(SEED, [], duration_h=108.0)
    t = d["batch_time_h"]
    demand = charge_demand(d)
    assert np.isnan(demand[0]) and np.isfinite(demand[1:]).all()
    late = t > 30.0
    assert 20.0 < float(np.median(demand[late])) < float(np.median(d["base_flow_l_per_h"][late]))
    assert _change_sd(t, demand) < _change_sd(t, d["base_flow_l_per_h"])
    before = float(np.mean(demand[(t > 96.0) & (t <= 100.0)]))
    during = float(np.mean(demand[(t > 100.0) & (t <= 102.0)]))
    assert d["discharge_kg_per_h"][(t > 100.0) & (t <= 102.0)].min() > 0
    assert abs(during - before) < 5.0


def test_counterfactual_removes_the_disturbance_for_that_run_only() -> None:
    clean = simulate(SEED, [], duration_h=HOURS)
    quiet = simulate(SEED, [], zero=(kin.T_CIN,), duration_h=HOURS)
    again = simulate(SEED, [], duration_h=HOURS)
    assert np.array_equal(clean["cooling_water_l_per_h"], again["cooling_water_l_per_h"])
    assert not np.array_equal(clean["cooling_water_l_per_h"], quiet["cooling_water_l_per_h"])
    assert clean["batch_time_h"].size == quiet["batch_time_h"].size
