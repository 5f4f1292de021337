"""``create_backup`` and ``restore_backup``: a signed, verifiable copy of a data directory and back.

A backup is a directory ``ROOT/aseptic-backup-<UTC time>/`` holding a consistent snapshot of the
data directory, ``MANIFEST.json`` (every file's size, SHA-256 and mode, the ledger's size, root and
latest checkpoint) and ``MANIFEST.sig`` (the site key's signature over the manifest). Restoring
verifies the signature and every file, rebuilds the data directory beside the target, runs
``verify_ledger`` there against the manifest's checkpoint, and only then moves it into place.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from aseptic.backup._files import (
    copy_file,
    copy_verified,
    digest_file,
    iter_data_files,
    unlisted_files,
    write_ledger_export,
)
from aseptic.backup._manifest import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    BackupManifest,
    FileEntry,
    LedgerSnapshot,
    decode_manifest,
    sign_manifest,
    verify_manifest_signature,
)
from aseptic.clock import Clock
from aseptic.crypto import PublicKey, SigningKey, read_public_key
from aseptic.errors import BackendError, ConfigError, IntegrityError
from aseptic.ledger import (
    Checkpoint,
    Report,
    import_ledger_tables,
    read_checkpoints,
    read_status,
    verify_ledger,
)

__all__ = [
    "BACKUP_PREFIX",
    "BackupResult",
    "RestoreResult",
    "archive_checkpoints",
    "create_backup",
    "find_backup",
    "prune_backups",
    "restore_backup",
    "verify_backup",
]

BACKUP_PREFIX = "aseptic-backup-"
CONFIG_NAME = "config/aseptic.toml"
CHECKPOINT_ARCHIVE = "checkpoints"
_DAMAGED = "the backup is damaged; use another one"


@dataclass(frozen=True)
class BackupResult:
    """Where the backup went, its manifest, and what retention removed."""

    path: Path
    manifest: BackupManifest
    pruned: tuple[Path, ...]
    archived_checkpoints: int


@dataclass(frozen=True)
class RestoreResult:
    """What was restored, the verification report, and where the old data directory went (if any)."""

    source: Path
    data_dir: Path
    manifest: BackupManifest
    report: Report
    moved_aside: Path | None
    trusted_key_given: bool


def _backup_name(clock: Clock, root: Path) -> Path:
    stamp = clock.now().strftime("%Y%m%dT%H%M%S%fZ")
    path = root / f"{BACKUP_PREFIX}{stamp}"
    counter = 1
    while path.exists():
        counter += 1
        path = root / f"{BACKUP_PREFIX}{stamp}-{counter}"
    return path


def create_backup(
    data_dir: Path,
    root: Path,
    *,
    site_key: SigningKey,
    origin: str,
    clock: Clock,
    config_file: Path | None = None,
    keep: int | None = None,
    archive: bool = True,
) -> BackupResult:
    """Snapshot ``data_dir`` into a new backup under ``root``, sign its manifest, apply retention.

    Raises:
        ConfigError: no data directory or ledger, ``root`` inside the data directory, the site key
            is not the one in ``site.pub``, or a link or special file in the data directory.
        BackendError: a file cannot be read or written, or a database fails.
    """
    if not data_dir.is_dir():
        raise ConfigError(f"data directory {data_dir} does not exist", hint="check --data-dir")
    if root.resolve().is_relative_to(data_dir.resolve()):
        raise ConfigError(f"backup directory {root} is inside the data directory {data_dir}")
    anchor = data_dir / "site.pub"
    if anchor.is_file() and read_public_key(anchor) != site_key.public:
        raise ConfigError(f"{anchor} does not hold the site key in use ({site_key.key_id})")
    try:
        root.mkdir(parents=True, exist_ok=True)
        target = _backup_name(clock, root)
        staging = root / f".{target.name}.partial"
        staging.mkdir()
    except OSError as exc:
        raise BackendError(f"cannot create the backup under {root}: {exc.strerror}") from None
    try:
        store = "sqlite"
        for relative in iter_data_files(data_dir):
            copy_file(data_dir / relative, staging / relative)
        if (data_dir / "ledger.store").is_file():
            store = "postgresql"
            (staging / "ledger.db").unlink(missing_ok=True)
            write_ledger_export(data_dir, staging / "ledger.db")
        config_entry = None
        if config_file is not None:
            copy_file(config_file, staging / CONFIG_NAME)
            config_entry = CONFIG_NAME
        status = read_status(staging)
        latest = status.latest_checkpoint
        entries = []
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            size, sha256 = digest_file(path)
            mode = path.stat().st_mode & 0o777
            entries.append(FileEntry(path.relative_to(staging).as_posix(), size, sha256, mode))
        manifest = BackupManifest(
            created=clock.now(),
            origin=origin,
            site_key=site_key.public,
            files=tuple(entries),
            ledger=LedgerSnapshot(
                store, status.size, status.root.hex(), None if latest is None else latest.to_note()
            ),
            config=config_entry,
        )
        (staging / MANIFEST_FILE).write_bytes(manifest.to_bytes())
        (staging / SIGNATURE_FILE).write_bytes(sign_manifest(manifest, site_key))
        _fsync_tree(staging)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    archived = archive_checkpoints(data_dir, root) if archive else 0
    pruned = prune_backups(root, keep) if keep is not None else ()
    return BackupResult(target, manifest, pruned, archived)


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def archive_checkpoints(data_dir: Path, root: Path) -> int:
    """Copy every checkpoint note not yet archived to ``root/checkpoints/`` (never pruned).

    Returns how many were added. The archive outlives pruned backups, so the signed tree heads of
    every period stay available to ``aseptic ledger verify --checkpoint``.
    """
    directory = root / CHECKPOINT_ARCHIVE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        added = 0
        for checkpoint in read_checkpoints(data_dir):
            stamp = checkpoint.time.strftime("%Y%m%dT%H%M%S%fZ")
            path = directory / f"{checkpoint.size:012d}-{stamp}.note"
            if not path.exists():
                path.write_text(checkpoint.to_note(), encoding="utf-8")
                added += 1
    except OSError as exc:
        raise BackendError(f"cannot archive checkpoints in {directory}: {exc.strerror}") from None
    return added


def prune_backups(root: Path, keep: int) -> tuple[Path, ...]:
    """Delete all but the newest ``keep`` complete backups under ``root``; the deleted paths."""
    if keep < 1:
        raise ConfigError(f"keep must be at least 1, got {keep}")
    backups = sorted(
        p for p in root.iterdir() if p.name.startswith(BACKUP_PREFIX) and (p / MANIFEST_FILE).is_file()
    )
    doomed = tuple(backups[:-keep]) if len(backups) > keep else ()
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def find_backup(source: Path) -> Path:
    """``source`` if it is a backup, else the newest backup inside it.

    Raises:
        ConfigError: ``source`` does not exist.
        IntegrityError: it holds no manifest and no backups (not a backup, or damaged).
    """
    if not source.is_dir():
        raise ConfigError(f"backup {source} does not exist", hint="check --from")
    if (source / MANIFEST_FILE).exists() or (source / SIGNATURE_FILE).exists():
        return source
    backups = sorted(p for p in source.iterdir() if p.name.startswith(BACKUP_PREFIX) and p.is_dir())
    if backups:
        return backups[-1]
    raise IntegrityError(f"backup {source}: file {MANIFEST_FILE}: missing (not a backup, or damaged)")


def verify_backup(backup: Path, trusted: PublicKey | None = None) -> BackupManifest:
    """Check a backup's signature (with ``trusted``, else its own key) and that it holds exactly the
    listed files; return its manifest. File digests are checked as they are restored.

    Raises:
        IntegrityError: a missing, unsigned, wrongly signed or malformed manifest, or a file that is
            missing or not listed (each named with the reason).
    """
    where = f"backup {backup}"
    try:
        manifest_bytes = (backup / MANIFEST_FILE).read_bytes()
        signature = (backup / SIGNATURE_FILE).read_bytes()
    except FileNotFoundError as exc:
        name = Path(str(exc.filename)).name
        raise IntegrityError(
            f"{where}: file {name}: missing (not a backup, or damaged)", hint=_DAMAGED
        ) from None
    except OSError as exc:
        raise BackendError(f"{where}: cannot read the manifest: {exc.strerror}") from None
    try:
        # Without a trust anchor the manifest is parsed for its key only, and checked with it next.
        key = trusted if trusted is not None else decode_manifest(manifest_bytes).site_key
        verify_manifest_signature(manifest_bytes, signature, key)
        manifest = decode_manifest(manifest_bytes)
    except IntegrityError as exc:
        raise type(exc)(f"{where}: file {exc.message}", hint=exc.hint or _DAMAGED) from None
    if trusted is not None and manifest.site_key != trusted:
        raise IntegrityError(f"{where}: file {MANIFEST_FILE}: names site key {manifest.site_key.key_id}")
    extra = unlisted_files(backup, {entry.path for entry in manifest.files})
    if extra:
        raise IntegrityError(
            f"{where}: file {extra[0]}: not listed in the signed manifest (inserted?)"
            + (f"; and {len(extra) - 1} more" if len(extra) > 1 else ""),
            hint=_DAMAGED,
        )
    return manifest


def restore_backup(
    source: Path,
    data_dir: Path,
    *,
    clock: Clock,
    trusted: PublicKey | None = None,
    force: bool = False,
    store: str | None = None,
) -> RestoreResult:
    """Verify the backup at ``source`` and restore it into ``data_dir``; verify the restored ledger.

    With ``store`` (a ``postgresql://`` URL of an empty database), the ledger's rows go there and
    ``data_dir`` is bound to it; otherwise the ledger is ``data_dir/ledger.db``.

    Raises:
        ConfigError: ``data_dir`` is not empty and not ``force``; no such backup.
        IntegrityError: the backup is damaged (which file, and why); ``LedgerTampered`` if the
            restored ledger does not verify, or does not match the manifest's size and root.
        BackendError: files cannot be written.
    """
    backup = find_backup(source)
    manifest = verify_backup(backup, trusted)
    if data_dir.exists() and any(data_dir.iterdir()) and not force:
        raise ConfigError(
            f"data directory {data_dir} is not empty; restore refuses to overwrite it",
            hint="restore into a new directory, or pass --force (the old one is moved aside, not deleted)",
        )
    staging = data_dir.parent / f".{data_dir.name}.restoring"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
        for entry in manifest.files:
            copy_verified(backup, entry, staging)
        site_pub = read_public_key(staging / "site.pub")
        if site_pub != manifest.site_key:
            raise IntegrityError(f"backup {backup}: file site.pub: holds another key than the manifest")
        if store is not None:
            import_ledger_tables(staging / "ledger.db", store)
            (staging / "ledger.db").unlink()
            (staging / "ledger.store").write_text(store + "\n", encoding="utf-8")
        report = _verify_restored(staging, backup, manifest)
        moved = _move_into_place(staging, data_dir, clock)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RestoreResult(backup, data_dir, manifest, report, moved, trusted is not None)


def _verify_restored(staging: Path, backup: Path, manifest: BackupManifest) -> Report:
    latest: Checkpoint | None = manifest.ledger.latest_checkpoint()
    report = verify_ledger(staging, manifest.site_key, trusted=() if latest is None else (latest,))
    if report.size != manifest.ledger.size or report.root != manifest.ledger.root:
        raise IntegrityError(
            f"backup {backup}: file ledger.db: holds {report.size} leaves with root {report.root},"
            f" the signed manifest says {manifest.ledger.size} leaves with root {manifest.ledger.root}",
            hint=_DAMAGED,
        )
    return report


def _move_into_place(staging: Path, data_dir: Path, clock: Clock) -> Path | None:
    moved: Path | None = None
    try:
        if data_dir.exists():
            if any(data_dir.iterdir()):
                moved = data_dir.with_name(f"{data_dir.name}.before-restore-{clock.now():%Y%m%dT%H%M%SZ}")
                os.replace(data_dir, moved)
            else:
                data_dir.rmdir()
        os.replace(staging, data_dir)
    except OSError as exc:
        raise BackendError(f"cannot move the restored data into {data_dir}: {exc.strerror}") from None
    return moved
