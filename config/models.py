"""Typed models of a campaign file. Unknown keys are errors; cross-field checks live in
:func:`cross_check`, which returns (field path, message) pairs so the loader can name the line.
"""
from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Annotated, Any, Literal, Union, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from cpaudit.config.units import dimension, parse_unit
from cpaudit.config.allocation import Allocation, WaterContent, check_allocation

ENV = "ENV"  # the system boundary in a flowsheet


# The shortest polling or publishing interval [s] a campaign may declare. A real Modbus RTU
# read at 9600 Bd takes ~20 ms and a Modbus TCP round trip on a LAN 1-5 ms, and DB11/T 1156 asks
# for minute values: 10 ms (100 readings/s of every tag) is already far beyond any meter here.
# Below it the scheduler does nothing but write overrun rows (interval_s: 0.000001 wrote 65 MB/s
# and did not stop on SIGTERM, issue 14).
MIN_INTERVAL_S = 0.01
MAX_INTERVAL_S = 86400.0   # a device reporting less often than daily is not a campaign meter


def _admits_bool(ann: Any) -> bool:
    """Whether a field's annotation takes a boolean anywhere (or leaves it to a nested model)."""
    if ann is bool or ann is Any:
        return True
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return True
    return any(_admits_bool(a) for a in get_args(ann) if not isinstance(a, (str, int, float)))


def _find_bool(v: Any, depth: int = 0) -> bool:
    if isinstance(v, bool):
        return True
    if depth > 8:
        return False
    if isinstance(v, dict):
        return any(_find_bool(x, depth + 1) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(_find_bool(x, depth + 1) for x in v)
    return False


_NO_BOOL: dict[type, list[tuple[str, str | None]]] = {}


class Strict(BaseModel):
    """The base of every config model: unknown keys are errors, no number is NaN or infinite
    (``.nan``, ``1e400``), and a YAML boolean (``true``, ``yes``, ``on``) is never read as the
    number 1 (``port: true``)."""
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_as_number(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        numeric = _NO_BOOL.get(cls)
        if numeric is None:     # the fields that take no boolean, once per model class
            numeric = _NO_BOOL[cls] = [(name, f.alias) for name, f in cls.model_fields.items()
                                       if not _admits_bool(f.annotation)]
        for name, alias in numeric:
            key = alias if alias in data else name
            if key in data and _find_bool(data[key]):
                v = data[key]
                # the loader puts ctx["field"] at the end of the error's path
                raise PydanticCustomError("bool_as_number", "expected a number or text, got "
                                          "the boolean {value} (YAML reads true/false, yes/no, "
                                          "on/off as booleans)", {"field": key, "value": repr(v)})
        return data


class DataType(str, Enum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    BIT = "bit"        # one coil/discrete input, or one bit of a register (with ``bit``)
    STRING = "string"  # ``count`` registers of text; stored as its length is meaningless, so
    # strings are for identification only and yield no sample.

    @property
    def registers(self) -> int:
        return {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
                "float32": 2, "float64": 4, "bit": 1, "string": 1}[self.value]


class WordOrder(str, Enum):
    """Byte order of a multi-register value: A is the most significant byte.

    ABCD: big-endian words, high word first. CDAB: low word first (TUF-2000). BADC: bytes swapped
    in each word, high word first. DCBA: fully little-endian.
    """
    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


class TagKind(str, Enum):
    RATE = "rate"            # a flow rate or a power
    TOTAL = "total"          # a totalizer (monotonic counter, may roll over or be reset)
    STATE = "state"          # a process state (batch step, running flag)
    CONDITION = "condition"  # a process condition (temperature, pressure)
    OTHER = "other"


_FUNCTION_NAMES = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}


class Calibration(Strict):
    certificate: str
    valid_from: dt.date | None = None
    valid_until: dt.date


class Register(Strict):
    tag: str = Field(min_length=1)
    function: int = 3
    address: int = Field(ge=0, le=65535)
    type: DataType = DataType.FLOAT32
    word_order: WordOrder = WordOrder.ABCD
    count: int | None = Field(default=None, ge=1, le=125)  # registers, for strings
    bit: int | None = Field(default=None, ge=0, le=15)
    scale: float = 1.0
    offset: float = 0.0
    unit: str = "1"
    kind: TagKind = TagKind.OTHER
    accuracy_pct: float | None = Field(default=None, gt=0, le=100)
    rollover: float | None = Field(default=None, gt=0)  # totalizer maximum count (after scale)
    valid_range: tuple[float, float] | None = None
    description: str = ""

    @field_validator("function", mode="before")
    @classmethod
    def _function(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v.lower() not in _FUNCTION_NAMES:
                raise ValueError(f"unknown function {v!r}; use 1-4 or one of "
                                 f"{', '.join(_FUNCTION_NAMES)}")
            return _FUNCTION_NAMES[v.lower()]
        if v not in (1, 2, 3, 4):
            raise ValueError(f"function code must be 1-4, got {v!r}")
        return v

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> Any:
        allowed = [t.value for t in DataType]
        if v not in allowed:
            raise ValueError(f"unknown type {v!r}; expected one of {', '.join(allowed)}")
        return v

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        parse_unit(v)
        return v

    @field_validator("valid_range")
    @classmethod
    def _range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not v[0] < v[1]:
            raise ValueError(f"valid_range [{v[0]:g}, {v[1]:g}] is empty: give [low, high] "
                             "with low < high (every reading would be out of range)")
        return v

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: float) -> float:
        if v == 0:
            raise ValueError("scale 0 makes every reading 0")
        return v

    @property
    def size(self) -> int:
        """Registers (or bits) this value occupies."""
        if self.type == DataType.STRING:
            return self.count or 1
        if self.function in (1, 2):
            return 1
        return self.type.registers


class TagSpec(Strict):
    """What every declared tag carries besides its source: unit, kind, accuracy, rollover."""
    tag: str = Field(min_length=1)
    unit: str = "1"
    kind: TagKind = TagKind.OTHER
    accuracy_pct: float | None = Field(default=None, gt=0, le=100)
    rollover: float | None = Field(default=None, gt=0)   # totalizer maximum count

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        parse_unit(v)
        return v


class Computed(TagSpec):
    """A tag computed by the collector from other tags of the same device and tick: the sum of
    ``sum`` times ``scale`` (e.g. a TUF-2000 totalizer = integer part + fraction part)."""
    sum: list[str] = Field(min_length=1)
    scale: float = 1.0


class SimulateHint(Strict):
    stream: str                      # the plant stream the meter measures ("" for signals only)
    serial_port: str | None = None   # RTU: the simulator's end of the serial line (pty pair)


class MqttPublish(Strict):
    """What the simulator publishes for an MQTT-only device: one JSON object per interval,
    ``{"ts": <ms>, <field>: <value>, ...}`` on ``topic``. A field's quantity is ``rate_m3h``,
    ``total_m3`` or a signal of the stream (``cod``, ``nh3n``, ...). ``sample``: ``instant``
    publishes the signal at the tick; ``cycle_composite`` is a cycle analyzer fed by a
    flow-proportional composite sampler: the value published at T is the flow-weighted mean of
    the signal over the cycle (T - interval, T] (the device's ``interval_s``)."""
    stream: str
    topic: str = Field(min_length=1)
    fields: dict[str, str] = Field(min_length=1)
    sample: Literal["instant", "cycle_composite"] = "instant"


class ModbusBase(Strict):
    """What every Modbus device has, whatever carries its frames."""
    name: str = Field(min_length=1)
    unit_id: int = Field(default=1, ge=0, le=255)
    address_base: Literal[0, 1] = 0
    timeout_s: float = Field(default=1.0, gt=0, le=60)
    retries: int = Field(default=0, ge=0, le=5)
    pause_ms: float = Field(default=0.0, ge=0)
    interval_s: float | None = Field(default=None, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)
    max_registers: int = Field(default=125, ge=1, le=125)
    gap_fill: int = Field(default=0, ge=0, le=100)
    profile: str | None = None
    model: str = ""
    accuracy_pct: float | None = Field(default=None, gt=0, le=100)
    calibration: Calibration | None = None
    simulate: SimulateHint | None = None
    registers: list[Register] = Field(min_length=1)
    computed: list[Computed] = []


class ModbusTcpDevice(ModbusBase):
    """Modbus TCP, or RTU frames over TCP (``framer: rtu``, a serial-to-Ethernet gateway)."""
    protocol: Literal["modbus_tcp"]
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=1, le=65535)
    framer: Literal["socket", "rtu"] = "socket"
    # TCP connections the unit ids behind this gateway are spread over (unit id modulo this);
    # many Modbus TCP gateways accept several, which cuts the skew between their unit ids.
    connections: int = Field(default=1, ge=1, le=16)
    # Requests in flight on one connection. 1: pymodbus, one at a time. >1: cpaudit's pipelined
    # Modbus TCP client (collector/mbtcp.py), for gateways with many unit ids.
    pipeline: int = Field(default=1, ge=1, le=256)

    @field_validator("connections", "pipeline")
    @classmethod
    def _conns(cls, v: int, info: Any) -> int:
        if v > 1 and info.data.get("framer") == "rtu":
            raise ValueError(f"RTU frames go to one serial bus: {info.field_name} must be 1")
        return v

    @property
    def link_key(self) -> tuple[Any, ...]:
        return ("tcp", self.host, self.port, self.framer, self.unit_id % self.connections,
                self.pipeline)

    @property
    def server_key(self) -> tuple[Any, ...]:
        return ("tcp", self.host, self.port, self.framer)


class ModbusRtuDevice(ModbusBase):
    """Modbus RTU on a serial line (RS-485 bus: devices on one port share it in turn)."""
    protocol: Literal["modbus_rtu"]
    serial_port: str = Field(min_length=1)
    baudrate: int = Field(default=9600, ge=300, le=921600)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1

    @property
    def link_key(self) -> tuple[Any, ...]:
        return ("serial", self.serial_port)

    @property
    def server_key(self) -> tuple[Any, ...]:
        return self.link_key


class MqttTag(TagSpec):
    """A tag an MQTT device may publish."""


class Subscription(Strict):
    """A topic pattern (MQTT wildcards + and #) mapped to tags.

    ``tag`` is a template: ``{1}``, ``{2}`` … are the segments matched by each ``+`` in order,
    ``{#}`` what ``#`` matched, ``{field}`` the JSON key (with ``fields``) or the line-protocol
    field, ``{measurement}`` the line-protocol measurement.
    """
    topic: str = Field(min_length=1)
    format: Literal["json", "number", "influx"] = "json"
    tag: str = "{measurement}.{field}"
    value_path: str = "value"           # dot path into the JSON object
    ts_path: str | None = None          # dot path to the sender's timestamp, if any
    ts_unit: Literal["s", "ms", "us", "ns", "iso"] = "ms"
    fields: list[str] = []              # JSON keys that are readings (instead of value_path)
    readings_path: str | None = None    # dot path to an array of readings (else payload itself)

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        parts = v.split("/")
        for i, p in enumerate(parts):
            if ("+" in p and p != "+") or ("#" in p and (p != "#" or i != len(parts) - 1)):
                raise ValueError(f"bad topic filter {v!r}: + and # must fill a whole level, "
                                 "# only last")
        return v


class MqttDevice(Strict):
    name: str = Field(min_length=1)
    protocol: Literal["mqtt"]
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: str = Field(min_length=1, max_length=23)   # fixed: the broker keeps the session
    username: str | None = None
    password_env: str | None = None
    qos: Literal[0, 1] = 1
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    max_payload: int = Field(default=65536, ge=16)
    model: str = ""
    accuracy_pct: float | None = Field(default=None, gt=0, le=100)
    calibration: Calibration | None = None
    # expected publishing interval
    interval_s: float | None = Field(default=None, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S)
    simulate: MqttPublish | None = None
    subscriptions: list[Subscription] = Field(min_length=1)
    tags: list[MqttTag] = Field(min_length=1)


# -- HJ 212 data loggers (collector.hj212_server) -------------------------------------------------
HJ212_CNS = ("2011", "2051", "2061", "2031")     # real-time, minute, hour, day data (Table 9)
HJ212_FIELDS = ("Rtd", "Avg", "Min", "Max", "Cou", "ZsRtd", "ZsAvg", "ZsMin", "ZsMax")


class Hj212Factor(TagSpec):
    """One (factor code, field) of one data command mapped to a tag: ``code`` as the logger sends
    it (``a21026``, or a 2005 code such as ``02``), ``field`` the suffix (``Rtd``, ``Avg``...),
    ``cn`` the data command that carries it (2011 real-time, 2051 minute, 2061 hour, 2031 day)."""
    code: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_]+$")
    field: Literal["Rtd", "Avg", "Min", "Max", "Cou", "ZsRtd", "ZsAvg", "ZsMin", "ZsMax"] = "Rtd"
    cn: Literal["2011", "2051", "2061", "2031"] = "2011"


