"""Register encoding for the simulated meters, written independently of the collector's decoder."""
from __future__ import annotations

import struct

_FMT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q",
        "uint64": ">Q", "float32": ">f", "float64": ">d"}


def to_registers(value: float | int, dtype: str, order: str = "ABCD") -> list[int]:
    """Encode ``value`` as 16-bit registers. ``order`` names the byte sequence on the wire with
    A the most significant byte: ABCD big-endian, CDAB low word first, BADC bytes swapped within
    words, DCBA fully reversed."""
    fmt = _FMT[dtype]
    if fmt[1] in "hHiIqQ":
        raw = struct.pack(fmt, int(value))
    else:
        raw = struct.pack(fmt, float(value))
    words = [raw[i:i + 2] for i in range(0, len(raw), 2)]
    if order in ("CDAB", "DCBA"):
        words.reverse()
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]
