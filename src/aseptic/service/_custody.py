"""The chain of custody, composed: edge collector -> verification at ingest -> ledger, and
detection findings -> ledger. One object per data directory (the embedded default: one process,
SQLite, in-process hand-over).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from aseptic.clock import Clock
from aseptic.config import Settings
from aseptic.crypto import SITE_KEY, KeyStore, SigningKey
from aseptic.detect import Detector, Engine, Finding
from aseptic.errors import ConfigError, InputError
from aseptic.ledger import LeafKind, Ledger, lineage_event
from aseptic.provenance import ArtifactKind, ManifestSpec, record_manifest, sign_artifact
from aseptic.service._batch_record import BatchTracker, ModelRef
from aseptic.telemetry import (
    ChainHead,
    Collector,
    EdgeSigner,
    Envelope,
    IngestCounters,
    Ingestor,
    IngestVerifier,
    Quarantine,
    QuarantineEvent,
    Reading,
)

__all__ = ["CustodyPipeline"]


class CustodyPipeline:
    """Seal readings at the edge, verify them at ingest, log what passes, quarantine what fails.

    The edge signer and the verifier share this process here; in a plant they sit on either side
    of a conduit, and only raw envelope bytes cross it (``ingest_raw``), which is why the
    verifier trusts nothing but the collector's logged public key.
    """

    def __init__(self, data_dir: Path, settings: Settings, clock: Clock, *, collector_id: str) -> None:
        """Open (creating on first use) the keys, ledger and quarantine of ``data_dir``.

        Raises:
            ConfigError: a key or the ledger belongs to someone else, or a bad collector id.
            IntegrityError: the ledger fails its open-time checks.
            BackendError: the files cannot be opened.
        """
        keys = KeyStore.open(data_dir)
        self.site_key: SigningKey = keys.load_or_create(SITE_KEY)
        collector_key = keys.load_or_create(collector_id)
        self.ledger = Ledger.open(data_dir, site_key=self.site_key, clock=clock, origin=settings.site.id)
        logged = self.ledger.logged_keys().get(collector_id, ())
        if logged and collector_key.public not in logged:
            raise ConfigError(
                f"collector {collector_id!r} has another key in the ledger than in {keys.directory}",
                hint="key rotation is a logged event; do not replace key files by hand",
            )
        if not logged:
            self.ledger.append_key(collector_id, collector_key.public)
        head = self.ledger.chain_heads().get(collector_id)
        sequence, digest = head if head is not None else (0, bytes(32))
        heads = {collector_id: ChainHead(sequence, digest)} if head is not None else {}
        self.quarantine = Quarantine.open(
            data_dir, clock=clock, max_stored_bytes=settings.telemetry.max_envelope_bytes
        )
        verifier = IngestVerifier(
            {collector_id: collector_key.public}, clock=clock, settings=settings.telemetry, heads=heads
        )
        self.ingestor = Ingestor(verifier, self.ledger, self.quarantine)
        signer = EdgeSigner(collector_id, collector_key, sequence=sequence, previous_digest=digest)
        self.collector = Collector(signer, readings_per_envelope=settings.telemetry.readings_per_envelope)
        self.findings = 0
        self.last_accepted_raw: bytes | None = None
        self._unsent: deque[bytes] = deque()
        self._clock = clock
        self._origin = settings.site.id
        self._actor = f"service:custody/{collector_id}"
        self.batch: BatchTracker | None = None
        self.models: tuple[ModelRef, ...] = ()  # the model versions in use (cited by each batch)

    @property
    def counters(self) -> IngestCounters:
        return self.ingestor.counters

    def add_reading(self, reading: Reading) -> None:
        """Queue one reading at the edge; a full envelope is sealed and ingested.

        Raises:
            BackendError: the ledger or the quarantine failed; the sealed envelope stays at the
                edge (``unsent``) and goes first, in order, with the next envelope or ``flush``.
        """
        envelope = self.collector.add(reading)
        if envelope is not None:
            self._send(envelope.to_bytes())

    def flush(self) -> None:
        """Seal and ingest what the edge still holds (end of a batch or of the run), after any
        envelope a failure left unsent.

        Raises:
            BackendError: as ``add_reading``; what could not be ingested stays unsent.
        """
        for envelope in self.collector.flush():
            self._unsent.append(envelope.to_bytes())
        self._send(None)

    @property
    def unsent(self) -> int:
        """Sealed envelopes a ledger or quarantine failure left at the edge (retried in order)."""
        return len(self._unsent)

    def _send(self, raw: bytes | None) -> None:
        # In chain order: a later envelope ingested before an unsent one would be refused as a gap.
        if raw is not None:
            self._unsent.append(raw)
        while self._unsent:
            self.ingest_raw(self._unsent[0])
            self._unsent.popleft()

    def ingest_raw(self, raw: bytes) -> Envelope | QuarantineEvent:
        """Verify raw bytes from across the conduit; log or quarantine them (never raises for bad input).

        Each outcome is committed by its own append before the verifier's chain moves, so a
        failing commit leaves nothing counted or chained and the same bytes can be retried.

        Raises:
            BackendError: the ledger or the quarantine failed (not the input's fault).
        """
        result = self.ingestor.ingest(raw)
        leaf = self.ledger.size - 1
        if isinstance(result, Envelope):
            self.last_accepted_raw = raw
            if self.batch is not None:
                self.batch.add_envelope(leaf, result.source, result.sequence, result.reading_count)
        elif self.batch is not None:
            self.batch.quarantine.append(leaf)
        return result

    def record_finding(self, finding: Finding) -> None:
        """A finding is evidence: log it."""
        leaf = self.ledger.append_finding(finding.to_payload())
        self.findings += 1
        if self.batch is not None and finding.batch_id == self.batch.batch_id:
            self.batch.findings.append(leaf)

    # -- batches and lineage (docs/ledger.md, "Batches and lineage") -----------------------------

    def record_model(self, path: Path, *, name: str, version: str, code_version: str = "") -> ModelRef:
        """Sign the model artifact at ``path`` with the site key and log its provenance manifest."""
        spec = ManifestSpec(
            kind=ArtifactKind.MODEL,
            name=name,
            version=version,
            built_at=self._clock.now(),
            builder_id=self._actor,
            code_version=code_version or "aseptic",
        )
        manifest = sign_artifact(path, spec, self.site_key)
        leaf = record_manifest(self.ledger, manifest)
        return ModelRef(name, version, manifest.sha256, leaf)

    def start_batch(self, batch_id: str, *, models: tuple[ModelRef, ...] = ()) -> int:
        """Flush the edge and log the batch's lineage START event (the first leaf of its window).

        Raises:
            InputError: another batch is still open.
        """
        if self.batch is not None:
            raise InputError(f"batch {self.batch.batch_id!r} is still open; end it before {batch_id!r}")
        self.flush()
        namespace = f"aseptic://{self._origin}"
        event = lineage_event(
            "START",
            origin=self._origin,
            batch_id=batch_id,
            time=self._clock.now(),
            actor=self._actor,
            inputs=[model.to_dataset(namespace) for model in models],
        )
        leaf = self.ledger.append_entry(LeafKind.AUDIT, event)
        self.batch = BatchTracker(batch_id, leaf, models)
        return leaf

    def end_batch(self) -> int:
        """Flush the edge and log the COMPLETE event naming the batch's inputs and outputs (the last
        leaf of its window).

        Raises:
            InputError: no batch is open.
        """
        if self.batch is None:
            raise InputError("no batch is open")
        self.flush()
        tracker, namespace = self.batch, f"aseptic://{self._origin}"
        decisions = [leaf for leaf, _ in self.ledger.entries(LeafKind.DECISION, tracker.start_leaf)]
        event = lineage_event(
            "COMPLETE",
            origin=self._origin,
            batch_id=tracker.batch_id,
            time=self._clock.now(),
            actor=self._actor,
            inputs=tracker.inputs(namespace, decisions),
            outputs=tracker.outputs(namespace),
        )
        leaf = self.ledger.append_entry(LeafKind.AUDIT, event)
        self.batch = None
        return leaf

    def detection_engine(
        self,
        detectors: Sequence[Detector],
        *,
        persistence: int,
        also: Callable[[Finding], None] | None = None,
    ) -> Engine:
        """A streaming engine over ``detectors`` whose every Finding is logged here first (evidence),
        then handed to ``also`` (e.g. a report). The demo runs the batch model, the integrity checks
        (stale, replay, physics) and the twin residuals through it."""

        def sink(finding: Finding) -> None:
            self.record_finding(finding)
            if also is not None:
                also(finding)

        return Engine(detectors, sink, clock=self._clock, persistence=persistence)

    def close(self) -> None:
        """Flush the edge, sign a checkpoint and close the ledger (closed even when the flush fails:
        then the ``BackendError`` says why, and ``unsent`` envelopes were not logged)."""
        try:
            self.flush()
            self.ledger.checkpoint()
        finally:
            self.ledger.close()