class Hj212Simulate(Strict):
    """What ``cpaudit simulate`` sends as this logger (simulators.hj212_logger): the plant
    stream whose signals the factors carry (``signals`` maps a factor code to a signal of the
    stream, ``flow_m3h``/``flow_ls``/``flow_m3s`` for the stream's flow), real-time packets every
    ``rtd_interval_s`` and minute packets every ``min_interval_min``."""
    stream: str = Field(min_length=1)
    signals: dict[str, str] = Field(min_length=1)
    rtd_interval_s: float = Field(default=30.0, gt=0, le=3600)   # Table 4: 30-3600 s
    min_interval_min: int = 1
    calibration_signal: bool = True     # C flag from the CEMS calibration windows

    @field_validator("min_interval_min")
    @classmethod
    def _min_interval(cls, v: int) -> int:
        if v not in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30):       # Table 4 MinInterval
            raise ValueError(f"min_interval_min {v} is not one of 1, 2, 3, 4, 5, 6, 10, 12, 15, "
                             "20, 30 (HJ 212-2017 Table 4)")
        return v


class Hj212Device(Strict):
    """One data logger (数采仪) sending HJ 212 to the collector, which listens on
    ``listen_host:listen_port`` (loggers sharing that address share one server, told apart by
    ``mn``). ``password`` is the logger's access password (PW); null accepts any."""
    name: str = Field(min_length=1)
    protocol: Literal["hj212"]
    listen_host: str = "0.0.0.0"
    listen_port: int = Field(ge=1, le=65535)
    mn: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_\-]+$")
    password: str | None = Field(default=None, max_length=32)
    version: Literal[2005, 2017, 2025] = 2017
    crc: Literal["hj212", "modbus_swapped", "modbus"] = "hj212"
    timezone: str | None = None                 # the logger's clock; default the campaign's
    clock_tolerance_s: float = Field(default=600.0, gt=0)   # DataTime this far from receipt: flagged
    model: str = ""
    accuracy_pct: float | None = Field(default=None, gt=0, le=100)
    calibration: Calibration | None = None
    interval_s: float | None = Field(default=None, gt=0)   # expected interval of the stored tags
    simulate: Hj212Simulate | None = None
    factors: list[Hj212Factor] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {v!r} (IANA name, e.g. Asia/Shanghai)") \
                    from None
        return v

    @property
    def tags(self) -> list[Hj212Factor]:
        return self.factors


