"""The batch model's file format: canonical JSON with base64 float64 arrays, validated on read.

```
{"arrays": {"<name>": {"data": "<base64 little-endian float64>", "dtype": "<f8", "shape": [..]}},
 "format": "aseptic.detect.batch-model", "meta": {...}, "version": 1}
```

Sorted keys and no whitespace make the bytes a function of the model alone. Nothing is executed
on load (no pickle): every field is type- and shape-checked and every number must be finite.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import numpy as np

from aseptic.detect._align import Alignment
from aseptic.detect._detector import FloatArray
from aseptic.detect._model import BatchModel
from aseptic.detect._pca import Pca
from aseptic.errors import InputError

__all__ = ["MODEL_FORMAT", "MODEL_FORMAT_VERSION", "decode_model", "encode_model"]

MODEL_FORMAT = "aseptic.detect.batch-model"
MODEL_FORMAT_VERSION = 1

_FLOATS = (
    "t2_limit",
    "spe_limit",
    "t2_limit_theory",
    "spe_limit_theory",
    "cusum_k",
    "false_alarm_rate",
    "sample_step_h",
)
_INTS = ("training_batches", "excluded_batches", "training_samples", "seed")


def encode_model(model: BatchModel) -> bytes:
    """The model as canonical JSON bytes (deterministic)."""
    arrays = {
        "mean": model.alignment.mean,
        "spread": model.alignment.spread,
        "loadings": model.pca.loadings,
        "eigenvalues": model.pca.eigenvalues,
        "residual_eigenvalues": model.pca.residual_eigenvalues,
        "drift_lambda": model.drift_lambda,
        "drift_scale": model.drift_scale,
        "coverage": model.alignment.coverage,
        "z_limit": model.z_limit,
        "cusum_h": model.cusum_h,
        "recipe_mean": model.recipe.mean,
        "recipe_tolerance": model.recipe.spread,
    }
    meta: dict[str, Any] = {name: float(getattr(model, name)) for name in _FLOATS}
    meta.update({name: int(getattr(model, name)) for name in _INTS})
    meta["tags"] = list(model.tags)
    meta["recipe_tags"] = list(model.recipe.tags)
    meta["step_h"] = model.alignment.step_h if model.aligned else None
    doc = {
        "arrays": {name: _encode_array(a) for name, a in arrays.items()},
        "format": MODEL_FORMAT,
        "meta": meta,
        "version": MODEL_FORMAT_VERSION,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode_model(data: bytes, *, source: str = "<bytes>") -> BatchModel:
    """Parse and validate model bytes.

    Raises:
        InputError: not JSON (e.g. truncated), another format or version, a missing or mistyped
            field, inconsistent shapes or a non-finite number; the message names ``source``.
    """
    try:
        doc = json.loads(data.decode("utf-8"))
        return _build(doc)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"model file {source} is not a model (truncated or garbled): {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"model file {source} is not a valid {MODEL_FORMAT} v{MODEL_FORMAT_VERSION}: {exc}"
        ) from None


def _build(doc: Any) -> BatchModel:
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        raise ValueError(f"format is not {MODEL_FORMAT!r}")
    if doc.get("version") != MODEL_FORMAT_VERSION:
        raise ValueError(f"unsupported version {doc.get('version')!r}")
    meta, raw = doc["meta"], doc["arrays"]
    tags = meta["tags"]
    if not isinstance(tags, list) or len(tags) < 2 or not all(isinstance(t, str) for t in tags):
        raise ValueError("tags must be a list of at least 2 names")
    recipe_tags = meta["recipe_tags"]
    if not isinstance(recipe_tags, list) or not all(isinstance(t, str) for t in recipe_tags):
        raise ValueError("recipe_tags must be a list of names")
    if len(set(tags + recipe_tags)) != len(tags) + len(recipe_tags):
        raise ValueError("tags repeat")
    floats = {name: _finite(meta[name], name) for name in _FLOATS}
    ints = {name: meta[name] for name in _INTS}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints.values()):
        raise ValueError(f"{', '.join(_INTS)} must be non-negative integers")
    step = meta["step_h"]
    step_h = math.inf if step is None else _finite(step, "step_h")
    if step_h <= 0 or floats["sample_step_h"] <= 0 or floats["cusum_k"] <= 0:
        raise ValueError("step_h, sample_step_h and cusum_k must be positive")
    if not 0 < floats["false_alarm_rate"] < 0.5:
        raise ValueError("false_alarm_rate must be in (0, 0.5)")
    arrays = {name: _decode_array(raw[name], name) for name in _ARRAY_NAMES}
    p = len(tags)
    a = arrays["eigenvalues"].shape[0] if arrays["eigenvalues"].ndim == 1 else -1
    slices = arrays["mean"].shape[0] if arrays["mean"].ndim == 2 else 0
    expected = {
        "mean": (slices, p),
        "spread": (slices, p),
        "loadings": (p, a),
        "eigenvalues": (a,),
        "residual_eigenvalues": (p - a,),
        "drift_lambda": (p,),
        "drift_scale": (p,),
        "coverage": (slices,),
        "z_limit": (p,),
        "cusum_h": (p,),
        "recipe_mean": (slices, len(recipe_tags)),
        "recipe_tolerance": (slices, len(recipe_tags)),
    }
    for name, shape in expected.items():
        if arrays[name].shape != shape or slices < 1 or not 1 <= a < p:
            raise ValueError(f"array {name!r} has shape {arrays[name].shape}, expected {shape}")
    for name in ("spread", "eigenvalues", "drift_scale", "recipe_tolerance", "z_limit", "cusum_h"):
        if not np.all(arrays[name] > 0):
            raise ValueError(f"array {name!r} must be positive")
    if not np.all((arrays["drift_lambda"] >= 0) & (arrays["drift_lambda"] <= 1)):
        raise ValueError("array 'drift_lambda' must be in [0, 1]")
    coverage = arrays["coverage"]
    alignment = Alignment(tuple(tags), step_h, arrays["mean"], arrays["spread"], coverage)
    recipe = Alignment(
        tuple(recipe_tags), step_h, arrays["recipe_mean"], arrays["recipe_tolerance"], coverage
    )
    pca = Pca(arrays["loadings"], arrays["eigenvalues"], arrays["residual_eigenvalues"])
    return BatchModel(
        tags=tuple(tags),
        alignment=alignment,
        recipe=recipe,
        pca=pca,
        z_limit=arrays["z_limit"],
        t2_limit=floats["t2_limit"],
        spe_limit=floats["spe_limit"],
        t2_limit_theory=floats["t2_limit_theory"],
        spe_limit_theory=floats["spe_limit_theory"],
        drift_lambda=arrays["drift_lambda"],
        drift_scale=arrays["drift_scale"],
        cusum_k=floats["cusum_k"],
        cusum_h=arrays["cusum_h"],
        false_alarm_rate=floats["false_alarm_rate"],
        sample_step_h=floats["sample_step_h"],
        training_batches=ints["training_batches"],
        excluded_batches=ints["excluded_batches"],
        training_samples=ints["training_samples"],
        seed=ints["seed"],
    )


_ARRAY_NAMES = (
    "mean",
    "spread",
    "loadings",
    "eigenvalues",
    "residual_eigenvalues",
    "drift_lambda",
    "drift_scale",
    "recipe_mean",
    "recipe_tolerance",
    "coverage",
    "z_limit",
    "cusum_h",
)


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number (got {value!r})")
    return float(value)


def _encode_array(a: FloatArray) -> dict[str, Any]:
    arr = np.ascontiguousarray(a, dtype="<f8")
    return {"data": base64.b64encode(arr.tobytes()).decode("ascii"), "dtype": "<f8", "shape": list(arr.shape)}


def _decode_array(doc: Any, name: str) -> FloatArray:
    if not isinstance(doc, dict) or doc.get("dtype") != "<f8":
        raise ValueError(f"array {name!r} is not a <f8 array")
    shape = doc.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"array {name!r} has a malformed shape {shape!r}")
    try:
        raw = base64.b64decode(str(doc.get("data", "")), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"array {name!r} data is not base64 ({exc})") from None
    if len(raw) != 8 * math.prod(shape):
        raise ValueError(f"array {name!r} has {len(raw)} bytes for shape {shape}")
    out = np.frombuffer(raw, dtype="<f8").reshape(shape).astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"array {name!r} has non-finite values")
    return out
