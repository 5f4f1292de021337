"""Is a file what its extension says? A magic-number / format check run before anything parses it.

A model or firmware file whose name promises one format and whose bytes are another (a pickle named
``.json``, a ZIP named ``.fw``) is refused even when its manifest is valid: the name decides which
loader runs, and a loader handed the wrong format is the classic way to execute an attacker's bytes.
Unknown extensions are refused (fail closed); pickles are refused whatever their manifest says,
because loading one runs code.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import PurePosixPath

from aseptic.errors import InputError, IntegrityError

__all__ = ["FIRMWARE_MAGIC", "KNOWN_EXTENSIONS", "verify_format"]

FIRMWARE_MAGIC = b"ASEPTIC-FW\x00"
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


def _json(data: bytes) -> str | None:
    try:
        json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "not UTF-8 JSON"
    return None


def _prefix(magic: bytes, label: str) -> Callable[[bytes], str | None]:
    def check(data: bytes) -> str | None:
        return None if data.startswith(magic) else f"does not start with the {label} signature {magic!r}"

    return check


def _safetensors(data: bytes) -> str | None:
    if len(data) < 8:
        return "shorter than a safetensors header"
    (length,) = struct.unpack("<Q", data[:8])
    if not 2 <= length <= min(_MAX_SAFETENSORS_HEADER, len(data) - 8):
        return f"safetensors header length {length} does not fit the file"
    return _json(data[8 : 8 + length])


def _raw(data: bytes) -> str | None:
    return None if data else "empty"


_CHECKS: dict[str, Callable[[bytes], str | None]] = {
    ".json": _json,
    ".fw": _prefix(FIRMWARE_MAGIC, "Aseptic firmware image"),
    ".npz": _prefix(b"PK\x03\x04", "ZIP (npz)"),
    ".zip": _prefix(b"PK\x03\x04", "ZIP"),
    ".gz": _prefix(b"\x1f\x8b", "gzip"),
    ".onnx": _prefix(b"\x08", "ONNX (protobuf ir_version field)"),
    ".safetensors": _safetensors,
    ".bin": _raw,  # a raw image makes no format claim beyond being non-empty
}
_REFUSED = {".pkl": "pickle", ".pickle": "pickle", ".joblib": "joblib pickle", ".pt": "torch pickle"}
KNOWN_EXTENSIONS: tuple[str, ...] = tuple(sorted(_CHECKS))


def verify_format(name: str, data: bytes) -> None:
    """Check that ``data`` is in the format its file ``name``'s extension says.

    Raises:
        IntegrityError: the bytes are not in that format (a file dressed up as another).
        InputError: the extension is unknown or a format that executes code when loaded (pickle).
    """
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in _REFUSED:
        raise InputError(
            f"{name}: {_REFUSED[suffix]} files are never loaded (loading one executes code)",
            hint="export the model to a data-only format (canonical JSON, safetensors, ONNX)",
        )
    check = _CHECKS.get(suffix)
    if check is None:
        raise InputError(
            f"{name}: unknown artifact extension {suffix or '(none)'!r}; refusing to guess its format",
            hint="known: " + ", ".join(KNOWN_EXTENSIONS),
        )
    problem = check(data)
    if problem is not None:
        raise IntegrityError(f"{name}: not a {suffix} file: {problem}")
