"""Sign and verify a model artifact's manifest: time and throughput against bare SHA-256.

    .venv/bin/python -m benchmarks.provenance_manifest [--size-mb 100] [--files 1] [--repeat 5]
                                                       [--algorithm ed25519] [--json]

"hash": ``hashlib.file_digest`` over the same bytes (the floor: one core, SHA-256).
"sign": ``sign_artifact`` (hash every file, build the in-toto/SLSA/CycloneDX documents, DSSE-sign).
"verify": ``verify_artifact`` (read and verify the manifest, re-hash every file, compare). The
artifact is written once to a temporary directory, so after the first pass reads come from the page
cache: the numbers are hashing and CPU, not disk. Best and median of ``--repeat`` (shared machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aseptic.crypto import SigningKey
from aseptic.provenance import (
    ArtifactKind,
    ManifestSpec,
    manifest_path_for,
    sign_artifact,
    verify_artifact,
    write_manifest,
)


def _write_artifact(root: Path, size_bytes: int, files: int) -> Path:
    chunk = hashlib.shake_256(b"aseptic-benchmark").digest(1 << 20)
    target = root / ("model.bin" if files == 1 else "model")
    paths = [target] if files == 1 else [target / f"part-{i:03d}.bin" for i in range(files)]
    if files > 1:
        target.mkdir()
    per_file = size_bytes // files
    for path in paths:
        with path.open("wb") as handle:
            for _ in range(per_file // len(chunk)):
                handle.write(chunk)
            handle.write(chunk[: per_file % len(chunk)])
    return target


def _time(action: Callable[[], object], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    return seconds


def run(size_mb: int, files: int, repeat: int, algorithm: str) -> dict[str, Any]:
    key = SigningKey.generate(algorithm)
    spec = ManifestSpec(
        kind=ArtifactKind.MODEL,
        name="benchmark-model",
        version="1",
        built_at=datetime(2026, 1, 1, tzinfo=UTC),
        builder_id="urn:aseptic:site:bench",
        code_version="bench",
    )
    with tempfile.TemporaryDirectory() as tmp:
        artifact = _write_artifact(Path(tmp), size_mb * 1_000_000, files)
        every = [artifact] if files == 1 else sorted(artifact.iterdir())

        def hash_all() -> None:
            for path in every:
                with path.open("rb") as handle:
                    hashlib.file_digest(handle, "sha256")

        def sign() -> None:
            write_manifest(sign_artifact(artifact, spec, key), manifest_path_for(artifact))

        hash_all()  # warm the page cache
        results = {"hash": _time(hash_all, repeat), "sign": _time(sign, repeat)}
        results["verify"] = _time(lambda: verify_artifact(artifact, None, [key.public]), repeat)
    mb = size_mb * 1.0
    return {
        "size_mb": size_mb,
        "files": files,
        "algorithm": algorithm,
        "repeat": repeat,
        **{
            name: {
                "best_s": round(min(s), 4),
                "median_s": round(statistics.median(s), 4),
                "best_mb_per_s": round(mb / min(s), 1),
            }
            for name, s in results.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--files", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--algorithm", default="ed25519")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.size_mb, args.files, args.repeat, args.algorithm)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.size_mb} MB in {args.files} file(s), {args.algorithm}, best of {args.repeat}")
    for name in ("hash", "sign", "verify"):
        r = result[name]
        print(
            f"  {name:<7}{r['best_s']:>8.3f} s (median {r['median_s']:.3f} s) {r['best_mb_per_s']:>8.1f} MB/s"
        )


if __name__ == "__main__":
    main()
