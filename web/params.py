"""Parameters from outside, checked: times, integers and numbers of a request's query or JSON body.

Every function raises :class:`web.app.APIError` (400) with the parameter's name and what was
expected; nothing outside the accepted range reaches the analyzer, the store or numpy (whose
int64 nanoseconds end in 2262: a year-9999 date or a 23-digit integer overflowed there and
answered 500).
"""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from cpaudit.config.checks import PHYSICAL_BOUND
from cpaudit.store.keys import TS_MAX
from cpaudit.web.app import APIError

# The times the API accepts [ns since the epoch, UTC]: from 1970 to the end of 2199. Earlier
# than the epoch is no campaign; later overflows no int64 (2262) and is no campaign either.
TS_MIN = 0
_INT = re.compile(r"-?[0-9]{1,30}")               # ASCII digits only: "²".isdigit() is True
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

__all__ = ["PHYSICAL_BOUND", "TS_MAX", "TS_MIN", "parse_int", "parse_number", "parse_time"]


def parse_time(name: str, raw: Any) -> int:
    """A time given as ISO 8601 with an offset or as integer ns [ns], within [TS_MIN, TS_MAX)."""
    if isinstance(raw, bool):
        raise APIError(400, f"{name}: expected ISO 8601 time or integer ns, got {raw!r}")
    if isinstance(raw, int):
        ns = raw
    elif isinstance(raw, float) and raw.is_integer() and abs(raw) < 2**63:
        ns = int(raw)            # JSON 7332.0 is an integer (JSON Schema says so too)
    elif isinstance(raw, str) and _INT.fullmatch(raw.strip()):
        ns = int(raw.strip())
    elif isinstance(raw, str):
        try:
            t = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise APIError(400, f"{name}: expected ISO 8601 time or integer ns, got "
                                f"{raw[:60]!r}") from None
        if t.tzinfo is None:
            raise APIError(400, f"{name}: give a time zone offset, e.g. {raw[:40]}+08:00")
        try:
            ns = (t - _EPOCH) // dt.timedelta(microseconds=1) * 1000
        except OverflowError:
            raise APIError(400, f"{name}: {raw[:60]!r} is out of range") from None
    else:
        raise APIError(400, f"{name}: expected ISO 8601 time or integer ns, got "
                            f"{type(raw).__name__}")
    if not TS_MIN <= ns < TS_MAX:
        raise APIError(400, f"{name}: out of range (1970-01-01 .. 2199-12-31 UTC, i.e. 0 .. "
                            f"{TS_MAX - 1} ns)")
    return ns


def parse_int(name: str, raw: str | None, default: int, lo: int, hi: int) -> int:
    """An integer query parameter within [lo, hi]."""
    if raw is None or raw == "":
        return default
    if not _INT.fullmatch(raw.strip()):
        raise APIError(400, f"{name}: expected an integer, got {raw[:60]!r}")
    v = int(raw.strip())
    if not lo <= v <= hi:
        raise APIError(400, f"{name}: between {lo} and {hi}")
    return v


def parse_number(name: str, raw: Any) -> float:
    """A finite JSON number (not a bool, not Infinity/NaN, not 1e309, not 400 digits)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise APIError(400, f"{name}: expected a number")
    try:
        v = float(raw)
    except OverflowError:
        raise APIError(400, f"{name}: {str(raw)[:20]}… is too large") from None
    if not math.isfinite(v):
        raise APIError(400, f"{name}: expected a finite number, got {v}")
    return v
