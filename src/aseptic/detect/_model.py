"""The trained batch model (alignment, PCA, limits) and how it is fitted with honest limits.

``fit_model`` fits the alignment and the PCA on every training batch, then sets every limit on
batches held out of fitting: the batches are split (seeded) into folds; for each fold the
alignment and a PCA with the same number of components are fitted on the *other* batches and the
held-out batches are scored. A limit set on the training batches themselves would be too tight,
because a model fits its own training noise.

The detector's per-sample false-alarm rate alpha (``DetectSettings.false_alarm_rate``) is shared
by its three statistics: T2 and SPE limits are the (1 - alpha/3) quantiles of the held-out
statistics, and each of the p per-tag |z| limits the (1 - alpha/(3p)) quantile (Bonferroni). The
CUSUM thresholds are set on the held-out per-tag innovations for ``cusum_arl0_h``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aseptic.config import DetectSettings
from aseptic.detect._align import Alignment, cap_z, fit_alignment, recipe_tags, recipe_tolerance, sample_step
from aseptic.detect._detector import Batch, FloatArray, batch_matrix, online_tags
from aseptic.detect._limits import calibrate_cusum_h, empirical_limit, ewma_innovations, fit_ewma_lambda
from aseptic.detect._pca import Pca, fit_pca, hotelling_limit, jackson_mudholkar_limit, project_rows
from aseptic.errors import InputError

__all__ = ["STATISTICS_PER_DETECTOR", "BatchModel", "fit_model"]

MAX_FOLDS = 10
# A training batch with a tag beyond UPSET_Z held-out sds for UPSET_RUN samples (2 h) is an upset.
UPSET_Z = 10.0
UPSET_RUN = 10
MAX_UPSET_SHARE = 0.25
# T2, SPE and the per-tag |z| limit share the MSPC detector's false-alarm rate.
STATISTICS_PER_DETECTOR = 3
# Innovation scales (in standardised units) never fall below this.
SCALE_FLOOR = 1e-3

Folds = list[tuple[list[int], list[int]]]


@dataclass(frozen=True)
class BatchModel:
    """Everything a detector needs at run time; saved and loaded by ``save_model``/``load_model``."""

    tags: tuple[str, ...]
    alignment: Alignment
    recipe: Alignment  # recipe-driven tags: per-slice recipe value; spread = allowed tolerance
    pca: Pca
    z_limit: FloatArray  # per tag: limit on |z| (aligned, standardised deviation)
    t2_limit: float
    spe_limit: float
    t2_limit_theory: float
    spe_limit_theory: float
    drift_lambda: FloatArray  # per tag: EWMA weight predicting z one sample ahead
    drift_scale: FloatArray  # per tag: robust sd of the innovation (the CUSUM's input)
    cusum_k: float
    cusum_h: FloatArray  # per tag
    false_alarm_rate: float
    sample_step_h: float
    training_batches: int  # used for fitting
    excluded_batches: int  # set aside as process upsets (see _upset_batches)
    training_samples: int
    seed: int

    @property
    def aligned(self) -> bool:
        """Batch-time aligned (True) or the static, non-batch-aware baseline (False)."""
        return bool(np.isfinite(self.alignment.step_h))


def fit_model(
    batches: Sequence[Batch],
    settings: DetectSettings | None = None,
    *,
    aligned: bool = True,
    seed: int = 0,
) -> BatchModel:
    """Fit a batch model on clean batches with limits calibrated on held-out batches.

    ``settings`` gives the false-alarm rate, explained variance, CUSUM k and in-control run length
    and the persistence rule (defaults: ``DetectSettings()``). ``aligned=False`` fits the static,
    non-batch-aware baseline. ``seed`` fixes the fold assignment; the fit is deterministic.

    Raises:
        InputError: fewer than 3 batches (one must be held out of a fit of at least two), empty or
            unordered batches, or fewer than 2 online tags that vary between batches.
    """
    cfg = settings or DetectSettings()
    if len(batches) < 3:
        raise InputError(
            f"detector training needs at least 3 clean batches (got {len(batches)})",
            hint="limits are calibrated on batches held out of fitting; simulate more batches",
        )
    online = online_tags(batches)
    data = [batch_matrix(b, online) for b in batches]
    times = [t for t, _ in data]
    step_h = sample_step(times)
    full = fit_alignment(times, [x for _, x in data], online, aligned=aligned)
    fixed = recipe_tags(full, times, [x for _, x in data])
    tags = tuple(t for t in online if t not in fixed)
    if len(tags) < 2:
        raise InputError(f"MSPC needs at least 2 tags that vary between batches (got {list(tags)})")
    keep = [online.index(t) for t in tags]
    values = [x[:, keep] for _, x in data]
    upset = _upset_batches(times, values, tags, aligned, seed)
    times = [t for i, t in enumerate(times) if i not in upset]
    values = [x for i, x in enumerate(values) if i not in upset]
    alignment = fit_alignment(times, values, tags, aligned=aligned)
    z_all = cap_z(np.concatenate([alignment.standardise(t, x) for t, x in zip(times, values, strict=True)]))
    pca = fit_pca(z_all, cfg.explained_variance)

    folds = _folds(len(times), seed)
    fold_alignments = [
        fit_alignment([times[i] for i in train], [values[i] for i in train], tags, aligned=aligned)
        for train, _ in folds
    ]
    held_z = [
        align.standardise(times[i], values[i])
        for align, (_, test) in zip(fold_alignments, folds, strict=True)
        for i in test
    ]
    held_t2, held_spe = _held_out_statistics(times, values, folds, fold_alignments, pca.components)
    alpha = cfg.false_alarm_rate / STATISTICS_PER_DETECTOR
    z_limit = np.nanquantile(np.abs(np.concatenate(held_z)), 1.0 - alpha / len(tags), axis=0, method="higher")

    lam = fit_ewma_lambda([cap_z(z) for z in held_z])
    innovations = [ewma_innovations(cap_z(z), lam) for z in held_z]
    drift_scale = _robust_sd(np.concatenate(innovations))
    cusum_h, _ = calibrate_cusum_h(
        [w / drift_scale for w in innovations],
        k=cfg.cusum_k,
        arl0_h=cfg.cusum_arl0_h,
        step_h=step_h,
        persistence=cfg.persistence_samples,
    )
    # The recipe check shares the batch-time grid (and coverage) of the kept batches: upset batches
    # left out above may have run longer, and the model abstains past what it was trained on.
    recipe = full.select(fixed)
    recipe_mean = recipe.mean[: alignment.slices]
    tolerance = np.tile(
        np.array([recipe_tolerance(t) for t in fixed], dtype=np.float64), (alignment.slices, 1)
    )
    n = int(z_all.shape[0])
    return BatchModel(
        tags=tags,
        alignment=alignment,
        recipe=Alignment(recipe.tags, recipe.step_h, recipe_mean, tolerance, alignment.coverage),
        pca=pca,
        z_limit=np.asarray(z_limit, dtype=np.float64),
        t2_limit=empirical_limit(np.concatenate(held_t2), alpha),
        spe_limit=empirical_limit(np.concatenate(held_spe), alpha),
        t2_limit_theory=hotelling_limit(pca.components, n, alpha),
        spe_limit_theory=jackson_mudholkar_limit(pca.residual_eigenvalues, alpha),
        drift_lambda=lam,
        drift_scale=drift_scale,
        cusum_k=cfg.cusum_k,
        cusum_h=cusum_h,
        false_alarm_rate=cfg.false_alarm_rate,
        sample_step_h=step_h,
        training_batches=len(times),
        excluded_batches=len(upset),
        training_samples=n,
        seed=seed,
    )


def _folds(n: int, seed: int) -> Folds:
    """(training, held-out) batch indices of each fold; seeded assignment, at most MAX_FOLDS folds."""
    folds = min(n, MAX_FOLDS)
    order = np.random.default_rng(seed).permutation(n)
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[order] = np.arange(n) % folds
    return [
        ([i for i in range(n) if fold_of[i] != f], [i for i in range(n) if fold_of[i] == f])
        for f in range(folds)
    ]


def _upset_batches(
    times: list[FloatArray], values: list[FloatArray], tags: tuple[str, ...], aligned: bool, seed: int
) -> set[int]:
    """Training batches with a process upset, to leave out of the reference set.

    MSPC references "golden" batches. A batch where some tag stays more than UPSET_Z held-out
    standard deviations off for UPSET_RUN samples or more (a lost pH loop, a temperature excursion)
    would teach the model that such upsets are normal and inflate every limit. At most
    MAX_UPSET_SHARE of the batches (the worst first) are set aside; the count is kept in the model.
    """
    n = len(times)
    longest: dict[int, int] = {}
    for train, test in _folds(n, seed):
        align = fit_alignment([times[i] for i in train], [values[i] for i in train], tags, aligned=aligned)
        for i in test:
            off = np.abs(align.standardise(times[i], values[i])) > UPSET_Z
            longest[i] = max(_longest_run(off[:, j]) for j in range(off.shape[1]))
    worst = sorted((i for i in longest if longest[i] >= UPSET_RUN), key=lambda i: (-longest[i], i))
    return set(worst[: min(int(MAX_UPSET_SHARE * n), n - 3)])


def _longest_run(flags: npt.NDArray[np.bool_]) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def _held_out_statistics(
    times: list[FloatArray],
    values: list[FloatArray],
    folds: Folds,
    alignments: list[Alignment],
    components: int,
) -> tuple[list[FloatArray], list[FloatArray]]:
    """Per held-out batch: T2 and SPE from a model fitted without that batch's fold."""
    t2: list[FloatArray] = []
    spe: list[FloatArray] = []
    for align, (train, test) in zip(alignments, folds, strict=True):
        z_train = cap_z(np.concatenate([align.standardise(times[i], values[i]) for i in train]))
        pca = fit_pca(z_train, 1.0, components=components)
        for i in test:
            a, b, _ = project_rows(pca, cap_z(align.standardise(times[i], values[i])))
            t2.append(a)
            spe.append(b)
    return t2, spe


def _robust_sd(x: FloatArray) -> FloatArray:
    """Per-column 1.4826 * median absolute value (NaN ignored): an sd that spikes do not inflate."""
    with np.errstate(invalid="ignore"):
        mad = 1.4826 * np.nanmedian(np.abs(x), axis=0)
    return np.where(np.isfinite(mad) & (mad > SCALE_FLOOR), mad, SCALE_FLOOR)
