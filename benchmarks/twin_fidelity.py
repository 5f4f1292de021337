"""Twin fidelity: how the simulated batches compare with the reference ranges.

    .venv/bin/python -m benchmarks.twin_fidelity [--batches 10] [--seed 0]

Reports, over ``--batches`` fault-free batches: the share of production-phase time (t >= 40 h) each
tag spends inside the reference p5-p95 band (fermenter-parameters.md section 5), end-of-batch
values against the reference end ranges, the spot checks, and whether late-batch sugar
accumulation appears, for the default PAA loop (Raman soft sensor) and the reference's open-loop
PAA recipe.
"""

from __future__ import annotations

import argparse

import numpy as np

from aseptic.twin import BatchResult, simulate_batches
from aseptic.twin import _kinetics as k

# tag -> (p5, median, p95) of the five reference batches, t >= 40 h
BANDS: dict[str, tuple[float, float, float]] = {
    "temperature_k": (297.9, 298.0, 298.2),
    "ph": (6.48, 6.50, 6.55),
    "dissolved_o2_mg_per_l": (10.6, 13.1, 15.1),
    "offgas_o2_fraction": (0.185, 0.191, 0.196),
    "offgas_co2_pct": (1.24, 1.67, 2.01),
    "our_kg_per_min": (0.79, 1.34, 1.86),
    "cer_kg_per_min": (0.94, 1.49, 1.83),
    "volume_l": (62_000.0, 77_500.0, 84_600.0),
    "weight_kg": (68_600.0, 86_400.0, 94_000.0),
    "sugar_feed_l_per_h": (61.0, float("nan"), 116.0),
    "cooling_water_l_per_h": (0.07, 24.0, 183.0),
    "heating_water_l_per_h": (0.0, 1.5, 125.0),
    "base_flow_l_per_h": (0.7, 58.0, 146.0),
}
END_RANGES: dict[str, tuple[float, float]] = {
    "P (g/L)": (14.0, 29.0),
    "X (g/L)": (17.0, 26.0),
    "viscosity (cP)": (26.0, 84.0),
    "NH3 (mg/L)": (1640.0, 3000.0),
    "PAA (mg/L)": (750.0, 5000.0),
    "harvest (t)": (1.8, 4.0),
}
SPOT = (("I_T", k.D_I_T, 1.002), ("I_pH", k.D_I_PH, 0.90), ("mu_h (1/h)", k.D_MU_H, 0.0026))
SPOT_80M3 = (
    ("DO* (mg/L)", k.D_DO_SAT, 19.9),
    ("P_ag (kW)", k.D_P_AG_KW, 480.0),
    ("kLa (1/h)", k.D_KLA, 67.0),
    ("F_evp (L/h)", k.D_F_EVP, 36.0),
)


def _end_values(b: BatchResult) -> dict[str, float]:
    x = b.states[-1]
    return {
        "P (g/L)": x[k.P],
        "X (g/L)": x[k.A0] + x[k.A1] + x[k.A3] + x[k.A4],
        "viscosity (cP)": x[k.VISC],
        "NH3 (mg/L)": x[k.NH3],
        "PAA (mg/L)": x[k.PAA],
        "harvest (t)": b.harvested_penicillin_kg / 1000.0,
    }


def _report(label: str, results: list[BatchResult]) -> None:
    print(f"\n### {label}: {len(results)} batches\n")
    print("| tag | ref p5 | ref p95 | share of t >= 40 h inside | our median | ref median |")
    print("|---|---|---|---|---|---|")
    for tag, (lo, med, hi) in BANDS.items():
        values = np.concatenate([b.tags[tag][b.time_h >= 40.0] for b in results])
        inside = np.mean((values >= lo) & (values <= hi))
        print(f"| {tag} | {lo:g} | {hi:g} | {100 * inside:.0f} % | {np.median(values):.4g} | {med:g} |")
    print("\n| end of batch | reference range | ours: min | median | max | batches inside |")
    print("|---|---|---|---|---|---|")
    ends = [_end_values(b) for b in results]
    for name, (lo, hi) in END_RANGES.items():
        v = np.array([e[name] for e in ends])
        n_in = int(np.sum((v >= lo) & (v <= hi)))
        print(
            f"| {name} | {lo:g}-{hi:g} | {v.min():.4g} | {np.median(v):.4g} | {v.max():.4g} "
            f"| {n_in}/{len(v)} |"
        )
    late_sugar = [float(b.states[b.time_h >= 150.0, k.S].max()) for b in results]
    damaged = sum(b.growth_damaged for b in results)
    paa_max = [float(b.states[:, k.PAA].max()) for b in results]
    print(
        f"\nlate-batch sugar (max S after 150 h, g/L): {', '.join(f'{s:.3g}' for s in late_sugar)}; "
        f"batches with S > 1 g/L: {sum(s > 1.0 for s in late_sugar)}; max PAA (mg/L): "
        f"{', '.join(f'{p:.0f}' for p in paa_max)}; growth-damage quirk triggered: {damaged}"
    )


def _spot_checks() -> None:
    def derived(vol_l: float, temp_k: float) -> np.ndarray:
        x = np.zeros((1, k.N_STATES))
        x[0, k.V], x[0, k.T], x[0, k.H], x[0, k.VISC] = vol_l, temp_k, 10.0**-6.5, 60.0
        x[0, k.A0], x[0, k.A1], x[0, k.NH3], x[0, k.PAA], x[0, k.DO2] = 10.0, 20.0, 1700.0, 1200.0, 15.0
        u = np.zeros((1, k.N_INPUTS))
        u[0, k.PHEAD], u[0, k.FG], u[0, k.RPM], u[0, k.FOIL] = 1.1, 75.0, 100.0, 23.0
        q = np.array([[0.041, 0.41, 600.0, 1000.0, 0.033, 530_000.0, 285.0, 0.21, 85.0, 150_000.0]])
        out = np.zeros((1, k.N_DERIVED))
        k.derive(x, u, q, out)
        return out[0]

    print("\n### Spot checks (298 K, pH 6.5; V 80 m3, 1.1 bar, Fg 75, 60 cP, X 30 g/L)\n")
    print("| quantity | reference | twin |")
    print("|---|---|---|")
    d = derived(80_000.0, 298.0)
    for name, index, ref in SPOT + SPOT_80M3:
        print(f"| {name} | {ref:g} | {d[index]:.4g} |")
    print(f"| I_T at 303 K | 0.886 | {derived(80_000.0, 303.0)[k.D_I_T]:.4g} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    _report("PAA loop on the Raman soft sensor (default)", simulate_batches(args.batches, args.seed))
    _report(
        "open-loop PAA recipe (as the reference runs)",
        simulate_batches(args.batches, args.seed, paa_control="recipe"),
    )
    _spot_checks()


if __name__ == "__main__":
    main()
