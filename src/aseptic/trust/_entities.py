"""The Cedar entity graph: the plant (site, areas, units, tags, models), roles and principals.

The plant part comes from the twin's tag catalogue: one site, the fermentation area, the
fermenter unit and every tag, each with its IEC 62443 zone and security level. Batches and records
are added by the caller (the batch capability owns them) with ``batch_entity`` / ``record_entity``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aseptic.twin.tags import TAGS, TagKind

__all__ = [
    "DEVICE_ROLES",
    "SERVICE_ROLES",
    "USER_ROLES",
    "ZONES",
    "area_entity",
    "batch_entity",
    "model_entity",
    "plant_entities",
    "principal_entity",
    "record_entity",
    "role_entities",
    "site_entity",
    "tag_entity",
    "unit_entity",
]

USER_ROLES: tuple[str, ...] = (
    "operator",
    "process_engineer",
    "qa_reviewer",
    "qa_approver",
    "security_analyst",
    "data_scientist",
    "auditor",
    "administrator",
)
DEVICE_ROLES: tuple[str, ...] = ("field_device",)
SERVICE_ROLES: tuple[str, ...] = ("detector", "monitoring")

# IEC 62443 zones of the site and their target security level (SL-T).
ZONES: dict[str, int] = {"enterprise": 1, "dmz": 2, "operations": 2, "control": 3, "safety": 4}

SITE = "site-01"
AREA = "fermentation"
UNIT = "fermenter-01"
SOFT_SENSOR_MODEL = "paa-softsensor"


def _ref(kind: str, ident: str) -> dict[str, dict[str, str]]:
    return {"__entity": {"type": kind, "id": ident}}


def _uid(kind: str, ident: str) -> dict[str, str]:
    return {"type": kind, "id": ident}


def site_entity(site: str = SITE, zone: str = "enterprise") -> dict[str, Any]:
    return {"uid": _uid("Site", site), "attrs": {"zone": zone, "security_level": ZONES[zone]}, "parents": []}


def area_entity(area: str, site: str = SITE, zone: str = "control") -> dict[str, Any]:
    return {
        "uid": _uid("Area", area),
        "attrs": {"zone": zone, "security_level": ZONES[zone]},
        "parents": [_uid("Site", site)],
    }


def unit_entity(unit: str, area: str, zone: str = "control") -> dict[str, Any]:
    return {
        "uid": _uid("Unit", unit),
        "attrs": {"area": _ref("Area", area), "zone": zone, "security_level": ZONES[zone]},
        "parents": [_uid("Area", area)],
    }


def tag_entity(tag: str, unit: str, area: str, *, kind: str, zone: str = "control") -> dict[str, Any]:
    return {
        "uid": _uid("Tag", tag),
        "attrs": {"area": _ref("Area", area), "zone": zone, "security_level": ZONES[zone], "kind": kind},
        "parents": [_uid("Unit", unit)],
    }


def model_entity(model: str, site: str = SITE, zone: str = "operations") -> dict[str, Any]:
    return {
        "uid": _uid("Model", model),
        "attrs": {"zone": zone, "security_level": ZONES[zone]},
        "parents": [_uid("Site", site)],
    }


def batch_entity(batch: str, unit: str, area: str) -> dict[str, Any]:
    return {
        "uid": _uid("Batch", batch),
        "attrs": {"area": _ref("Area", area)},
        "parents": [_uid("Unit", unit)],
    }


def record_entity(record: str, batch: str, area: str) -> dict[str, Any]:
    return {
        "uid": _uid("Record", record),
        "attrs": {"area": _ref("Area", area)},
        "parents": [_uid("Batch", batch)],
    }


def role_entities() -> list[dict[str, Any]]:
    """One ``Role`` entity per role of users, devices and services."""
    return [
        {"uid": _uid("Role", role), "attrs": {}, "parents": []}
        for role in (*USER_ROLES, *DEVICE_ROLES, *SERVICE_ROLES)
    ]


def principal_entity(
    kind: str, name: str, roles: Iterable[str], *, active: bool, areas: Iterable[str] = ()
) -> dict[str, Any]:
    """A ``User`` (with the areas it works in), ``Device`` or ``Service`` entity with its roles."""
    attrs: dict[str, Any] = {"active": active}
    if kind == "User":
        attrs["areas"] = [_ref("Area", area) for area in sorted(areas)]
    elif kind not in ("Device", "Service"):
        raise ValueError(f"principal kind {kind!r} is not User, Device or Service")
    return {
        "uid": _uid(kind, name),
        "attrs": attrs,
        "parents": [_uid("Role", role) for role in sorted(roles)],
    }


def _zone_of(kind: TagKind) -> str:
    # Offline assays come from the laboratory system in the operations zone; everything else is
    # read from or written to the basic process control system.
    return "operations" if kind is TagKind.ASSAY else "control"


def plant_entities() -> list[dict[str, Any]]:
    """Site, area, unit, every catalogue tag, the soft-sensor model, and the roles."""
    entities = [site_entity(), area_entity(AREA), unit_entity(UNIT, AREA), model_entity(SOFT_SENSOR_MODEL)]
    entities += [
        tag_entity(spec.name, UNIT, AREA, kind=spec.kind.value, zone=_zone_of(spec.kind)) for spec in TAGS
    ]
    return entities + role_entities()
