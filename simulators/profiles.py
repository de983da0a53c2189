"""Meter profiles: register maps modelled on real devices, as tables of fields.

A field is (function code, wire address, data type, word order, value of a meter state). The live
servers encode a state into a register image (:func:`image`); the generator evaluates the same
fields on arrays of states and quantises them the way the encoding would (:func:`field_values`),
so a generated campaign holds exactly what a collector would have decoded. Wire addresses are
0-based PDU addresses. Sources (shared/reference/devices.md):

- ``tuf2000``: TUF-2000 / TDS-100 ultrasonic flow meter, TUF-2000F user manual pp.21, 29 and the
  DTI-1 protocol notes. FC03; REAL4 and LONG low word first (CDAB); positive totalizer =
  (N + Nf) x 10^(n-3) with N at REG0009-0010, Nf at REG0011-0012, n at REG1439; unit code at
  REG1438 (0 = m3); flow-rate unit at REG1437 (2 = m3/h); error bits at REG0072; signal quality
  in the low byte of REG0092.
- ``ifc050``: KROHNE IFC 050 electromagnetic converter as polled by a Chinese data logger
  (Yimning/Daily-Code rtuacq_protocol_flux_KeLongIFC050.c): FC04, volume flow float32 ABCD [m3/s]
  at 0x7532, totalizer float64 ABCD [m3] at 0x7538.
- ``vfm60`` / ``vfm60_gas``: Bell VFM-60 vortex meter manual rev1.3 pp.29, 33: FC03/04, 13 floats
  ABCD from 0x0000 (flow, frequency, reserved, pressure, temperature, density, ...), total float32
  at 0x0024; steam in t/h and t, natural gas in Nm3/h and Nm3.
- ``dtsu666``: CHINT DTSU666 three-phase energy meter, quick operation manual pp.4-7: FC03,
  float32 ABCD secondary values in tenths/thousandths: U = value x (UrAt x 0.1) x 0.1,
  I = value x IrAt x 0.001, P = value x (UrAt x 0.1) x IrAt x 0.1 [W], PF = value x 0.001,
  f = value x 0.01; import energy ImpEp at 0x401E. Energy is scaled here as the logger driver does,
  E = value x (UrAt x 0.1) x IrAt [kWh] (the manual prints E x UrAt x IrAt, ten times larger with
  UrAt = 10; devices.md 3.1). IrAt (CT ratio) at 0x0006, UrAt at 0x0007 (10 = PT 1).
- ``cems_scs900``: Xuedilong SCS-900UV analyzer as read by a Chinese data logger (Yimning/Daily-Code
  rtuacq_protocol_cems_BJXueDiLong_scs900uv.c): FC04 from 0x000A; 0x000A status (high byte non-zero
  = fault, low byte 2-7 = calibration), 0x000B maintenance (low byte), SO2 0x000C, NO 0x000E,
  O2 [%] 0x0010, NO2 0x0012, NOx 0x0014, float32 ABCD [mg/m3].
- ``cems_plc``: the SCS-900UV companion PLC (S7-200): FC03 registers 44005-44009 (wire 4004-4008)
  hold raw 4-20 mA counts of moisture, dust, velocity, temperature and static pressure;
  value = (raw - 5530) / (27648 - 5530) x (high - low) + low. The ranges are the logger's
  configuration; ours are in ``CEMS_PLC_RANGES``.
- ``weigher`` and ``brew_plc``: no public register map was found for a belt weigher indicator or a
  brewhouse controller; the layouts (weigher: uint32 total in 0.1 kg, float32 rate in kg/h, status
  word; controller: step code and uint32 brew counter) are typical and labelled generic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from cpaudit.simulators.encode import to_registers

Image = dict[int, dict[int, int]]   # function code -> {wire address: register value}
Num = Any                           # a float or a numpy array of floats


@dataclass
class MeterState:
    """What a meter shows, in its own units: scalars (live) or arrays (generate)."""
    rate: Num
    total: Num
    extra: dict[str, Num] = field(default_factory=dict)


@dataclass(frozen=True)
class RegField:
    fc: int
    address: int
    dtype: str
    order: str
    value: Callable[[MeterState], Num]
    fcs: tuple[int, ...] = ()       # further function codes serving the same registers

    @property
    def size(self) -> int:
        return {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
                "float32": 2, "float64": 4}[self.dtype]


def _const(v: float) -> Callable[[MeterState], Num]:
    return lambda s: v + 0 * np.asarray(s.rate)


def _x(name: str, default: float) -> Callable[[MeterState], Num]:
    return lambda s: s.extra.get(name, default + 0 * np.asarray(s.rate))


DN80_AREA = math.pi * 0.04 ** 2

TUF2000 = [
    RegField(3, 0, "float32", "CDAB", lambda s: s.rate),                       # REG0001 m3/h
    RegField(3, 2, "float32", "CDAB", _const(0.0)),                            # energy flow
    RegField(3, 4, "float32", "CDAB", lambda s: s.rate / 3600 / DN80_AREA),    # velocity m/s
    RegField(3, 6, "float32", "CDAB", _const(1482.0)),                         # sound speed
    RegField(3, 8, "int32", "CDAB", lambda s: np.floor(s.total)),              # REG0009 N
    RegField(3, 10, "float32", "CDAB", lambda s: s.total - np.floor(s.total)),  # REG0011 Nf
    RegField(3, 12, "int32", "CDAB", _const(0)),                               # negative N
    RegField(3, 14, "float32", "CDAB", _const(0.0)),                           # negative Nf
    RegField(3, 16, "int32", "CDAB", _const(0)),                               # energy
    RegField(3, 18, "float32", "CDAB", _const(0.0)),
    RegField(3, 20, "int32", "CDAB", _const(0)),
    RegField(3, 22, "float32", "CDAB", _const(0.0)),
    RegField(3, 24, "int32", "CDAB", lambda s: np.floor(s.total)),             # REG0025 net N
    RegField(3, 26, "float32", "CDAB", lambda s: s.total - np.floor(s.total)),  # net Nf
    RegField(3, 71, "uint16", "ABCD", _x("error_bits", 0)),                     # REG0072
    RegField(3, 91, "uint16", "ABCD", _const(85)),                             # REG0092 quality
    RegField(3, 1436, "uint16", "ABCD", _const(2)),                            # REG1437 m3/h
    RegField(3, 1437, "uint16", "ABCD", _const(0)),                            # REG1438 m3
    RegField(3, 1438, "uint16", "ABCD", _const(3)),                            # REG1439 n
]

IFC050 = [
    RegField(4, 0x7532, "float32", "ABCD", lambda s: s.rate),
    RegField(4, 0x7534, "float32", "ABCD", _const(0.0)),
    RegField(4, 0x7536, "float32", "ABCD", _const(0.0)),
    RegField(4, 0x7538, "float64", "ABCD", lambda s: s.total),
]

VFM60 = [RegField(3, 2 * i, "float32", "ABCD", fn, (4,)) for i, fn in enumerate(
    [lambda s: s.rate, lambda s: s.rate * 0.85, _const(0.0), _x("pressure", 0.6),
     _x("temperature", 165.0), _x("density", 3.67)] + [_const(0.0)] * 7)]
VFM60 += [RegField(3, a, "uint16", "ABCD", _const(0), (4,)) for a in range(26, 36)]
VFM60 += [RegField(3, 0x24, "float32", "ABCD", lambda s: s.total, (4,))]

WEIGHER = [
    RegField(3, 0, "uint32", "ABCD", lambda s: np.mod(np.floor(s.total * 10), 2 ** 32)),  # 0.1 kg
    RegField(3, 2, "float32", "ABCD", lambda s: s.rate),
    RegField(3, 4, "uint16", "ABCD", lambda s: (np.asarray(s.rate) > 0) * 1),  # 1 = running
]

DTSU_IRAT = 100          # CT ratio of the simulated meters (500/5 A)
DTSU_URAT = 10           # PT ratio x 10 (PT = 1)


def _dtsu_current(s: MeterState) -> Num:
    pf = 0.92
    amps = s.rate * 1000 / (3 * 230.0 * pf)
    return amps / (DTSU_IRAT * 0.001)


DTSU666 = [
    RegField(3, 0x0006, "int16", "ABCD", _const(DTSU_IRAT)),
    RegField(3, 0x0007, "int16", "ABCD", _const(DTSU_URAT)),
    *[RegField(3, 0x2000 + 2 * i, "float32", "ABCD", _const(4000.0)) for i in range(3)],  # U LL
    *[RegField(3, 0x2006 + 2 * i, "float32", "ABCD", _const(2300.0)) for i in range(3)],  # U LN
    *[RegField(3, 0x200C + 2 * i, "float32", "ABCD", _dtsu_current) for i in range(3)],
    RegField(3, 0x2012, "float32", "ABCD", lambda s: s.rate * 1000 / (DTSU_IRAT * 0.1)),    # Pt
    *[RegField(3, 0x2014 + 2 * i, "float32", "ABCD",
               lambda s: s.rate * 1000 / 3 / (DTSU_IRAT * 0.1)) for i in range(3)],
    RegField(3, 0x202A, "float32", "ABCD", _const(920.0)),                                   # PFt
    RegField(3, 0x2044, "float32", "ABCD", _const(5000.0)),                                  # Hz
    RegField(3, 0x401E, "float32", "ABCD", lambda s: s.total / (DTSU_URAT * 0.1 * DTSU_IRAT)),
]

CEMS_SCS900 = [
    RegField(4, 0x000A, "uint16", "ABCD", _x("status", 0)),
    RegField(4, 0x000B, "uint16", "ABCD", _x("maintenance", 0)),
    RegField(4, 0x000C, "float32", "ABCD", _x("so2", 0.0)),
    RegField(4, 0x000E, "float32", "ABCD", lambda s: s.extra["nox"] * 0.95 / 1.53),   # NO
    RegField(4, 0x0010, "float32", "ABCD", _x("o2", 20.9)),
    RegField(4, 0x0012, "float32", "ABCD", lambda s: s.extra["nox"] * 0.05),          # NO2
    RegField(4, 0x0014, "float32", "ABCD", _x("nox", 0.0)),
]

RAW_4MA, RAW_20MA = 5530, 27648
CEMS_PLC_RANGES = {"moisture": (0.0, 40.0), "dust": (0.0, 20.0), "velocity": (0.0, 30.0),
                   "temperature": (0.0, 300.0), "pressure": (80.0, 120.0)}   # %, mg/m3, m/s, degC, kPa


def _counts(name: str) -> Callable[[MeterState], Num]:
    lo, hi = CEMS_PLC_RANGES[name]
    return lambda s: np.round(RAW_4MA + (np.clip(s.extra[name], lo, hi) - lo) / (hi - lo)
                              * (RAW_20MA - RAW_4MA))


CEMS_PLC = [RegField(3, 4004 + i, "uint16", "ABCD", _counts(n))
            for i, n in enumerate(("moisture", "dust", "velocity", "temperature", "pressure"))]

BREW_PLC = [
    RegField(3, 0, "uint16", "ABCD", _x("state", 0)),
    RegField(3, 1, "uint32", "ABCD", _x("brews", 0)),
]


@dataclass(frozen=True)
class Profile:
    name: str
    fields: list[RegField]
    rate_unit: str        # the meter's display units
    total_unit: str
    measures: str         # mass | volume | gas | energy | signals
    total_max: float | None = None   # the totalizer rolls over to 0 above this [total_unit]


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("tuf2000", TUF2000, "m3/h", "m3", "volume"),
    Profile("ifc050", IFC050, "m3/s", "m3", "volume"),
    Profile("vfm60", VFM60, "t/h", "t", "mass"),
    Profile("vfm60_gas", VFM60, "Nm3/h", "Nm3", "gas"),
    Profile("weigher", WEIGHER, "kg/h", "kg", "mass", total_max=2 ** 32 / 10),
    Profile("dtsu666", DTSU666, "kW", "kWh", "energy"),
    Profile("cems_scs900", CEMS_SCS900, "", "", "signals"),
    Profile("cems_plc", CEMS_PLC, "", "", "signals"),
    Profile("brew_plc", BREW_PLC, "", "", "signals"),
)}

_RATE_DIV = {"m3/h": 1.0, "m3/s": 3600.0, "t/h": 1000.0, "kg/h": 1.0, "Nm3/h": 1.0, "kW": 1.0}
_TOTAL_DIV = {"m3": 1.0, "t": 1000.0, "kg": 1.0, "Nm3": 1.0, "kWh": 1.0}


def display(profile: Profile, rate: Num, total: Num, density: float | None) -> tuple[Num, Num]:
    """A stream's native rate [per h] and total (kg, Nm3 or kWh) in the meter's display units."""
    if profile.measures == "volume":
        if not density:
            raise ValueError(f"{profile.name} measures volume; the stream needs a density")
        rate, total = rate / density, total / density
    return rate / _RATE_DIV[profile.rate_unit], total / _TOTAL_DIV[profile.total_unit]


# -- encoding ---------------------------------------------------------------------------------
def image(profile: Profile, s: MeterState) -> Image:
    """The register image of one meter state (live servers)."""
    img: Image = {}
    for f in profile.fields:
        v = float(np.asarray(f.value(s)))
        regs = to_registers(v, f.dtype, f.order)
        for fc in (f.fc, *f.fcs):
            table = img.setdefault(fc, {})
            for i, r in enumerate(regs):
                table[f.address + i] = r
    return img


def find_field(profile: Profile, fc: int, address: int, dtype: str, order: str) -> RegField:
    """The field a register definition reads, or a ValueError saying why it would not decode."""
    for f in profile.fields:
        if fc in (f.fc, *f.fcs) and f.address == address:
            if f.dtype != dtype or (f.size > 1 and f.order != order):
                raise ValueError(f"{profile.name} has {f.dtype} {f.order} at FC{fc} "
                                 f"{address:#06x}, not {dtype} {order}")
            return f
    raise ValueError(f"{profile.name} has no field at FC{fc} address {address:#06x}")


def quantise(values: Num, dtype: str) -> np.ndarray:
    """What survives the register encoding: float32 rounding, integer truncation."""
    v = np.asarray(values, dtype=np.float64)
    if dtype == "float32":
        return v.astype(np.float32).astype(np.float64)
    if dtype == "float64":
        return v
    return np.trunc(v)


# -- the test pattern -------------------------------------------------------------------------
PATTERN: dict[str, Any] = {  # the test-pattern device: known values in every type and word order
    "i16": -1234, "u16": 54321, "i32": -123456789, "u32": 3_000_000_000,
    "i64": -(2 ** 50) + 7, "u64": 2 ** 60 + 2 ** 40, "f32": 3.14159, "f64": 2.718281828459045,
    "text": "CPAUDIT-SIM1", "status": 0b0101, "raw": 12345,
}


def pattern_image() -> Image:
    """A commissioning test pattern (not a real meter): every data type at a known address."""
    hr: dict[int, int] = {}
    p = PATTERN

    def put(address: int, regs: list[int]) -> None:
        for i, r in enumerate(regs):
            hr[address + i] = r
    put(0, to_registers(p["i16"], "int16"))
    put(1, to_registers(p["u16"], "uint16"))
    put(2, to_registers(p["i32"], "int32", "ABCD"))
    put(4, to_registers(p["u32"], "uint32", "CDAB"))
    put(6, to_registers(p["i64"], "int64", "BADC"))
    put(10, to_registers(p["u64"], "uint64", "DCBA"))
    put(14, to_registers(p["f32"], "float32", "ABCD"))
    put(16, to_registers(p["f64"], "float64", "CDAB"))
    text = str(p["text"]).encode("ascii")
    put(20, [int.from_bytes(text[i:i + 2], "big") for i in range(0, len(text), 2)])
    hr[26] = int(p["status"])
    ir = dict(hr)
    ir[1] = int(p["raw"])
    coils = {i: int(i % 2 == 1) for i in range(16)}       # 0101…: coil 3 is on
    discrete = {i: int(i in (1, 2)) for i in range(16)}   # 0110…: input 1 is on
    return {1: coils, 2: discrete, 3: hr, 4: ir}


# -- instrument error -------------------------------------------------------------------------
_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix(x: np.ndarray) -> np.ndarray:
    z = (x + np.uint64(0x9E3779B97F4A7C15)) & _M64
    z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _M64
    z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _M64
    return z ^ (z >> np.uint64(31))


def std_normal(seed: int, t: Num) -> np.ndarray:
    """A standard normal draw per whole second of ``t`` [s], the same for the same (seed, second)
    whether asked live or for a generated campaign (counter-based: splitmix64 + Box-Muller)."""
    k = np.atleast_1d(np.floor(np.asarray(t, dtype=np.float64))).astype(np.int64).view(np.uint64)
    base = np.uint64(seed & 0xFFFFFFFF) << np.uint64(32)
    a = _splitmix(k ^ base)
    b = _splitmix(a)
    u1 = ((a >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0 ** 53
    u2 = ((b >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0 ** 53
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)


@dataclass
class MeterError:
    """Instrument error for an accuracy class ±a [% of reading]: a fixed calibration offset
    (``bias``, a fraction) drawn once per meter from its seed, and a reading noise of
    σ = a/3 % on the rate per second. The noise averages out over a campaign; the offset is
    the error of its totals: drawn by the reconciliation's σ rule (simulators/meters.py)."""
    accuracy_pct: float
    bias: float
    seed: int

    @classmethod
    def draw(cls, accuracy_pct: float, seed: int, rule: str = "rectangular") -> "MeterError":
        """``rectangular``: the offset uniform over ±a (σ = a/√3, GUM 4.3.7);
        ``tolerance_2sigma``: normal with σ = a/2 (a tolerance of 2σ)."""
        rng = np.random.default_rng(seed)
        if rule == "tolerance_2sigma":
            bias = float(rng.normal(0.0, 0.5)) * accuracy_pct / 100.0
        else:
            bias = float(rng.uniform(-1.0, 1.0)) * accuracy_pct / 100.0
        return cls(accuracy_pct, bias, seed)

    def rate(self, true: Num, t: Num) -> np.ndarray:
        z = std_normal(self.seed, t)
        out = np.asarray(true) * (1 + self.bias + z * self.accuracy_pct / 300.0)
        return np.maximum(out, 0.0)

    def total(self, true: Num) -> Num:
        return true * (1 + self.bias)
