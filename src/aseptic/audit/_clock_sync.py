"""Whether the host clock is synchronised, read honestly from the kernel (an I/O adapter).

An audit entry's time comes from the host clock; Annex 11 and Part 11 reviewers ask whether that
clock was right. Linux keeps the answer: ``adjtimex(2)`` with ``modes = 0`` (read-only, allowed to
any user) returns ``TIME_ERROR`` and sets ``STA_UNSYNC`` while no time daemon (chrony, ntpd,
systemd-timesyncd) disciplines the clock. Anything else - another OS, a sandbox that blocks the
call - is ``unknown``, never a guess of ``synchronized``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable
from typing import Literal

__all__ = ["CLOCK_SYNC_STATES", "ClockSync", "SyncProbe", "fixed_clock_sync", "read_host_clock_sync"]

ClockSync = Literal["synchronized", "unsynchronized", "unknown"]
CLOCK_SYNC_STATES: tuple[ClockSync, ...] = ("synchronized", "unsynchronized", "unknown")

# What an audit trail asks for the sync state at the moment of an entry (injectable for tests).
SyncProbe = Callable[[], ClockSync]

_TIME_ERROR = 5  # adjtimex return value: the clock is not synchronised
_STA_UNSYNC = 0x0040


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    # struct timex of <sys/timex.h> (glibc, LP64 and ILP32 alike: long-sized fields).
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("padding", ctypes.c_int * 11),
    ]


def read_host_clock_sync() -> ClockSync:
    """The kernel's view of the host clock: ``synchronized``, ``unsynchronized`` or ``unknown``."""
    if not sys.platform.startswith("linux"):
        return "unknown"
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return "unknown"
    adjtimex.argtypes = [ctypes.POINTER(_Timex)]
    adjtimex.restype = ctypes.c_int
    timex = _Timex()  # modes = 0: read only
    state = adjtimex(ctypes.byref(timex))
    if state < 0:
        return "unknown"
    if state == _TIME_ERROR or timex.status & _STA_UNSYNC:
        return "unsynchronized"
    return "synchronized"


def fixed_clock_sync(state: ClockSync) -> SyncProbe:
    """A probe that always answers ``state`` (simulated time, tests)."""
    if state not in CLOCK_SYNC_STATES:
        raise ValueError(f"clock sync state {state!r} is not one of {CLOCK_SYNC_STATES}")
    return lambda: state
