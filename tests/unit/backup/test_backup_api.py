"""The public API of aseptic.backup is pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import pytest

import aseptic.backup

pytestmark = pytest.mark.requirement("A11-7")


def test_public_api_is_pinned() -> None:
    assert aseptic.backup.__all__ == [
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
