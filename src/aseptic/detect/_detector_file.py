"""Saving and loading the integrity and twin-residual detectors, digest-checked like the batch model.

```
{"arrays": {"<name>": {"data": "<base64 <f8>", "dtype": "<f8", "shape": [..]}},
 "format": "aseptic.detect.detector", "kind": "stale" | "replay" | "physics" | "twin" | "redundancy",
 "meta": {...}, "version": 1}
```

Canonical JSON (sorted keys, no whitespace): the same fitted detector always gives the same bytes.
``save_detector`` writes ``<path>.sha256`` beside the file; ``load_detector`` checks the bytes
against the expected (or recorded) digest *before* parsing (``IntegrityError``, fail closed), then
validates every field (``InputError``). Nothing is executed on load (no pickle).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from aseptic.detect._align import Alignment
from aseptic.detect._codec import _decode_array, _encode_array, _finite
from aseptic.detect._detector import FloatArray
from aseptic.detect._physics import BALANCED, LOOPS, PhysicsDetector
from aseptic.detect._redundancy import TREND_WINDOW_H, RedundancyDetector, redundant_pairs
from aseptic.detect._replay import ReplayDetector
from aseptic.detect._stale import StaleValueDetector
from aseptic.detect._store import _recorded_digest, _write_atomic, digest_path, model_digest
from aseptic.detect._twin_residual import TwinResidualDetector
from aseptic.errors import InputError, IntegrityError

__all__ = ["DETECTOR_FORMAT", "FileDetector", "load_detector", "save_detector"]

DETECTOR_FORMAT = "aseptic.detect.detector"
DETECTOR_FORMAT_VERSION = 1

FileDetector = (
    StaleValueDetector | ReplayDetector | PhysicsDetector | TwinResidualDetector | RedundancyDetector
)


def save_detector(detector: FileDetector, path: Path) -> str:
    """Write a fitted detector to ``path`` and its digest to ``<path>.sha256``; returns the digest.

    Raises:
        RuntimeError: the detector is not fitted.
        OSError: the file cannot be written.
    """
    data = encode_detector(detector)
    digest = model_digest(data)
    _write_atomic(path, data)
    _write_atomic(digest_path(path), f"{digest}  {path.name}\n".encode("ascii"))
    return digest


def load_detector(path: Path, expected_digest: str | None = None) -> FileDetector:
    """Load a detector after checking its bytes against ``expected_digest`` or the recorded digest.

    Raises:
        IntegrityError: digest mismatch, or no readable recorded digest and none given.
        InputError: missing, truncated or inconsistent file.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"detector file {path} cannot be read: {exc.strerror}", hint="train one first"
        ) from None
    computed = model_digest(data)
    expected = (expected_digest if expected_digest is not None else _recorded_digest(path)).strip().lower()
    if computed != expected:
        raise IntegrityError(
            f"detector file {path}: SHA-256 {computed} does not match the expected {expected}",
            hint="the detector was modified or replaced after training; retrain or restore it",
        )
    return decode_detector(data, source=str(path))


