"""External benchmarks: Tennessee Eastman (TEP) and BATADAL, under their published protocols.

    report = run_tep(Path("../shared/data/tep"), Path("out/tep"))
    report = run_batadal(Path("../shared/data/batadal"), Path("out/batadal"))

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

__all__ = [
    "TEP_COLUMNS",
    "TEP_FAULTS",
    "BatadalReport",
    "BatadalScore",
    "BatadalTable",
    "TepData",
    "TepReport",
    "attack_events",
    "batadal_ensemble",
    "batadal_score",
    "flag_rate",
    "load_batadal_csv",
    "load_tep",
    "run_batadal",
    "run_tep",
    "tep_ensemble",
]
