"""Decoding and request planning, against byte vectors published in device manuals."""
from __future__ import annotations

import math
import struct

import pytest

from cpaudit.collector.decode import decode
from cpaudit.collector.plan import plan
from cpaudit.config.models import DataType as T
from cpaudit.config.models import Register
from cpaudit.config.models import WordOrder as W


def regs(raw: bytes) -> list[int]:
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def test_published_float_vectors() -> None:
    # SDM630: 43 66 80 00 = 230.5 V (devices.md 3.2); Bell VFM-60: 44 65 1F CE = 916.497 (3.6)
    assert decode([0x4366, 0x8000], T.FLOAT32) == 230.5
    assert decode([0x4465, 0x1FCE], T.FLOAT32) == pytest.approx(916.497, abs=1e-3)


ORDERS = {  # the bytes A B C D of 0x11223344 as each order puts them on the wire
    W.ABCD: [0x1122, 0x3344], W.CDAB: [0x3344, 0x1122],
    W.BADC: [0x2211, 0x4433], W.DCBA: [0x4433, 0x2211],
}


@pytest.mark.parametrize("order", list(W))
def test_word_orders_uint32(order: W) -> None:
    assert decode(ORDERS[order], T.UINT32, order) == 0x11223344


@pytest.mark.parametrize("dtype,value", [
    (T.INT16, -2), (T.UINT16, 65534), (T.INT32, -123456), (T.UINT32, 4_000_000_000),
    (T.INT64, -9_000_000_000_000), (T.UINT64, 18_000_000_000_000_000_000), (T.FLOAT64, 1234.5678),
])
def test_types_big_endian(dtype: T, value: float) -> None:
    fmt = {T.INT16: ">h", T.UINT16: ">H", T.INT32: ">i", T.UINT32: ">I", T.INT64: ">q",
           T.UINT64: ">Q", T.FLOAT64: ">d"}[dtype]
    assert decode(regs(struct.pack(fmt, value)), dtype) == pytest.approx(value)


def test_float64_cdab_reverses_all_words() -> None:
    r = regs(struct.pack(">d", 98765.4321))
    assert decode(list(reversed(r)), T.FLOAT64, W.CDAB) == 98765.4321


def test_bits_and_errors() -> None:
    assert decode([0b1010], T.BIT, bit=1) == 1.0 and decode([0b1010], T.BIT, bit=2) == 0.0
    assert decode([0x0004], T.UINT16, bit=2) == 1.0
    with pytest.raises(ValueError, match="needs 2 registers"):
        decode([1], T.FLOAT32)
    assert math.isnan(decode([0x7FC0, 0x0000], T.FLOAT32))


def reg(address: int, t: str = "float32", function: int = 3, tag: str | None = None) -> Register:
    return Register(tag=tag or f"t{address}", address=address, type=t, function=function)


def test_plan_merges_adjacent_and_respects_limits() -> None:
    rs = [reg(0), reg(2), reg(8, "int32"), reg(10), reg(91, "uint16"), reg(0x7532, function=4)]
    p = plan(rs)
    assert [(q.function, q.address, q.count) for q in p] == [
        (3, 0, 4), (3, 8, 4), (3, 91, 1), (4, 0x7532, 2)]
    p = plan(rs, gap_fill=4)
    assert [(q.function, q.address, q.count) for q in p] == [(3, 0, 12), (3, 91, 1), (4, 0x7532, 2)]
    p = plan(rs, gap_fill=100)
    assert [(q.function, q.address, q.count) for q in p] == [(3, 0, 92), (3 + 1, 0x7532, 2)]


def test_plan_never_exceeds_max_and_never_splits_a_value() -> None:
    rs = [reg(i * 2) for i in range(100)]     # 200 registers of float32
    p = plan(rs, max_count=125)
    assert all(q.count <= 125 for q in p) and sum(q.count for q in p) == 200
    assert all(q.count % 2 == 0 for q in p)
    p = plan([reg(1, tag="a"), reg(3, tag="b")], address_base=1)
    assert [(q.address, q.count) for q in p] == [(0, 4)]
