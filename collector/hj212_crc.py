"""The checksums HJ 212 packets carry (pure). Sources: HJ 212-2017 Appendix A (its routine
``CRC16_Checkout``, re-computed against the vectors in shared/reference/devices.md 1.8); the
CRC-16/MODBUS some loggers send instead, plain or with its two bytes swapped (pitfall P1,
srdgame/lua-HJ212 ``crc_serial.lua`` / ``crc_serial_le.lua``)."""
from __future__ import annotations

import sys


def _table(poly: int) -> list[int]:
    out = []
    for b in range(256):
        reg = b
        for _ in range(8):
            reg = (reg >> 1) ^ poly if reg & 1 else reg >> 1
        out.append(reg)
    return out


_T = _table(0xA001)


_H = [t >> 8 for t in _T]
# The register entering a byte's 8 shifts is 8 bits wide (reg >> 8), so the state between bytes is
# one byte h, and h' = _H[h ^ b]. Two bytes a lookup: a little-endian 16-bit word w = b1 | b2 << 8
# takes h to _HW[w ^ h] (h XORs into b1, the low byte).
_HW = [_H[_H[x & 0xFF] ^ (x >> 8)] for x in range(65536)]
_LITTLE = sys.byteorder == "little"


def crc_hj212(data: bytes) -> int:
    """HJ 212-2017 Appendix A: ``reg = (reg >> 8) ^ byte``, then 8 shifts with 0xA001; no final
    XOR. (Computed two bytes a table lookup, see ``_HW``; the standard's routine bit by bit is
    :func:`_crc_hj212_reference`, and the tests hold the two equal.)"""
    n = len(data)
    if n == 0:
        return 0xFFFF
    h = 0xFF
    body = data[:-1]
    if len(body) & 1:
        h = _H[h ^ body[0]]
        body = body[1:]
    hw = _HW
    if _LITTLE:
        for w in memoryview(body).cast("H"):        # native order: little-endian here
            h = hw[w ^ h]
    else:
        for a, b in zip(body[0::2], body[1::2]):
            h = hw[(a | b << 8) ^ h]
    return _T[h ^ data[-1]]


def _crc_hj212_reference(data: bytes) -> int:
    """The standard's routine as printed, one bit at a time (for the tests)."""
    reg = 0xFFFF
    for b in data:
        reg = (reg >> 8) ^ b
        for _ in range(8):
            reg = (reg >> 1) ^ 0xA001 if reg & 1 else reg >> 1
    return reg


def crc_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (reflected 0xA001, init 0xFFFF)."""
    reg = 0xFFFF
    for b in data:
        reg = (reg >> 8) ^ _T[(reg ^ b) & 0xFF]
    return reg


CRC_VARIANTS = ("hj212", "modbus_swapped", "modbus")


def crc_hex(data: bytes, variant: str = "hj212") -> str:
    """The 4 hex digits a packet carries, high byte first, upper case."""
    if variant == "hj212":
        v = crc_hj212(data)
    elif variant == "modbus":
        v = crc_modbus(data)
    elif variant == "modbus_swapped":
        m = crc_modbus(data)
        v = ((m & 0xFF) << 8) | (m >> 8)
    else:
        raise ValueError(f"unknown CRC variant {variant!r}; known: {', '.join(CRC_VARIANTS)}")
    return f"{v:04X}"
