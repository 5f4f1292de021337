"""File replay: the readings of a tag-history CSV (``aseptic twin run`` output), as a source.

Columns: ``time_h`` (hours since the batch start), ``phase`` (a label, not a reading), then one
column per tag of the catalogue. An empty or NaN cell means "no reading of that tag then". Reading
times are ``start + time_h``; every reading is ``Quality.GOOD`` (the file carries no quality).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from aseptic.clock import ensure_utc
from aseptic.errors import InputError
from aseptic.telemetry._reading import Quality, Reading
from aseptic.twin.tags import TAGS_BY_NAME, TagSpec

__all__ = ["TagHistoryReplay"]

_LEADING = ("time_h", "phase")
_MISSING = frozenset({"", "nan", "NaN", "NAN"})


class TagHistoryReplay:
    """Replays a tag-history CSV as readings, row by row, tags in column order.

    ``source`` names who measured each reading; by default the tag's device in the catalogue
    (e.g. ``AT-202`` for ``ph``).
    """

    def __init__(
        self,
        path: Path,
        *,
        start: datetime,
        source: str | None = None,
        catalogue: Mapping[str, TagSpec] = TAGS_BY_NAME,
    ) -> None:
        self.path = path
        self.start = ensure_utc(start)
        self.source = source
        self._catalogue = catalogue

    def __iter__(self) -> Iterator[Reading]:
        return self.readings()

    def readings(self) -> Iterator[Reading]:
        """Every reading in the file, in order.

        Raises:
            InputError: the file is missing or unreadable, the header is not ``time_h, phase, <tags>``,
                a tag is unknown or repeated, or a cell is not a number; the message names the line
                and column.
        """
        reader = None
        try:
            with self.path.open(newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                yield from self._rows(reader)
        except FileNotFoundError:
            raise InputError(f"tag history {self.path} does not exist") from None
        except UnicodeDecodeError:
            # The codec's position counts from the start of its read chunk, not of the file.
            raise InputError(f"{self.path}: {self._first_undecodable()}") from None
        except csv.Error as exc:
            where = "" if reader is None else f"line {reader.line_num}: "
            raise InputError(f"{self.path}: {where}{exc}") from None
        except OSError as exc:
            raise InputError(f"tag history {self.path} cannot be read: {exc}") from None

    def _first_undecodable(self) -> str:
        """Where the first bytes that are not UTF-8 are: ``line N, byte M: ...`` (1-based)."""
        with self.path.open("rb") as handle:
            for line, data in enumerate(handle, start=1):
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return f"line {line}, byte {exc.start + 1}: not UTF-8 ({exc.reason})"
        return "not UTF-8"

    def _rows(self, rows: Iterator[list[str]]) -> Iterator[Reading]:
        header = next(rows, None)
        if header is None or tuple(header[:2]) != _LEADING:
            raise InputError(
                f"{self.path}: line 1: expected the columns time_h, phase, then tags; got {header!r}",
                hint="write it with `aseptic twin run`",
            )
        tags = header[2:]
        for column, tag in enumerate(tags, start=3):
            if tag not in self._catalogue:
                raise InputError(f"{self.path}: line 1, column {column}: {tag!r} is not a known tag")
        if len(set(tags)) != len(tags):
            raise InputError(f"{self.path}: line 1: a tag column is repeated")
        sources = [self.source or self._catalogue[tag].device for tag in tags]
        good = Quality.GOOD
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(f"{self.path}: line {line}: {len(row)} cells, the header has {len(header)}")
            time_h = self._number(row[0], line, 1)
            if time_h is None:
                raise InputError(f"{self.path}: line {line}, column 1: time_h is missing")
            try:
                when = self.start + timedelta(hours=time_h)
            except OverflowError:
                raise InputError(
                    f"{self.path}: line {line}, column 1: time_h {row[0].strip()!r} puts the reading "
                    f"outside years 1 to 9999 (start {self.start.isoformat()})"
                ) from None
            for column, (tag, source, cell) in enumerate(zip(tags, sources, row[2:], strict=True), start=3):
                value = self._number(cell, line, column)
                if value is not None:
                    yield Reading(tag, when, value, good, source)

    def _number(self, cell: str, line: int, column: int) -> float | None:
        cell = cell.strip()
        if cell in _MISSING:
            return None
        try:
            value = float(cell)
        except ValueError:
            raise InputError(f"{self.path}: line {line}, column {column}: {cell!r} is not a number") from None
        if math.isnan(value):
            return None
        if column == 1 and not math.isfinite(value):
            raise InputError(f"{self.path}: line {line}, column 1: time_h {cell!r} is not finite")
        return value
