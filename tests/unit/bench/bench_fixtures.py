"""Small synthetic data in the TEP and BATADAL file formats (the real data is never read by tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TEP_VARS = 52


def _process(rng: np.random.Generator, n: int, mix: np.ndarray) -> np.ndarray:
    lat = np.zeros((n, mix.shape[1]))
    for t in range(1, n):
        lat[t] = 0.8 * lat[t - 1] + rng.normal(0.0, 0.5, mix.shape[1])
    return lat @ mix.T + rng.normal(0.0, 0.2, (n, mix.shape[0])) + np.arange(mix.shape[0])


def write_tep(directory: Path, *, train_rows: int = 300, seed: int = 0) -> Path:
    """d00.dat (transposed, 52 x train_rows) and d00_te..d21_te (960 x 52); fault NN biases one variable."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(99).normal(0.0, 1.0, (TEP_VARS, 4))
    directory.mkdir(parents=True, exist_ok=True)
    np.savetxt(directory / "d00.dat", _process(rng, train_rows, mix).T, fmt="%.6f")
    for nn in range(22):
        x = _process(rng, 960, mix)
        if nn:
            x[160:, (7 * nn) % TEP_VARS] += 3.0  # a sensor spoofed / a fault from sample 161 on
        np.savetxt(directory / f"d{nn:02d}_te.dat", x, fmt="%.6f")
    return directory


BATADAL_COLUMNS = ("L_T1", "L_T2", "F_PU1", "S_PU1", "F_PU2", "S_PU2", "P_J280", "P_J269")


def _batadal_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n)
    demand = np.sin(2 * np.pi * t / 24.0)
    pump2 = (demand > 0.3).astype(float)
    level1 = 3.0 + 0.8 * demand + rng.normal(0, 0.05, n)
    level2 = 2.0 - 0.5 * demand + 0.3 * pump2 + rng.normal(0, 0.05, n)
    flow1 = 100.0 + 10.0 * demand + rng.normal(0, 0.5, n)
    flow2 = pump2 * (60.0 + rng.normal(0, 0.5, n))
    p1 = 30.0 + 2.0 * level1 + rng.normal(0, 0.1, n)
    p2 = 80.0 - 5.0 * demand + 3.0 * pump2 + rng.normal(0, 0.1, n)
    return np.column_stack([level1, level2, flow1, np.ones(n), flow2, pump2, p1, p2])


def _write_batadal(
    path: Path, stamps: list[str], x: np.ndarray, labels: np.ndarray | None, decimals: int
) -> None:
    header = ["DATETIME", *BATADAL_COLUMNS] + (["ATT_FLAG"] if labels is not None else [])
    lines = [",".join(header)]
    for i, stamp in enumerate(stamps):
        cells = [stamp, *(f"{v:.{decimals}f}" for v in x[i])]
        if labels is not None:
            cells.append(str(int(labels[i])))
        lines.append(",".join(cells))
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")


def _stamps(n: int, day0: int) -> list[str]:
    return [f"{(day0 + h // 24) % 28 + 1:02d}/01/17 {h % 24:02d}" for h in range(n)]


def write_batadal(directory: Path, *, seed: int = 0) -> Path:
    """dataset03 (400 h, 6 decimals), dataset04 (360 h, 2 attacks, partly labelled), test (120 h)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    _write_batadal(directory / "dataset03.csv", _stamps(400, 0), _batadal_rows(rng, 400), np.zeros(400), 6)
    x4 = _batadal_rows(rng, 360)
    labels = np.zeros(360)
    x4[100:140, 0] += 1.5  # tank level spoofed high
    labels[100:130] = 1  # partial labels: the last hours of the attack are left 0
    x4[250:290, 4] = 0.0  # pump 2 stopped behind the operator's back, status still reads on
    labels[250:290] = 1
    _write_batadal(directory / "dataset04_partial_labels.csv", _stamps(360, 3), x4, labels, 2)
    xt = _batadal_rows(rng, 120)
    xt[60:90, 0] += 1.5
    _write_batadal(directory / "test_unlabelled.csv", _stamps(120, 5), xt, None, 2)
    return directory
