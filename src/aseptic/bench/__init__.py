"""External benchmarks: Tennessee Eastman (TEP) and BATADAL, under their published protocols.

    report = run_tep(Path("../shared/data/tep"), Path("out/tep"))
    report = run_batadal(Path("../shared/data/batadal"), Path("out/batadal"))

    report = run_twin_bench(batches, out)   # aseptic bench twin: docs/bench-twin.md
    detectors = fit_detectors(train_batches)  # the twin bench's detector set (the campaign uses it)

See docs/bench.md for the protocols and docs/adr/0170-tabular-detectors-and-benchmarks.md for why.
"""

from aseptic.bench._batadal import (
    BatadalReport,
    BatadalTable,
    batadal_ensemble,
    load_batadal_csv,
    run_batadal,
)
from aseptic.bench._metrics import BatadalScore, attack_events, batadal_score, flag_rate
from aseptic.bench._tep import TEP_COLUMNS, TEP_FAULTS, TepData, TepReport, load_tep, run_tep, tep_ensemble
from aseptic.bench._twin import GROUPS, PAA_CONTROL, TRAIN_SEED, fit_detectors, run_twin_bench

__all__ = [
    "GROUPS",
    "PAA_CONTROL",
    "TEP_COLUMNS",
    "TEP_FAULTS",
    "TRAIN_SEED",
    "BatadalReport",
    "BatadalScore",
    "BatadalTable",
    "TepData",
    "TepReport",
    "attack_events",
    "batadal_ensemble",
    "batadal_score",
    "fit_detectors",
    "flag_rate",
    "load_batadal_csv",
    "load_tep",
    "run_batadal",
    "run_tep",
    "run_twin_bench",
    "tep_ensemble",
]
