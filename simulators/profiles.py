"""Meter profiles: register images modelled on real devices' maps.

Wire addresses are 0-based PDU addresses. Sources (see shared/reference/devices.md):

- ``tuf2000``: TUF-2000 / TDS-100 ultrasonic flow meter, TUF-2000F user manual pp.21, 29 and the
  DTI-1 protocol notes. FC03; REAL4 and LONG low word first (CDAB); positive totalizer =
  (N + Nf) x 10^(n-3) with N at REG0009-0010, Nf at REG0011-0012, n at REG1439; unit code at
  REG1438 (0 = m3); flow-rate unit at REG1437 (2 = m3/h); error bits at REG0072; signal quality
  in the low byte of REG0092.
- ``ifc050``: KROHNE IFC 050 electromagnetic converter as polled by a Chinese data logger
  (Yimning/Daily-Code rtuacq_protocol_flux_KeLongIFC050.c): FC04, volume flow float32 ABCD [m3/s]
  at 0x7532, totalizer float64 ABCD [m3] at 0x7538.
- ``vfm60``: Bell VFM-60 vortex meter manual rev1.3 pp.29, 33: FC03/04, 13 floats ABCD from 0x0000
  (flow, frequency, reserved, pressure, temperature, density, ...), total float32 at 0x0024.
- ``weigher``: a generic belt/hopper weighing indicator. No public register map was found for one;
  the layout (uint32 total in 0.1 kg, float32 rate in kg/h, status word) is typical of such
  indicators and is labelled generic in the config.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from simulators.encode import to_registers

Image = dict[int, dict[int, int]]   # function code -> {wire address: register value}


def _put(img: dict[int, int], address: int, regs: list[int]) -> None:
    for i, r in enumerate(regs):
        img[address + i] = r


@dataclass
class MeterState:
    """What a meter shows at one instant, in the meter's own units."""
    rate: float
    total: float
    extra: dict[str, float] = field(default_factory=dict)


def tuf2000(s: MeterState) -> Image:
    hr: dict[int, int] = {}
    n = 3                                # multiplier: total = (N + Nf) x 10^(n-3) = N + Nf [m3]
    whole = math.floor(s.total)
    frac = s.total - whole
    area = math.pi * 0.04 ** 2           # DN80
    _put(hr, 0, to_registers(s.rate, "float32", "CDAB"))               # REG0001 flow m3/h
    _put(hr, 2, to_registers(0.0, "float32", "CDAB"))                  # REG0003 energy flow
    _put(hr, 4, to_registers(s.rate / 3600 / area, "float32", "CDAB"))  # REG0005 velocity m/s
    _put(hr, 6, to_registers(1482.0, "float32", "CDAB"))               # REG0007 sound speed
    _put(hr, 8, to_registers(whole, "int32", "CDAB"))                  # REG0009 N
    _put(hr, 10, to_registers(frac, "float32", "CDAB"))                # REG0011 Nf
    _put(hr, 12, to_registers(0, "int32", "CDAB"))                     # REG0013 negative N
    _put(hr, 14, to_registers(0.0, "float32", "CDAB"))                 # REG0015 negative Nf
    for a in range(16, 24):
        hr[a] = 0                                                      # REG0017-0024 energy
    _put(hr, 24, to_registers(whole, "int32", "CDAB"))                 # REG0025 net N
    _put(hr, 26, to_registers(frac, "float32", "CDAB"))                # REG0027 net Nf
    hr[71] = 0                                                         # REG0072 error bits
    hr[91] = (0 << 8) | 85                                             # REG0092 step | quality
    hr[1436] = 2                                                       # REG1437 m3/h
    hr[1437] = 0                                                       # REG1438 m3
    hr[1438] = n                                                       # REG1439 multiplier
    return {3: hr}


def ifc050(s: MeterState) -> Image:
    ir: dict[int, int] = {}
    _put(ir, 0x7532, to_registers(s.rate, "float32", "ABCD"))
    _put(ir, 0x7534, [0, 0, 0, 0])
    _put(ir, 0x7538, to_registers(s.total, "float64", "ABCD"))
    return {4: ir}


def vfm60(s: MeterState) -> Image:
    hr: dict[int, int] = {}
    floats = [s.rate, s.rate * 0.85, 0.0, s.extra.get("pressure", 0.6),
              s.extra.get("temperature", 165.0), s.extra.get("density", 3.67)] + [0.0] * 7
    for i, v in enumerate(floats):
        _put(hr, 2 * i, to_registers(v, "float32", "ABCD"))
    for a in range(26, 36):
        hr[a] = 0
    _put(hr, 0x24, to_registers(s.total, "float32", "ABCD"))
    return {3: hr, 4: dict(hr)}


