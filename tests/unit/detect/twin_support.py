"""Twin batches as detector samples (lists of tag -> value dicts), for the tests of the detectors
that need the twin's physics, loops and check elements."""

from __future__ import annotations

from aseptic.twin import simulate_batches

Sample = dict[str, float]


def twin_samples(seed: int, n: int, duration_h: float) -> list[list[Sample]]:
    """``n`` clean twin batches from ``seed`` (fast PAA mode), each a list of samples."""
    out = []
    for b in simulate_batches(n, seed, duration_h=duration_h, paa_control="true"):
        names = list(b.tags)
        out.append([{k: float(b.tags[k][i]) for k in names} for i in range(b.time_h.size)])
    return out
