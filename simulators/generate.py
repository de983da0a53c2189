"""Generate a campaign straight into a store: the samples a collector would have recorded.

Same plant model, same meters (error, noise per second, faults), same tick times (multiples of
each device's interval since the epoch), same decoding (each register is evaluated from the
profile's field and quantised as the register encoding would: float32 rounding, integer
truncation; then the register's scale and offset), same quality when the wire fails: a dropout,
a connection reset or an answer slower than the timeout is ``bad/timeout`` or ``bad/connection``,
an exception ``bad/exception``, an answer later than the late tolerance ``uncertain/late``.
MQTT devices publish at their interval with their own (possibly skewed) clock; while the broker
is unreachable nothing is recorded. Per-device health counters are not generated: they describe a
running collector, not the plant; the store's meta ``campaign.generated`` says the data are
simulated.
"""
from __future__ import annotations

import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from cpaudit.config import Config
from cpaudit.config.models import MODBUS_DEVICES, Hj212Device, ModbusConfig, MqttDevice, Subscription
from cpaudit.config.scenario import CommFault, MqttFault, Scenario
from cpaudit.simulators.cems import apply_cems_faults
from cpaudit.simulators.live import composite_s, mqtt_values
from cpaudit.simulators.meters import SimMeter, build_meters, build_plant
from cpaudit.simulators.profiles import find_field, quantise
from cpaudit.store.keys import CAMPAIGN_START, GENERATED
from cpaudit.store.sample import Quality, Reason
from cpaudit.store.sqlite import SQLiteStore

log = logging.getLogger("cpaudit.simulators.generate")

CHUNK_S = 3600.0


@dataclass
class GenerateStats:
    start_ns: int
    end_ns: int
    samples: int = 0
    tags: set[str] = field(default_factory=set)
    seconds: float = 0.0


Series = tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _topic_tag(subs: list[Subscription], topic: str, field_name: str) -> str | None:
    """The tag a subscription maps a published field to (the simulator's own reading of the
    subscription rules: + matches one level, # the rest; {1}.., {#}, {field} in the template)."""
    levels = topic.split("/")
    for s in subs:
        pat = s.topic.split("/")
        caps: list[str] = []
        rest = ""
        ok = True
        for i, p in enumerate(pat):
            if p == "#":
                rest = "/".join(levels[i:])
                break
            if i >= len(levels) or (p != "+" and p != levels[i]):
                ok = False
                break
            if p == "+":
                caps.append(levels[i])
        else:
            ok = ok and len(pat) == len(levels)
        if not ok:
            continue
        if s.fields and field_name not in s.fields:
            continue

        def sub(m: re.Match[str]) -> str:
            k = m.group(1)
            if k == "field":
                return field_name
            if k == "#":
                return rest
            return caps[int(k) - 1]
        return re.sub(r"\{(field|#|\d+)\}", sub, s.tag)
    return None


