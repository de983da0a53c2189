"""Fault scenarios for the simulators: what goes wrong, where, from when and for how long.

A scenario file is YAML::

    faults:
      - {kind: leak, node: mash, fraction: 0.1, start: 2h, duration: 10h}
      - {kind: dropout, device: fm_water, start: 30m, duration: 5m}

Times are offsets from the campaign origin (``90``, ``90s``, ``15m``, ``2h``, ``1d``) or ISO 8601
date-times with a time zone. ``duration`` may be ``forever``. The same fault on the command line:
``--fault "leak node=mash fraction=0.1 start=2h duration=10h"``.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator

from cpaudit.config.models import Strict

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_OFFSET = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*$")


def parse_offset(v: Any) -> float | dt.datetime:
    """Seconds after the origin, or an absolute aware date-time."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            raise ValueError("a date-time needs a time zone, e.g. 2026-11-24T08:00+08:00")
        return v
    if isinstance(v, str):
        if v.strip() == "forever":
            return math.inf
        m = _OFFSET.match(v)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2) or "s"]
        try:
            d = dt.datetime.fromisoformat(v)
        except ValueError:
            pass
        else:
            if d.tzinfo is None:
                raise ValueError(f"{v!r}: a date-time needs a time zone")
            return d
    raise ValueError(f"{v!r} is not a time: use 90, 90s, 15m, 2h, 1d or an ISO date-time")


class _Fault(Strict):
    start: Any = 0.0
    duration: Any = math.inf

    @field_validator("start", "duration")
    @classmethod
    def _time(cls, v: Any, info: Any) -> Any:
        out = parse_offset(v)
        if info.field_name == "duration" and isinstance(out, dt.datetime):
            raise ValueError("a duration is a length of time (e.g. 2h), not a date")
        return out

    def window(self, t0: float) -> tuple[float, float]:
        """[start, end) in s since epoch."""
        s = self.start.timestamp() if isinstance(self.start, dt.datetime) else t0 + self.start
        return s, s + float(self.duration)


class LeakFault(_Fault):
    kind: Literal["leak"]
    node: str
    fraction: float = Field(gt=0, lt=1)


class LoadDropFault(_Fault):
    kind: Literal["load_drop"]
    factor: float = Field(ge=0, lt=1)      # 0: shutdown


class AbortCycleFault(_Fault):
    kind: Literal["abort_cycle"]           # the brew running at ``start`` stops there


class BiasFault(_Fault):
    kind: Literal["bias"]
    device: str
    pct: float                             # added error [% of reading]


class DriftFault(_Fault):
    kind: Literal["drift"]
    device: str
    pct_per_day: float


class StuckFault(_Fault):
    kind: Literal["stuck"]
    device: str


class TotalizerFault(_Fault):
    kind: Literal["rollover", "reset"]     # rollover: the totalizer wraps at ``start``
    device: str


class CommFault(_Fault):
    kind: Literal["dropout", "slow", "exception", "connection_reset"]
    device: str
    delay_s: float = Field(default=0.0, ge=0)        # slow answers
    code: int = Field(default=4, ge=1, le=11)        # Modbus exception code (4: device failure)


class CemsFault(_Fault):
    """The CEMS analyzer out of measurement: ``calibration`` sets the status word's low byte to
    ``status`` (2-7 on the SCS-900UV) and the gas channels read the span gas; ``maintenance``
    sets the maintenance word (0x000B) to ``status`` and the readings freeze."""
    kind: Literal["calibration", "maintenance"]
    device: str
    status: int = Field(default=3, ge=1, le=0xFFFF)
    span_so2: float = Field(default=100.0, ge=0)      # span gas [mg/m3]
    span_nox: float = Field(default=200.0, ge=0)


class MqttFault(_Fault):
    kind: Literal["clock_skew", "malformed", "broker_disconnect"]
    device: str
    offset_s: float = 0.0                  # clock skew of the sender


Fault = Annotated[Union[LeakFault, LoadDropFault, AbortCycleFault, BiasFault, DriftFault,
                        StuckFault, TotalizerFault, CommFault, CemsFault, MqttFault],
                  Field(discriminator="kind")]


class Scenario(Strict):
    name: str = ""
    faults: list[Fault] = []


def parse_fault(text: str) -> dict[str, Any]:
    """``"leak node=mash fraction=0.1 start=2h"`` -> a fault mapping (validated by Scenario)."""
    parts = text.split()
    if not parts:
        raise ValueError("empty fault")
    out: dict[str, Any] = {"kind": parts[0]}
    for p in parts[1:]:
        if "=" not in p:
            raise ValueError(f"{p!r}: expected key=value")
        k, v = p.split("=", 1)
        try:
            out[k] = float(v) if k in ("fraction", "factor", "pct", "pct_per_day", "delay_s",
                                       "offset_s", "span_so2", "span_nox") else \
                int(v) if k == "code" else int(v, 0) if k == "status" else v
        except ValueError as e:
            raise ValueError(f"{k}={v!r}: not a number") from e
    return out
