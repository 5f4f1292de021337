"""Recipe check: feeds and flows that follow the recipe exactly in every normal batch.

On a fed-batch plant several manipulated flows are pure recipe: the sugar, oil and water feeds,
aeration and the discharges follow the same profile of batch time in every batch (on the twin:
exactly). They have no batch-to-batch variance for PCA to learn, so ``fit_model`` sets them apart
(``BatchModel.recipe``) and this detector watches them: a flow further than its tolerance (0.5 %
of span) from *every* recipe value within +-``slack`` samples of the current batch time (small
timing jitter is normal) is a departure from the recipe, e.g. ATT&CK T0831 Manipulation of
Control or an operator change. The statistic is the largest departure in tolerances; limit 1.
"""

from __future__ import annotations

import numpy as np

from aseptic.config import DetectSettings
from aseptic.detect._detector import Sample, Score, sample_batch_time, sample_vector
from aseptic.detect._fitted import ModelDetector
from aseptic.detect._model import BatchModel
from aseptic.detect._mspc import contribution_shares

__all__ = ["RecipeDetector"]

# Samples of batch-time slack either side (+-0.4 h at 0.2 h sampling).
RECIPE_SLACK = 2


class RecipeDetector(ModelDetector):
    """Departure of recipe-driven flows from the recipe; one statistic ``<name>.departure``."""

    def __init__(
        self,
        model: BatchModel | None = None,
        *,
        settings: DetectSettings | None = None,
        seed: int = 0,
        slack: int = RECIPE_SLACK,
        name: str = "recipe",
    ) -> None:
        super().__init__(model, settings=settings, seed=seed, name=name)
        self._slack = slack

    def score_one(self, sample: Sample) -> tuple[Score]:
        """The largest departure from the recipe, in tolerances (0 with no recipe tag or value).

        Raises:
            InputError: the sample has no usable ``batch_time_h``.
        """
        recipe = self.model.recipe
        statistic = f"{self._name}.departure"
        t = sample_batch_time(sample)
        if not recipe.tags or not recipe.is_covered(t):
            return (Score(statistic, 0.0, 1.0),)
        k = int(recipe.slice_of(t))
        lo, hi = max(k - self._slack, 0), min(k + self._slack + 1, recipe.slices)
        x = sample_vector(sample, recipe.tags)
        # Distance to the nearest recipe value in the slack window, per tag, in tolerances.
        departure = np.min(np.abs(x - recipe.mean[lo:hi]) / recipe.spread[lo:hi], axis=0)
        departure = np.where(np.isfinite(departure), departure, 0.0)
        return (Score(statistic, float(departure.max()), 1.0, contribution_shares(recipe.tags, departure)),)