def _comm_quality(faults: list[tuple[CommFault, float, float]], t: np.ndarray, timeout_s: float,
                  late_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Quality and reason per tick of a device under wire faults."""
    q = np.zeros(t.shape, np.int8)
    r = np.zeros(t.shape, np.int8)
    for f, s, e in faults:
        on = (t >= s) & (t < e)
        if not on.any():
            continue
        if f.kind == "dropout" or (f.kind == "slow" and f.delay_s >= timeout_s):
            q[on], r[on] = Quality.BAD, Reason.TIMEOUT
        elif f.kind == "connection_reset":
            q[on], r[on] = Quality.BAD, Reason.CONNECTION
        elif f.kind == "exception":
            q[on], r[on] = Quality.BAD, Reason.EXCEPTION
        elif f.kind == "slow" and f.delay_s * 1000 > late_s * 1000:
            late = on & (q == Quality.GOOD)
            q[late], r[late] = Quality.UNCERTAIN, Reason.LATE
    return q, r


def _modbus_series(d: ModbusConfig, m: SimMeter, t: np.ndarray, ts: np.ndarray,
                   faults: list[tuple[CommFault, float, float]], late_s: float) -> list[Series]:
    st = m.state(t)
    q, r = _comm_quality(faults, t, d.timeout_s, late_s)
    bad = q == Quality.BAD
    values: dict[str, np.ndarray] = {}
    out: list[Series] = []
    for reg in d.registers:
        if reg.type.value in ("string", "bit"):
            raise ValueError(f"device {d.name}: generate handles numeric registers only, "
                             f"not {reg.type.value} ({reg.tag})")
        try:
            fld = find_field(m.profile, reg.function, reg.address - d.address_base,
                             reg.type.value, reg.word_order.value)
        except ValueError as e:
            raise ValueError(f"device {d.name}, tag {reg.tag}: {e}") from None
        v = quantise(fld.value(st), fld.dtype) * reg.scale + reg.offset
        values[reg.tag] = v
        out.append((reg.tag, ts, np.where(bad, np.nan, v), q, r))
    for c in d.computed:
        v = sum((values[s] for s in c.sum), np.zeros(t.shape)) * c.scale
        out.append((c.tag, ts, np.where(bad, np.nan, v), q, r))
    return out


def _mqtt_series(d: MqttDevice, m: SimMeter, t: np.ndarray,
                 faults: list[tuple[MqttFault, float, float]], interval: float) -> list[Series]:
    assert d.simulate is not None
    keep = np.ones(t.shape, bool)
    skew = np.zeros(t.shape)
    for f, s, e in faults:
        on = (t >= s) & (t < e)
        if f.kind == "broker_disconnect":
            keep &= ~on
        elif f.kind == "clock_skew":
            skew = np.where(on, f.offset_s, skew)
    tk = t[keep]
    stamp_ns = np.round((tk + skew[keep]) * 1000).astype(np.int64) * 1_000_000
    vals = mqtt_values(d.simulate.fields, m, tk, composite_s(d.simulate.sample, interval))
    out: list[Series] = []
    zeros = np.zeros(tk.shape, np.int8)
    for name, v in vals.items():
        tag = _topic_tag(d.subscriptions, d.simulate.topic, name)
        if tag is None or tag not in {x.tag for x in d.tags}:
            raise ValueError(f"device {d.name}: the published field {name!r} on "
                             f"{d.simulate.topic!r} maps to no declared tag")
        arr = np.round(np.asarray(v, dtype=np.float64), 6)   # as json.dumps(round(v, 6))
        out.append((tag, stamp_ns, arr, zeros, zeros))
    return out


def _hj212_loggers(cfg: Config, plant: object, scenario: Scenario | None) -> dict[str, object]:
    from cpaudit.simulators.hj212_logger import Hj212Logger
    return {d.name: Hj212Logger(d, plant, scenario, campaign_tz=cfg.campaign.timezone)
            for d in cfg.devices if isinstance(d, Hj212Device) and d.simulate is not None}


def _hj212_series(d: Hj212Device, lg: object, c0: float, c1: float) -> list[Series]:
    """What the collector stores from a simulated HJ 212 logger's real-time packets over
    [c0, c1): each 2011 Rtd factor at the logger's ticks (DataTime, whole seconds), its data flag
    as quality and reason (collector.hj212.FLAG_QUALITY), values as the logger writes them."""
    from cpaudit.collector.hj212 import FLAG_QUALITY, OTHER_FLAG
    from cpaudit.simulators.hj212_logger import Hj212Logger
    assert isinstance(lg, Hj212Logger) and d.simulate is not None
    iv = d.simulate.rtd_interval_s
    k0, k1 = math.ceil(c0 / iv - 1e-9), math.ceil(c1 / iv - 1e-9)
    t = np.arange(k0, k1, dtype=np.float64) * iv
    if not t.size:
        return []
    ts = np.floor(t).astype(np.int64) * 1_000_000_000
    vals = lg.values(t)
    out: list[Series] = []
    for f in d.factors:
        if f.cn != "2011" or f.field != "Rtd" or f.code not in vals:
            continue
        v, flags = vals[f.code]
        qr = [FLAG_QUALITY.get(x, OTHER_FLAG) for x in flags.tolist()]
        q = np.fromiter((int(a) for a, _ in qr), np.int8, len(qr))
        r = np.fromiter((int(b) for _, b in qr), np.int8, len(qr))
        out.append((f.tag, ts, np.round(np.asarray(v, np.float64), 3), q, r))
    return out


def generate(cfg: Config, store: SQLiteStore, hours: float, *, start: float | None = None,
             scenario: Scenario | None = None, leak: tuple[str, float] | None = None,
             progress: Callable[[float], None] | None = None) -> GenerateStats:
    """Write ``hours`` of campaign from ``start`` [s since epoch; default: ``hours`` before now,
    on a whole minute] into ``store``. The campaign origin (the plant's t0) is ``start``."""
    t_run = time.perf_counter()
    if hours <= 0:
        raise ValueError("hours must be positive")
    if start is None:
        start = math.floor((time.time() - hours * 3600) / 60) * 60
    end = start + hours * 3600
    plant = build_plant(cfg, start, leak, scenario)
    meters = build_meters(cfg, plant, scenario)
    loggers = _hj212_loggers(cfg, plant, scenario)
    apply_cems_faults(meters, scenario, skip=set(loggers))
    comm: dict[str, list[tuple[CommFault, float, float]]] = {}
    mq: dict[str, list[tuple[MqttFault, float, float]]] = {}
    for f in scenario.faults if scenario else []:
        if isinstance(f, CommFault):
            comm.setdefault(f.device, []).append((f, *f.window(start)))
        elif isinstance(f, MqttFault):
            mq.setdefault(f.device, []).append((f, *f.window(start)))
    late_s = cfg.collector.late_tolerance_ms / 1000
    stats = GenerateStats(int(start * 1e9), int(end * 1e9))
    store.set_meta(GENERATED, json.dumps(
        {"start": start, "hours": hours, "seed": cfg.simulation.seed,
         "scenario": scenario.model_dump(mode="json") if scenario else None}))
    if store.campaign_start() is None:               # the record the collector keeps
        store.set_meta(CAMPAIGN_START, str(int(start * 1e9)))
    c0 = start
    while c0 < end:
        c1 = min(end, c0 + CHUNK_S)
        series: list[Series] = []
        for d in cfg.devices:
            if isinstance(d, Hj212Device) and d.name in loggers:
                series += _hj212_series(d, loggers[d.name], c0, c1)
                continue
            m = meters.get(d.name)
            if m is None:
                continue
            interval = d.interval_s or cfg.collector.interval_s
            k0, k1 = math.ceil(c0 / interval - 1e-9), math.ceil(c1 / interval - 1e-9)
            ticks_ns = np.arange(k0, k1, dtype=np.int64) * int(round(interval * 1e9))
            if ticks_ns.size == 0:
                continue
            t = ticks_ns / 1e9
            if isinstance(d, MODBUS_DEVICES):
                series += _modbus_series(d, m, t, ticks_ns, comm.get(d.name, []), late_s)
            elif isinstance(d, MqttDevice):
                series += _mqtt_series(d, m, t, mq.get(d.name, []), interval)
        stats.samples += store.write_series(series)
        stats.tags.update(s[0] for s in series)
        if progress:
            progress((c1 - start) / (end - start))
        c0 = c1
    stats.seconds = time.perf_counter() - t_run
    log.debug("generated %d samples of %d tags over %.1f h in %.1f s", stats.samples,
             len(stats.tags), hours, stats.seconds)
    return stats
