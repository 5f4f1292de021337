"""A site's own policy sets in ``D/policies/NNNN/``: versioned, signed by the site key, audited.

Each version directory holds the policy files (``*.cedar``, ``schema.cedarschema``, ``cases.json``)
and ``manifest.json`` - canonical JSON ``{"digest", "files": {name: sha256}, "key", "time",
"version"}`` - with ``manifest.sig``, the site key's signature over ``aseptic-policy/v1\\n`` +
manifest. The active set is the highest version; it is loaded only if its signature, every file's
hash and the bundle digest check out, and otherwise loading fails (it never falls back to the
shipped default, which would silently change who may do what). No site directory: the default.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path

from aseptic.clock import format_rfc3339
from aseptic.crypto import PublicKey, SigningKey
from aseptic.errors import BackendError, ConfigError, IntegrityError
from aseptic.ledger import canonical_json
from aseptic.trust._cases import run_policy_cases
from aseptic.trust._policy import CASES_FILE, SCHEMA_FILE, PolicyBundle
from aseptic.trust._store import AuditSink

__all__ = ["POLICY_DIR", "install_policy_set", "load_active_policy_set"]

POLICY_DIR = "policies"
_DOMAIN = b"aseptic-policy/v1\n"
_VERSION = re.compile(r"^\d{4}$")


def _versions(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    return sorted(
        int(entry.name) for entry in root.iterdir() if entry.is_dir() and _VERSION.match(entry.name)
    )


def install_policy_set(
    data_dir: Path, bundle: PolicyBundle, *, key: SigningKey, actor: str, now: datetime, audit: AuditSink
) -> int:
    """Sign and store ``bundle`` as the next version, after its own cases pass; return the version.

    Raises:
        ConfigError: the bundle has no cases or a case fails (an untested set is not installed).
        BackendError: the files cannot be written.
    """
    failed = [result.name for result in run_policy_cases(bundle) if not result.passed]
    if failed:
        raise ConfigError(f"policy set not installed: {len(failed)} of its cases fail, e.g. {failed[0]!r}")
    root = data_dir / POLICY_DIR
    version = (_versions(root) or [0])[-1] + 1
    files = {name: text for name, text in bundle.sources}
    files[SCHEMA_FILE] = bundle.schema_text
    files[CASES_FILE] = bundle.cases_text or ""
    manifest = canonical_json(
        {
            "digest": bundle.digest,
            "files": {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in files.items()},
            "key": str(key.key_id),
            "time": format_rfc3339(now),
            "version": version,
        }
    )
    staging = root / f".{version:04d}.tmp"
    try:
        staging.mkdir(parents=True)
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        (staging / "manifest.json").write_bytes(manifest)
        (staging / "manifest.sig").write_bytes(key.sign(_DOMAIN + manifest))
        # The audit entry first: a version nobody can account for must never become active.
        audit(
            {
                "entry": "policy_change",
                "version": version,
                "digest": bundle.digest,
                "policy_ids": list(bundle.policy_ids),
                "actor": actor,
                "time": format_rfc3339(now),
            }
        )
        os.replace(staging, root / f"{version:04d}")
    except OSError as exc:
        raise BackendError(f"cannot install policy version {version} in {root}: {exc.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return version


def load_active_policy_set(data_dir: Path, public_key: PublicKey) -> tuple[PolicyBundle, int]:
    """The active policy set and its version (0: the shipped default, no site set installed).

    Raises:
        SignatureError: the manifest is not signed by the site key.
        IntegrityError: a file does not match the manifest, or the set's digest differs.
        ConfigError: the stored set no longer validates.
    """
    root = data_dir / POLICY_DIR
    versions = _versions(root)
    if not versions:
        return PolicyBundle.default(), 0
    folder = root / f"{versions[-1]:04d}"
    where = f"policy version {versions[-1]} ({folder})"
    try:
        manifest = (folder / "manifest.json").read_bytes()
        signature = (folder / "manifest.sig").read_bytes()
    except OSError as exc:
        raise IntegrityError(f"{where}: manifest missing ({exc.strerror})") from None
    public_key.verify(signature, _DOMAIN + manifest, what=where)
    fields = json.loads(manifest)
    present = {path.name for path in folder.iterdir()} - {"manifest.json", "manifest.sig"}
    if present != set(fields["files"]):
        raise IntegrityError(
            f"{where}: files {sorted(present)} differ from the manifest's {sorted(fields['files'])}"
        )
    for name, expected in fields["files"].items():
        computed = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if computed != expected:
            raise IntegrityError(f"{where}: {name} sha256 {computed}, manifest says {expected}")
    bundle = PolicyBundle.from_directory(folder)
    if bundle.digest != fields["digest"]:
        raise IntegrityError(f"{where}: policy set digest {bundle.digest}, manifest says {fields['digest']}")
    return bundle, versions[-1]
