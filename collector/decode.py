"""Decoding of Modbus registers into numbers: our own code, independent of pymodbus's helpers
(which cannot swap bytes within a word, see shared/reference/collector-anchors.md 4.1)."""
from __future__ import annotations

import struct

from cpaudit.config.models import DataType, WordOrder

_FMT = {DataType.INT16: ">h", DataType.UINT16: ">H", DataType.INT32: ">i",
        DataType.UINT32: ">I", DataType.INT64: ">q", DataType.UINT64: ">Q",
        DataType.FLOAT32: ">f", DataType.FLOAT64: ">d"}


_PACK = {n: struct.Struct(f">{n}H") for n in (1, 2, 4)}
_SIZE = {t: t.registers for t in DataType}


def registers_to_bytes(regs: list[int], order: WordOrder) -> bytes:
    """Reorder registers into big-endian bytes (ABCD) according to the device's word order."""
    if order == WordOrder.ABCD and len(regs) in _PACK:
        return _PACK[len(regs)].pack(*regs)
    if order == WordOrder.CDAB and len(regs) in _PACK:
        return _PACK[len(regs)].pack(*reversed(regs))
    words = [r.to_bytes(2, "big") for r in regs]
    if order in (WordOrder.CDAB, WordOrder.DCBA):
        words.reverse()
    if order in (WordOrder.BADC, WordOrder.DCBA):
        words = [w[::-1] for w in words]
    return b"".join(words)


def decode(regs: list[int], dtype: DataType, order: WordOrder = WordOrder.ABCD,
           bit: int | None = None) -> float:
    """Decode registers to a float. Raises ValueError on a wrong register count."""
    if dtype == DataType.BIT:
        if bit is None:
            raise ValueError("bit type on registers needs a bit index")
        # one 16-bit register (before: [] raised IndexError, [-1] or [70000] decoded)
        if len(regs) != 1 or not 0 <= regs[0] <= 0xFFFF or not 0 <= bit <= 15:
            raise ValueError(f"a bit of one 16-bit register, got registers {regs[:4]} and "
                             f"bit {bit}")
        return float((regs[0] >> bit) & 1)
    if dtype == DataType.STRING:
        raise ValueError("strings do not decode to a number")
    need = _SIZE[dtype]
    if len(regs) != need:
        raise ValueError(f"{dtype.value} needs {need} registers, got {len(regs)}")
    try:
        value = struct.unpack(_FMT[dtype], registers_to_bytes(regs, order))[0]
    except (struct.error, OverflowError) as e:
        raise ValueError(f"register value out of 16-bit range: {regs}") from e
    if bit is not None:
        return float((int(value) >> bit) & 1)
    return float(value)


def decode_string(regs: list[int], order: WordOrder = WordOrder.ABCD) -> str:
    raw = registers_to_bytes(regs, order)
    return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()
