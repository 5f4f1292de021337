"""A device's (or the plant gateway's) TUF client: rollback, freeze and mix-and-match refused.

python-tuf's ``ngclient`` reads the repository from a directory (no network: a mirror is a folder),
keeps the metadata it trusted last in ``state_dir``, follows root rotations (each new root must be
signed by the threshold of the root it replaces and by its own), and refuses metadata older than
what it has seen (rollback), expired metadata (freeze: an attacker replaying an old, still validly
signed timestamp), metadata whose versions disagree with the snapshot (mix-and-match) and images
whose length or hash differ from the targets metadata. Every refusal goes to the ``FindingSink``
(a Finding, T0857 System Firmware) before it is raised as an Aseptic error.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from tuf.api import exceptions as tuf_errors
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from aseptic.errors import BackendError, InputError, IntegrityError, RollbackError
from aseptic.provenance._load import FindingSink, LoadRefusal
from aseptic.provenance._spec import ArtifactKind

__all__ = ["FirmwareUpdateClient", "mirror_repository"]

_SCHEME = "aseptic-tuf://"
T = TypeVar("T")


class _DirectoryFetcher(FetcherInterface):
    """Serves ``aseptic-tuf://<path>`` from a mirror directory (no network)."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def _fetch(self, url: str) -> Iterator[bytes]:
        relative = url.removeprefix(_SCHEME)
        path = (self._root / relative).resolve()
        if not path.is_relative_to(self._root) or not path.is_file():
            raise tuf_errors.DownloadHTTPError(f"{relative}: not in the mirror", 404)
        yield path.read_bytes()


class FirmwareUpdateClient:
    """A TUF client of one mirror (a directory laid out like a ``TufRepository``)."""

    def __init__(
        self,
        state_dir: Path,
        mirror: Path,
        *,
        trusted_root: bytes | None = None,
        sink: FindingSink | None = None,
    ) -> None:
        """``state_dir`` keeps the metadata last trusted (its root.json is the trust anchor once set).

        Raises:
            InputError: no trusted root given and none kept in ``state_dir``.
        """
        if trusted_root is None and not (state_dir / "metadata" / "root.json").exists():
            raise InputError(f"{state_dir}: no trusted TUF root", hint="provision the client with the root")
        try:
            (state_dir / "metadata").mkdir(parents=True, exist_ok=True)
            (state_dir / "targets").mkdir(exist_ok=True)
        except OSError as exc:
            raise BackendError(f"{state_dir}: cannot create the client's state: {exc.strerror}") from None
        self._state = state_dir
        self._mirror = mirror
        self._sink = sink
        self._trusted_root = trusted_root

    def _updater(self) -> Updater:
        updater = Updater(
            str(self._state / "metadata"),
            _SCHEME + "metadata/",
            str(self._state / "targets"),
            _SCHEME + "targets/",
            fetcher=_DirectoryFetcher(self._mirror),
            bootstrap=self._trusted_root,
        )
        self._trusted_root = None  # from now on the kept root.json (possibly rotated) is the anchor
        return updater

    def refresh(self, *, now: datetime) -> dict[str, int]:
        """Refresh the metadata from the mirror (root rotations, timestamp, snapshot, targets) and
        return the versions now trusted.

        Raises:
            RollbackError, IntegrityError, BackendError: as ``fetch``.
        """

        def refreshed() -> dict[str, int]:
            self._refreshed()
            return self.trusted_versions()

        return self._guarded("metadata", now, refreshed)

    def fetch(self, name: str, *, now: datetime) -> bytes:
        """Refresh metadata from the mirror and return the verified bytes of firmware image ``name``.

        Raises:
            RollbackError: the mirror serves metadata older than the client last trusted.
            IntegrityError: expired metadata (freeze), versions that disagree (mix-and-match), a bad
                signature or root, an image whose length or hash differs, or an image the targets
                do not list.
            BackendError: the mirror is missing files.
        """

        def download() -> bytes:
            updater = self._refreshed()
            info = updater.get_targetinfo(name)
            if info is None:
                raise IntegrityError(f"firmware image {name!r} is not in the signed targets metadata")
            path = updater.download_target(info, str(self._state / "targets" / name))
            return Path(path).read_bytes()

        return self._guarded(name, now, download)

    def _refreshed(self) -> Updater:
        updater = self._updater()
        updater.refresh()
        return updater

    def trusted_versions(self) -> dict[str, int]:
        """The version of each role's metadata the client trusts now (0: none yet)."""
        versions = {}
        for role in ("root", "timestamp", "snapshot", "targets"):
            try:
                data = json.loads((self._state / "metadata" / f"{role}.json").read_bytes())
                versions[role] = int(data["signed"]["version"])
            except (OSError, ValueError, KeyError, TypeError):
                versions[role] = 0
        return versions

    def _guarded(self, name: str, now: datetime, work: Callable[[], T]) -> T:
        try:
            return work()
        except IntegrityError as exc:
            self._refuse(name, exc, now)
            raise
        except tuf_errors.BadVersionNumberError as exc:
            error: Exception = _classify_version(name, exc)
        except tuf_errors.ExpiredMetadataError as exc:
            error = IntegrityError(f"firmware update {name!r}: expired TUF metadata (freeze attack?): {exc}")
        except tuf_errors.LengthOrHashMismatchError as exc:
            error = IntegrityError(
                f"firmware update {name!r}: image differs from the targets metadata: {exc}"
            )
        except tuf_errors.UnsignedMetadataError as exc:
            error = IntegrityError(
                f"firmware update {name!r}: metadata not signed by the trusted keys (forged root or "
                f"role metadata?): {exc}"
            )
        except tuf_errors.RepositoryError as exc:
            error = IntegrityError(f"firmware update {name!r}: TUF metadata refused: {exc}")
        except tuf_errors.DownloadError as exc:
            error = BackendError(f"firmware update {name!r}: mirror {self._mirror}: {exc}")
        except OSError as exc:
            error = BackendError(f"firmware update {name!r}: {exc}")
        self._refuse(name, error, now)
        raise error

    def _refuse(self, name: str, error: Exception, now: datetime) -> None:
        if self._sink is None or isinstance(error, BackendError):
            return
        self._sink.record_refusal(
            LoadRefusal(
                now,
                name,
                ArtifactKind.FIRMWARE,
                type(error).__name__,
                str(error),
                "T0857",
                "System Firmware",
                "firmware update",
            )
        )


def _classify_version(name: str, exc: tuf_errors.BadVersionNumberError) -> IntegrityError:
    text = str(exc)
    if "must be >=" in text:  # python-tuf: "New <role> version N must be >= M" (older than trusted)
        return RollbackError(f"firmware update {name!r}: metadata older than trusted (rollback?): {text}")
    return IntegrityError(
        f"firmware update {name!r}: metadata versions disagree with the snapshot (mix-and-match?): {text}"
    )


def mirror_repository(source: Path, target: Path) -> None:
    """Copy a repository's public part (metadata/, targets/) to a mirror folder (staged/ stays behind)."""
    for part in ("metadata", "targets"):
        shutil.copytree(source / part, target / part, dirs_exist_ok=True)