def encode_detector(detector: FileDetector) -> bytes:
    """The fitted detector as canonical JSON bytes."""
    if not detector._fitted:
        raise RuntimeError(f"detector {detector.name!r} is not fitted: nothing to save")
    kind, meta, arrays = _state(detector)
    doc = {
        "arrays": {name: _encode_array(a) for name, a in arrays.items()},
        "format": DETECTOR_FORMAT,
        "kind": kind,
        "meta": meta,
        "version": DETECTOR_FORMAT_VERSION,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode_detector(data: bytes, *, source: str = "<bytes>") -> FileDetector:
    """Parse and validate detector bytes (InputError naming ``source`` on any problem)."""
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != DETECTOR_FORMAT:
            raise ValueError(f"format is not {DETECTOR_FORMAT!r}")
        if doc.get("version") != DETECTOR_FORMAT_VERSION:
            raise ValueError(f"unsupported version {doc.get('version')!r}")
        arrays = {str(k): _decode_array(v, str(k)) for k, v in doc["arrays"].items()}
        return _build(str(doc["kind"]), doc["meta"], arrays)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"detector file {source} is not a detector (truncated or garbled): {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"detector file {source} is not a valid {DETECTOR_FORMAT} v1: {exc}") from None


def _state(d: FileDetector) -> tuple[str, dict[str, Any], dict[str, FloatArray]]:
    if isinstance(d, RedundancyDetector):
        meta, arrays = d.state()
        return "redundancy", dict(meta), arrays
    if isinstance(d, StaleValueDetector):
        meta = {
            "name": d.name,
            "max_moving_run": d._max_moving_run,
            "tags": list(d.tags),
            "excluded": list(d.excluded),
        }
        return (
            "stale",
            meta,
            {"tolerance": d.tolerance, "limit": d.limit_samples, "low": d._low, "high": d._high},
        )
    if isinstance(d, ReplayDetector):
        meta = {"name": d.name, "window": d._window, "margin": d._margin, "tags": list(d.tags)}
        return "replay", meta, {"noise": d.noise, "d_min": d.d_min}
    if isinstance(d, PhysicsDetector):
        meta = {"name": d.name, "window": d._window, "margin": d._margin, "h": d._h}
        arrays = {
            "coefficients": d.coefficients,
            "balance_limit": d.balance_limit,
            "band": d.band,
            "actuator_max": d.actuator_max,
            "loop_limit": d.loop_limit,
        }
        return "physics", meta, arrays
    a = d.alignment
    if a is None:
        raise RuntimeError("twin residual detector has no alignment")
    meta = {
        "name": d.name,
        "window": d._window,
        "ewma_lambda": d._lambda,
        "margin": d._margin,
        "seed": d._seed,
        "tags": list(d.tags),
        "step_h": a.step_h,
    }
    arrays = {
        "mean": a.mean,
        "spread": a.spread,
        "coverage": a.coverage,
        "step_coef": d.step_coef,
        "level_coef": d.level_coef,
        "step_scale": d.step_scale,
        "level_scale": d.level_scale,
        "step_limit": d.step_limit,
        "level_limit": d.level_limit,
    }
    return "twin", meta, arrays


def _tags(meta: Any, key: str = "tags") -> tuple[str, ...]:
    tags = meta[key]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags) or len(set(tags)) != len(tags):
        raise ValueError(f"{key} must be a list of distinct names")
    return tuple(tags)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false (got {value!r})")
    return value


