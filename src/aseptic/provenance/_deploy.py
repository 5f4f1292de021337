"""Deploying a verified model to the plant: the ledger entry that records who deployed what, and why.

The deployment itself is an action under zero-trust policy (``deploy_model``: the enforcement point
decides and logs the decision; the two-person rule enters as the ``elevated`` context, true only
when another person's grant covers the action). This module holds the pure part: the entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aseptic.clock import format_rfc3339
from aseptic.errors import InputError
from aseptic.provenance._manifest import VerifiedManifest

__all__ = ["DEPLOYMENT_ENTRY_TYPE", "deployment_entry"]

DEPLOYMENT_ENTRY_TYPE = "provenance.deployment"
_MAX_REASON = 500


def deployment_entry(
    manifest: VerifiedManifest,
    *,
    principal: str,
    reason: str,
    target: str,
    time: datetime,
    policy_ids: Sequence[str],
) -> dict[str, Any]:
    """The ledger entry of an allowed deployment of the model ``manifest`` describes.

    Raises:
        InputError: no reason given (a change to a GMP system needs one), or one too long.
    """
    text = reason.strip()
    if not text:
        raise InputError("a deployment needs a reason (--reason): a change to a GMP system is justified")
    if len(text) > _MAX_REASON:
        raise InputError(f"the reason is {len(text)} characters; at most {_MAX_REASON}")
    statement = manifest.statement
    return {
        "entry": "model_deployment",
        "type": DEPLOYMENT_ENTRY_TYPE,
        "kind": statement.kind.value,
        "name": statement.name,
        "version": statement.version,
        "manifest_sha256": manifest.sha256,
        "key": manifest.key_id,
        "files": dict(statement.files),
        "by": principal,
        "reason": text,
        "target": target,
        "policy_ids": list(policy_ids),
        "time": format_rfc3339(time),
    }
