"""The ATT&CK for ICS and ATLAS technique catalogues shipped with the package (reference/)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

from aseptic.errors import InputError

__all__ = ["ATLAS_VERSION", "ICS_ATTACK_VERSION", "Technique", "technique", "techniques"]

ICS_ATTACK_VERSION = "18.1"
ATLAS_VERSION = "5.6"

_FILES = {
    "ics": f"ics_attack_v{ICS_ATTACK_VERSION}_techniques.csv",
    "atlas": f"atlas_{ATLAS_VERSION}_techniques.csv",
}


@dataclass(frozen=True)
class Technique:
    """One catalogue entry: ``T0856`` (ATT&CK for ICS) or ``AML.T0020`` (ATLAS)."""

    id: str
    name: str
    catalogue: str  # "ics" or "atlas"
    tactics: tuple[str, ...]
    detection_strategies: tuple[str, ...]


@cache
def techniques() -> dict[str, Technique]:
    """Every known technique by id (both catalogues)."""
    found: dict[str, Technique] = {}
    folder = resources.files("aseptic.campaign") / "reference"
    for catalogue, name in _FILES.items():
        text = (folder / name).read_text(encoding="utf-8")
        for row in csv.DictReader(io.StringIO(text)):
            tactics = row.get("tactics") or row.get("tactics_or_parent") or ""
            strategies = row.get("detection_strategies") or ""
            found[row["id"]] = Technique(
                id=row["id"],
                name=row["name"],
                catalogue=catalogue,
                tactics=tuple(t for t in tactics.split(";") if t),
                detection_strategies=tuple(s for s in strategies.split(";") if s),
            )
    return found


def technique(technique_id: str) -> Technique:
    """The technique ``technique_id``.

    Raises:
        InputError: the id is in neither catalogue.
    """
    known = techniques()
    if technique_id not in known:
        raise InputError(
            f"unknown technique id {technique_id!r}: not in ATT&CK for ICS v{ICS_ATTACK_VERSION}"
            f" or ATLAS v{ATLAS_VERSION}",
            hint="ICS ids look like T0856, ATLAS ids like AML.T0020",
        )
    return known[technique_id]
