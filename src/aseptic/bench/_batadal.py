"""The BATADAL benchmark (C-Town SCADA, Taormina et al. 2018), scored honestly.

- Two ensembles are fitted, and their limits set, on ``dataset03.csv`` (one year of normal
  operation) alone, label column ignored: one on the variables, one on the variables plus their
  hourly differences. Besides the statistical members, both carry two hydraulic consistency
  checks learned on dataset03: the pumps' and valves' level rules (a pump running past its stop
  level) and each tank's mass balance (its level change against the pump and valve flows).
- Three decision settings are then chosen with the partial labels of
  ``dataset04_partial_labels.csv``, as the competitors could: the variant (feature set, and
  whether the level rules with a wider switching spread count: ``VARIANTS``), a multiplier ``c``
  on the ensemble's limit (flag when the ensemble score exceeds c) and a hold of ``h`` hours (a
  flag stays up h hours after the last exceedance; causal). Because they are tuned on labels,
  dataset04 scores are reported **only from time-blocked cross-validation**: dataset04 is cut into
  contiguous blocks; each block is flagged with the settings that maximise S on the *other*
  blocks, and S is computed once over all the held-out flags. The label-free setting (variables
  only, strict rules, c = 1, h = 0: nothing tuned on dataset04) is reported beside it, with a
  PCA-SPE baseline (99th percentile of its dataset03 scores) from the same run. The test file gets
  the procedure with the better of the two honest estimates: the settings tuned on all of
  dataset04 if the cross-validated S is higher, else the label-free setting.
- ``test_unlabelled.csv`` is scored as one causal stream and written as ``predictions_test.csv``
  (``DATETIME,ATT_FLAG``, DATETIME copied verbatim). Its labels are held out: this module never
  reads anything but the three competition files.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aseptic.bench._metrics import BatadalScore, attack_events, batadal_score
from aseptic.detect import (
    ControlRuleDetector,
    Decision,
    DynamicPcaDetector,
    Ensemble,
    EwmaResidualDetector,
    FrozenValueDetector,
    MassBalanceDetector,
    PcaDetector,
    TabularDetector,
    TagPredictorDetector,
)
from aseptic.errors import InputError

__all__ = ["BatadalReport", "BatadalTable", "batadal_ensemble", "load_batadal_csv", "run_batadal"]

LABEL = "ATT_FLAG"
TIME = "DATETIME"
MULTIPLIERS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)
HOLDS_H = (0, 3, 6, 12, 24)
CV_BLOCKS = 4


@dataclass(frozen=True)
class BatadalTable:
    """One BATADAL file: timestamps verbatim, variable names, values, and labels if present."""

    times: tuple[str, ...]
    columns: tuple[str, ...]
    values: np.ndarray
    labels: np.ndarray | None  # bool per row; None when the file has no ATT_FLAG column
    decimals: int  # the most decimal places any value is written with (the file's resolution)


def load_batadal_csv(path: Path, *, labelled: bool) -> BatadalTable:
    """Read a BATADAL CSV (``DATETIME``, variables, optionally ``ATT_FLAG``); names are stripped.

    Raises:
        InputError: missing file, no DATETIME column, a non-numeric value, ragged rows, or (with
            ``labelled``) no ATT_FLAG column or a label other than 0/1.
    """
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise InputError(
            f"BATADAL file {path} is missing",
            hint="point --data at the directory with dataset03.csv, dataset04_partial_labels.csv "
            "and test_unlabelled.csv",
        ) from None
    if not rows:
        raise InputError(f"BATADAL file {path} is empty")
    header = [h.strip() for h in rows[0]]
    if not header or header[0] != TIME:
        raise InputError(f"BATADAL file {path}: first column is {header[:1]}, expected {TIME}")
    has_label = LABEL in header
    if labelled and not has_label:
        raise InputError(f"BATADAL file {path} has no {LABEL} column")
    label_at = header.index(LABEL) if has_label else -1
    columns = tuple(h for i, h in enumerate(header) if i != 0 and i != label_at)
    times: list[str] = []
    values = np.empty((len(rows) - 1, len(columns)))
    labels = np.zeros(len(rows) - 1, dtype=bool)
    decimals = 0
    for r, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise InputError(
                f"BATADAL file {path}, line {r + 2}: {len(row)} fields, header has {len(header)}"
            )
        times.append(row[0])
        try:
            nums = [float(v) for i, v in enumerate(row) if i != 0 and i != label_at]
            if has_label:
                flag = float(row[label_at])
        except ValueError as exc:
            raise InputError(f"BATADAL file {path}, line {r + 2}: not a number ({exc})") from None
        if has_label:
            if flag not in (0.0, 1.0):
                raise InputError(f"BATADAL file {path}, line {r + 2}: {LABEL} is {flag}, expected 0 or 1")
            labels[r] = flag == 1.0
        values[r] = nums
        decimals = max(decimals, *(_decimals(v) for i, v in enumerate(row) if i != 0 and i != label_at))
    if not times:
        raise InputError(f"BATADAL file {path} has no data rows")
    return BatadalTable(tuple(times), columns, values, labels if has_label else None, decimals)


def _decimals(text: str) -> int:
    mantissa = text.strip().lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _kind(column: str) -> str:
    # Pump and valve flows and statuses are what the PLCs command; levels and pressures are sensors.
    return "actuator" if column.startswith(("S_", "F_")) else "sensor"


LOOSE_RULES = "rule_loose"
LOOSE_CONCENTRATION = 0.8


def batadal_ensemble(
    *, columns: Sequence[str] = (), seed: int = 0, false_alarm_rate: float = 0.01
) -> Ensemble:
    """The ensemble the BATADAL benchmark runs (hourly data: EWMA with a day's memory).

    With ``columns`` naming tank levels (``L_*``) and flows (``F_*``), the hydraulic consistency
    members join: the pumps' and valves' level rules (``rule.rule``: rules whose switching levels
    spread at most 0.35 level sd; ``rule_loose.rule``: up to 0.8, a superset, used only by the
    "loose rules" variants, see ``VARIANTS``) and each tank's mass balance (``balance.balance``),
    all learned from the normal data. The MLP autoencoder of the first version is not a member: it
    cost ~90 % of the training time and did not change the cross-validated S (ADR 0270).
    """
    levels = [c for c in columns if c.startswith("L_")]
    flows = [c for c in columns if c.startswith("F_")]
    detectors: list[TabularDetector] = [
        TagPredictorDetector(alpha=1.0, seed=seed),
        EwmaResidualDetector(lam=0.1, seed=seed),
        DynamicPcaDetector(lags=1, seed=seed),
        FrozenValueDetector(seed=seed),
    ]
    members = ["predictor.max", "predictor.sumsq", "ewma.ewma", "dpca.spe", "frozen.hold"]
    if levels:
        detectors.append(ControlRuleDetector(levels=levels, seed=seed))
        detectors.append(
            ControlRuleDetector(
                levels=levels, max_concentration=LOOSE_CONCENTRATION, seed=seed, name=LOOSE_RULES
            )
        )
        members += ["rule.rule", f"{LOOSE_RULES}.rule"]
    if levels and flows:
        detectors.append(MassBalanceDetector(levels=levels, flows=flows, seed=seed))
        members.append("balance.balance")
    return Ensemble(detectors, false_alarm_rate=false_alarm_rate, members=members)


def variant_score(decision: Decision, *, loose_rules: bool) -> np.ndarray:
    """The ensemble score (largest ratio) over the members of one variant: strict or loose rules."""
    drop = "rule.rule" if loose_rules else f"{LOOSE_RULES}.rule"
    keep = [m for m, name in enumerate(decision.members) if name != drop]
    if not keep:
        return np.zeros(decision.ratios.shape[0])
    out: np.ndarray = decision.ratios[:, keep].max(axis=1)
    return out


def hold_flags(exceeds: np.ndarray, hold_h: int) -> np.ndarray:
    """Causal: flagged at t if any exceedance in t - hold_h .. t."""
    out = np.zeros(exceeds.size, dtype=bool)
    last = -(10**9)
    for t, e in enumerate(exceeds):
        if e:
            last = t
        out[t] = t - last <= hold_h
    return out


def _flags(score: np.ndarray, c: float, hold_h: int) -> np.ndarray:
    return hold_flags(score > c, hold_h)


Setting = tuple[str, float, int]  # (feature set, limit multiplier c, hold hours)


def with_differences(x: np.ndarray) -> np.ndarray:
    """The variables and their first differences (causal; the first row's difference is missing).

    Tank levels integrate pump flows: the hourly change of a level is what the flows explain, so a
    spoofed level or a pump switched behind the operator's back breaks a same-hour relation.
    """
    previous = np.vstack([np.full((1, x.shape[1]), np.nan), x[:-1]])
    return np.hstack([x, x - previous])


FEATURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "values": lambda x: x,
    "values+differences": with_differences,
}
# The candidate procedures the CV chooses among: a feature set, and strict or loose level rules.
VARIANTS: dict[str, tuple[str, bool]] = {
    "values": ("values", False),
    "values+differences": ("values+differences", False),
    "values, loose rules": ("values", True),
    "values+differences, loose rules": ("values+differences", True),
}
LABEL_FREE: Setting = ("values", 1.0, 0)


def _best_setting(scores: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray) -> Setting:
    """(features, c, hold) maximising S over ``rows`` (flags computed on the whole stream, scored on rows)."""
    best: tuple[float, Setting] = (-1.0, LABEL_FREE)
    for features, score in scores.items():
        for c in MULTIPLIERS:
            for h in HOLDS_H:
                s = batadal_score(_flags(score, c, h)[rows], labels[rows])
                value = s.s if np.isfinite(s.s) else -1.0
                if value > best[0]:
                    best = (value, (features, c, h))
    return best[1]


@dataclass(frozen=True)
class BatadalReport:
    cv: BatadalScore
    cv_settings: tuple[Setting, ...]
    label_free: BatadalScore
    label_free_differences: BatadalScore
    baseline: BatadalScore
    rules: tuple[str, ...]  # the level rules learned on dataset03, in words
    test_setting: Setting
    test_rows: int
    test_flagged: int
    train_s: float
    score_s: float
    readings: int
    predictions: Path

    @property
    def us_per_reading(self) -> float:
        return 1e6 * self.score_s / self.readings

    def to_dict(self) -> dict[str, object]:
        return {
            "benchmark": "batadal",
            "dataset04_cv": {**self.cv.to_dict(), "fold_settings": [list(s) for s in self.cv_settings]},
            "dataset04_label_free": self.label_free.to_dict(),
            "dataset04_label_free_differences": self.label_free_differences.to_dict(),
            "control_rules": list(self.rules),
            "dataset04_baseline_pca_spe": self.baseline.to_dict(),
            "test": {
                "setting": {
                    "features": self.test_setting[0],
                    "multiplier": self.test_setting[1],
                    "hold_h": self.test_setting[2],
                },
                "rows": self.test_rows,
                "flagged": self.test_flagged,
                "predictions": str(self.predictions),
            },
            "train_cpu_s": round(self.train_s, 3),
            "score_cpu_s": round(self.score_s, 3),
            "cpu_us_per_reading": round(self.us_per_reading, 3),
        }


def _check_columns(table: BatadalTable, expected: Sequence[str], name: str) -> None:
    if tuple(table.columns) != tuple(expected):
        missing = sorted(set(expected) - set(table.columns))
        extra = sorted(set(table.columns) - set(expected))
        raise InputError(
            f"BATADAL {name} has other variables than dataset03.csv (missing {missing}, extra {extra})"
        )


def run_batadal(
    data_dir: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    false_alarm_rate: float = 0.01,
    progress: Callable[[str], None] | None = None,
) -> BatadalReport:
    """Fit on dataset03, cross-validate the decision settings on dataset04, predict the test file.

    Raises:
        InputError: a missing or malformed file, or files with different variables.
        OSError: the output directory cannot be written.
    """
    say = progress or (lambda _msg: None)
    if not data_dir.is_dir():
        raise InputError(f"BATADAL data directory {data_dir} does not exist")
    train = load_batadal_csv(data_dir / "dataset03.csv", labelled=False)
    d04 = load_batadal_csv(data_dir / "dataset04_partial_labels.csv", labelled=True)
    test = load_batadal_csv(data_dir / "test_unlabelled.csv", labelled=False)
    _check_columns(d04, train.columns, "dataset04_partial_labels.csv")
    _check_columns(test, train.columns, "test_unlabelled.csv")
    assert d04.labels is not None  # noqa: S101  (labelled=True guarantees it)
    labels = d04.labels
    if not attack_events(labels):
        raise InputError("dataset04_partial_labels.csv has no labelled attack hour to score against")
    out_dir.mkdir(parents=True, exist_ok=True)
    # dataset03 is written with 8-9 decimals, dataset04 and the test file with 2: quantisation alone
    # (levels and pressures repeating, 0.01 steps on a junction whose sd is 0.006) reads as an
    # anomaly. Train at the resolution the scored files report (a property of the file format,
    # not of any label).
    resolution = min(d04.decimals, test.decimals)
    normal = np.round(train.values, resolution) if train.decimals > resolution else train.values

    score04: dict[str, np.ndarray] = {}
    score_test: dict[str, np.ndarray] = {}
    train_s = score_s = 0.0
    rules: tuple[str, ...] = ()
    for features, transform in FEATURES.items():
        say(f"fitting the ensemble on dataset03.csv ({features})")
        ensemble = batadal_ensemble(columns=train.columns, seed=seed, false_alarm_rate=false_alarm_rate)
        columns = list(train.columns)
        if features != "values":
            columns += [f"{c}.diff" for c in train.columns]
        t0 = time.process_time()
        ensemble.fit(transform(normal), columns)
        train_s += time.process_time() - t0
        for det in ensemble.detectors:
            if isinstance(det, ControlRuleDetector) and features == "values":
                loose = " (loose rules only)" if det.name == LOOSE_RULES else ""
                rules += tuple(f"{r}{loose}" for r in det.describe() if r not in rules)
        say(f"scoring dataset04 and the test file ({features})")
        t0 = time.process_time()
        decided04 = ensemble.decide(transform(d04.values))
        decided_test = ensemble.decide(transform(test.values))
        for variant, (variant_features, loose_rules) in VARIANTS.items():
            if variant_features == features:
                score04[variant] = variant_score(decided04, loose_rules=loose_rules)
                score_test[variant] = variant_score(decided_test, loose_rules=loose_rules)
        score_s += time.process_time() - t0

    n = labels.size
    blocks = np.array_split(np.arange(n), min(CV_BLOCKS, n))
    cv_flags = np.zeros(n, dtype=bool)
    settings: list[Setting] = []
    for k, block in enumerate(blocks):
        others = np.concatenate([b for j, b in enumerate(blocks) if j != k])
        features, c, h = _best_setting(score04, labels, others)
        settings.append((features, c, h))
        cv_flags[block] = _flags(score04[features], c, h)[block]
    cv = batadal_score(cv_flags, labels)
    label_free = batadal_score(_flags(score04[LABEL_FREE[0]], LABEL_FREE[1], LABEL_FREE[2]), labels)
    # Informational only (never used to choose the test procedure): the same c = 1, no hold, on the
    # feature set with differences, whose candidacy was suggested by dataset04 (ADR 0170, 0270).
    label_free_differences = batadal_score(_flags(score04["values+differences"], 1.0, 0), labels)

    pca = PcaDetector(explained_variance=0.9, seed=seed)
    pca.fit(normal, train.columns)
    spe_limit = float(np.quantile(pca.score(normal)["spe"], 0.99))
    baseline = batadal_score(pca.score(d04.values)["spe"] > spe_limit, labels)

    # The test file is flagged by the procedure with the better honest dataset04 estimate: label
    # tuning (settings chosen on all of dataset04) only if its cross-validated S beats the
    # label-free setting's S; otherwise the label-free setting (c = 1, no hold).
    chosen = _best_setting(score04, labels, np.arange(n)) if cv.s > label_free.s else LABEL_FREE
    test_flags = _flags(score_test[chosen[0]], chosen[1], chosen[2])
    path = out_dir / "predictions_test.csv"
    with path.open("w", newline="", encoding="ascii") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([TIME, LABEL])
        for stamp, flag in zip(test.times, test_flags, strict=True):
            writer.writerow([stamp, int(flag)])
    return BatadalReport(
        cv=cv,
        cv_settings=tuple(settings),
        label_free=label_free,
        label_free_differences=label_free_differences,
        baseline=baseline,
        rules=rules,
        test_setting=chosen,
        test_rows=len(test.times),
        test_flagged=int(test_flags.sum()),
        train_s=train_s,
        score_s=score_s,
        readings=int(len(FEATURES) * (d04.values.size + test.values.size)),
        predictions=path,
    )