def hj212_problems(cfg: "Config") -> list[tuple[tuple[Any, ...], str]]:
    """HJ 212 checks across fields: one (code, field, cn) per logger; one MN per listening
    address; a simulated logger's signals cover its factors."""
    p: list[tuple[tuple[Any, ...], str]] = []
    mns: dict[tuple[str, int, str], int] = {}
    for i, d in enumerate(cfg.devices):
        if not isinstance(d, Hj212Device):
            continue
        key = (d.listen_host, d.listen_port, d.mn)
        if key in mns:
            p.append((("devices", i, "mn"), f"MN {d.mn!r} is already devices[{mns[key]}] on "
                      f"{d.listen_host}:{d.listen_port}"))
        mns.setdefault(key, i)
        seen: dict[tuple[str, str, str], int] = {}
        for j, f in enumerate(d.factors):
            k = (f.code, f.field, f.cn)
            if k in seen:
                p.append((("devices", i, "factors", j, "code"),
                          f"{f.code}-{f.field} of CN {f.cn} is already factors[{seen[k]}]"))
            seen.setdefault(k, j)
            if d.simulate is not None and f.code not in d.simulate.signals:
                p.append((("devices", i, "simulate", "signals"),
                          f"no signal for factor {f.code!r} (factors[{j}])"))
    return p


TAG_DEVICES = (MqttDevice, Hj212Device)   # devices that declare ``tags``


ModbusConfig = Union[ModbusTcpDevice, ModbusRtuDevice]    # a Modbus device, whatever carries it
MODBUS_DEVICES = (ModbusTcpDevice, ModbusRtuDevice)        # the same, for isinstance

Device = Annotated[Union[ModbusTcpDevice, ModbusRtuDevice, MqttDevice, Hj212Device],
                   Field(discriminator="protocol")]


class Accumulation(Strict):
    """Material held up in a node over the campaign (stock-taking at its start and end):
    positive when the stock grew. It enters the node's balance as in − out − accumulation."""
    kg: float
    source: str = Field(min_length=1)


class Node(Strict):
    id: str = Field(min_length=1)
    name: str = ""
    name_zh: str = ""
    kind: Literal["unit", "storage"] = "unit"
    accumulation: Accumulation | None = None

    @field_validator("id")
    @classmethod
    def _not_env(cls, v: str) -> str:
        if v == ENV:
            raise ValueError(f"{ENV!r} is the system boundary and cannot be a node id")
        return v


class Stream(Strict):
    id: str = Field(min_length=1)
    from_: str = Field(alias="from")
    to: str
    # the balances the stream belongs to (7.3.4 material, 7.3.5 water, 7.3.6 energy, 7.3.7
    # pollutant factors); a water stream is usually in both the material and the water layer
    layers: list[Literal["material", "water", "energy", "pollutant"]] = Field(
        default=["material"], min_length=1)
    provenance: Literal["measured", "theoretical", "manual"] = "measured"
    tag: str | None = None
    rate_tag: str | None = None
    source: str | None = None          # where a theoretical or manual value comes from
    value: float | None = None         # theoretical amount per ``per``, in ``unit``
    unit: str | None = None
    # what a theoretical value is per: an hour, a production cycle, a unit of the product's
    # amount (flowsheet.product, in its unit), or a kg of another stream (its id); a design
    # figure scales with production, not with the clock (DB11/T 1156 7.3.3.3 g)
    per: str = "hour"
    main: bool = False                 # a main inlet or outlet of the audit focus (7.3.3.3 b)
    # a manual stream: how it was taken — by hand with evidence (weighed on a weighbridge, dip
    # readings of a tank, a meter read by hand), or from statistics or an estimate, which may
    # not stand for a main stream (7.3.3.3 b, g) — and the evidence (ticket or sheet numbers)
    manual_method: Literal["weighed", "dip", "meter_reading", "statistics", "estimate"] | None \
        = None
    evidence: str | None = None
    # process-condition tags recorded beside the stream (temperature, pressure: 7.3.3.3 g)
    conditions: list[str] = []
    # water layer (GB/T 12452): what the water is — fresh (新水), reused (重复利用), discharged
    # (排水), consumed (耗水: evaporated, into product), steam (boiler output), condensate (returned)
    # cooling_circulating (循环冷却水, counted as reused) and cooling_makeup (补充水, counted as
    # fresh) give the indirect cooling-water recirculation rate
    # received (wastewater or water from others, passed through), non_conventional (reclaimed,
    # rain or sea water: 非常规水), reused_wastewater (treated wastewater used again: 废水回用),
    # direct_cooling_circulating / direct_cooling_makeup (直接冷却水)
    water_role: Literal["fresh", "reused", "discharged", "consumed", "steam", "condensate",
                        "cooling_circulating", "cooling_makeup", "received", "non_conventional",
                        "reused_wastewater", "direct_cooling_circulating",
                        "direct_cooling_makeup"] | None = None
    # energy layer (GB/T 2589): the carrier, for its standard-coal coefficient
    carrier: Literal["electricity", "natural_gas", "steam", "heat", "fresh_water", "diesel",
                     "gasoline", "raw_coal", "coke", "fuel_oil"] | None = None
    density_kg_m3: float | None = Field(default=None, gt=0)
    # reconciliation (analyzer/recon_layer.py): a theoretical or manual amount is taken as within
    # ±uncertainty_pct of its value, a declared density within ±density_uncertainty_pct; both
    # read as bounds by ``reconciliation.sigma_rule``; unset: the defaults there, said so
    uncertainty_pct: float | None = Field(default=None, gt=0)
    uncertainty_source: str | None = None
    density_uncertainty_pct: float | None = Field(default=None, ge=0)
    # what an output to the boundary is (the loss table of 7.3.4 d leaves out products and
    # transfers to users outside the audit focus); unset: a loss or waste
    fate: Literal["product", "by_product", "transfer", "waste"] | None = None
    name: str = ""
    name_zh: str = ""


class Flowsheet(Strict):
    nodes: list[Node] = Field(min_length=1)
    streams: list[Stream] = Field(min_length=1)
    product: str | None = None          # the main product's stream (per-unit-product indicators)


class EffectiveEnergy(Strict):
    """The effective energy of a unit (GB/T 3484 有效能量): what one of its output streams
    carries, its mass times the enthalpy it gained there (e.g. steam over feed water), with the
    source of that figure. The unit's efficiency is effective / supplied."""
    node: str
    stream: str
    kj_per_kg: float | None = Field(default=None, gt=0)   # the design point's enthalpy gain
    # a metered steam pressure picks the saturated-steam enthalpy (IAPWS-IF97) instead, over
    # the feed water's enthalpy ``feed_kj_per_kg``
    pressure_tag: str | None = None
    pressure_basis: Literal["gauge", "absolute"] = "gauge"
    feed_kj_per_kg: float | None = Field(default=None, ge=0)
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _enthalpy(self) -> "EffectiveEnergy":
        if self.kj_per_kg is None and self.pressure_tag is None:
            raise ValueError("give kj_per_kg (design point) or pressure_tag with feed_kj_per_kg")
        if self.pressure_tag is not None and self.feed_kj_per_kg is None:
            raise ValueError("pressure_tag needs feed_kj_per_kg (the feed water's enthalpy)")
        return self


