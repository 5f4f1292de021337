"""A reading the edge cannot encode is refused alone, with an InputError naming it: it must never
cost its batch, and never wedge its source's collector for every reading after it."""

from __future__ import annotations

from typing import Any

import pytest
from telemetry_support import SOURCE, START, catalogue_readings, fixed_key

from aseptic.errors import InputError
from aseptic.telemetry import Collector, EdgeSigner, Quality, Reading

pytestmark = pytest.mark.requirement("ASE-CUSTODY")


@pytest.mark.parametrize(
    ("value", "quality", "problem"),
    [
        ("seven", Quality.GOOD, "value 'seven' is not a number"),
        (None, Quality.GOOD, "value None is not a number"),
        (7.0, 5, "quality 5 is not 0 .GOOD., 1 .UNCERTAIN. or 2 .BAD."),
        (7.0, "GOOD", "quality 'GOOD' is not 0 .GOOD., 1 .UNCERTAIN. or 2 .BAD."),
    ],
)
def test_a_reading_that_is_not_a_number_is_refused_alone(value: Any, quality: Any, problem: str) -> None:
    collector = Collector(EdgeSigner(SOURCE, fixed_key(1)), readings_per_envelope=3)
    good = catalogue_readings(6)
    collector.add(good[0])
    bad = Reading("ph", START, value, quality, "AT-202")
    with pytest.raises(InputError, match=rf"reading of 'ph' at 2026-01-01T06:00:00.000000Z: {problem}"):
        collector.add(bad)
    assert collector.add(good[1]) is None
    first = collector.add(good[2])
    assert first is not None and list(first.readings) == good[:3]
    assert [collector.add(r) for r in good[3:5]] == [None, None]
    second = collector.add(good[5])
    assert second is not None and second.sequence == 2


def test_numbers_of_other_types_are_sealed_as_floats() -> None:
    collector = Collector(EdgeSigner(SOURCE, fixed_key(1)), readings_per_envelope=2)
    collector.add(Reading("ph", START, 7, 0, "AT-202"))  # type: ignore[arg-type]
    envelope = collector.add(Reading("ph", START, 6.5, Quality.BAD, "AT-202"))
    assert envelope is not None
    assert [(r.value, r.quality) for r in envelope.readings] == [(7.0, Quality.GOOD), (6.5, Quality.BAD)]


def test_sealing_a_reading_that_is_not_a_number_is_input_error_and_changes_nothing() -> None:
    signer = EdgeSigner(SOURCE, fixed_key(1))
    readings = [*catalogue_readings(2), Reading("ph", START, "7,1", Quality.GOOD, "AT-202")]  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"reading of 'ph' at .*: value '7,1' is not a number"):
        signer.seal(readings)
    assert signer.sequence == 0
    assert signer.seal(readings[:2]).sequence == 1
