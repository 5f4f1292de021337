"""The batch engine: B batches advanced together, one sample at a time.

Per sample: recipe -> faults -> PID loops (numpy over the batch dimension) -> numba integration
of the model over the sample -> instruments, assays, soft sensor and phases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from aseptic.twin import _kinetics as k
from aseptic.twin._control import PAA as PAA_TUNING
from aseptic.twin._control import assay_paa_feed, incremental_pid, ph_split_range, temperature_split_range
from aseptic.twin._faults import Fault, fault_effects
from aseptic.twin._phases import phase_at
from aseptic.twin._recipe import RECIPE, discharge_kg_per_h
from aseptic.twin._sensors import (
    ASSAY_DELAY_SAMPLES,
    ASSAY_TAGS,
    CHECK_TAGS,
    NOISE_SD,
    TAG_INDEX,
    assay_sample_indices,
    cer_from_offgas,
    our_from_offgas,
)
from aseptic.twin._variation import BatchDraw
from aseptic.twin.tags import TAGS

__all__ = ["BatchEngine", "PaaControl"]

PaaControl = Literal["softsensor", "true", "recipe"]
PAA_LOOP_START_H = 10.0
_FALLBACK_FEED_WINDOW = 50  # samples (10 h)
_DAMAGE_WINDOW = 64
_DAMAGE_MIN_FALLS = 63
_DAMAGE_FIRST_SAMPLE = 65


MeasurementTamper = Callable[[float, Mapping[str, float]], Mapping[str, float]]
"""``tamper(batch_time_h, measured) -> measured'``: e.g. an ``aseptic.campaign`` primitive's apply."""

SpectrumTamper = Callable[[float, np.ndarray], np.ndarray]
"""``tamper(batch_time_h, spectrum) -> spectrum'``: an attacker between the Raman analyser and the model."""


def _col(name: str) -> int:
    return TAG_INDEX[name]


