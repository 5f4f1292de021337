"""The model guard: watches the PAA soft sensor in the loop, sample by sample, and calls for the fallback.

Four independent checks, each with a persistence rule (``persistence`` of the last ``window``
samples over the limit opens an episode, one Finding per episode):

- ``spectrum``: T2/SPE of the Raman spectrum against clean training spectra (input drift,
  out-of-distribution, adversarial perturbation: AML.T0043 Craft Adversarial Data / AML.T0015).
- ``shadow``: the published estimate against an independently trained shadow model run through the
  same estimator on the same spectra. A model that disagreed from the start suggests poisoned
  training (AML.T0020); one that agreed and then departed suggests a manipulated or replaced model
  (AML.T0018). An adversarial input aimed at the primary can move both (the models are similar), so
  this check complements, not replaces, the spectrum check.
- ``assay``: each offline PAA assay against the estimate at the time its sample was taken.
- ``balance``: the PAA mass balance. Over a window, the feed supplies sum(F c_PAA / V) h; the
  consumption implied by the estimate, supply minus the estimate's change, must stay within the
  range seen in clean batches (it can never be negative: nothing makes PAA in the broth).
  Physics disagreeing with a model whose input looks normal suggests evasion (AML.T0015).
- ``digest``: the running model's digest, if reported, against the deployed (signed) one.

Any Finding sets ``fallback_recommended``: the PAA loop should run on the validated assay-based control.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from aseptic.guard._finding import GuardFinding
from aseptic.guard._spectral import SpectralMonitor
from aseptic.twin import PaaEstimator, PaaSoftSensor

__all__ = ["GuardLimits", "GuardSample", "ModelGuard", "calibrate_limits"]

FloatArray = NDArray[np.float64]
_AGREED_BEFORE = 20  # samples of shadow agreement that make a later departure "manipulation"


@dataclass(frozen=True)
class GuardSample:
    """What the guard sees at one control sample (the twin's published tags plus the spectrum)."""

    time: datetime
    batch_time_h: float
    spectrum: FloatArray | None
    estimate_mg_per_l: float
    paa_feed_l_per_h: float
    volume_l: float
    assay_paa_mg_per_l: float = math.nan
    model_digest: str | None = None


@dataclass(frozen=True)
class GuardLimits:
    """Limits of the checks (``calibrate_limits`` sets them from clean batches)."""

    shadow_mg_per_l: float = 80.0
    assay_mg_per_l: float = 250.0
    consumption_low_mg_per_l_per_h: float = -15.0
    consumption_high_mg_per_l_per_h: float = 120.0
    persistence: int = 3
    window: int = 5
    balance_window_samples: int = 20
    sample_time_h: float = 0.2
    assay_delay_samples: int = 4
    feed_concentration_mg_per_l: float = 530_000.0
    start_h: float = 10.0  # the PAA loop closes at 10 h; before that the estimator is settling


class _Episode:
    def __init__(self, window: int, persistence: int) -> None:
        self._recent: deque[bool] = deque(maxlen=window)
        self._persistence = persistence
        self.open = False

    def update(self, over: bool) -> bool:
        """True when an episode opens now."""
        self._recent.append(over)
        if not self.open and sum(self._recent) >= self._persistence:
            self.open = True
            return True
        if self.open and not any(self._recent):
            self.open = False
        return False


class ModelGuard:
    """Guard of one batch's soft sensor: feed it ``update(sample)`` every control sample."""

    def __init__(
        self,
        *,
        deployed_digest: str,
        shadow: PaaSoftSensor,
        monitor: SpectralMonitor,
        limits: GuardLimits | None = None,
        batch_id: str = "batch",
    ) -> None:
        self.limits = limits or GuardLimits()
        self._deployed = deployed_digest
        self._shadow = PaaEstimator(shadow)
        self._monitor = monitor
        self._batch = batch_id
        lim = self.limits
        self._episodes = {c: _Episode(lim.window, lim.persistence) for c in ("spectrum", "shadow", "balance")}
        self._estimates: deque[float] = deque(
            maxlen=max(lim.balance_window_samples, lim.assay_delay_samples) + 1
        )
        self._supply: deque[float] = deque(maxlen=lim.balance_window_samples)
        self._agreed = 0
        self._last_assay_gap = math.nan
        self._digest_flagged = False
        self.findings: list[GuardFinding] = []
        self.last_shadow_mg_per_l = math.nan
        self.last_consumption_mg_per_l_per_h = math.nan
        # Per active sample: (shadow gap, assay gap or NaN, implied consumption or NaN), for calibration.
        self.diagnostics: list[tuple[float, float, float]] = []

    @property
    def fallback_recommended(self) -> bool:
        """True once any check has raised a Finding (latched for the batch)."""
        return bool(self.findings)

    def update(self, sample: GuardSample) -> list[GuardFinding]:
        """Run every check on one sample; return the Findings opened by it."""
        new: list[GuardFinding] = []
        lim = self.limits
        if (
            sample.model_digest is not None
            and sample.model_digest != self._deployed
            and not self._digest_flagged
        ):
            self._digest_flagged = True
            new.append(
                self._finding(
                    sample,
                    "digest",
                    1.0,
                    0.0,
                    ("AML.T0018",),
                    f"running model {sample.model_digest[:16]} is not the deployed {self._deployed[:16]}",
                )
            )
        self._estimates.append(sample.estimate_mg_per_l)
        if math.isfinite(sample.volume_l) and sample.volume_l > 0:
            supply = (
                sample.paa_feed_l_per_h
                * lim.feed_concentration_mg_per_l
                / sample.volume_l
                * lim.sample_time_h
            )
        else:
            supply = math.nan
        self._supply.append(supply)
        active = sample.batch_time_h >= lim.start_h
        if sample.spectrum is not None:
            score = self._monitor.score(sample.spectrum)
            ratio = max(score.spe_ratio, score.t2_ratio)
            self.last_shadow_mg_per_l = self._shadow.update(sample.spectrum)
            if self._episodes["spectrum"].update(active and ratio > 1.0):
                which = "SPE" if score.spe_ratio >= score.t2_ratio else "T2"
                new.append(
                    self._finding(
                        sample,
                        "spectrum",
                        ratio,
                        1.0,
                        ("AML.T0043", "AML.T0015"),
                        f"Raman spectrum out of distribution ({which} {ratio:.1f}x limit)",
                    )
                )
            gap = abs(sample.estimate_mg_per_l - self.last_shadow_mg_per_l)
            over = active and gap > lim.shadow_mg_per_l
            if active and not over:
                self._agreed += 1
            if self._episodes["shadow"].update(over):
                technique = "AML.T0018" if self._agreed >= _AGREED_BEFORE else "AML.T0020"
                other = "AML.T0020" if technique == "AML.T0018" else "AML.T0018"
                new.append(
                    self._finding(
                        sample,
                        "shadow",
                        gap,
                        lim.shadow_mg_per_l,
                        (technique, other),
                        f"soft sensor and shadow model differ by {gap:.0f} mg/L",
                    )
                )
        shadow_gap = abs(sample.estimate_mg_per_l - self.last_shadow_mg_per_l)
        new.extend(self._assay(sample, active))
        new.extend(self._balance(sample, active))
        if active:
            self.diagnostics.append((shadow_gap, self._last_assay_gap, self.last_consumption_mg_per_l_per_h))
        self.findings.extend(new)
        return new

    def _assay(self, sample: GuardSample, active: bool) -> list[GuardFinding]:
        lim = self.limits
        self._last_assay_gap = math.nan
        if not (active and math.isfinite(sample.assay_paa_mg_per_l)):
            return []
        if len(self._estimates) <= lim.assay_delay_samples:
            return []
        then = self._estimates[-1 - lim.assay_delay_samples]
        gap = abs(then - sample.assay_paa_mg_per_l)
        self._last_assay_gap = gap
        if gap <= lim.assay_mg_per_l:
            return []
        return [
            self._finding(
                sample,
                "assay",
                gap,
                lim.assay_mg_per_l,
                ("AML.T0015", "AML.T0018"),
                f"offline PAA assay {sample.assay_paa_mg_per_l:.0f} mg/L vs soft sensor "
                f"{then:.0f} mg/L when sampled",
            )
        ]

    def _balance(self, sample: GuardSample, active: bool) -> list[GuardFinding]:
        lim = self.limits
        n = lim.balance_window_samples
        if len(self._supply) < n or len(self._estimates) < n + 1:
            self._episodes["balance"].update(False)
            return []
        change = self._estimates[-1] - self._estimates[-1 - n]
        consumption = (sum(self._supply) - change) / (n * lim.sample_time_h)
        self.last_consumption_mg_per_l_per_h = consumption
        low, high = lim.consumption_low_mg_per_l_per_h, lim.consumption_high_mg_per_l_per_h
        over = active and math.isfinite(consumption) and not low <= consumption <= high
        if not self._episodes["balance"].update(over):
            return []
        bound = low if consumption < low else high
        return [
            self._finding(
                sample,
                "balance",
                consumption,
                bound,
                ("AML.T0015", "AML.T0018"),
                f"PAA mass balance: implied consumption {consumption:.0f} mg/L/h outside "
                f"{low:.0f}..{high:.0f}",
            )
        ]

    def _finding(
        self,
        sample: GuardSample,
        check: str,
        score: float,
        limit: float,
        techniques: tuple[str, ...],
        text: str,
    ) -> GuardFinding:
        return GuardFinding(
            sample.time, self._batch, sample.batch_time_h, check, score, limit, techniques, text
        )


def calibrate_limits(
    runs: Sequence[Sequence[tuple[float, float, float]]],  # ModelGuard.diagnostics of clean batches
    base: GuardLimits | None = None,
    *,
    margin: float = 1.5,
) -> GuardLimits:
    """Limits from clean batches: ``runs`` are the ``ModelGuard.diagnostics`` of clean guarded batches.

    Each limit is ``margin`` times the largest clean value (the assay and consumption limits keep
    at least ``base``'s floor, since clean batches see only a few assays).

    Raises:
        ValueError: no clean samples.
    """
    start = base or GuardLimits()
    values = np.array([row for run in runs for row in run], dtype=np.float64)
    if values.size == 0:
        raise ValueError("calibrate_limits needs clean samples")
    shadow, assay, consumption = values[:, 0], values[:, 1], values[:, 2]
    consumption = consumption[np.isfinite(consumption)]
    assay = assay[np.isfinite(assay)]
    span = float(consumption.max() - consumption.min()) if consumption.size else 0.0
    return replace(
        start,
        shadow_mg_per_l=margin * float(np.nanmax(shadow)),
        assay_mg_per_l=max(start.assay_mg_per_l, margin * float(assay.max()))
        if assay.size
        else start.assay_mg_per_l,
        consumption_low_mg_per_l_per_h=(
            float(consumption.min()) - (margin - 1.0) * span
            if consumption.size
            else start.consumption_low_mg_per_l_per_h
        ),
        consumption_high_mg_per_l_per_h=(
            float(consumption.max()) + (margin - 1.0) * span
            if consumption.size
            else start.consumption_high_mg_per_l_per_h
        ),
    )
