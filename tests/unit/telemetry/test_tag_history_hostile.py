"""Hostile tag-history files: every one is an InputError that names the file and the line, never a
traceback and never a position that points elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from telemetry_support import START

from aseptic.errors import InputError
from aseptic.telemetry import TagHistoryReplay

pytestmark = pytest.mark.requirement("ASE-CUSTODY")

HEADER = b"time_h,phase,ph\n"
GOOD_ROWS = b"".join(b"%d.0,BATCH,7.0\n" % hour for hour in range(1000))  # lines 2..1001, ~14 kB


def replay(tmp_path: Path, data: bytes) -> list[object]:
    path = tmp_path / "history.csv"
    path.write_bytes(data)
    return list(TagHistoryReplay(path, start=START))


@pytest.mark.parametrize("time_h", ["1e9", "-1e9", "1e20", "1e300"])
def test_a_time_beyond_the_calendar_names_line_and_column(tmp_path: Path, time_h: str) -> None:
    data = HEADER + b"0.0,A,7\n" + time_h.encode() + b",A,7\n"
    with pytest.raises(
        InputError, match=rf"history.csv: line 3, column 1: time_h '{time_h}' .*years 1 to 9999"
    ):
        replay(tmp_path, data)


def test_bytes_that_are_not_utf8_deep_in_the_file_name_their_line(tmp_path: Path) -> None:
    data = HEADER + GOOD_ROWS + b"1000.0,B\xe9TCH,7.0\n"  # Latin-1 e-acute, past the first read chunk
    with pytest.raises(InputError, match=r"history.csv: line 1002, byte 9: not UTF-8"):
        replay(tmp_path, data)


def test_a_field_over_the_csv_limit_names_its_line(tmp_path: Path) -> None:
    data = HEADER + GOOD_ROWS + b"1000.0,A," + b"7" * 200_000 + b"\n"
    with pytest.raises(InputError, match=r"history.csv: line 1002: field larger than field limit"):
        replay(tmp_path, data)
