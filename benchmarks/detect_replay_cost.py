"""Replay detector scoring cost: the sorted-index search vs comparing every earlier window.

    .venv/bin/python -m benchmarks.detect_replay_cost [--train-batches 4] [--rounds 3]

All run in the same process on the same test batch (seed 30000, 230 h, clean, full length), after
fitting on training batches (seeds 10000+). "every window" is the brute-force search the detector
uses to learn its floor (``_distances(exact=True)``); "previous scan" is the version this replaced
(an O(n) scan of every earlier window's last sample, then full comparison of the close ones),
kept here as the baseline; "one block" scores the whole batch with ``score_block`` (the same
values as per sample, asserted). Reports microseconds per sample and per tag-reading (best round) and
checks that the alarms agree: scores over the limit must be identical (below it the shipped
search reports a lower bound, by design).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from aseptic.detect import ReplayDetector, SampleBlock, Score
from aseptic.twin import simulate_batches
from benchmarks.detect_twin import TEST_SEED, TRAIN_SEED, to_samples


class _EveryWindow(ReplayDetector):
    """The same detector comparing every earlier window in full (the reference)."""

    def score_one(self, sample: dict[str, float]) -> tuple[Score]:  # type: ignore[override]
        from aseptic.detect._detector import sample_vector

        d = self._distances_exact(sample_vector(sample, self.tags))
        ratio = np.where(np.isfinite(d), self.d_min / np.maximum(d, self.d_min / 1000.0), 0.0)
        return (Score("replay.match", float(ratio.max()), 1.0),)


class _PreviousScan(ReplayDetector):
    """The previous search: every earlier window's last sample scanned per sample (O(n))."""

    def score_one(self, sample: dict[str, float]) -> tuple[Score]:  # type: ignore[override]
        from numpy.lib.stride_tricks import sliding_window_view

        from aseptic.detect._detector import sample_vector

        row = sample_vector(sample, self.tags)
        if self._n == self._history.shape[0]:
            self._history = np.concatenate([self._history, np.full_like(self._history, np.nan)])
        self._history[self._n] = row
        self._n += 1
        w, n = self._window, self._n
        if n < 2 * w:
            return (Score("replay.match", 0.0, 1.0),)
        h = self._history[:n]
        current = h[n - w :]
        skip = (np.std(current, axis=0) < 0.25 * self.noise) | ~np.all(np.isfinite(current), axis=0)
        earlier = sliding_window_view(h[: n - w], w, axis=0)
        gap = np.abs(earlier[:, :, -1] - current[-1]) / self.noise
        gap = np.where(np.isfinite(gap), gap, np.inf)
        rms = gap.min(axis=0) / np.sqrt(w)
        win, tag = np.nonzero(gap <= np.sqrt(w) * self.d_min)
        if win.size:
            diff = earlier[win, tag, :] - current[:, tag].T
            near = np.sqrt(np.mean(diff * diff, axis=1)) / self.noise[tag]
            best = np.full(row.size, np.inf)
            np.minimum.at(best, tag, np.where(np.isfinite(near), near, np.inf))
            rms = np.where(np.isfinite(best), best, rms)
        d = np.where(skip, np.inf, rms)
        ratio = np.where(np.isfinite(d), self.d_min / np.maximum(d, self.d_min / 1000.0), 0.0)
        return (Score("replay.match", float(ratio.max()), 1.0),)


def _time_block(
    detector: ReplayDetector, batch: list[dict[str, float]], rounds: int
) -> tuple[float, list[float]]:
    best = float("inf")
    values: list[float] = []
    for _ in range(rounds):
        detector.reset()
        t0 = time.perf_counter()
        values = detector.score_block(SampleBlock(batch))[0].values.tolist()
        best = min(best, time.perf_counter() - t0)
    return best, values


def _time(detector: ReplayDetector, batch: list[dict[str, float]], rounds: int) -> tuple[float, list[float]]:
    best = float("inf")
    values: list[float] = []
    for _ in range(rounds):
        detector.reset()
        t0 = time.perf_counter()
        values = [detector.score_one(s)[0].value for s in batch]
        best = min(best, time.perf_counter() - t0)
    return best, values


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--train-batches", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    train = [to_samples(b) for b in simulate_batches(args.train_batches, TRAIN_SEED, paa_control="true")]
    test = to_samples(simulate_batches(1, TEST_SEED, paa_control="true")[0])
    indexed = ReplayDetector()
    indexed.fit(train)
    brute, previous = _EveryWindow(), _PreviousScan()
    for d in (brute, previous):
        d.fit(train)
    # A replayed copy, so that the comparison covers scores over the limit too.
    test = [dict(s) for s in test]
    for i in range(500, 700):
        test[i]["ph"] = test[i - 250]["ph"]
    tags = len(indexed.tags)
    t_idx, v_idx = _time(indexed, test, args.rounds)
    t_blk, v_blk = _time_block(indexed, test, args.rounds)
    assert v_blk == v_idx, "block and per-sample replay scores differ"
    t_prev, v_prev = _time(previous, test, args.rounds)
    t_all, v_all = _time(brute, test, 1)
    n = len(test)
    print(f"{n} samples, {tags} watched tags")
    rows = (
        ("one block (score_block)", t_blk),
        ("sorted index, per sample", t_idx),
        ("previous scan", t_prev),
        ("every window (reference)", t_all),
    )
    for label, t in rows:
        print(f"{label:26s} {1e6 * t / n:8.1f} us/sample {1e6 * t / n / tags:7.2f} us/tag-reading")
    a, b, c = np.array(v_idx), np.array(v_prev), np.array(v_all)
    over = (a > 1) | (c > 1)
    print(
        f"alarming samples {int(over.sum())}; shipped vs every window over the limit: "
        f"max diff {float(np.max(np.abs(a - c)[over], initial=0.0)):.1e}; flags equal "
        f"{bool(np.array_equal(a > 1, c > 1))}; "
        f"shipped vs previous max diff {float(np.max(np.abs(a - b))):.1e}"
    )


if __name__ == "__main__":
    main()