class CoefficientSpec(Strict):
    """A standard-coal coefficient of the campaign's own (a measured low calorific value):
    kgce per ``unit`` — for gas ``Nm3`` (0 °C, 101.325 kPa) or ``m3`` at the reference state
    of ``energy.gas_reference`` — with its source."""
    kgce: float = Field(gt=0)
    unit: str | None = None
    source: str = Field(min_length=1)


class GasReference(Strict):
    """The reference state of a gas coefficient given per ``m3`` (and of a gas meter's ``m3``):
    a ``Nm3`` (0 °C, 101.325 kPa) is converted to it by the ideal-gas law."""
    temperature_c: float = 20.0
    pressure_kpa: float = Field(default=101.325, gt=0)
    source: str = ("Chinese natural-gas trade reference conditions, 101.325 kPa and 20 °C "
                   "(GB 17820 / GB/T 19205, recalled [unverified]); the quoted GB/T 2589 "
                   "coefficient does not state its own")


class EnergySettings(Strict):
    """Standard-coal conversion (GB/T 2589-2020). ``electricity``: ``equivalent`` (当量值, 0.1229
    kgce/kWh) or ``equal_value`` (等价值: the year's average power-supply coal rate, which must be
    given as ``equal_value_kgce_kwh``). ``coefficients`` override the defaults of
    ``analyzer.energy.COEFFICIENTS`` (kgce per unit), e.g. with a measured low calorific value."""
    electricity: Literal["equivalent", "equal_value"] = "equivalent"
    equal_value_kgce_kwh: float | None = Field(default=None, gt=0)
    coefficients: dict[str, float | CoefficientSpec] = {}
    effective: list["EffectiveEnergy"] = []
    gas_reference: GasReference = GasReference()
    # a unit's efficiency (GB/T 3484): effective over the fuel supplied (auxiliary electricity
    # reported apart), or over everything supplied
    efficiency_basis: Literal["fuel", "all_supplied"] = "fuel"

    @model_validator(mode="after")
    def _equal_value(self) -> "EnergySettings":
        if self.electricity == "equal_value" and self.equal_value_kgce_kwh is None:
            raise ValueError("equal_value electricity needs equal_value_kgce_kwh (the year's "
                             "average power-supply coal rate, kgce/kWh)")
        return self


class InfluxV1Sink(Strict):
    """InfluxDB through its v1 HTTP API (1.x natively; 2.x/3.x via v1 compatibility)."""
    name: str = Field(min_length=1)
    kind: Literal["influxdb_v1"]
    url: str = Field(pattern=r"^https?://")
    database: str = "cpaudit"
    measurement: str = "cpaudit"
    username: str | None = None
    password_env: str | None = None     # the password is read from this environment variable
    batch_size: int = Field(default=5000, ge=1, le=100000)
    # the environment variable holding the key that changes asked for in the auditors' office
    # are signed with (store.changes); unset: this box takes no change from there
    changes_key_env: str | None = None


class InfluxV2Sink(Strict):
    """InfluxDB 2.x/3.x through influxdb-client's v2 API."""
    name: str = Field(min_length=1)
    kind: Literal["influxdb_v2"]
    url: str = Field(pattern=r"^https?://")
    org: str
    bucket: str
    token_env: str                      # the token is read from this environment variable
    measurement: str = "cpaudit"
    batch_size: int = Field(default=5000, ge=1, le=100000)


Sink = Annotated[Union[InfluxV1Sink, InfluxV2Sink], Field(discriminator="kind")]


class LoadRequirement(Strict):
    """The audit period's average production load (7.3.3.3 f) and what it is an average over.

    ``average`` [``unit``] is the audit period's output divided by ``period_hours`` [h], the hours
    of ``basis``: ``calendar_hours`` (the year's 8 760 h, or the period's calendar hours) or
    ``operating_hours`` (the hours the plant ran, from the production records). The same output
    gives a higher average over operating hours (65 700 m3 is 7.5 m3/h over 8 760 h, 9.1 over
    7 200 h): the basis is printed beside the figure. ``source`` says where the figure comes
    from."""
    tag: str
    average: float = Field(gt=0)
    unit: str
    source: str
    basis: Literal["calendar_hours", "operating_hours"] = "calendar_hours"
    period_hours: float | None = Field(default=None, gt=0)
    # the audit period's output [unit × h, e.g. m3 for m3/h]: with period_hours, the average is
    # checked against output / hours (they must agree within 0.5 %)
    period_output: float | None = Field(default=None, gt=0)
    # continuous mode: the load is judged over each span of this many hours from the campaign
    # start, a span below the average not counting (a convention: 7.3.3.3 f names no period)
    judged_every_h: float = Field(default=1.0, gt=0, le=24)

    @model_validator(mode="after")
    def _derived(self) -> "LoadRequirement":
        if self.period_output is not None:
            if self.period_hours is None:
                raise ValueError("period_output needs period_hours (the hours it was produced "
                                 "in, calendar or operating: basis)")
            derived = self.period_output / self.period_hours
            if abs(derived - self.average) > 0.005 * self.average:
                raise ValueError(f"average {self.average:g} {self.unit} disagrees with "
                                 f"period_output / period_hours = {self.period_output:g} / "
                                 f"{self.period_hours:g} = {derived:.4g}: is the basis "
                                 f"({self.basis}) right?")
        return self

    def basis_text(self) -> str:
        """The basis in words, e.g. "per calendar hour: 65 700 over 8 760 h"."""
        what = "calendar" if self.basis == "calendar_hours" else "operating"

        def n(x: float) -> str:
            return f"{x:,.0f}".replace(",", " ")
        out = f"per {what} hour"
        if self.period_output is not None and self.period_hours is not None:
            return out + f": {n(self.period_output)} over {n(self.period_hours)} h"
        return out + (f" over {n(self.period_hours)} h" if self.period_hours else "")


class CycleSpec(Strict):
    """How production cycles are recognised (7.3.3.3 e). ``source``:

    - ``state`` (default): a cycle starts when ``tag`` (a state tag) enters ``start_state`` from
      another value; ``steps`` lists the states a complete cycle goes through (by default the set
      most cycles show);
    - ``counter``: ``tag`` is a batch counter; each increase starts a cycle;
    - ``totalizer``: ``tag`` is a totalizer of a batch stream; a cycle starts when it counts again
      after ``idle_min`` minutes without counting;
    - ``marked``: the cycles start at ``boundaries`` (from the batch record), no tag needed.

    Batch balances are taken over whole cycles."""
    source: Literal["state", "counter", "totalizer", "marked"] = "state"
    tag: str | None = None
    start_state: float = 1.0
    steps: list[float] | None = None
    idle_min: float = Field(default=10.0, gt=0)
    boundaries: list[dt.datetime] = []
    # the nominal cycle length [h] (batch record, recipe): says when the first cycle completes
    # before one has been seen; the measured median takes over once there is one
    nominal_h: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _source(self) -> "CycleSpec":
        if self.source == "marked":
            # boundaries may also be marked on the web while the campaign runs
            # (POST /api/v1/cycle-mark): none in the file is fine
            if any(b.tzinfo is None for b in self.boundaries):
                raise ValueError("give each boundary a time zone offset, e.g. "
                                 "2026-11-24T08:00+08:00")
        elif self.tag is None:
            raise ValueError(f"cycles from a {self.source} need its tag")
        return self

    def marked_ns(self) -> list[int]:
        return sorted(int(b.timestamp() * 1e9) for b in self.boundaries)


