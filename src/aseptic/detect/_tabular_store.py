"""Saving and loading tabular detectors and ensembles: canonical JSON, SHA-256 beside it, no pickle.

Same mechanism as the batch model (``_store``): the bytes are canonical JSON (sorted keys, float64
arrays in base64) so the same model always gives the same digest; ``<file>.sha256`` records it;
loading verifies the bytes against the expected (or recorded) digest *before* parsing, then
validates every field (shapes, finite numbers) while rebuilding the detector.

```
{"format": "aseptic.detect.tabular", "version": 1, "kind": "predictor" | ... | "ensemble",
 "meta": {...}, "arrays": {...}, "members": [ {kind, meta, arrays}, ... ]  # ensembles only}
```
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from aseptic.detect._autoencoder import AutoencoderDetector
from aseptic.detect._codec import _decode_array, _encode_array
from aseptic.detect._control_rule import ControlRuleDetector
from aseptic.detect._detector import FloatArray
from aseptic.detect._dpca import DynamicPcaDetector
from aseptic.detect._ensemble import Ensemble
from aseptic.detect._ewma import EwmaResidualDetector
from aseptic.detect._frozen import FrozenValueDetector
from aseptic.detect._mass_balance import MassBalanceDetector
from aseptic.detect._pca_tabular import PcaDetector
from aseptic.detect._predictor import TagPredictorDetector
from aseptic.detect._store import _recorded_digest, _write_atomic, digest_path, model_digest
from aseptic.detect._tabular import TabularDetector, meta_columns, meta_float, meta_int
from aseptic.errors import InputError, IntegrityError

__all__ = [
    "TABULAR_FORMAT",
    "decode_detector",
    "encode_detector",
    "load_tabular_detector",
    "save_tabular_detector",
]

TABULAR_FORMAT = "aseptic.detect.tabular"
TABULAR_FORMAT_VERSION = 1


class _Restorable(Protocol):
    def __call__(self, meta: dict[str, Any], arrays: dict[str, FloatArray]) -> TabularDetector: ...


_KINDS: dict[str, _Restorable] = {
    "pca": PcaDetector.from_state,
    "dpca": DynamicPcaDetector.from_state,
    "predictor": TagPredictorDetector.from_state,
    "ewma": EwmaResidualDetector.from_state,
    "autoencoder": AutoencoderDetector.from_state,
    "frozen": FrozenValueDetector.from_state,
    "rule": ControlRuleDetector.from_state,
    "balance": MassBalanceDetector.from_state,
}


def _kind_of(det: object) -> str:
    kind = getattr(det, "kind", None)
    if not isinstance(kind, str) or kind not in _KINDS:
        raise TypeError(f"cannot save detector of type {type(det).__name__}")
    return kind


def _part(det: TabularDetector) -> dict[str, Any]:
    meta, arrays = det.state()
    return {
        "arrays": {k: _encode_array(v) for k, v in sorted(arrays.items())},
        "kind": _kind_of(det),
        "meta": meta,
    }


def encode_detector(model: TabularDetector | Ensemble) -> bytes:
    """A fitted detector or ensemble as canonical JSON bytes (deterministic).

    Raises:
        RuntimeError: the model is not fitted.
    """
    if not model.columns:
        raise RuntimeError("fit the detector before saving it")
    doc: dict[str, Any] = {"format": TABULAR_FORMAT, "version": TABULAR_FORMAT_VERSION}
    if isinstance(model, Ensemble):
        doc["kind"] = "ensemble"
        doc["meta"] = {
            "columns": list(model.columns),
            "false_alarm_rate": model.false_alarm_rate,
            "held_out_rate": model.held_out_rate,
            "kinds": dict(sorted(model.kinds.items())),
            "members": list(model.members),
            "persistence": model.persistence,
        }
        doc["arrays"] = {"limits": _encode_array(np.array([model.limits[m] for m in model.members]))}
        doc["members"] = [_part(d) for d in model.detectors]
    else:
        doc.update(_part(model))
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode_detector(data: bytes, *, source: str = "<bytes>") -> TabularDetector | Ensemble:
    """Parse and validate detector bytes.

    Raises:
        InputError: not JSON, another format or version, an unknown kind, a missing or mistyped
            field, a wrong shape or a non-finite number; the message names ``source``.
    """
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != TABULAR_FORMAT:
            raise ValueError(f"format is not {TABULAR_FORMAT!r}")
        if doc.get("version") != TABULAR_FORMAT_VERSION:
            raise ValueError(f"unsupported version {doc.get('version')!r}")
        if doc.get("kind") == "ensemble":
            return _ensemble(doc)
        return _detector(doc)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"detector file {source} is not a detector (truncated or garbled): {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"detector file {source} is not a valid {TABULAR_FORMAT} v1: {exc}") from None


def _detector(doc: dict[str, Any]) -> TabularDetector:
    kind = doc["kind"]
    if kind not in _KINDS:
        raise ValueError(f"unknown detector kind {kind!r}")
    arrays = {str(k): _decode_array(v, str(k)) for k, v in dict(doc["arrays"]).items()}
    meta = doc["meta"]
    if not isinstance(meta, dict):
        raise ValueError("meta must be an object")
    return _KINDS[kind](meta, arrays)


def _ensemble(doc: dict[str, Any]) -> Ensemble:
    meta = doc["meta"]
    detectors = [_detector(part) for part in doc["members"]]
    kinds = meta["kinds"]
    if not isinstance(kinds, dict) or not all(isinstance(v, str) for v in kinds.values()):
        raise ValueError("kinds must map names to kinds")
    members = meta["members"]
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise ValueError("members must be a list of names")
    ensemble = Ensemble(
        detectors,
        false_alarm_rate=meta_float(meta, "false_alarm_rate"),
        persistence=meta_int(meta, "persistence", minimum=1),
        members=members,
        kinds=kinds,
    )
    columns = meta_columns(meta)
    if any(d.columns != columns for d in detectors):
        raise ValueError("members were fitted on other columns than the ensemble")
    rate = meta["held_out_rate"]
    held = float(rate) if isinstance(rate, int | float) and math.isfinite(rate) else float("nan")
    ensemble.set_fitted(columns, _decode_array(doc["arrays"]["limits"], "limits"), held)
    return ensemble


def save_tabular_detector(model: TabularDetector | Ensemble, path: Path) -> str:
    """Write the fitted detector or ensemble to ``path`` and its digest to ``<path>.sha256``.

    Returns the SHA-256 hex digest.

    Raises:
        OSError: the file cannot be written.
    """
    data = encode_detector(model)
    digest = model_digest(data)
    _write_atomic(path, data)
    _write_atomic(digest_path(path), f"{digest}  {path.name}\n".encode("ascii"))
    return digest


def load_tabular_detector(path: Path, expected_digest: str | None = None) -> TabularDetector | Ensemble:
    """Load a detector or ensemble after checking its bytes against the expected (or recorded) digest.

    Raises:
        IntegrityError: digest mismatch, or no readable recorded digest and none given (fail closed).
        InputError: the file is missing, unreadable or not a valid detector file.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"detector file {path} does not exist", hint="fit and save one first") from None
    except OSError as exc:
        raise InputError(f"detector file {path} cannot be read: {exc.strerror}") from None
    computed = model_digest(data)
    expected = (expected_digest if expected_digest is not None else _recorded_digest(path)).strip().lower()
    if computed != expected:
        raise IntegrityError(
            f"detector file {path}: SHA-256 {computed} does not match the expected {expected}",
            hint="the detector was modified or replaced after training; refit or restore it",
        )
    return decode_detector(data, source=str(path))
