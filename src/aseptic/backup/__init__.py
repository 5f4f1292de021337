"""Backup and restore of a data directory (EU GMP Annex 11 §7, §17; 21 CFR 11.10(c)).

``create_backup`` writes a consistent snapshot of the data directory (SQLite online backup, a
PostgreSQL ledger exported from one snapshot, sealed keys as they are) with a manifest of file
digests signed by the site key; ``restore_backup`` verifies the signature and every file, restores
beside the target, runs ``verify_ledger`` against the manifest's checkpoint and only then moves the
result into place. Retention (``prune_backups``) and the checkpoint archive keep the evidence of
every period. Format and procedures: docs/backup.md.
"""

from aseptic.backup._backup import (
    BACKUP_PREFIX,
    BackupResult,
    RestoreResult,
    archive_checkpoints,
    create_backup,
    find_backup,
    prune_backups,
    restore_backup,
    verify_backup,
)
from aseptic.backup._manifest import MANIFEST_FILE, SIGNATURE_FILE, BackupManifest, FileEntry, LedgerSnapshot

__all__ = [
    "BACKUP_PREFIX",
    "MANIFEST_FILE",
    "SIGNATURE_FILE",
    "BackupManifest",
    "BackupResult",
    "FileEntry",
    "LedgerSnapshot",
    "RestoreResult",
    "archive_checkpoints",
    "create_backup",
    "find_backup",
    "prune_backups",
    "restore_backup",
    "verify_backup",
]