def _int(meta: Any, key: str, low: int) -> int:
    v = meta[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{key} must be an integer >= {low} (got {v!r})")
    return v


def _shape(
    arrays: dict[str, FloatArray], name: str, shape: tuple[int, ...], *, positive: bool = False
) -> FloatArray:
    a = arrays[name]
    if a.shape != shape:
        raise ValueError(f"array {name!r} has shape {a.shape}, expected {shape}")
    if positive and not np.all(a > 0):
        raise ValueError(f"array {name!r} must be positive")
    return a


def _build(kind: str, meta: Any, arrays: dict[str, FloatArray]) -> FileDetector:
    name = str(meta["name"])
    if kind == "stale":
        tags = _tags(meta)
        one = (len(tags),)
        s = StaleValueDetector(max_moving_run=_int(meta, "max_moving_run", 1), name=name)
        s.tags, s.excluded = tags, _tags(meta, "excluded")
        s.tolerance = _shape(arrays, "tolerance", one, positive=True)
        s.limit_samples = _shape(arrays, "limit", one, positive=True)
        s._low, s._high = _shape(arrays, "low", one), _shape(arrays, "high", one)
        s._fitted = True
        s.reset()
        return s
    if kind == "replay":
        tags = _tags(meta)
        r = ReplayDetector(
            window=_int(meta, "window", 2), margin=_finite(meta["margin"], "margin"), name=name
        )
        r.tags = tags
        r.noise = _shape(arrays, "noise", (len(tags),), positive=True)
        r.d_min = _shape(arrays, "d_min", (len(tags),), positive=True)
        r._fitted = True
        r.reset()
        return r
    if kind == "physics":
        ph = PhysicsDetector(
            window=_int(meta, "window", 1), margin=_finite(meta["margin"], "margin"), name=name
        )
        ph._h = _finite(meta["h"], "h")
        if ph._h <= 0:
            raise ValueError("h must be positive")
        ph.coefficients = _shape(arrays, "coefficients", (len(BALANCED), 3))
        ph.balance_limit = _shape(arrays, "balance_limit", (len(BALANCED),), positive=True)
        ph.band = _shape(arrays, "band", (len(LOOPS),))
        ph.actuator_max = _shape(arrays, "actuator_max", (len(LOOPS),))
        ph.loop_limit = _shape(arrays, "loop_limit", (len(LOOPS),), positive=True)
        ph._fitted = True
        ph.reset()
        return ph
    if kind == "twin":
        tags = _tags(meta)
        p = len(tags)
        lam = _finite(meta["ewma_lambda"], "ewma_lambda")
        if not 0 < lam <= 1 or p < 2:
            raise ValueError("ewma_lambda must be in (0, 1] and tags at least 2")
        t = TwinResidualDetector(
            window=_int(meta, "window", 1),
            ewma_lambda=lam,
            margin=_finite(meta["margin"], "margin"),
            seed=_int(meta, "seed", 0),
            name=name,
        )
        step_h = _finite(meta["step_h"], "step_h")
        mean = arrays["mean"]
        if mean.ndim != 2 or mean.shape[1] != p or mean.shape[0] < 1 or step_h <= 0:
            raise ValueError(f"array 'mean' has shape {mean.shape}, expected (slices, {p})")
        slices = mean.shape[0]
        spread = _shape(arrays, "spread", (slices, p), positive=True)
        coverage = _shape(arrays, "coverage", (slices,))
        t.alignment = Alignment(tags, step_h, mean, spread, coverage)
        t.tags = tags
        t.step_coef = _shape(arrays, "step_coef", (p, 2 * p + 1))
        t.level_coef = _shape(arrays, "level_coef", (p, p + 1))
        for attr in ("step_scale", "level_scale", "step_limit", "level_limit"):
            setattr(t, attr, _shape(arrays, attr, (p,), positive=True))
        t._fitted = True
        t.reset()
        return t
    if kind == "redundancy":
        return _build_redundancy(meta, arrays, name)
    raise ValueError(f"unknown detector kind {kind!r}")


def _build_redundancy(meta: Any, arrays: dict[str, FloatArray], name: str) -> RedundancyDetector:
    known = set(redundant_pairs())
    pairs = meta["pairs"]
    if not isinstance(pairs, list) or not pairs:
        raise ValueError("pairs must be a non-empty list")
    checked = []
    for pair in pairs:
        if not isinstance(pair, list) or tuple(pair) not in known:
            raise ValueError(f"pair {pair!r} is not a loop tag and its check element")
        checked.append((str(pair[0]), str(pair[1])))
    if len(set(checked)) != len(checked):
        raise ValueError("pairs must be distinct")
    r = RedundancyDetector(
        min_fit_h=_finite(meta["min_fit_h"], "min_fit_h"),
        k=_finite(meta["k"], "k"),
        arl_h=_finite(meta["arl_h"], "arl_h"),
        margin=_finite(meta["margin"], "margin"),
        # Files written before ADR 0401 have no trend test: they load as the CUSUM alone.
        trend=_flag(meta.get("trend", False), "trend"),
        trend_window_h=_finite(meta.get("trend_window_h", TREND_WINDOW_H), "trend_window_h"),
        name=name,
    )
    r.pairs = tuple(checked)
    one = (len(checked),)
    r.noise_sd = _shape(arrays, "noise_sd", one, positive=True)
    r.wander_sd = _shape(arrays, "wander_sd", one)
    r.offset_sd = _shape(arrays, "offset_sd", one, positive=True)
    r.drift_sd = _shape(arrays, "drift_sd", one, positive=True)
    if not np.all(r.wander_sd >= 0):
        raise ValueError("array 'wander_sd' must not be negative")
    r.limit = _finite(meta["limit"], "limit")
    r.step_h = _finite(meta["step_h"], "step_h")
    if r.limit <= 0 or r.step_h <= 0:
        raise ValueError("limit and step_h must be positive")
    if r.limits().get("trend") is not None:
        r.trend_limit = _finite(meta["trend_limit"], "trend_limit")
        if r.trend_limit <= 0:
            raise ValueError("trend_limit must be positive")
    r._fitted = True
    r.reset()
    return r
