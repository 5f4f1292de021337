"""A fitted tabular ``Ensemble`` as a streaming ``Detector``, so the ``Engine`` (demo, serve) can run it.

Tabular detectors score a whole stream (samples x variables) at once; the engine hands detectors
one sample at a time. The adapter keeps the current batch's rows of the ensemble's columns (the
tags it was fitted on; a missing or non-numeric tag is NaN, which every tabular detector
tolerates) and, per sample, asks the ensemble to explain the last row of the stream so far:
causal by construction (row t sees rows 0..t of its batch only; ``reset`` starts a new stream).

One statistic, ``<name>.score``: the ensemble's score (largest member ratio score / limit; limit
1), so an episode is what the ensemble would flag, under the engine's persistence rule. Its
contributions are the leading member's variables (shares); ``expected_values`` gives what that
member expected them to read, and the Finding's technique is the ensemble's own suggestion (with
the column kinds it was fitted with, and the dominance test where the detector has one).

Cost: each sample re-scores the batch so far (O(rows) per sample; exact for the EWMA and frozen
rules, which remember the whole stream). ``load_ensemble_detector`` verifies the file's digest
before parsing it, like every other detector file.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aseptic.detect._detector import (
    Batch,
    FloatArray,
    Sample,
    Score,
    batch_matrix,
    online_tags,
    sample_vector,
)
from aseptic.detect._ensemble import Ensemble, Explanation
from aseptic.detect._store import _recorded_digest, digest_path, model_digest
from aseptic.detect._tabular import TabularDetector
from aseptic.detect._tabular_store import decode_detector, load_tabular_detector
from aseptic.errors import InputError, IntegrityError

if TYPE_CHECKING:
    from aseptic.crypto import PublicKey
    from aseptic.provenance import FindingSink

__all__ = ["TabularEnsembleDetector", "load_ensemble_detector"]


class TabularEnsembleDetector:
    """A tabular ``Ensemble`` scored sample by sample on the tags it was fitted on; ``<name>.score``."""

    def __init__(self, ensemble: Ensemble, *, name: str = "tabular") -> None:
        self._ensemble = ensemble
        self._name = name
        self._rows: list[FloatArray] = []
        self._last: Explanation | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def ensemble(self) -> Ensemble:
        return self._ensemble

    @property
    def tags(self) -> tuple[str, ...]:
        """The columns the ensemble was fitted on (empty before ``fit``)."""
        return self._ensemble.columns

    def fit(self, batches: Sequence[Batch]) -> None:
        """Fit the ensemble on clean batches, one after the other, on its columns (or the online tags).

        Raises:
            InputError: no usable batch or tag, or too few samples for the ensemble's folds.
        """
        columns = self._ensemble.columns or online_tags(batches)
        x = np.vstack([batch_matrix(b, columns)[1] for b in batches]) if batches else np.zeros((0, 0))
        self._ensemble.fit(x, columns)
        self.reset()

    def reset(self) -> None:
        """Forget the current batch: the next sample starts a fresh stream."""
        self._rows = []
        self._last = None

    def score_one(self, sample: Sample) -> tuple[Score]:
        """The ensemble's score of this sample given the batch so far, with the leading member's tags."""
        columns = self._ensemble.columns
        if not columns:
            raise RuntimeError(f"detector {self._name!r} is not fitted: fit it or load a fitted ensemble")
        self._rows.append(sample_vector(sample, columns))
        stream = np.vstack(self._rows)
        why = self._ensemble.explain(stream, len(self._rows) - 1)
        self._last = why
        ratio = why.score / why.limit if why.limit > 0 else 0.0
        value = ratio if math.isfinite(ratio) and ratio > 0 else 0.0
        contributions = why.contributions if value > 0 else ()
        return (Score(f"{self._name}.score", value, 1.0, contributions),)

    def expected_values(self, tags: Sequence[str]) -> tuple[float, ...]:
        """What the leading member expected ``tags`` to read at the last sample scored (NaN: no view)."""
        why = self._last
        known = dict(zip((t for t, _ in why.contributions), why.expected, strict=True)) if why else {}
        return tuple(float(known.get(tag, math.nan)) for tag in tags)

    def technique_of(self, score: Score) -> str | None:
        """The ensemble's suggested technique for the last sample scored (``score`` is its Score)."""
        return self._last.technique if self._last is not None and score.contributions else None

    def leading_member(self) -> str | None:
        """The member (``<detector>.<statistic>``) that led the last sample's score."""
        return self._last.statistic if self._last is not None else None


def load_ensemble_detector(
    path: Path,
    expected_digest: str | None = None,
    *,
    name: str = "tabular",
    trusted_keys: Collection[PublicKey] | None = None,
    retired: Collection[str] = (),
    sink: FindingSink | None = None,
    now: datetime | None = None,
) -> TabularEnsembleDetector:
    """Load a saved ensemble (``save_tabular_detector``) as a streaming detector, verified first.

    Like ``load_model``: the bytes are checked against ``expected_digest`` or the recorded
    ``<path>.sha256`` before anything is parsed (fail closed). With ``trusted_keys`` (a trust anchor
    is configured) the file must also match its signed manifest ``<path>.manifest.json``
    (``aseptic.provenance.load_verified``); a refusal is recorded in ``sink`` (needs ``now``), and
    the recorded digest is then optional but checked if present.

    Raises:
        IntegrityError: the bytes do not match the expected (or recorded) digest, or no digest.
        SignatureError: (with ``trusted_keys``) the manifest is unsigned or not by a trusted key.
        InputError: not a valid tabular detector file, or a single detector rather than an ensemble.
    """
    if trusted_keys is None:
        loaded = load_tabular_detector(path, expected_digest=expected_digest)
    else:
        loaded = _load_signed(path, expected_digest, trusted_keys, retired, sink, now)
    if not isinstance(loaded, Ensemble):
        raise InputError(
            f"tabular detector file {path} holds a single {type(loaded).__name__}, not an ensemble",
            hint="save the fitted Ensemble (its limits are what the engine compares with)",
        )
    return TabularEnsembleDetector(loaded, name=name)


def _load_signed(
    path: Path,
    expected_digest: str | None,
    trusted_keys: Collection[PublicKey],
    retired: Collection[str],
    sink: FindingSink | None,
    now: datetime | None,
) -> TabularDetector | Ensemble:
    from aseptic.provenance import ArtifactKind, load_verified

    if sink is not None and now is None:
        raise ValueError("load_ensemble_detector: a refusal sink needs the time (now=)")

    def decode(data: bytes) -> TabularDetector | Ensemble:
        if expected_digest is not None or digest_path(path).exists():
            wanted = expected_digest if expected_digest is not None else _recorded_digest(path)
            computed = model_digest(data)
            if computed != wanted.strip().lower():
                raise IntegrityError(
                    f"detector file {path}: SHA-256 {computed} does not match the expected {wanted}"
                )
        return decode_detector(data, source=str(path))

    return load_verified(
        path,
        trusted_keys,
        kind=ArtifactKind.MODEL,
        decode=decode,
        now=now if now is not None else datetime.min,
        sink=sink,
        retired=retired,
        purpose="tabular detector",
    ).value
