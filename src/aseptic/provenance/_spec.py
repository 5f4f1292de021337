"""What a manifest says about an artifact, before it is written in the in-toto/SLSA/CycloneDX formats."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from aseptic.errors import InputError

__all__ = ["ArtifactKind", "LedgerReference", "ManifestSpec"]

_ORIGIN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ArtifactKind(StrEnum):
    """What an artifact is: an ML model or a device firmware image."""

    MODEL = "model"
    FIRMWARE = "firmware"


@dataclass(frozen=True)
class LedgerReference:
    """Leaves ``first_leaf..last_leaf`` (inclusive) of the site's ledger, in the tree of ``tree_size``
    leaves whose root is ``root_hex``: the training data (or any input) a build consumed.

    Anyone holding the ledger can prove those leaves with an inclusion proof against that root.
    """

    origin: str
    first_leaf: int
    last_leaf: int
    tree_size: int
    root_hex: str

    def __post_init__(self) -> None:
        if not _ORIGIN.match(self.origin):
            raise InputError(f"ledger origin {self.origin!r} is not a site id")
        if not 0 <= self.first_leaf <= self.last_leaf < self.tree_size:
            raise InputError(
                f"leaves {self.first_leaf}-{self.last_leaf} are not in a ledger of {self.tree_size} leaves"
            )
        if not _HEX64.match(self.root_hex):
            raise InputError(f"ledger root {self.root_hex!r} is not 64 lower-case hex digits")

    @property
    def uri(self) -> str:
        """``urn:aseptic:ledger:<origin>:leaves:<first>-<last>@<tree size>``."""
        return f"urn:aseptic:ledger:{self.origin}:leaves:{self.first_leaf}-{self.last_leaf}@{self.tree_size}"


@dataclass(frozen=True)
class ManifestSpec:
    """The facts about an artifact that its signer asserts (the file digests are computed, not said).

    ``parameters`` are the build's (training) parameters, ``metrics`` its validation results (e.g.
    ``rmse_mg_per_l``), ``training_data`` the ledger leaves it was built from.
    """

    kind: ArtifactKind
    name: str
    version: str
    built_at: datetime
    builder_id: str
    code_version: str
    intended_use: str = ""
    approver: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    training_data: tuple[LedgerReference, ...] = ()

    def __post_init__(self) -> None:
        for label, value in (("name", self.name), ("version", self.version), ("builder", self.builder_id)):
            if not value.strip():
                raise InputError(f"a manifest needs a non-empty {label}")
        if self.built_at.tzinfo is None:
            raise InputError("a manifest's build time needs a time zone")
        for metric, number in self.metrics.items():
            if not math.isfinite(number):
                raise InputError(f"metric {metric!r} is {number}: metrics must be finite numbers")