class Requirements(Strict):
    mode: Literal["continuous", "batch"] = "continuous"
    cycles: CycleSpec | None = None
    min_hours: float = Field(default=72.0, gt=0)
    min_cycles: int = Field(default=3, ge=1)
    closure_limit_pct: float = Field(default=5.0, gt=0, le=100)
    coverage_min: float = Field(default=0.95, gt=0, le=1)
    # a gap longer than this on a main stream breaks "continuous measurement" (7.3.3.3 e)
    max_break_s: float = Field(default=300.0, gt=0)
    load: LoadRequirement | None = None
    # the window every balance is taken over: ``best_valid`` the window the validity report
    # accepts (batch: the longest run of consecutive complete cycles at load; continuous: the
    # longest run at load without a break), inside --from/--to when given; ``campaign`` the
    # whole campaign or --from/--to as given (trimmed to whole cycles in batch mode)
    balance_window: Literal["best_valid", "campaign"] = "best_valid"


class CollectorSettings(Strict):
    interval_s: float = Field(default=1.0, ge=MIN_INTERVAL_S, le=3600)
    late_tolerance_ms: float = Field(default=500.0, gt=0)
    flush_ms: float = Field(default=500.0, ge=1000 * MIN_INTERVAL_S)
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)   # Prometheus /metrics


class Leak(Strict):
    node: str
    fraction: float = Field(gt=0, lt=1)


class Simulation(Strict):
    # brewhouse: the continuous two-node brewhouse (simulators/plant.py), quick to balance;
    # brewery: the whole site, batch brewhouse included (simulators/site.py)
    plant: Literal["brewhouse", "brewery"] = "brewhouse"
    seed: int = 1
    load_amplitude: float = Field(default=0.08, ge=0, lt=0.5)
    leak: Leak | None = None
    # the plant's true densities differ from the declared ones within their uncertainty
    # (simulators/meters.py true_density); off: a volume meter's amount converts exactly
    density_error: bool = False


class ReconciliationSettings(Strict):
    """Statistical reconciliation of the material and water layers (analyzer/recon_layer.py).

    ``sigma_rule``: how an accuracy class ±a % (and any declared ± uncertainty) becomes a
    standard deviation σ — ``rectangular``: σ = a/√3, the bounds of a rectangular distribution
    (GUM, JCGM 100:2008, 4.3.7); ``tolerance_2sigma``: σ = a/2, the reconciliation convention
    of a tolerance of 2σ (Sigmafine's default, shared/reference/balance-math.md 1.3). The
    simulator draws its meters' calibration offsets by the same rule.
    ``theoretical_uncertainty_pct``: a theoretical (design) amount without its own
    ``uncertainty_pct`` is taken as within ± this [%] of its value, so its node keeps its balance.
    ``density_uncertainty_pct``: a declared density without its own uncertainty is within ± this
    [%]; it enters a volume meter's σ in mass in quadrature.
    ``detectability_min``: a meter whose detectability √W_ii/σ_i is below this is named: a bias
    must exceed the test's critical value / detectability σ to show (balance-math.md 2.8).
    ``nonnegative``: the estimates are bounded to amounts ≥ 0 (a bounded WLS)."""
    sigma_rule: Literal["rectangular", "tolerance_2sigma"] = "rectangular"
    theoretical_uncertainty_pct: float = Field(default=25.0, gt=0)
    theoretical_uncertainty_source: str = (
        "convention of this tool [unverified]: a design figure taken as good to ±25 % when its "
        "source gives no tolerance; declare uncertainty_pct on the stream")
    density_uncertainty_pct: float = Field(default=0.5, ge=0)
    density_uncertainty_source: str = (
        "a fixed declared density without temperature compensation: water is 999.97 kg/m3 at "
        "4 °C and 995.65 at 30 °C (IAPWS-95), a 0.4 % span; taken as ±0.5 %")
    detectability_min: float = Field(default=0.1, ge=0, le=1)
    nonnegative: bool = True


class CampaignInfo(Strict):
    name: str
    site: str = ""
    timezone: str = "Asia/Shanghai"
    audit_focus: str = ""
    audit_focus_zh: str = ""

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v


CemsState = Literal["normal", "calibration", "blowback", "maintenance", "fault"]