class BatchEngine:
    """Advance ``len(draws)`` batches in lock step (finished batches stop changing)."""

    def __init__(
        self,
        draws: Sequence[BatchDraw],
        faults: Sequence[tuple[Fault, ...]],
        *,
        sample_time_h: float,
        setpoints: tuple[float, float, float],
        paa_control: PaaControl = "softsensor",
        n_substeps: int = 20,
        tampers: Sequence[MeasurementTamper | None] | None = None,
        soft_sensor: Any = None,
        spectrum_tampers: Sequence[SpectrumTamper | None] | None = None,
    ) -> None:
        """``soft_sensor``: the PaaSoftSensor in the loop (default: ``default_soft_sensor()``);
        ``spectrum_tampers``: per batch, what an attacker does to each Raman spectrum (or None)."""
        n = len(draws)
        # Per batch: what an attacker at the sensor (L0/L1) does to the measurements, if anything.
        self.tampers = tuple(tampers) if tampers is not None else (None,) * n
        if len(self.tampers) != n:
            raise ValueError(f"{len(self.tampers)} tampers for {n} batches")
        self.draws = tuple(draws)
        self.faults = tuple(faults)
        self.h = sample_time_h
        self.n_sub = n_substeps
        self.paa_control: PaaControl = paa_control
        self.k = 0
        self.x = np.stack([d.initial_state for d in draws]).astype(np.float64)
        self.x0 = self.x.copy()
        self.q_base = np.stack([d.params for d in draws]).astype(np.float64)
        self.acc = np.zeros((n, k.N_ACC))
        self.u = np.zeros((n, k.N_INPUTS))
        self.derived = np.zeros((n, k.N_DERIVED))
        self.duration_h = np.array([d.duration_h for d in draws])
        self.n_samples = np.rint(self.duration_h / sample_time_h).astype(np.int64)
        self.active = np.ones(n, dtype=np.bool_)
        n_max = int(self.n_samples.max()) + 8
        self.dist = np.zeros((n, n_max, 8))
        self.noise = np.zeros((n, n_max, len(TAGS)))
        self.check_error = np.zeros((n, n_max, len(CHECK_TAGS)))
        for b, d in enumerate(draws):
            m = min(n_max, d.disturbances.shape[0])
            self.dist[b, :m] = d.disturbances[:m]
            self.noise[b, :m] = d.sensor_noise[:m]
            self.check_error[b, :m] = d.check_error[:m]
        self.ph_sp = np.full(n, setpoints[0])
        self.temp_sp = np.full(n, setpoints[1])
        self.paa_sp = np.full(n, setpoints[2])
        # Per batch and loop: the factor on the controller's proportional gain (1: as tuned).
        self.gains = {"ph": np.ones(n), "temperature": np.ones(n), "paa": np.ones(n)}
        ph0 = -np.log10(self.x[:, k.H])
        self.ph_hist = np.repeat(ph0[:, None], 3, axis=1)
        self.temp_hist = np.repeat(self.x[:, k.T][:, None], 3, axis=1)
        self.e_ph = self.ph_sp - ph0
        self.e_temp = self.temp_sp - self.x[:, k.T]
        self.e_paa = np.zeros(n)
        self.base = np.zeros(n)
        self.acid = np.zeros(n)
        self.cool = np.full(n, 1e-4)
        self.heat = np.full(n, 1e-4)
        self.paa_feed = np.zeros(n)
        self.paa_estimate = self.x[:, k.PAA].copy()
        self.mue_hist = np.zeros((n, _DAMAGE_WINDOW + 1))
        self.damaged = np.zeros(n, dtype=np.bool_)
        self.assays = np.full((n, n_max + ASSAY_DELAY_SAMPLES + 1, len(ASSAY_TAGS)), np.nan)
        self.assay_take = np.zeros((n, n_max + 1), dtype=np.bool_)
        for b in range(n):
            for sample in assay_sample_indices(int(self.n_samples[b]), sample_time_h):
                self.assay_take[b, sample] = True
        self._analysers: list[Any] = []
        self._estimators: list[Any] = []
        # Per batch: PAA loop on the validated assay-based fallback (the model guard's call).
        self.paa_fallback = np.zeros(n, dtype=np.bool_)
        self.spectrum_tampers = tuple(spectrum_tampers) if spectrum_tampers is not None else (None,) * n
        if len(self.spectrum_tampers) != n:
            raise ValueError(f"{len(self.spectrum_tampers)} spectrum tampers for {n} batches")
        self.last_spectra: list[np.ndarray | None] = [None] * n
        self._last_paa_assay = np.full(n, np.nan)  # reported at the last sample (NaN: none)
        self._previous_paa_assay = np.full(n, np.nan)  # the report before the latest one
        # The PAA feed of the last 10 h: on a switch to the fallback the feed restarts from its median,
        # the last validated operating point, not from what a misled controller just did.
        self._paa_feed_hist = np.zeros((n, _FALLBACK_FEED_WINDOW))
        self._fallback_applied = np.zeros(n, dtype=np.bool_)
        if paa_control == "softsensor":
            from aseptic.twin._raman import RamanAnalyser
            from aseptic.twin._softsensor_loop import PaaEstimator, default_soft_sensor

            sensor = default_soft_sensor() if soft_sensor is None else soft_sensor
            for d in draws:
                self._analysers.append(RamanAnalyser(np.random.default_rng(d.raman_seed)))
                self._estimators.append(PaaEstimator(sensor))

    @property
    def time_h(self) -> float:
        """Hours since inoculation (end of the last sample)."""
        return self.k * self.h

    def _inputs(self, t_h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.x.shape[0]
        t = np.full(n, t_h)
        u = self.u
        u[:, k.FS] = RECIPE.sugar_l_per_h.at(t)
        u[:, k.FOIL] = RECIPE.oil_l_per_h.at(t)
        u[:, k.FG] = RECIPE.aeration_m3_per_min.at(t)
        u[:, k.PHEAD] = RECIPE.head_pressure_bar.at(t)
        u[:, k.FW] = RECIPE.water_l_per_h.at(t)
        u[:, k.FDIS] = -discharge_kg_per_h(t)
        u[:, k.RPM] = RECIPE.agitator_rpm
        u[:, k.FNH3] = 0.0
        fx = fault_effects(self.faults, self.k)
        for col, forced in (
            (k.FG, fx.aeration_m3_per_min),
            (k.PHEAD, fx.head_pressure_bar),
            (k.FS, fx.sugar_l_per_h),
        ):
            u[:, col] = np.where(np.isnan(forced), u[:, col], forced)
        base, acid, self.e_ph = ph_split_range(
            self.ph_sp, self.ph_hist, self.e_ph, self.base, self.acid, self.h, self.gains["ph"]
        )
        cool, heat, self.e_temp = temperature_split_range(
            self.temp_sp, self.temp_hist, self.e_temp, self.cool, self.heat, self.h, self.gains["temperature"]
        )
        self.base = np.where(np.isnan(fx.base_l_per_h), base, fx.base_l_per_h)
        self.cool = np.where(np.isnan(fx.cooling_l_per_h), cool, fx.cooling_l_per_h)
        self.acid, self.heat = acid, heat
        recipe_paa = RECIPE.paa_l_per_h.at(t)
        if self.paa_control == "recipe" or t_h < PAA_LOOP_START_H:
            self.paa_feed = recipe_paa
        else:
            e_now = self.paa_sp - self.paa_estimate
            flat = np.zeros((n, 3))
            starting = self.paa_fallback & ~self._fallback_applied
            if starting.any():
                restart = np.median(self._paa_feed_hist, axis=1)
                self.paa_feed = np.where(starting, restart, self.paa_feed)
            self._fallback_applied = self.paa_fallback.copy()
            pid_feed = incremental_pid(
                PAA_TUNING, self.paa_feed, e_now, self.e_paa, flat, self.h, self.gains["paa"]
            )
            if self.paa_fallback.any():
                fallback_feed = assay_paa_feed(
                    self.paa_feed, self._last_paa_assay, self._previous_paa_assay, self.paa_sp
                )
                pid_feed = np.where(self.paa_fallback, fallback_feed, pid_feed)
            self.paa_feed = pid_feed
            self.e_paa = e_now
        self._paa_feed_hist = np.column_stack([self._paa_feed_hist[:, 1:], self.paa_feed])
        reported = np.isfinite(self._last_paa_assay)
        self._previous_paa_assay = np.where(reported, self._last_paa_assay, self._previous_paa_assay)
        self._last_paa_assay = np.full(n, np.nan)  # each assay report trims the fallback feed once
        u[:, k.FB], u[:, k.FA], u[:, k.FC], u[:, k.FH] = self.base, self.acid, self.cool, self.heat
        u[:, k.FPAA] = self.paa_feed
        return fx.temperature_bias_k, fx.ph_bias, t

    def step(self) -> dict[str, np.ndarray]:
        """Advance one sample; return every tag (TAGS order) as an array over the batches."""
        if not self.active.any():
            raise RuntimeError("every batch has finished")
        t_start = self.time_h
        self.k += 1
        t_end = self.time_h
        t_bias, ph_bias, _t_vec = self._inputs(t_end)
        q = self.q_base.copy()
        q[:, :8] += self.dist[:, self.k - 1, :]
        q[self.damaged, k.MU_X] = self.q_base[self.damaged, k.MU_X]
        k.advance(self.x, self.u, q, self.acc, self.active, t_start, self.h, self.n_sub)
        self._growth_damage()
        k.derive(self.x, self.u, q, self.derived)
        tags = self._measure(t_bias, ph_bias, t_end)
        self.active &= self.k < self.n_samples
        return tags

    def _growth_damage(self) -> None:
        """Reproduced quirk: a sustained fall of mu_e fixes mu_X,max at the current mu_e."""
        self.mue_hist = np.roll(self.mue_hist, -1, axis=1)
        self.mue_hist[:, -1] = self.x[:, k.MUE_INT]
        if self.k <= _DAMAGE_FIRST_SAMPLE:
            return
        falls = (np.diff(self.mue_hist, axis=1) < 0.0).sum(axis=1)
        newly = (falls >= _DAMAGE_MIN_FALLS) & ~self.damaged & self.active
        if newly.any():
            self.q_base[newly, k.MU_X] = self.x[newly, k.MUE_INT] / self.h
            self.damaged |= newly

    def _measure(self, t_bias: np.ndarray, ph_bias: np.ndarray, t_end: float) -> dict[str, np.ndarray]:
        x, u, noise = self.x, self.u, self.noise[:, self.k - 1, :] * NOISE_SD
        ph_true = -np.log10(x[:, k.H])
        check = self.check_error[:, self.k - 1, :]
        o2 = x[:, k.O2] + noise[:, _col("offgas_o2_fraction")]
        co2 = x[:, k.CO2] + noise[:, _col("offgas_co2_pct")]
        out: dict[str, np.ndarray] = {
            "temperature_k": x[:, k.T] + t_bias,
            "ph": ph_true + ph_bias,
            "dissolved_o2_mg_per_l": x[:, k.DO2],
            "offgas_o2_fraction": o2,
            "offgas_co2_pct": co2,
            "our_kg_per_min": our_from_offgas(u[:, k.FG], o2, co2),
            "cer_kg_per_min": cer_from_offgas(u[:, k.FG], co2),
            "volume_l": x[:, k.V],
            "weight_kg": x[:, k.WT],
            "head_pressure_bar": u[:, k.PHEAD],
            "agitator_power_kw": self.derived[:, k.D_P_W_KW],
            # The check instruments: the true state through their own calibration error; a loop
            # element's sensor fault (``t_bias``, ``ph_bias``) is not theirs.
            "temperature_2_k": x[:, k.T] + check[:, CHECK_TAGS.index("temperature_2_k")],
            "ph_2": ph_true + check[:, CHECK_TAGS.index("ph_2")],
            "agitator_rpm": u[:, k.RPM],
            "sugar_feed_l_per_h": u[:, k.FS],
            "oil_feed_l_per_h": u[:, k.FOIL],
            "paa_feed_l_per_h": u[:, k.FPAA],
            "water_feed_l_per_h": u[:, k.FW],
            "discharge_kg_per_h": -u[:, k.FDIS],
            "acid_flow_l_per_h": u[:, k.FA],
            "base_flow_l_per_h": u[:, k.FB],
            "cooling_water_l_per_h": u[:, k.FC],
            "heating_water_l_per_h": u[:, k.FH],
            "aeration_m3_per_min": u[:, k.FG],
        }
        for name in list(out):
            if name not in ("offgas_o2_fraction", "offgas_co2_pct"):
                out[name] = out[name] + noise[:, _col(name)]
        self._tamper(out, t_end)
        self.ph_hist = np.column_stack([out["ph"], self.ph_hist[:, :2]])
        self.temp_hist = np.column_stack([out["temperature_k"], self.temp_hist[:, :2]])
        out["temperature_sp_k"] = self.temp_sp.copy()
        out["ph_sp"] = self.ph_sp.copy()
        out["paa_sp_mg_per_l"] = self.paa_sp.copy()
        out["paa_softsensor_mg_per_l"] = self._soft_sensor(t_end)
        out.update(self._assays(noise))
        n = x.shape[0]
        out["batch_time_h"] = np.full(n, t_end)
        out["phase_index"] = phase_at(np.full(n, t_end), self.duration_h, self.h).astype(np.float64)
        return {t.name: out[t.name] for t in TAGS}

    def _tamper(self, out: dict[str, np.ndarray], t_end: float) -> None:
        """Let each batch's tamper rewrite its measurements before the controllers read them.

        This is a sensor spoofed at the instrument: the PID loops act on the false value, so the
        true process moves, and the false value is also what gets published.
        """
        for b, tamper in enumerate(self.tampers):
            if tamper is None or not self.active[b]:
                continue
            seen = {name: float(values[b]) for name, values in out.items()}
            for name, value in tamper(t_end, seen).items():
                if name not in out:
                    raise ValueError(f"a measurement tamper returned unknown tag {name!r}")
                out[name][b] = value

    def _soft_sensor(self, t_end: float) -> np.ndarray:
        n = self.x.shape[0]
        if self.paa_control == "softsensor":
            est = np.empty(n)
            biomass = self.x[:, k.A0] + self.x[:, k.A1] + self.x[:, k.A3] + self.x[:, k.A4]
            for b in range(n):
                if not self.active[b]:
                    est[b] = self.paa_estimate[b]
                    continue
                xb = self.x[b]
                spectrum = self._analysers[b].measure(
                    float(xb[k.S]),
                    float(xb[k.PAA]),
                    float(xb[k.P]),
                    float(biomass[b]),
                    float(xb[k.VISC]),
                    t_end,
                )
                tamper = self.spectrum_tampers[b]
                if tamper is not None:
                    spectrum = np.asarray(tamper(t_end, spectrum), dtype=np.float64)
                self.last_spectra[b] = spectrum
                est[b] = self._estimators[b].update(spectrum)
            self.paa_estimate = est
            return est.copy()
        self.paa_estimate = self.x[:, k.PAA].copy()  # "true": the loop sees the true PAA
        return np.full(n, np.nan)

    def _assays(self, noise: np.ndarray) -> dict[str, np.ndarray]:
        """Record the assays of samples taken now (with lab error, never below 0); report due ones."""
        rows = np.arange(self.x.shape[0])
        take = self.assay_take[:, self.k] & self.active
        if take.any():
            x = self.x[take]
            values = []
            for name, (state, scale) in ASSAY_TAGS.items():
                col = x[:, k.A0] + x[:, k.A1] + x[:, k.A3] + x[:, k.A4] if state < 0 else x[:, state]
                values.append(np.maximum(col * scale + noise[take, _col(name)], 0.0))
            self.assays[rows[take], self.k + ASSAY_DELAY_SAMPLES, :] = np.column_stack(values)
        report = self.assays[:, self.k, :]
        reported = {name: report[:, i].copy() for i, name in enumerate(ASSAY_TAGS)}
        self._last_paa_assay = reported["assay_paa_mg_per_l"].copy()
        return reported
