"""What each attack primitive is called in a scenario file, what it attacks, which techniques it
executes and which parameters it takes (names, types, ranges). The scenario loader checks every step
against this table; the campaign runner maps each name to its implementation.

Targets: ``view`` falsifies what operators and Aseptic see (the plant is untouched), ``loop`` acts
inside the control loop (the controller sees it and moves the true process), ``platform`` attacks
Aseptic itself or its data (identities, models, firmware, the historian, the ledger).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from aseptic.twin import TAGS_BY_NAME, TagKind

__all__ = ["PRIMITIVES", "ParamSpec", "PrimitiveSpec", "check_params"]

ParamType = Literal["number", "integer", "string", "tag", "boolean"]
Target = Literal["view", "loop", "platform"]

_SPOOFABLE = frozenset({TagKind.SENSOR, TagKind.SOFT_SENSOR, TagKind.ASSAY, TagKind.ACTUATOR})


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type, whether it is required, its default and its allowed values."""

    type: ParamType
    required: bool = True
    default: object = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    choices: tuple[str, ...] = ()
    tag_kinds: frozenset[TagKind] = _SPOOFABLE
    description: str = ""


@dataclass(frozen=True)
class PrimitiveSpec:
    """An attack primitive as scenario files name it."""

    name: str
    target: Target
    techniques: tuple[str, ...]
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    description: str = ""
    needs_window: bool = True  # acts over [at_h, at_h + duration_h); False: a one-off action


_PATH = ParamSpec(
    "string",
    required=False,
    default="view",
    choices=("view", "loop"),
    description="view: reported values only; loop: the controller's measurement too",
)
_TAG = ParamSpec("tag", description="the tag attacked")
_SETPOINT = ParamSpec("tag", tag_kinds=frozenset({TagKind.SETPOINT}), description="a setpoint tag")

_SPECS = (
    PrimitiveSpec(
        "sensor_bias",
        "view",
        ("T0856", "T0832"),
        {"tag": _TAG, "offset": ParamSpec("number", description="added to the value"), "path": _PATH},
        "y~ = y + b",
    ),
    PrimitiveSpec(
        "sensor_ramp",
        "view",
        ("T0856", "T0832"),
        {"tag": _TAG, "rate_per_h": ParamSpec("number", description="drift per hour"), "path": _PATH},
        "y~ = y + lambda (t - t_a)",
    ),
    PrimitiveSpec(
        "sensor_surge",
        "view",
        ("T0856", "T0832"),
        {
            "tag": _TAG,
            "direction": ParamSpec("string", choices=("up", "down")),
            "path": _PATH,
        },
        "drive the value to its range limit while staying under the detector, then hold",
    ),
    PrimitiveSpec(
        "sensor_geometric",
        "view",
        ("T0856", "T0832"),
        {
            "tag": _TAG,
            "beta": ParamSpec("number", description="final offset"),
            "alpha": ParamSpec("number", exclusive_minimum=0.0, exclusive_maximum=1.0),
            "path": _PATH,
        },
        "y~ = y - beta alpha^(n - k): the offset grows toward the attack's end",
    ),
    PrimitiveSpec(
        "sensor_replay",
        "view",
        ("T0856", "T0832"),
        {"tag": _TAG, "lag_h": ParamSpec("number", exclusive_minimum=0.0), "path": _PATH},
        "y~(t) = y(t - lag): a recorded window played back",
    ),
    PrimitiveSpec(
        "sensor_stale",
        "view",
        ("T0815", "T0856"),
        {"tag": _TAG, "path": _PATH},
        "the value is held at its last reading (denial of view)",
    ),
    PrimitiveSpec(
        "setpoint_tamper",
        "loop",
        ("T0836", "T0855"),
        {
            "tag": _SETPOINT,
            "value": ParamSpec("number"),
            "identity": ParamSpec(
                "string", required=False, default="operator", description="role of the stolen identity"
            ),
        },
        "a setpoint written with a stolen operator identity",
        needs_window=False,
    ),
    PrimitiveSpec(
        "controller_tuning",
        "loop",
        ("T0821",),
        {
            "loop": ParamSpec("string", choices=("temperature", "ph", "paa", "dissolved_o2")),
            "gain_factor": ParamSpec("number", exclusive_minimum=0.0, maximum=100.0),
        },
        "a controller's gain multiplied",
    ),
    PrimitiveSpec(
        "firmware_swap",
        "platform",
        ("T0839",),
        {"device": ParamSpec("string", description="device name, e.g. ph-probe")},
        "a device's firmware image replaced; it reports a digest no manifest signs",
        needs_window=False,
    ),
    PrimitiveSpec(
        "model_replace",
        "platform",
        ("AML.T0018",),
        {"variant": ParamSpec("string", required=False, default="biased", choices=("biased", "untrained"))},
        "the soft sensor's model file replaced by another",
        needs_window=False,
    ),
    PrimitiveSpec(
        "model_poison",
        "platform",
        ("AML.T0020",),
        {"fraction": ParamSpec("number", exclusive_minimum=0.0, maximum=1.0)},
        "the soft sensor retrained on poisoned calibration data",
        needs_window=False,
    ),
    PrimitiveSpec(
        "model_input_drift",
        "loop",
        ("AML.T0043", "AML.T0015"),
        {"magnitude": ParamSpec("number", exclusive_minimum=0.0, description="spectral perturbation")},
        "adversarial drift of the soft sensor's Raman input",
    ),
    PrimitiveSpec(
        "alarm_suppress",
        "platform",
        ("T0878",),
        {"tag": _TAG},
        "alarms on a tag silenced",
    ),
    PrimitiveSpec(
        "historian_bulk_read",
        "platform",
        ("T0882", "T0811"),
        {
            "tags": ParamSpec("integer", minimum=1, description="how many tags are read"),
            "identity": ParamSpec("string", required=False, default="operator"),
        },
        "a stolen identity reads the historian in bulk",
        needs_window=False,
    ),
    PrimitiveSpec(
        "data_export",
        "platform",
        ("T0882",),
        {"identity": ParamSpec("string", required=False, default="data_scientist")},
        "a batch's data exported off site",
        needs_window=False,
    ),
    PrimitiveSpec(
        "ransomware_encrypt",
        "platform",
        ("T0809", "T0828"),
        {"target": ParamSpec("string", required=False, default="data_dir", choices=("data_dir", "ledger"))},
        "the data directory encrypted; detection, then restore from a verified backup",
        needs_window=False,
    ),
    PrimitiveSpec(
        "ledger_tamper",
        "platform",
        ("T0872",),
        {"mutation": ParamSpec("string", choices=("flip", "delete", "swap", "truncate"))},
        "stored ledger rows edited to hide or change evidence",
        needs_window=False,
    ),
)