class StatusWord(Strict):
    """A CEMS status tag and what its values mean. ``map`` keys, tried in their order, the first
    that matches giving the state: an integer (``"3"``, ``"0x0100"``), an inclusive range
    (``"2-7"``) or a bit mask (``"&0xFF00"``: any of these bits set). A value no key matches is
    ``other``. Minutes with a reading in any state but ``normal`` are not emission minutes (span
    gas, blowback air, a fault's output): they are left out and count as invalid."""
    tag: str
    map: dict[str, CemsState] = Field(min_length=1)
    other: CemsState = "fault"
    source: str = Field(min_length=1)           # the device document the map comes from
    # the tags whose minutes it decides (the analyzer's channels and its O2); empty: every
    # concentration tag of the stack and its O2
    applies_to: list[str] = []

    @field_validator("map")
    @classmethod
    def _keys(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            status_matcher(k)
        return v


def status_matcher(key: str) -> tuple[str, int, int]:
    """A status map key as (kind, a, b): ("eq", v, v), ("range", lo, hi) or ("mask", m, 0)."""
    k = key.strip()
    try:
        if k.startswith("&"):
            return ("mask", int(k[1:], 0), 0)
        if "-" in k:
            lo, hi = (int(x, 0) for x in k.split("-", 1))
            if hi < lo:
                raise ValueError
            return ("range", lo, hi)
        v = int(k, 0)
        return ("eq", v, v)
    except ValueError:
        raise ValueError(f"status map key {key!r}: use a value (3, 0x0100), a range (2-7) or a "
                         "bit mask (&0xFF00)") from None


class Substitution(Strict):
    """How an invalid hour of a point enters the headline total. ``hj75``: a run of invalid
    hours up to ``short_run_h`` is filled with the mean hourly load of the valid hour before and
    the valid hour after it; a longer run with the highest hourly load of the ``lookback_h``
    valid hours before it (HJ 75-2017's missing-data treatment as recalled, not retrieved here:
    [unverified]); ``mean_valid``: the mean valid-hour load (an extrapolation, a convention);
    ``none``: invalid hours count zero (the headline is the valid-hours sum)."""
    rule: Literal["hj75", "mean_valid", "none"] = "hj75"
    short_run_h: float = Field(default=24.0, gt=0)
    lookback_h: int = Field(default=720, ge=1)


class Stack(Strict):
    """A stack with a CEMS (HJ 75-2017): the flue gas flow and the conditions that take it to
    standard dry state (273.15 K, 101.325 kPa, water removed), and the reference O2 for the
    converted concentration (折算浓度)."""
    id: str = Field(min_length=1)
    name: str = ""
    name_zh: str = ""
    node: str                                   # the flowsheet node that emits through it
    flow_tag: str
    # actual: at stack temperature, pressure and moisture; standard_wet: Nm3/h with water;
    # standard_dry: Nm3/h dry (no conversion needed)
    flow_basis: Literal["actual", "standard_wet", "standard_dry"] = "actual"
    temperature_tag: str | None = None          # needed for an actual flow
    pressure_tag: str | None = None             # absolute static pressure, for an actual flow
    moisture_tag: str | None = None             # water vapour, % by volume, for a wet flow
    o2_tag: str | None = None                   # O2, % dry, for the converted concentration
    o2_reference_pct: float | None = Field(default=None, ge=0, lt=21)
    o2_reference_source: str | None = None      # the emission standard that sets it
    # the analyzer's concentrations: dry (extractive with a cooler) or wet (in situ); the
    # default of the stack's points (a point may declare its own)
    concentration_basis: Literal["dry", "wet"] = "dry"
    # CEMS status words: minutes of calibration, blowback, maintenance or fault are no emission
    status: list[StatusWord] = []

    @model_validator(mode="after")
    def _needs(self) -> "Stack":
        missing = []
        if self.flow_basis == "actual":
            missing += [k for k in ("temperature_tag", "pressure_tag") if getattr(self, k) is None]
        if (self.flow_basis != "standard_dry" or self.concentration_basis == "wet") \
                and self.moisture_tag is None:
            missing.append("moisture_tag")
        if missing:
            raise ValueError(f"a stack with flow_basis {self.flow_basis} and "
                             f"{self.concentration_basis} concentrations needs "
                             f"{', '.join(missing)}")
        if self.o2_reference_pct is not None and (self.o2_tag is None
                                                  or not self.o2_reference_source):
            raise ValueError("o2_reference_pct needs o2_tag and o2_reference_source")
        return self


class PollutantPoint(Strict):
    """Where a factor is measured: a concentration tag on a flowsheet stream (water: mg/L
    times the stream's rate tag) or on a stack (gas: mg/m3 times the standard dry flue gas)."""
    tag: str
    stream: str | None = None
    stack: str | None = None
    # stack points: the concentration's basis, if not the stack's: wet or dry, and at standard
    # (273.15 K, 101.325 kPa) or actual stack temperature and pressure (in-situ monitors)
    concentration_basis: Literal["dry", "wet"] | None = None
    concentration_state: Literal["standard", "actual"] = "standard"

    @model_validator(mode="after")
    def _one(self) -> "PollutantPoint":
        if (self.stream is None) == (self.stack is None):
            raise ValueError("a point is on a stream or on a stack (exactly one of them)")
        if self.stream is not None and (self.concentration_basis is not None
                                        or self.concentration_state != "standard"):
            raise ValueError("concentration_basis and concentration_state are for stack points")
        return self


class Declared(Strict):
    """A figure that is not measured in the campaign, with where it comes from."""
    value: float = Field(ge=0, le=1)
    source: str = Field(min_length=1)


class PollutantFactor(Strict):
    id: str = Field(min_length=1)               # COD, NH3-N, SO2, NOx, particulate, VOCs, Hg ...
    name: str = ""
    name_zh: str = ""
    # measurement points from generation to emission, upstream first
    points: list[PollutantPoint] = Field(min_length=1)
    # share of what is generated that reaches the first point (收集效率); the rest is fugitive
    collection: Declared | None = None


class Pollutants(Strict):
    """7.3.7. ``valid_hour_fraction``: an hour of a point counts when every tag it needs has at
    least this share of its expected readings good. HJ 75-2017's own minute-to-hour rule was not
    retrieved (shared/reference/balance-math.md 4.6): 0.75 is a default, said so in the output."""
    valid_hour_fraction: float = Field(default=0.75, gt=0, le=1)
    substitution: Substitution = Substitution()
    # a tag reporting less often than once a minute (its device's interval_s, e.g. a COD
    # analyzer's 2 h cycle): the result reported at T holds for the cycle before it, (T - I, T]
    # (preceding: sampled over that cycle) or after it, [T, T + I) (following: held until the
    # next result). A convention, not a retrieved text of HJ 356-2019 [unverified].
    cycle_value_holds: Literal["preceding", "following"] = "preceding"
    stacks: list[Stack] = []
    factors: list[PollutantFactor] = []


class Component(Strict):
    """A component balance (7.3.4 c): the component's mass fraction in each stream (a lab
    analysis, declared with its source), the balance then taken on component mass."""
    id: str = Field(min_length=1)
    name: str = ""
    name_zh: str = ""
    fractions: dict[str, float] = Field(min_length=1)   # stream id -> mass fraction 0..1
    source: str = Field(min_length=1)

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, x in v.items() if not 0 <= x <= 1]
        if bad:
            raise ValueError(f"mass fractions must be within 0..1: {', '.join(bad)}")
        return v


class Config(Strict):
    campaign: CampaignInfo
    requirements: Requirements = Requirements()
    collector: CollectorSettings = CollectorSettings()
    devices: list[Device] = Field(min_length=1)
    flowsheet: Flowsheet
    sinks: list[Sink] = []
    simulation: Simulation = Simulation()
    energy: EnergySettings = EnergySettings()
    pollutants: Pollutants = Pollutants()
    components: list[Component] = []
    allocation: Allocation = Allocation()
    water: WaterContent = WaterContent()
    reconciliation: ReconciliationSettings = ReconciliationSettings()

    # -- derived views -------------------------------------------------------------------------
    def tag_index(self) -> dict[str, "TagInfo"]:
        out: dict[str, TagInfo] = {}
        for d in self.devices:
            if isinstance(d, TAG_DEVICES):
                for t in d.tags:
                    out[t.tag] = TagInfo(t.tag, d.name, t.unit, t.kind,
                                         t.accuracy_pct or d.accuracy_pct, t.rollover,
                                         d.calibration)
                continue
            for r in d.registers:
                if r.type != DataType.STRING:
                    out[r.tag] = TagInfo(r.tag, d.name, r.unit, r.kind,
                                         r.accuracy_pct or d.accuracy_pct, r.rollover,
                                         d.calibration)
            for c in d.computed:
                out[c.tag] = TagInfo(c.tag, d.name, c.unit, c.kind,
                                     c.accuracy_pct or d.accuracy_pct, c.rollover, d.calibration)
        return out

    def device(self, name: str) -> Device:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(name)


class TagInfo:
    __slots__ = ("name", "device", "unit", "kind", "accuracy_pct", "rollover", "calibration")

    def __init__(self, name: str, device: str, unit: str, kind: TagKind,
                 accuracy_pct: float | None, rollover: float | None,
                 calibration: Calibration | None) -> None:
        self.name, self.device, self.unit, self.kind = name, device, unit, kind
        self.accuracy_pct, self.rollover, self.calibration = accuracy_pct, rollover, calibration


class CrossFieldError(ValueError):
    """Several cross-field problems, each (path tuple, message)."""

    def __init__(self, problems: list[tuple[tuple[Any, ...], str]]) -> None:
        super().__init__("; ".join(m for _, m in problems))
        self.problems = problems


def stream_unit_problem(s: Stream, key: str, unit: str) -> str | None:
    """Why a tag in ``unit`` cannot measure stream ``s`` as its ``key`` (tag or rate_tag), or
    None. The material, water and pollutant layers need a mass or a volume (and a density to
    turn a volume into mass); the energy layer alone accepts an energy or a carrier's amount."""
    tag = getattr(s, key)
    dim = dimension(unit)
    if "material" in s.layers or "water" in s.layers or "pollutant" in s.layers:
        want: tuple[str, ...] = ("mass", "volume")
    else:   # energy only: an energy, or a carrier's amount (Nm3 of gas, t of steam)
        want = ("energy", "volume", "mass")
    if key == "rate_tag":
        want = tuple({"mass": "mass_rate", "volume": "volume_rate", "energy": "power"}[w]
                     for w in want)
    if dim not in want:
        return (f"tag {tag!r} has unit {unit!r} ({dim}); a {'/'.join(s.layers)} stream's {key} "
                f"needs {' or '.join(want)}")
    if dim.startswith("volume") and s.density_kg_m3 is None and "energy" not in s.layers:
        return (f"tag {tag!r} measures volume ({unit}); the material balance needs "
                "density_kg_m3")
    return None


