"""Modbus register decoding is a boundary of outside input (whatever words a device answers
with): for every data type and word order, any register words decode to a float or raise the
decoder's ValueError (which collector/modbus.py turns into a bad/decode reading) — never
another exception; and a value encoded by the simulators' independent encoder
(simulators/encode.py) decodes back to itself, bit for bit."""
from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpaudit.collector.decode import decode
from cpaudit.config.models import DataType, WordOrder
from cpaudit.simulators.encode import to_registers

NUMERIC = [t for t in DataType if t not in (DataType.BIT, DataType.STRING)]
ORDERS = list(WordOrder)
word = st.integers(0, 0xFFFF)
any_int = st.integers(-(2 ** 70), 2 ** 70)
RANGES = {DataType.INT16: (-2 ** 15, 2 ** 15 - 1), DataType.UINT16: (0, 2 ** 16 - 1),
          DataType.INT32: (-2 ** 31, 2 ** 31 - 1), DataType.UINT32: (0, 2 ** 32 - 1),
          DataType.INT64: (-2 ** 63, 2 ** 63 - 1), DataType.UINT64: (0, 2 ** 64 - 1)}


def decodes_or_refuses(regs: list[int], dtype: DataType, order: WordOrder,
                       bit: int | None) -> float | None:
    try:
        v = decode(regs, dtype, order, bit)
    except ValueError:
        return None
    assert isinstance(v, float)
    return v


@settings(max_examples=1500, deadline=None)
@given(st.lists(word, max_size=6), st.sampled_from(list(DataType)), st.sampled_from(ORDERS),
       st.none() | st.integers(0, 15))
def test_any_words_decode_or_are_refused(regs: list[int], dtype: DataType, order: WordOrder,
                                         bit: int | None) -> None:
    v = decodes_or_refuses(regs, dtype, order, bit)
    if v is None:
        return
    if dtype in RANGES:
        lo, hi = RANGES[dtype]
        assert lo <= v <= hi and v == int(v)
    if dtype == DataType.BIT or bit is not None:
        assert v in (0.0, 1.0)
    if dtype in NUMERIC and bit is None:
        assert len(regs) == dtype.registers         # any other count is refused


@settings(max_examples=800, deadline=None)
@given(st.lists(any_int, max_size=6), st.sampled_from(list(DataType)), st.sampled_from(ORDERS),
       st.none() | st.integers(-3, 40))
def test_words_out_of_range_are_refused_not_crashed(regs: list[int], dtype: DataType,
                                                    order: WordOrder, bit: int | None) -> None:
    v = decodes_or_refuses(regs, dtype, order, bit)
    if v is not None and dtype != DataType.STRING:
        assert all(0 <= r <= 0xFFFF for r in regs[:dtype.registers])


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: o.value)
@pytest.mark.parametrize("dtype", [t for t in NUMERIC if t in RANGES], ids=lambda t: t.value)
def test_integers_round_trip(dtype: DataType, order: WordOrder) -> None:
    lo, hi = RANGES[dtype]

    @settings(max_examples=200, deadline=None)
    @given(st.integers(lo, hi) | st.sampled_from([lo, hi, 0, lo + 1, hi - 1]))
    def check(n: int) -> None:
        regs = to_registers(n, dtype.value, order.value)
        assert len(regs) == dtype.registers and all(0 <= r <= 0xFFFF for r in regs)
        v = decode(regs, dtype, order)
        # a 64-bit integer beyond 2^53 is rounded to the nearest double, as float(n) is
        assert v == float(n)
    check()


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: o.value)
@pytest.mark.parametrize("dtype,width", [(DataType.FLOAT32, 32), (DataType.FLOAT64, 64)],
                         ids=["float32", "float64"])
def test_floats_round_trip_bit_for_bit(dtype: DataType, width: int, order: WordOrder) -> None:
    fmt = ">f" if width == 32 else ">d"

    @settings(max_examples=300, deadline=None)
    @given(st.floats(width=width, allow_nan=True, allow_infinity=True))
    def check(x: float) -> None:
        regs = to_registers(x, dtype.value, order.value)
        v = decode(regs, dtype, order)
        if math.isnan(x):
            assert math.isnan(v)
        else:
            assert struct.pack(fmt, v) == struct.pack(fmt, x)   # -0.0 stays -0.0
    check()


@given(st.integers(0, 0xFFFF), st.integers(0, 15), st.sampled_from(ORDERS))
def test_bit_of_a_register(reg: int, bit: int, order: WordOrder) -> None:
    assert decode([reg], DataType.BIT, order, bit) == float((reg >> bit) & 1)
    # on an integer type, bit selects a bit of the decoded value (bytes swapped for BADC/DCBA)
    value = int(decode([reg], DataType.UINT16, order))
    assert decode([reg], DataType.UINT16, order, bit) == float((value >> bit) & 1)


def test_word_orders_against_a_known_value() -> None:
    """1.0 as float32 is 0x3F800000: A=3F B=80 C=00 D=00 (collector-anchors.md 4.1)."""
    want = {WordOrder.ABCD: [0x3F80, 0x0000], WordOrder.CDAB: [0x0000, 0x3F80],
            WordOrder.BADC: [0x803F, 0x0000], WordOrder.DCBA: [0x0000, 0x803F]}
    for order, regs in want.items():
        assert decode(regs, DataType.FLOAT32, order) == 1.0
        assert to_registers(1.0, "float32", order.value) == regs