PRIMITIVES: dict[str, PrimitiveSpec] = {spec.name: spec for spec in _SPECS}


def check_params(spec: PrimitiveSpec, params: Mapping[str, object], where: str) -> list[str]:
    """Every problem with ``params`` for primitive ``spec`` (unknown, missing, wrong type, range)."""
    problems = [
        f"{where}: unknown parameter {name!r} for {spec.name} (takes: {', '.join(spec.params) or 'none'})"
        for name in params
        if name not in spec.params
    ]
    for name, param in spec.params.items():
        if name not in params:
            if param.required:
                problems.append(f"{where}: {spec.name} needs parameter {name!r} ({param.type})")
            continue
        problem = _check_value(param, params[name])
        if problem:
            problems.append(f"{where}.{name}: {problem}")
    return problems


def _check_value(param: ParamSpec, value: object) -> str | None:
    if param.type == "boolean":
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if param.type in ("string", "tag"):
        if not isinstance(value, str):
            return f"expected a {param.type}, got {type(value).__name__} {value!r}"
        if param.choices and value not in param.choices:
            return f"{value!r} is not one of {', '.join(param.choices)}"
        if param.type == "tag":
            tag = TAGS_BY_NAME.get(value)
            if tag is None:
                return f"unknown tag {value!r}"
            if tag.kind not in param.tag_kinds:
                kinds = ", ".join(sorted(k.value for k in param.tag_kinds))
                return f"tag {value!r} is a {tag.kind.value}; this parameter takes {kinds}"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a {param.type}, got {type(value).__name__} {value!r}"
    if param.type == "integer" and not isinstance(value, int):
        return f"expected an integer, got {value!r}"
    number = float(value)
    if not math.isfinite(number):
        return f"{value!r} is not finite"
    if param.minimum is not None and number < param.minimum:
        return f"{value!r} is below the minimum {param.minimum:g}"
    if param.maximum is not None and number > param.maximum:
        return f"{value!r} is above the maximum {param.maximum:g}"
    if param.exclusive_minimum is not None and number <= param.exclusive_minimum:
        return f"{value!r} must be greater than {param.exclusive_minimum:g}"
    if param.exclusive_maximum is not None and number >= param.exclusive_maximum:
        return f"{value!r} must be less than {param.exclusive_maximum:g}"
    return None