def cross_check(cfg: Config) -> list[tuple[tuple[Any, ...], str]]:
    """Checks that span fields. Returns (path, message) pairs; empty when all is well."""
    p: list[tuple[tuple[Any, ...], str]] = []
    seen_dev: dict[str, int] = {}
    tags: dict[str, tuple[Any, ...]] = {}
    for i, d in enumerate(cfg.devices):
        if d.name in seen_dev:
            p.append((("devices", i, "name"),
                      f"duplicate device name {d.name!r} (first at devices[{seen_dev[d.name]}])"))
        seen_dev.setdefault(d.name, i)
        if isinstance(d, TAG_DEVICES):
            for j, t in enumerate(d.tags):
                path = ("devices", i, "factors" if isinstance(d, Hj212Device) else "tags", j,
                        "tag")
                if t.tag in tags:
                    p.append((path, f"duplicate tag {t.tag!r}"))
                tags.setdefault(t.tag, path)
            continue
        local: set[str] = set()
        for j, r in enumerate(d.registers):
            path = ("devices", i, "registers", j, "tag")
            if r.tag in tags:
                p.append((path, f"duplicate tag {r.tag!r}"))
            tags.setdefault(r.tag, path)
            local.add(r.tag)
            if r.type == DataType.STRING and not r.count:
                p.append((("devices", i, "registers", j, "count"),
                          "a string needs count (registers)"))
            if r.bit is not None and r.function not in (3, 4):
                p.append((("devices", i, "registers", j, "bit"),
                          "bit selects a bit of a register; coils and inputs are bits already"))
            if r.function in (1, 2) and r.type != DataType.BIT:
                p.append((("devices", i, "registers", j, "type"),
                          f"function {r.function} reads bits; type must be 'bit'"))
            if r.address < d.address_base:
                p.append((("devices", i, "registers", j, "address"),
                          f"address {r.address} is below the device's address_base "
                          f"{d.address_base}"))
        for j, c in enumerate(d.computed):
            path = ("devices", i, "computed", j, "tag")
            if c.tag in tags:
                p.append((path, f"duplicate tag {c.tag!r}"))
            tags.setdefault(c.tag, path)
            for k, src in enumerate(c.sum):
                if src not in local:
                    p.append((("devices", i, "computed", j, "sum", k),
                              f"{src!r} is not a register tag of device {d.name!r}"))
    p += hj212_problems(cfg)
    nodes: set[str] = set()
    for i, n in enumerate(cfg.flowsheet.nodes):
        if n.id in nodes:
            p.append((("flowsheet", "nodes", i, "id"), f"duplicate node id {n.id!r}"))
        nodes.add(n.id)
    stream_ids: set[str] = set()
    index = cfg.tag_index()
    for i, s in enumerate(cfg.flowsheet.streams):
        base = ("flowsheet", "streams", i)
        if s.id in stream_ids:
            p.append((base + ("id",), f"duplicate stream id {s.id!r}"))
        stream_ids.add(s.id)
        for end, key in ((s.from_, "from"), (s.to, "to")):
            if end != ENV and end not in nodes:
                p.append((base + (key,), f"unknown node {end!r}; nodes are "
                          f"{', '.join(sorted(nodes))} and {ENV} (the boundary)"))
        if s.from_ == s.to:
            p.append((base + ("to",), "a stream cannot start and end at the same node"))
        if s.provenance == "measured" and not s.tag and not s.rate_tag:
            p.append((base + ("tag",), "a measured stream needs a tag or a rate_tag"))
        if s.provenance in ("theoretical", "manual") and not s.source:
            p.append((base + ("source",), f"a {s.provenance} stream needs its source"))
        if s.provenance == "manual" and s.manual_method is None:
            p.append((base + ("manual_method",), "a manual stream needs manual_method (weighed, "
                      "dip, meter_reading, statistics or estimate)"))
        if s.provenance == "theoretical" and (s.value is None or s.unit is None):
            p.append((base + ("value",), "a theoretical stream needs value and unit (per hour)"))
        if s.per not in ("hour", "cycle", "product") and s.per not in {
                x.id for x in cfg.flowsheet.streams}:
            p.append((base + ("per",), f"per must be hour, cycle, product or a stream id, not "
                      f"{s.per!r}"))
        elif s.per == "cycle" and cfg.requirements.cycles is None:
            p.append((base + ("per",), "per: cycle needs requirements.cycles"))
        elif s.per == "product" and cfg.flowsheet.product is None:
            p.append((base + ("per",), "per: product needs flowsheet.product"))
        for key, tag in (("tag", s.tag), ("rate_tag", s.rate_tag)):
            if tag is None:
                continue
            if tag not in index:
                p.append((base + (key,), f"unknown tag {tag!r}"))
                continue
            problem = stream_unit_problem(s, key, index[tag].unit)
            if problem and "density_kg_m3" in problem:
                if not any(q[0] == base + ("density_kg_m3",) for q in p):
                    p.append((base + ("density_kg_m3",), problem))
            elif problem:
                p.append((base + (key,), problem))
        for j, tag in enumerate(s.conditions):
            if tag not in index:
                p.append((base + ("conditions", j), f"unknown tag {tag!r}"))
    if cfg.flowsheet.product is not None and cfg.flowsheet.product not in stream_ids:
        p.append((("flowsheet", "product"), f"unknown stream {cfg.flowsheet.product!r}"))
    cyc = cfg.requirements.cycles
    if cyc is not None and cyc.tag is not None and cyc.tag not in index:
        p.append((("requirements", "cycles", "tag"), f"unknown tag {cyc.tag!r}"))
    load = cfg.requirements.load
    if load is not None and load.tag not in index:
        p.append((("requirements", "load", "tag"), f"unknown tag {load.tag!r}"))
    leak = cfg.simulation.leak
    if leak is not None and leak.node not in nodes:
        p.append((("simulation", "leak", "node"), f"unknown node {leak.node!r}"))
    p += _check_pollutants(cfg, index, nodes, stream_ids)
    p += _check_wiring(cfg)
    p += check_allocation(cfg)
    for i, e in enumerate(cfg.energy.effective):
        if e.node not in nodes:
            p.append((("energy", "effective", i, "node"), f"unknown node {e.node!r}"))
        es = next((x for x in cfg.flowsheet.streams if x.id == e.stream), None)
        if es is None:
            p.append((("energy", "effective", i, "stream"), f"unknown stream {e.stream!r}"))
        elif es.from_ != e.node or "material" not in es.layers:
            p.append((("energy", "effective", i, "stream"), f"stream {e.stream!r} must leave "
                      f"{e.node!r} and be in the material layer (its mass is counted)"))
        if e.pressure_tag is not None:
            if e.pressure_tag not in index:
                p.append((("energy", "effective", i, "pressure_tag"),
                          f"unknown tag {e.pressure_tag!r}"))
            elif dimension(index[e.pressure_tag].unit) != "pressure":
                p.append((("energy", "effective", i, "pressure_tag"), f"tag {e.pressure_tag!r} "
                          f"has unit {index[e.pressure_tag].unit!r}; it needs a pressure"))
    return p


_INTEGER_TYPES = (DataType.INT16, DataType.UINT16, DataType.INT32, DataType.UINT32,
                  DataType.INT64, DataType.UINT64, DataType.BIT)
_TABLES = {1: "coil", 2: "discrete input", 3: "holding", 4: "input"}


