"""MSPC detector: batch-aware PCA with Hotelling T2 and SPE (Q), limits and per-tag contributions.

The pharma industry's process-analytical standard (Nomikos & MacGregor's batch MSPC, applied
online, one sample at a time): each sample is aligned on batch time, standardised against the
training batches at that batch time, and projected on the principal components of normal
variation. T2 measures how far the sample is *along* normal variation (a process moving in a way
it normally moves, but too far); SPE measures how far it is *off* it (the tags no longer agree with
each other: one sensor against the physics of the others). A third statistic compares each tag's
unclipped |z| with its own limit (one tag far off its trajectory), because T2 and SPE limits are
set by the heaviest-tailed tags. All three are scored every sample; their limits share the
detector's false-alarm rate (see ``fit_model``).
"""

from __future__ import annotations

import numpy as np

from aseptic.config import DetectSettings
from aseptic.detect._align import cap_z
from aseptic.detect._block import SampleBlock, ScoreBlock, contribution_shares, full, matmul_rows, sum_columns
from aseptic.detect._detector import FloatArray, Sample, Score, sample_batch_time, sample_vector
from aseptic.detect._fitted import ModelDetector
from aseptic.detect._model import BatchModel
from aseptic.detect._pca import project_one

__all__ = ["MspcDetector", "contribution_shares"]


class MspcDetector(ModelDetector):
    """Hotelling T2, SPE and per-tag limits; statistics ``<name>.t2``, ``<name>.spe``, ``<name>.tag``.

    ``aligned=False`` gives the static (non-batch-aware) PCA baseline, named ``pca`` by default.
    T2 and SPE look at one sample at a time: there is nothing to reset between batches.
    """

    def __init__(
        self,
        model: BatchModel | None = None,
        *,
        settings: DetectSettings | None = None,
        aligned: bool = True,
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        is_aligned = model.aligned if model is not None else aligned
        default = "mspc" if is_aligned else "pca"
        super().__init__(model, settings=settings, seed=seed, name=name or default, aligned=is_aligned)

    def score_one(self, sample: Sample) -> tuple[Score, Score, Score]:
        """T2, SPE and the per-tag limit statistic of one sample, with per-tag contribution shares.

        A sample with fewer observed model tags than components + 1 scores 0 with no contribution.

        Raises:
            InputError: the sample has no usable ``batch_time_h``.
        """
        model = self.model
        t = sample_batch_time(sample)
        z = model.alignment.standardise(t, sample_vector(sample, model.tags))
        t2, spe, per_tag = self._statistics(z[np.newaxis])
        return t2.score(0), spe.score(0), per_tag.score(0)

    def score_block(self, block: SampleBlock) -> tuple[ScoreBlock, ScoreBlock, ScoreBlock]:
        """``score_one`` of every sample of ``block`` (no state: each row alone), vectorised."""
        model = self.model
        return self._statistics(model.alignment.standardise(block.times, block.matrix(model.tags)))

    def _statistics(self, z: FloatArray) -> tuple[ScoreBlock, ScoreBlock, ScoreBlock]:
        model, pca = self.model, self.model.pca
        m, p = z.shape
        ratio = np.abs(z) / model.z_limit
        ratio = np.where(np.isfinite(ratio), ratio, 0.0)
        per_tag = ScoreBlock(f"{self._name}.tag", ratio.max(axis=1), full(m, 1.0), model.tags, ratio)
        zc = cap_z(z)
        t2, spe = np.zeros(m), np.zeros(m)
        t2_c, spe_c = np.zeros((m, p)), np.zeros((m, p))
        complete = np.isfinite(zc).all(axis=1)
        every = bool(complete.all())
        if every or complete.any():
            # Row-count-independent sums (matmul_rows): a row gives the same bits alone or in a block.
            x = zc if every else zc[complete]
            scores = matmul_rows(x, pca.loadings)
            scaled = scores / pca.eigenvalues
            e = x - matmul_rows(scores, pca.loadings.T)
            if every:
                t2, spe = sum_columns(scores * scaled), sum_columns(e * e)
                t2_c, spe_c = x * matmul_rows(scaled, pca.loadings.T), e * e
            else:
                t2[complete] = sum_columns(scores * scaled)
                spe[complete] = sum_columns(e * e)
                t2_c[complete] = x * matmul_rows(scaled, pca.loadings.T)
                spe_c[complete] = e * e
        for i in np.flatnonzero(~complete):
            proj = project_one(pca, zc[i])
            if proj is not None:
                t2[i], spe[i] = proj.t2, proj.spe
                t2_c[i], spe_c[i] = proj.t2_contributions, proj.spe_contributions
        tags = model.tags
        return (
            ScoreBlock(f"{self._name}.t2", t2, full(m, model.t2_limit), tags, t2_c),
            ScoreBlock(f"{self._name}.spe", spe, full(m, model.spe_limit), tags, spe_c),
            per_tag,
        )
