"""Verification at ingest: the pure core that decides whether an envelope enters the ledger.

Checks, in order (docs/telemetry.md, "Verification at ingest"): size, decoding, known source and key,
signature, sequence (replay, gap, chain), clock skew, values. The verifier holds the trusted keys
of each source and the head of each source's chain (last sequence and digest); its state changes
only in ``advance``, so a caller can store an envelope first and advance after (``Ingestor`` does).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from math import isfinite, isnan

from aseptic.clock import Clock, format_rfc3339
from aseptic.config import TelemetrySettings
from aseptic.crypto import PublicKey
from aseptic.errors import (
    AsepticError,
    ConfigError,
    InputError,
    IntegrityError,
    RollbackError,
    SignatureError,
)
from aseptic.telemetry._envelope import Envelope
from aseptic.telemetry._reading import Quality
from aseptic.telemetry._wire import ZERO_DIGEST, has_control, time_to_us, us_to_time
from aseptic.twin.tags import TAGS_BY_NAME, TagSpec

__all__ = ["ChainHead", "IngestVerifier", "RejectReason", "Rejection"]


class RejectReason(StrEnum):
    """Why an input was rejected: the key quarantine counts are kept under."""

    OVERSIZE = "oversize"
    MALFORMED = "malformed"
    UNKNOWN_SOURCE = "unknown_source"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    REPLAY = "replay"
    GAP = "gap"
    CHAIN_MISMATCH = "chain_mismatch"
    CLOCK_SKEW = "clock_skew"
    UNKNOWN_TAG = "unknown_tag"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    CONTROL_TEXT = "control_text"
    CONFLICTING = "conflicting"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last accepted envelope of a source: where its next envelope must chain on."""

    sequence: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    """A rejected input: why, the error to show, and what could be decoded of it.

    ``in_chain`` is true when the envelope is authentic and next in its source's chain but its
    content is refused (clock skew, values): the chain head moves past it, so that the source's
    following envelopes still fit, and the quarantine event records it in the ledger.
    """

    reason: RejectReason
    error: AsepticError
    envelope: Envelope | None = None
    in_chain: bool = False

    @property
    def authenticated(self) -> bool:
        """Whether the envelope's signature verified with a trusted key of its source."""
        return self.in_chain or self.reason in _AFTER_SIGNATURE


_AFTER_SIGNATURE = frozenset({RejectReason.REPLAY, RejectReason.GAP, RejectReason.CHAIN_MISMATCH})
# Refusals of an authentic, in-order envelope for its content alone: the chain moves past them.
CONTENT_REASONS = frozenset(
    {
        RejectReason.CLOCK_SKEW,
        RejectReason.CONTROL_TEXT,
        RejectReason.CONFLICTING,
        RejectReason.UNKNOWN_TAG,
        RejectReason.NON_FINITE,
        RejectReason.OUT_OF_RANGE,
    }
)


