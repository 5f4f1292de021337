"""The Tennessee Eastman benchmark (Braatz reference data), run under the standard protocol.

Protocol (enforced by construction, not by convention):

- everything is fitted, and every limit set, on ``d00.dat`` alone (500 normal samples; the file is
  stored transposed, 52 x 500). The limits come from blocks of d00 held out of fitting
  (``Ensemble``), for a stated false-alarm rate;
- the fitted ensemble is frozen; each test file ``dNN_te.dat`` (960 x 52) is scored as one fresh
  causal stream: the flag of sample t depends only on samples 1..t of that file. Nothing is refitted
  and no limit changes per file; the scorer never sees the file name, fault number or sample index;
- the fault starts at sample 161: detection rate = share of flagged samples 161..960; false-alarm
  rate = share flagged on all of d00_te and on samples 1..160 of every file.

Costs are CPU seconds of this process (``time.process_time``: on a shared machine wall time
measures the neighbours). Side by side, in the same run: the anchor baseline (static PCA, 9
components, 99 % limits on the d00 training scores, as in the data README).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aseptic.bench._metrics import flag_rate
from aseptic.detect import (
    AutoencoderDetector,
    DynamicPcaDetector,
    Ensemble,
    EwmaResidualDetector,
    FrozenValueDetector,
    PcaDetector,
    TabularDetector,
    TagPredictorDetector,
)
from aseptic.errors import InputError

__all__ = [
    "TEP_COLUMNS",
    "TEP_FAULTS",
    "TepData",
    "TepReport",
    "load_tep",
    "run_tep",
    "tep_ensemble",
]

TEP_VARIABLES = 52
TEP_TEST_SAMPLES = 960
TEP_FAULT_START = 160  # 0-based index of sample 161
TEP_FAULTS = tuple(range(1, 22))
UNDETECTABLE = (3, 9, 15)
TEP_COLUMNS = tuple([f"XMEAS({i})" for i in range(1, 42)] + [f"XMV({i})" for i in range(1, 12)])
TEP_KINDS = {c: ("actuator" if c.startswith("XMV") else "sensor") for c in TEP_COLUMNS}


@dataclass(frozen=True)
class TepData:
    train: np.ndarray  # d00.dat, samples x 52
    tests: dict[int, np.ndarray]  # NN -> dNN_te.dat, 960 x 52


def _read(path: Path, *, transposed_ok: bool) -> np.ndarray:
    try:
        arr = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except FileNotFoundError:
        raise InputError(
            f"TEP file {path} is missing",
            hint="point --data at the directory holding d00.dat and d00_te.dat..d21_te.dat",
        ) from None
    except ValueError as exc:
        raise InputError(f"TEP file {path} is not a whitespace-separated numeric table: {exc}") from None
    if transposed_ok and arr.shape[0] == TEP_VARIABLES and arr.shape[1] != TEP_VARIABLES:
        arr = arr.T  # d00.dat is stored variables x samples
    if arr.shape[1] != TEP_VARIABLES:
        raise InputError(f"TEP file {path} has {arr.shape[1]} columns, expected {TEP_VARIABLES}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"TEP file {path} has non-finite values")
    return arr


def load_tep(data_dir: Path) -> TepData:
    """Read d00.dat (training) and d00_te.dat..d21_te.dat (test) from ``data_dir``.

    Raises:
        InputError: the directory or a file is missing, or a file has the wrong shape.
    """
    if not data_dir.is_dir():
        raise InputError(f"TEP data directory {data_dir} does not exist")
    train = _read(data_dir / "d00.dat", transposed_ok=True)
    tests: dict[int, np.ndarray] = {}
    for nn in (0, *TEP_FAULTS):
        arr = _read(data_dir / f"d{nn:02d}_te.dat", transposed_ok=False)
        if arr.shape[0] != TEP_TEST_SAMPLES:
            raise InputError(
                f"TEP file d{nn:02d}_te.dat has {arr.shape[0]} samples, expected {TEP_TEST_SAMPLES}"
            )
        tests[nn] = arr
    return TepData(train, tests)


def tep_ensemble(*, seed: int = 0, false_alarm_rate: float = 0.01) -> Ensemble:
    """The ensemble the TEP benchmark runs (fixed before looking at any fault file's score)."""
    detectors: list[TabularDetector] = [
        TagPredictorDetector(alpha=1.0, seed=seed),
        EwmaResidualDetector(lam=0.2, seed=seed),
        DynamicPcaDetector(lags=2, seed=seed),
        AutoencoderDetector(seed=seed),
        FrozenValueDetector(seed=seed),
    ]
    members = [
        "predictor.max",
        "predictor.sumsq",
        "ewma.ewma",
        "dpca.spe",
        "autoencoder.recon",
        "frozen.hold",
    ]
    return Ensemble(detectors, false_alarm_rate=false_alarm_rate, members=members, kinds=TEP_KINDS)


@dataclass(frozen=True)
class MethodResult:
    """Per-fault detection rates and false-alarm rates of one method."""

    name: str
    detection: dict[int, float]
    far_d00: float
    far_first160: float  # over samples 1..160 of all 22 test files

    @property
    def mean21(self) -> float:
        return float(np.mean([self.detection[f] for f in TEP_FAULTS]))

    @property
    def mean18(self) -> float:
        return float(np.mean([self.detection[f] for f in TEP_FAULTS if f not in UNDETECTABLE]))

    def to_dict(self) -> dict[str, object]:
        return {
            "method": self.name,
            "far_d00_te": round(self.far_d00, 4),
            "far_first160": round(self.far_first160, 4),
            "mean_dr_21": round(self.mean21, 4),
            "mean_dr_18": round(self.mean18, 4),
            "detection_rate": {f"IDV({f})": round(v, 4) for f, v in sorted(self.detection.items())},
        }


@dataclass(frozen=True)
class TepReport:
    ensemble: MethodResult
    baselines: tuple[MethodResult, ...]
    train_s: float
    score_s: float
    readings: int  # test samples x variables scored by the ensemble
    held_out_rate: float
    limits: dict[str, float] = field(default_factory=dict)
    flag_files: tuple[Path, ...] = ()

    @property
    def us_per_reading(self) -> float:
        return 1e6 * self.score_s / self.readings

    def to_dict(self) -> dict[str, object]:
        return {
            "benchmark": "tep",
            "ensemble": self.ensemble.to_dict(),
            "baselines": [b.to_dict() for b in self.baselines],
            "train_cpu_s": round(self.train_s, 3),
            "score_cpu_s": round(self.score_s, 3),
            "cpu_us_per_reading": round(self.us_per_reading, 3),
            "held_out_flag_rate": round(self.held_out_rate, 4),
            "limits": {k: round(v, 6) for k, v in self.limits.items()},
            "flag_files": [str(p) for p in self.flag_files],
        }


def _result(name: str, flags: dict[int, np.ndarray]) -> MethodResult:
    detection = {f: flag_rate(flags[f][TEP_FAULT_START:]) for f in TEP_FAULTS}
    first = np.concatenate([flags[nn][:TEP_FAULT_START] for nn in sorted(flags)])
    return MethodResult(name, detection, flag_rate(flags[0]), flag_rate(first))


def _pca_baseline(data: TepData) -> tuple[MethodResult, MethodResult]:
    """The README's anchor: PCA, 9 components, limits at the 99th percentile of training scores."""
    pca = PcaDetector(components=9)
    pca.fit(data.train, TEP_COLUMNS)
    train = pca.score(data.train)
    limit = {s: float(np.quantile(train[s], 0.99)) for s in ("t2", "spe")}
    out = []
    for stat in ("t2", "spe"):
        flags = {nn: pca.score(x)[stat] > limit[stat] for nn, x in data.tests.items()}
        out.append(_result(f"PCA {stat.upper()} (9 PCs, 99% of training)", flags))
    return out[0], out[1]


def run_tep(
    data_dir: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    false_alarm_rate: float = 0.01,
    progress: Callable[[str], None] | None = None,
) -> TepReport:
    """Fit on d00.dat, score every test file as a causal stream, write the flag files, report.

    Raises:
        InputError: missing or malformed data files.
        OSError: the output directory cannot be written.
    """
    data = load_tep(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    ensemble = tep_ensemble(seed=seed, false_alarm_rate=false_alarm_rate)
    say("fitting the ensemble on d00.dat")
    t0 = time.process_time()
    ensemble.fit(data.train, TEP_COLUMNS)
    train_s = time.process_time() - t0
    flags: dict[int, np.ndarray] = {}
    files = []
    score_s = 0.0
    for nn, x in sorted(data.tests.items()):
        say(f"scoring d{nn:02d}_te.dat")
        t0 = time.process_time()
        decision = ensemble.decide(x)  # the scorer sees the samples only
        score_s += time.process_time() - t0
        flags[nn] = decision.flags > 0
        path = out_dir / f"flags_d{nn:02d}_te.csv"
        path.write_text("".join("1\n" if f else "0\n" for f in flags[nn]), encoding="ascii")
        files.append(path)
    t2, spe = _pca_baseline(data)
    readings = sum(x.size for x in data.tests.values())
    return TepReport(
        ensemble=_result("ensemble", flags),
        baselines=(t2, spe),
        train_s=train_s,
        score_s=score_s,
        readings=readings,
        held_out_rate=ensemble.held_out_rate,
        limits=ensemble.limits,
        flag_files=tuple(files),
    )