def weigher(s: MeterState) -> Image:
    hr: dict[int, int] = {}
    _put(hr, 0, to_registers(int(s.total * 10) & 0xFFFFFFFF, "uint32", "ABCD"))  # 0.1 kg
    _put(hr, 2, to_registers(s.rate, "float32", "ABCD"))
    hr[4] = 1 if s.rate > 0 else 0                                    # status: 1 = running
    return {3: hr}


PATTERN: dict[str, Any] = {  # the test-pattern device: known values in every type and word order
    "i16": -1234, "u16": 54321, "i32": -123456789, "u32": 3_000_000_000,
    "i64": -(2 ** 50) + 7, "u64": 2 ** 60 + 2 ** 40, "f32": 3.14159, "f64": 2.718281828459045,
    "text": "CPAUDIT-SIM1", "status": 0b0101, "raw": 12345,
}


def pattern(s: MeterState) -> Image:
    """A commissioning test pattern (not a real meter): every data type at a known address."""
    hr: dict[int, int] = {}
    p = PATTERN
    _put(hr, 0, to_registers(p["i16"], "int16"))
    _put(hr, 1, to_registers(p["u16"], "uint16"))
    _put(hr, 2, to_registers(p["i32"], "int32", "ABCD"))
    _put(hr, 4, to_registers(p["u32"], "uint32", "CDAB"))
    _put(hr, 6, to_registers(p["i64"], "int64", "BADC"))
    _put(hr, 10, to_registers(p["u64"], "uint64", "DCBA"))
    _put(hr, 14, to_registers(p["f32"], "float32", "ABCD"))
    _put(hr, 16, to_registers(p["f64"], "float64", "CDAB"))
    text = str(p["text"]).encode("ascii")
    _put(hr, 20, [int.from_bytes(text[i:i + 2], "big") for i in range(0, len(text), 2)])
    hr[26] = int(p["status"])
    ir = dict(hr)
    ir[1] = int(p["raw"])
    coils = {i: int(i % 2 == 1) for i in range(16)}       # 0101…: coil 3 is on
    discrete = {i: int(i in (1, 2)) for i in range(16)}   # 0110…: input 1 is on
    return {1: coils, 2: discrete, 3: hr, 4: ir}


@dataclass(frozen=True)
class Profile:
    name: str
    encode: Callable[[MeterState], Image]
    rate_unit: str        # meter display units
    total_unit: str
    volumetric: bool


PROFILES: dict[str, Profile] = {
    "tuf2000": Profile("tuf2000", tuf2000, "m3/h", "m3", True),
    "ifc050": Profile("ifc050", ifc050, "m3/s", "m3", True),
    "vfm60": Profile("vfm60", vfm60, "t/h", "t", False),
    "weigher": Profile("weigher", weigher, "kg/h", "kg", False),
    "pattern": Profile("pattern", pattern, "kg/h", "kg", False),
}

_RATE_DIV = {"m3/h": 1.0, "m3/s": 3600.0, "t/h": 1000.0, "kg/h": 1.0}
_TOTAL_DIV = {"m3": 1.0, "t": 1000.0, "kg": 1.0}


@dataclass
class MeterError:
    """Instrument error for an accuracy class [% of reading]: a fixed bias drawn once in
    ±accuracy/2 and a random reading noise of sigma = accuracy/3 on the rate."""
    accuracy_pct: float
    bias: float
    rng: np.random.Generator

    @classmethod
    def draw(cls, accuracy_pct: float, seed: int) -> "MeterError":
        rng = np.random.default_rng(seed)
        bias = float(rng.uniform(-0.5, 0.5)) * accuracy_pct / 100.0
        return cls(accuracy_pct, bias, rng)

    def rate(self, true: float) -> float:
        return true * (1 + self.bias + float(self.rng.normal(0, self.accuracy_pct / 300.0)))

    def total(self, true: float) -> float:
        return true * (1 + self.bias)


def meter_state(profile: Profile, rate_kg_h: float, total_kg: float, density: float | None,
                initial_total: float, err: MeterError) -> MeterState:
    """Convert true mass flows into what the meter shows, in its own units."""
    if profile.volumetric:
        if not density:
            raise ValueError(f"{profile.name} measures volume; the stream needs a density")
        rate, total = rate_kg_h / density, total_kg / density
    else:
        rate, total = rate_kg_h, total_kg
    rate /= _RATE_DIV[profile.rate_unit]
    total /= _TOTAL_DIV[profile.total_unit]
    return MeterState(rate=max(0.0, err.rate(rate)), total=initial_total + err.total(total))
