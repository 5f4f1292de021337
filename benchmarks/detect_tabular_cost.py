"""Cost of the tabular detector ensemble: training time and batched scoring time per tag-reading.

    .venv/bin/python -m benchmarks.detect_tabular_cost --data ../shared/data/tep
    .venv/bin/python -m benchmarks.detect_tabular_cost              # synthetic 500 x 52 stand-in

Fits the TEP ensemble (``aseptic.bench.tep_ensemble``) on d00.dat (or a synthetic 500 x 52
stream), then scores streams of 960 samples in one call each (batched: the whole stream at once, as
``aseptic bench tep`` does) and reports microseconds per tag-reading (samples x variables), beside
the static PCA T2/SPE baseline scored the same way in the same run. Goal: under 20 us per reading.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from aseptic.bench import TEP_COLUMNS, load_tep, tep_ensemble
from aseptic.detect import PcaDetector


def _synthetic(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(1).normal(size=(52, 6))
    lat = np.zeros((n, 6))
    for t in range(1, n):
        lat[t] = 0.9 * lat[t - 1] + rng.normal(0, 0.4, 6)
    return lat @ mix.T + rng.normal(0, 0.2, (n, 52))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, help="TEP directory (d00.dat, dNN_te.dat); synthetic if absent")
    parser.add_argument("--streams", type=int, default=22)
    args = parser.parse_args()
    if args.data:
        data = load_tep(args.data)
        train = data.train
        streams = [data.tests[nn] for nn in sorted(data.tests)][: args.streams]
    else:
        train = _synthetic(0, 500)
        streams = [_synthetic(100 + i, 960) for i in range(args.streams)]
    ensemble = tep_ensemble()
    t0 = time.process_time()
    ensemble.fit(train, TEP_COLUMNS)
    train_s = time.process_time() - t0
    pca = PcaDetector(components=9)
    pca.fit(train, TEP_COLUMNS)
    readings = sum(s.size for s in streams)
    for name, score in (("ensemble", ensemble.decide), ("PCA T2/SPE baseline", pca.score)):
        t0 = time.process_time()
        for s in streams:
            score(s)
        elapsed = time.process_time() - t0
        print(f"{name:>20}: {1e6 * elapsed / readings:7.2f} CPU us per tag-reading ({readings} readings)")
    print(f"{'ensemble training':>20}: {train_s:7.1f} CPU s on {train.shape[0]} x {train.shape[1]}")


if __name__ == "__main__":
    main()
