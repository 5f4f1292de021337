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

from collections.abc import Sequence

import numpy as np

from aseptic.config import DetectSettings
from aseptic.detect._align import cap_z
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
        proj = project_one(model.pca, cap_z(z))
        t2_name, spe_name = f"{self._name}.t2", f"{self._name}.spe"
        ratio = np.abs(z) / model.z_limit
        ratio = np.where(np.isfinite(ratio), ratio, 0.0)
        per_tag = Score(f"{self._name}.tag", float(ratio.max()), 1.0, contribution_shares(model.tags, ratio))
        if proj is None:
            return Score(t2_name, 0.0, model.t2_limit), Score(spe_name, 0.0, model.spe_limit), per_tag
        return (
            Score(t2_name, proj.t2, model.t2_limit, contribution_shares(model.tags, proj.t2_contributions)),
            Score(
                spe_name, proj.spe, model.spe_limit, contribution_shares(model.tags, proj.spe_contributions)
            ),
            per_tag,
        )


def contribution_shares(tags: Sequence[str], contributions: FloatArray) -> tuple[tuple[str, float], ...]:
    """(tag, share) pairs from raw contributions: negatives and NaN count as 0, largest share first."""
    c = np.where(np.isfinite(contributions), np.maximum(contributions, 0.0), 0.0)
    total = float(c.sum())
    if total <= 0:
        return ()
    order = sorted(range(len(tags)), key=lambda j: (-c[j], tags[j]))
    return tuple((tags[j], float(c[j] / total)) for j in order if c[j] > 0)