def _check_wiring(cfg: Config) -> list[tuple[tuple[Any, ...], str]]:
    """What the collector would otherwise read wrongly or lose in silence (issue 14): sinks
    that share a name (they share one forwarding cursor), MQTT devices that share a client id
    on one broker (each takes over the other's session), and per Modbus device registers that
    overlap, run past register 65535, or read a bit of a value that has no bits."""
    p: list[tuple[tuple[Any, ...], str]] = []
    seen_sink: dict[str, int] = {}
    for i, sk in enumerate(cfg.sinks):
        if sk.name in seen_sink:
            p.append((("sinks", i, "name"), f"duplicate sink name {sk.name!r} (first at "
                      f"sinks[{seen_sink[sk.name]}]): sinks with one name share one forwarding "
                      "cursor"))
        seen_sink.setdefault(sk.name, i)
    clients: dict[tuple[str, int, str], int] = {}
    for i, d in enumerate(cfg.devices):
        if isinstance(d, MqttDevice):
            key = (d.host, d.port, d.client_id)
            if key in clients:
                p.append((("devices", i, "client_id"), f"client_id {d.client_id!r} is already "
                          f"used on {d.host}:{d.port} by devices[{clients[key]}]: the broker "
                          "gives one session per client id, each would take over the other"))
            clients.setdefault(key, i)
        elif isinstance(d, MODBUS_DEVICES):
            p += _check_registers(d, i)
    return p


def _check_registers(d: ModbusBase, i: int) -> list[tuple[tuple[Any, ...], str]]:
    p: list[tuple[tuple[Any, ...], str]] = []
    spans: dict[int, list[tuple[int, int, int]]] = {}      # table -> (first, last, index)
    bits: dict[tuple[int, int, int], int] = {}             # (table, address, bit) -> index
    for j, r in enumerate(d.registers):
        at = ("devices", i, "registers", j)
        first = r.address - d.address_base
        last = first + r.size - 1
        if r.function in (3, 4) and last > 65535:
            p.append((at + ("address",), f"a {r.type.value} at {r.address} needs registers "
                      f"{first}-{last} on the wire; the last register is 65535"))
        if r.bit is not None and r.type not in _INTEGER_TYPES:
            p.append((at + ("bit",), f"bit selects a bit of an integer register; a "
                      f"{r.type.value} has no bits to select"))
        if r.type == DataType.BIT and r.function in (3, 4) and r.bit is None:
            p.append((at + ("bit",), f"type bit on {_TABLES[r.function]} registers needs bit "
                      "(0-15): which bit of the register"))
        if r.function in (3, 4) and (r.bit is not None or r.type == DataType.BIT):
            key = (r.function, first, r.bit or 0)
            if key in bits:
                p.append((at + ("bit",), f"bit {r.bit} of {_TABLES[r.function]} register "
                          f"{r.address} is already read by registers[{bits[key]}] "
                          f"({d.registers[bits[key]].tag!r})"))
            bits.setdefault(key, j)
            continue
        spans.setdefault(r.function, []).append((first, last, j))
    for fn, rows in spans.items():
        rows.sort()
        end, owner = -1, -1
        for first, last, j in rows:
            if first <= end:
                o = d.registers[owner]
                p.append((("devices", i, "registers", j, "address"), f"{_TABLES[fn]} "
                          f"registers {first}-{last} of {d.registers[j].tag!r} overlap "
                          f"{first}-{min(last, end)} of registers[{owner}] ({o.tag!r}): one "
                          "register cannot hold two values"))
            if last > end:
                end, owner = last, j
    return p


# what each pollutant tag must measure: (key, dimension wanted, words for the message)
_STACK_TAGS = (("flow_tag", "volume_rate", "a volume flow"),
               ("temperature_tag", "temperature", "a temperature"),
               ("pressure_tag", "pressure", "an absolute pressure"),
               ("moisture_tag", "dimensionless", "a volume share (percent)"),
               ("o2_tag", "dimensionless", "a volume share (percent)"))


def _duplicate_ids(ids: list[str], path: tuple[Any, ...], what: str
                   ) -> list[tuple[tuple[Any, ...], str]]:
    """Each repeated id, at its second and later places."""
    seen: set[str] = set()
    out = []
    for i, x in enumerate(ids):
        if x in seen:
            out.append((path + (i, "id"), f"duplicate {what} id {x!r}"))
        seen.add(x)
    return out


def _check_pollutants(cfg: Config, index: dict[str, TagInfo], nodes: set[str],
                      stream_ids: set[str]) -> list[tuple[tuple[Any, ...], str]]:
    p: list[tuple[tuple[Any, ...], str]] = []
    streams = {s.id: s for s in cfg.flowsheet.streams}
    p += _duplicate_ids([st.id for st in cfg.pollutants.stacks], ("pollutants", "stacks"),
                        "stack")
    p += _duplicate_ids([f.id for f in cfg.pollutants.factors], ("pollutants", "factors"),
                        "factor")
    stacks = {st.id for st in cfg.pollutants.stacks}
    for i, st in enumerate(cfg.pollutants.stacks):
        base = ("pollutants", "stacks", i)
        if st.node not in nodes:
            p.append((base + ("node",), f"unknown node {st.node!r}"))
        for key, dim, words in _STACK_TAGS:
            tag = getattr(st, key)
            if tag is None:
                continue
            if tag not in index:
                p.append((base + (key,), f"unknown tag {tag!r}"))
            elif dimension(index[tag].unit) != dim:
                p.append((base + (key,), f"tag {tag!r} has unit {index[tag].unit!r}; "
                          f"{key} needs {words}"))
        for k, w in enumerate(st.status):
            if w.tag not in index:
                p.append((base + ("status", k, "tag"), f"unknown tag {w.tag!r}"))
            for t in w.applies_to:
                if t not in index:
                    p.append((base + ("status", k, "applies_to"), f"unknown tag {t!r}"))
    by_id = {st.id: st for st in cfg.pollutants.stacks}
    for i, f in enumerate(cfg.pollutants.factors):
        base = ("pollutants", "factors", i)
        for j, pt in enumerate(f.points):
            at = base + ("points", j)
            if pt.tag not in index:
                p.append((at + ("tag",), f"unknown tag {pt.tag!r}"))
            elif dimension(index[pt.tag].unit) != "[mass] / [length] ** 3":
                p.append((at + ("tag",), f"tag {pt.tag!r} has unit {index[pt.tag].unit!r}; a "
                          "concentration needs mass per volume (mg/L, mg/m3)"))
            if pt.stack is not None and pt.stack not in stacks:
                p.append((at + ("stack",), f"unknown stack {pt.stack!r}"))
            elif pt.stack is not None:
                st = by_id[pt.stack]
                need = []
                if pt.concentration_basis == "wet" and st.moisture_tag is None:
                    need.append("moisture_tag")
                if pt.concentration_state == "actual":
                    need += [k for k in ("temperature_tag", "pressure_tag")
                             if getattr(st, k) is None]
                if need:
                    p.append((at + ("concentration_basis" if "moisture_tag" in need else
                                    "concentration_state",),
                              f"a {pt.concentration_basis or st.concentration_basis}, "
                              f"{pt.concentration_state} concentration needs the stack's "
                              f"{', '.join(need)}"))
            if pt.stream is not None:
                s = streams.get(pt.stream)
                if s is None:
                    p.append((at + ("stream",), f"unknown stream {pt.stream!r}"))
                elif s.rate_tag is None or s.rate_tag not in index or \
                        dimension(index[s.rate_tag].unit) != "volume_rate":
                    p.append((at + ("stream",), f"stream {pt.stream!r} needs a rate_tag "
                              "measuring a volume flow (the load is concentration x flow)"))
    for i, c in enumerate(cfg.components):
        for sid in c.fractions:
            if sid not in stream_ids:
                p.append((("components", i, "fractions", sid), f"unknown stream {sid!r}"))
    return p
