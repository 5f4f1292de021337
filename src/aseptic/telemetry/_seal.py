"""Sealing at the edge: consecutive signed envelopes per source, and batching readings into them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from aseptic.crypto import SigningKey
from aseptic.errors import InputError
from aseptic.telemetry._envelope import Envelope
from aseptic.telemetry._reading import Reading
from aseptic.telemetry._table import QUALITY_CODES, check_number
from aseptic.telemetry._wire import DIGEST_SIZE, MAX_READINGS, ZERO_DIGEST, encode_text

__all__ = ["Collector", "EdgeSigner"]


class EdgeSigner:
    """Seals consecutive envelopes of one source: sequence 1, 2, 3, ... each chained on the last.

    The signer's state (``sequence``, ``previous_digest``) must survive a restart of the collector,
    or its next envelope repeats a sequence number and ingest rejects it as a replay: persist both
    after each ``seal`` and pass them back in.
    """

    def __init__(
        self,
        source: str,
        signing_key: SigningKey,
        *,
        sequence: int = 0,
        previous_digest: bytes = ZERO_DIGEST,
    ) -> None:
        """``sequence`` and ``previous_digest``: the last envelope sealed (0 and zeros: none yet)."""
        if sequence < 0 or len(previous_digest) != DIGEST_SIZE:
            raise ValueError("resume from the last sealed envelope: sequence >= 0, a 32-byte digest")
        self.source = source
        self._key = signing_key
        self._sequence = sequence
        self._previous_digest = bytes(previous_digest)

    @property
    def sequence(self) -> int:
        """The sequence of the last envelope sealed (0 before the first)."""
        return self._sequence

    @property
    def previous_digest(self) -> bytes:
        """The digest of the last envelope sealed (zeros before the first)."""
        return self._previous_digest

    def seal(self, readings: Iterable[Reading]) -> Envelope:
        """The next envelope of this source, carrying ``readings``.

        Raises:
            InputError: no readings, too many, or a tag or source that cannot be encoded; the
                signer's state is unchanged then.
        """
        envelope = Envelope.seal(
            source=self.source,
            sequence=self._sequence + 1,
            previous_digest=self._previous_digest,
            readings=readings,
            key=self._key,
        )
        self._sequence = envelope.sequence
        self._previous_digest = envelope.digest
        return envelope


class Collector:
    """Groups readings into envelopes of ``readings_per_envelope`` per source, and seals them.

    With one signer every reading goes into its envelopes. With several, ``route`` names the
    envelope source of each reading (by default the reading's own ``source``).
    """

    def __init__(
        self,
        signers: EdgeSigner | Sequence[EdgeSigner],
        *,
        readings_per_envelope: int = 250,
        route: Callable[[Reading], str] | None = None,
    ) -> None:
        listed = (signers,) if isinstance(signers, EdgeSigner) else tuple(signers)
        if not listed:
            raise ValueError("a collector needs at least one signer")
        if not 1 <= readings_per_envelope <= MAX_READINGS:
            raise ValueError(
                f"readings_per_envelope must be 1 to {MAX_READINGS}, got {readings_per_envelope}"
            )
        self._signers = {signer.source: signer for signer in listed}
        if len(self._signers) != len(listed):
            raise ValueError("two signers for the same source would fork its chain")
        self._single = listed[0] if len(listed) == 1 and route is None else None
        self._route = route if route is not None else _reading_source
        self._size = readings_per_envelope
        self._pending: dict[str, list[Reading]] = {source: [] for source in self._signers}
        self._encodable: set[str] = set()

    def add(self, reading: Reading) -> Envelope | None:
        """Queue ``reading``; the sealed envelope when its source's batch is full.

        Raises:
            InputError: the reading routes to no signer, or cannot be encoded (a tag or source that
                is not 1 to 255 bytes of UTF-8, a value that is not a number, a quality not 0-2).
        """
        if self._single is not None:
            source = self._single.source
        else:
            source = self._route(reading)
            if source not in self._signers:
                raise InputError(
                    f"reading of {reading.tag!r} routes to source {source!r}, which has no signer here",
                    hint=f"signers: {', '.join(sorted(self._signers))}",
                )
        # Check the reading now, so that a bad one is refused alone and never costs its batch (once
        # in the batch, a reading that cannot be sealed would fail every later seal of its source).
        if type(reading.value) is not float or reading.quality not in QUALITY_CODES:
            check_number(reading)
        for text, what in ((reading.tag, "tag"), (reading.source, "reading source")):
            if text not in self._encodable:
                encode_text(text, what=what)
                if len(self._encodable) >= 4096:  # bounded: strings from the wire are not trusted
                    self._encodable.clear()
                self._encodable.add(text)
        batch = self._pending[source]
        batch.append(reading)
        if len(batch) < self._size:
            return None
        envelope = self._signers[source].seal(batch)
        self._pending[source] = []
        return envelope

    def flush(self) -> list[Envelope]:
        """Seal every partly filled batch (at the end of a stream, or on a timer)."""
        sealed = []
        for source, batch in self._pending.items():
            if batch:
                sealed.append(self._signers[source].seal(batch))
                self._pending[source] = []
        return sealed

    def collect(self, readings: Iterable[Reading]) -> Iterator[Envelope]:
        """Every envelope of ``readings``, the partly filled last ones included."""
        for reading in readings:
            envelope = self.add(reading)
            if envelope is not None:
                yield envelope
        yield from self.flush()


def _reading_source(reading: Reading) -> str:
    return reading.source
