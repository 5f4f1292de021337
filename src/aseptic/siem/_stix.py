"""STIX 2.1 bundles of alerts for a threat-intelligence platform or SOC (OASIS ``stix2`` library).

Each technique becomes an ``attack-pattern`` with its MITRE external reference; each alert a
``sighting`` of it, sighted by the site's ``identity``, with the time, count 1 and a description.
Ids are UUIDv5 of the site and the ledger leaf, so exporting twice gives the same objects and a
receiver deduplicates them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import stix2  # type: ignore[import-untyped]  # stix2 ships no type information

from aseptic.siem._alert import Alert

__all__ = ["stix_bundle"]

_NAMESPACE = uuid.UUID("5f0c8a54-1c7e-4b8e-9d6c-3c1e2b7a9f10")  # Aseptic's, fixed forever
_FIXED = datetime(2026, 1, 1, tzinfo=UTC)  # created/modified of the reference objects


def _id(kind: str, *parts: object) -> str:
    return f"{kind}--{uuid.uuid5(_NAMESPACE, '/'.join(str(p) for p in parts))}"


def _source(technique: str) -> tuple[str, str]:
    if technique.startswith("AML."):
        return "mitre-atlas", f"https://atlas.mitre.org/techniques/{technique}"
    return "mitre-ics-attack", f"https://attack.mitre.org/techniques/{technique}/"


def stix_bundle(alerts: Sequence[Alert], *, site: str, now: datetime) -> dict[str, Any]:
    """A STIX 2.1 bundle (as a JSON-able dict) of ``alerts`` seen at ``site``."""
    identity = stix2.v21.Identity(
        id=_id("identity", site), name=f"Aseptic site {site}", identity_class="system",
        created=_FIXED, modified=_FIXED,
    )  # fmt: skip
    objects: list[Any] = [identity]
    patterns: dict[str, Any] = {}
    for alert in alerts:
        key = alert.technique or f"aseptic:{alert.detector}"
        if key not in patterns:
            references = []
            if alert.technique:
                source, url = _source(alert.technique)
                references.append({"source_name": source, "external_id": alert.technique, "url": url})
            patterns[key] = stix2.v21.AttackPattern(
                id=_id("attack-pattern", key),
                name=alert.technique_name or alert.technique or f"Aseptic {alert.detector} anomaly",
                external_references=references or None,
                created=_FIXED,
                modified=_FIXED,
            )
            objects.append(patterns[key])
        seen = alert.time or now
        objects.append(
            stix2.v21.Sighting(
                id=_id("sighting", site, alert.leaf),
                sighting_of_ref=patterns[key].id,
                where_sighted_refs=[identity.id],
                first_seen=seen,
                last_seen=seen,
                count=1,
                description=alert.summary,
                created=now,
                modified=now,
                custom_properties={"x_aseptic_ledger_leaf": alert.leaf, "x_aseptic_severity": alert.severity},
                allow_custom=True,
            )
        )
    bundle = stix2.v21.Bundle(
        objects=objects, id=_id("bundle", site, now.isoformat(), len(alerts)), allow_custom=True
    )
    result: dict[str, Any] = json.loads(bundle.serialize())
    return result
