"""Witnessing a stored log: hand a witness the log's newest checkpoint with the consistency proof
from the last checkpoint it cosigned, and keep the cosignature beside the log for exports."""

from __future__ import annotations

from pathlib import Path

from aseptic.crypto import read_public_key
from aseptic.errors import ConfigError
from aseptic.ledger._bundle import store_cosignature
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._reader import LogReader
from aseptic.ledger._witness import Cosignature, Witness

__all__ = ["witness_log"]


def witness_log(
    witness: Witness, data_dir: Path, checkpoint: Checkpoint | None = None
) -> tuple[Checkpoint, Cosignature]:
    """Have ``witness`` cosign ``checkpoint`` (default: the newest stored) of the log in ``data_dir``;
    return the checkpoint and the cosignature.

    The site key is read from ``data_dir/site.pub`` (pinned by the witness on first contact); the
    cosignature is also written to ``data_dir/cosignatures/``.

    Raises:
        ConfigError: no ledger, or no checkpoint to cosign.
        SignatureError / RollbackError / ProofError / IntegrityError: the witness refuses.
    """
    site_key = read_public_key(data_dir / "site.pub")
    with LogReader.open(data_dir) as reader:
        if checkpoint is None:
            stored = reader.checkpoints()
            if not stored:
                raise ConfigError(
                    f"the log in {data_dir} has no checkpoint yet", hint="aseptic ledger checkpoint"
                )
            checkpoint = stored[-1]
        known = witness.last_cosigned(checkpoint.origin)
        proof: tuple[bytes, ...] = ()
        if known is not None and known[1].size <= checkpoint.size <= reader.size:
            proof = reader.consistency_proof(known[1].size, checkpoint.size)
    cosignature = witness.cosign(checkpoint, site_key, proof)
    store_cosignature(data_dir, checkpoint, cosignature)
    return checkpoint, cosignature