class IngestVerifier:
    """Decides, for each raw message, whether it is an authentic, in-order, plausible envelope."""

    def __init__(
        self,
        keys: Mapping[str, PublicKey | Iterable[PublicKey]],
        *,
        clock: Clock,
        settings: TelemetrySettings | None = None,
        catalogue: Mapping[str, TagSpec] = TAGS_BY_NAME,
        heads: Mapping[str, ChainHead] | None = None,
    ) -> None:
        """``keys``: the trusted keys of each source; ``heads``: where each source's chain stands.

        A source without a head must start at sequence 1 with an all-zero previous digest. After
        a restart, pass the heads of the last envelopes in the ledger.

        Raises:
            ConfigError: no sources, or a source with no key (fail closed: never "trust anyone"), or
                a clock skew allowance that is not finite.
        """
        self._keys: dict[str, dict[str, PublicKey]] = {}
        for source, given in keys.items():
            listed = (given,) if isinstance(given, PublicKey) else tuple(given)
            if not listed:
                raise ConfigError(f"source {source!r} has no trusted key; it could never be verified")
            self._keys[source] = {str(key.key_id): key for key in listed}
        if not self._keys:
            raise ConfigError(
                "no trusted source keys: every envelope would be rejected", hint="add collector keys"
            )
        self._clock = clock
        self._settings = settings if settings is not None else TelemetrySettings()
        skew = self._settings.max_clock_skew_s
        if not isfinite(skew):
            # An infinite allowance cannot be compared in microseconds: every check would fail.
            raise ConfigError(
                f"[telemetry].max_clock_skew_s is {skew}: the clock skew allowance is a finite number "
                "of seconds",
                hint="the default is 300",
            )
        self._catalogue = catalogue
        self._heads: dict[str, ChainHead] = dict(heads or {})
        self._screened = 0
        # The last envelope per source that ``screen`` found authentic and next in its chain.
        self._vetted: dict[str, bytes] = {}

    # -- state ------------------------------------------------------------------------------------

    def head(self, source: str) -> ChainHead | None:
        """The last accepted (or in-chain rejected) envelope of ``source``; ``None`` before its first."""
        return self._heads.get(source)

    @property
    def heads(self) -> dict[str, ChainHead]:
        return dict(self._heads)

    def advance(self, envelope: Envelope) -> None:
        """Move ``envelope.source``'s chain head to ``envelope``, which must be next in the chain.

        Only an envelope that ``screen`` accepted, or refused for its content alone (``in_chain``),
        can move a chain: an unauthenticated one never does.

        Raises:
            ValueError: ``envelope`` was not vetted by ``screen`` (a programming error).
            RollbackError, IntegrityError: ``envelope`` is no longer the next one.
        """
        if self._vetted.get(envelope.source) != envelope.digest:
            raise ValueError(f"advance: envelope {envelope!r} was not screened by this verifier")
        rejection = self._check_chain(envelope, f"advance {envelope.source!r}")
        if rejection is not None:
            raise rejection.error
        self._heads[envelope.source] = ChainHead(envelope.sequence, envelope.digest)
        del self._vetted[envelope.source]

    # -- verification -----------------------------------------------------------------------------

    def verify(self, raw: bytes) -> Envelope:
        """Check ``raw`` completely and advance its source's chain; the envelope if it is accepted.

        Raises:
            InputError: oversized, malformed, clock skew, unknown tag, value out of range or not finite.
            SignatureError: unknown source, untrusted key, or a signature that does not verify.
            RollbackError: a sequence at or behind the last accepted one (replay).
            IntegrityError: a gap in the sequence or a previous digest that does not chain.
        """
        result = self.screen(raw)
        if isinstance(result, Rejection):
            if result.in_chain and result.envelope is not None:
                self.advance(result.envelope)
            raise result.error
        self.advance(result)
        return result

    def screen(self, raw: bytes) -> Envelope | Rejection:
        """Every check of ``verify``, without moving any chain and without raising for bad input."""
        self._screened += 1
        limit = self._settings.max_envelope_bytes
        if len(raw) > limit:
            return Rejection(
                RejectReason.OVERSIZE,
                InputError(
                    f"envelope {self._screened}: {len(raw)} bytes exceed the limit of {limit} bytes",
                    hint="[telemetry].max_envelope_bytes; senders split readings into more envelopes",
                ),
            )
        try:
            envelope = Envelope.from_bytes(raw)
        except InputError as exc:
            return Rejection(
                RejectReason.MALFORMED, InputError(f"envelope {self._screened}: {exc}", hint=exc.hint)
            )
        what = f"envelope {self._screened} from {envelope.source!r}"
        rejection = self._authenticate(envelope, what) or self._check_chain(envelope, what)
        if rejection is None:
            self._vetted[envelope.source] = envelope.digest
            rejection = self._check_content(envelope, f"{what} (sequence {envelope.sequence})")
        return envelope if rejection is None else rejection

    def _authenticate(self, envelope: Envelope, what: str) -> Rejection | None:
        keys = self._keys.get(envelope.source)
        block = envelope.signature
        if keys is None:
            error = SignatureError(
                f"{what}: source is not known; no key is trusted for it",
                hint="register the collector's public key before it sends",
            )
            return Rejection(RejectReason.UNKNOWN_SOURCE, error, envelope)
        key = keys.get(block.key_id)
        if key is None:
            error = SignatureError(
                f"{what}: key {block.key_id!r} is not trusted for this source "
                f"(trusted: {', '.join(sorted(keys))})"
            )
            return Rejection(RejectReason.UNKNOWN_KEY, error, envelope)
        if block.algorithm != key.algorithm:
            error = SignatureError(
                f"{what}: signature claims algorithm {block.algorithm!r}, key {key.key_id} is {key.algorithm}"
            )
            return Rejection(RejectReason.BAD_SIGNATURE, error, envelope)
        try:
            key.verify(
                block.signature, envelope.signing_message, what=f"{what} (digest {envelope.digest_hex})"
            )
        except SignatureError as exc:
            return Rejection(RejectReason.BAD_SIGNATURE, exc, envelope)
        return None

    def _check_chain(self, envelope: Envelope, what: str) -> Rejection | None:
        head = self._heads.get(envelope.source)
        last, last_digest = (0, ZERO_DIGEST) if head is None else (head.sequence, head.digest)
        sequence = envelope.sequence
        if sequence <= last:
            relation = "repeats" if sequence == last else "is behind"
            error: IntegrityError = RollbackError(
                f"{what}: sequence {sequence} {relation} {last} (replay?)",
                hint="an envelope is accepted once, in order; this one was seen before or is stale",
            )
            return Rejection(RejectReason.REPLAY, error, envelope)
        if sequence > last + 1:
            missing = sequence - last - 1
            span = str(last + 1) if missing == 1 else f"{last + 1}..{sequence - 1}"
            error = IntegrityError(
                f"{what}: sequence {sequence} follows {last}: {missing} envelope(s) missing ({span})",
                hint="the collector must resend the missing envelopes in order; a loss that cannot be "
                "recovered needs an operator to re-anchor the source",
            )
            return Rejection(RejectReason.GAP, error, envelope)
        if not hmac.compare_digest(envelope.previous_digest, last_digest):
            error = IntegrityError(
                f"{what}: sequence {sequence} does not chain on {last}: previous digest expected "
                f"{last_digest.hex()}, got {envelope.previous_digest.hex()}",
                hint="two different envelopes claim the same place in the chain: a fork (cloned key?)",
            )
            return Rejection(RejectReason.CHAIN_MISMATCH, error, envelope)
        return None

    def _check_content(self, envelope: Envelope, what: str) -> Rejection | None:
        table = envelope._table  # the decoded columns: checked without building Reading objects
        now = self._clock.now()
        latest_allowed_us = time_to_us(now) + round(self._settings.max_clock_skew_s * 1e6)
        if max(table.times_us) > latest_allowed_us:
            i = next(i for i, t in enumerate(table.times_us) if t > latest_allowed_us)
            ahead_s = (table.times_us[i] - time_to_us(now)) / 1e6
            error = InputError(
                f"{what}: reading {i} ({table.strings[table.tags[i]]!r}) is at "
                f"{format_rfc3339(us_to_time(table.times_us[i]))}, {ahead_s:.3f} s ahead of the ingest "
                f"clock {format_rfc3339(now)}; allowed {self._settings.max_clock_skew_s} s",
                hint="the collector's clock runs ahead; fix its time source ([telemetry].max_clock_skew_s)",
            )
            return Rejection(RejectReason.CLOCK_SKEW, error, envelope, in_chain=True)
        for k, text in enumerate(table.strings if has_control("".join(table.strings)) else ()):
            if has_control(text):
                # Signed and in order, so the chain moves past it; never logged: a store may not
                # hold the character (PostgreSQL refuses U+0000) and a reader may not show it.
                if k in table.tags:
                    where = f"reading {table.tags.index(k)}: tag"
                elif k in table.sources:
                    where = f"reading {table.sources.index(k)}: reading source"
                else:
                    where = f"string {k}"
                error = InputError(
                    f"{what}: {where} {text!r} holds a control character",
                    hint="tags and sources are names (no U+0000-U+001F, U+007F); a faulty or hostile "
                    "collector",
                )
                return Rejection(RejectReason.CONTROL_TEXT, error, envelope, in_chain=True)
        specs = [self._catalogue.get(text) for text in table.strings]
        for tag in dict.fromkeys(table.tags):
            if specs[tag] is None:
                i = table.tags.index(tag)
                error = InputError(
                    f"{what}: reading {i}: tag {table.strings[tag]!r} is not in the tag catalogue",
                    hint="see aseptic.twin.tags for the known tags",
                )
                return Rejection(RejectReason.UNKNOWN_TAG, error, envelope, in_chain=True)
        if len(set(zip(table.tags, table.sources, table.times_us, strict=True))) != len(table.tags):
            conflict = self._conflict(envelope, what)
            if conflict is not None:
                return conflict
        lows = [spec.low if spec is not None else 0.0 for spec in specs]
        highs = [spec.high if spec is not None else 0.0 for spec in specs]
        suspects = [
            i
            for i, (tag, value) in enumerate(zip(table.tags, table.values, strict=True))
            if not lows[tag] <= value <= highs[tag]
        ]
        return self._judge_values(envelope, what, specs, suspects) if suspects else None

    def _conflict(self, envelope: Envelope, what: str) -> Rejection | None:
        """Two readings of one tag from one source at one instant with different values or
        qualities: contradictory data, refused (an exact repeat is harmless and accepted)."""
        table = envelope._table
        first: dict[tuple[int, int, int], int] = {}
        for i, key in enumerate(zip(table.tags, table.sources, table.times_us, strict=True)):
            j = first.setdefault(key, i)
            if j == i:
                continue
            a, b = table.values[j], table.values[i]
            same_value = a == b or (isnan(a) and isnan(b))
            if same_value and table.qualities[j] == table.qualities[i]:
                continue
            tag, source = table.strings[key[0]], table.strings[key[1]]
            was, now = Quality(table.qualities[j]).name, Quality(table.qualities[i]).name
            error = InputError(
                f"{what}: reading {i} ({tag!r} from {source!r} at {format_rfc3339(us_to_time(key[2]))}) "
                f"repeats reading {j} with another value or quality ({a!r} {was}, then {b!r} {now})",
                hint="one instrument has one value at one instant: a faulty or hostile collector",
            )
            return Rejection(RejectReason.CONFLICTING, error, envelope, in_chain=True)
        return None

    def _judge_values(
        self, envelope: Envelope, what: str, specs: list[TagSpec | None], suspects: list[int]
    ) -> Rejection | None:
        """Out of span, or not finite: allowed only as a non-finite value with quality BAD."""
        table = envelope._table
        bad = int(Quality.BAD)
        violations = [i for i in suspects if table.qualities[i] != bad or isfinite(table.values[i])]
        if not violations:
            return None
        i = violations[0]
        spec = specs[table.tags[i]]
        if spec is None:
            raise RuntimeError("unreachable: unknown tags are refused before values are judged")
        value = table.values[i]
        where = f"{what}: reading {i} ({spec.name!r} at {format_rfc3339(us_to_time(table.times_us[i]))})"
        more = f" (and {len(violations) - 1} more reading(s))" if len(violations) > 1 else ""
        if isfinite(value):
            error = InputError(
                f"{where}: value {value!r} {spec.unit} is outside the calibrated span "
                f"[{spec.low}, {spec.high}]{more}",
                hint="the instrument cannot measure this; a faulty or manipulated device",
            )
            return Rejection(RejectReason.OUT_OF_RANGE, error, envelope, in_chain=True)
        error = InputError(
            f"{where}: value {value!r} with quality {Quality(table.qualities[i]).name}; only BAD readings "
            f"may carry NaN or infinity{more}"
        )
        return Rejection(RejectReason.NON_FINITE, error, envelope, in_chain=True)
