"""Characteristic pollutant factor balance (DB11/T 1156 7.3.7) from measured concentrations.

A factor (COD, NH3-N, SO2, NOx, particulate …) is measured at points from where it is generated to
where it is emitted: a concentration on a wastewater stream (times the stream's flow) or on a stack
(times the flue gas flow at standard dry state). Per point, hour by hour (HJ 75-2017 practice, as in
shared/reference/balance-math.md 4.6-4.7, marked there as secondary):

- an hour counts when every tag the point needs has at least ``valid_hour_fraction`` of its expected
  readings good; the others are listed, never filled; totals are over valid hours, and an
  extrapolation to the whole window (mean valid-hour load × all hours) is given beside, labelled;
- water: load [kg/h] = C [mg/L] × Q [m3/h] × 10⁻³, from minute means, summed per hour;
- stack: standard dry flow Q_sn = Q_actual × 273.15/(273.15 + t) × p/101.325 × (1 − X_sw) (an
  ``actual`` flow; a ``standard_wet`` flow only loses its water); a wet concentration is taken dry
  as C/(1 − X_sw); emission rate G [kg/h] = C_dry [mg/m3] × Q_sn [m3/h] × 10⁻⁶; the converted
  concentration (折算浓度) C × (21 − O2_ref)/(21 − O2) is reported beside, not used for mass.

Per factor: what reaches the first point is *collected*; with a declared collection efficiency η,
generation = collected / η and the fugitive part (无组织) = generation − collected; between two
consecutive points, the removal efficiency of the units between them is 1 − L_out / L_in over the
hours valid at both; the last point, a stack or a stream leaving the site, is the emission and its
destination.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyzer.validity import MINUTE, _interval_ns, _series
from config import ENV, Config
from config.models import PollutantFactor, PollutantPoint, Stack
from config.units import factor, registry

HOUR = 60 * MINUTE
T0_K = 273.15
P0_KPA = 101.325
VALIDITY_NOTE = ("an hour counts when each tag it needs has {f:.0%} of its expected readings "
                 "good; HJ 75-2017's own minute-to-hour rule was not retrieved, so this share "
                 "is a configurable default (pollutants.valid_hour_fraction)")


@dataclass
class PointResult:
    where: str                     # stream id or stack id
    kind: str                      # water | stack
    tag: str
    name: str
    load_kg: float                 # over the valid hours
    load_kg_extrapolated: float    # mean valid-hour load × all hours (an estimate, labelled)
    hours: float                   # hours in the window
    valid_hours: float
    invalid: list[dict[str, Any]]  # {"start_ns", "end_ns", "why"} per invalid hour
    mean_concentration: float      # flow-weighted over valid hours, in the tag's unit
    unit: str
    flow_m3: float                 # water m3, or stack standard dry m3, over the valid hours
    converted_mean: float | None = None      # stack: at the reference O2
    converted_max_hour: float | None = None  # stack: highest valid hourly converted value
    o2_reference_pct: float | None = None
    to_env: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: _num(v) for k, v in asdict(self).items()}


@dataclass
class Section:
    """Between two consecutive points: the treatment units there and their removal."""
    upstream: str
    downstream: str
    units: list[str]               # node ids between the points
    load_in_kg: float              # over the hours valid at both points
    load_out_kg: float
    removal_pct: float | None
    common_hours: float

    def to_dict(self) -> dict[str, Any]:
        return {k: _num(v) for k, v in asdict(self).items()}


@dataclass
class FactorBalance:
    factor: str
    name: str
    name_zh: str
    points: list[PointResult]
    sections: list[Section]
    collected_kg: float
    collection_efficiency: float | None
    collection_source: str | None
    generated_kg: float | None
    fugitive_kg: float | None
    fugitive_share_pct: float | None
    emitted_kg: float
    emitted_kg_extrapolated: float
    destination: str
    removal_overall_pct: float | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = {k: _num(v) for k, v in asdict(self).items() if k not in ("points", "sections")}
        d["points"] = [p.to_dict() for p in self.points]
        d["sections"] = [s.to_dict() for s in self.sections]
        return d


@dataclass
class PollutantResult:
    start_ns: int | None
    end_ns: int | None
    factors: list[FactorBalance]
    verdict: str                   # ok | incomplete | no-data
    message: str
    validity_rule: str

    def to_dict(self) -> dict[str, Any]:
        return {"layer": "pollutant", "unit": "kg", "start_ns": self.start_ns,
                "end_ns": self.end_ns, "verdict": self.verdict, "message": self.message,
                "validity_rule": self.validity_rule,
                "factors": [f.to_dict() for f in self.factors]}


def _num(x: Any) -> Any:
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def _convert(values: np.ndarray, unit: str, to: str) -> np.ndarray:
    """Arrays through pint (offset units such as degC included)."""
    q = registry().Quantity(values, unit)
    return np.asarray(q.to(to).magnitude, dtype=np.float64)


class _Hours:
    """The window's hour grid and each tag's hourly mean and validity on it."""

    def __init__(self, cfg: Config, rollup: pd.DataFrame, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.frac = cfg.pollutants.valid_hour_fraction
        self.grid = np.arange(start // MINUTE * MINUTE, end, MINUTE, dtype=np.int64)
        # hour of each minute, counted from the hour holding ``start``
        self.h0 = start // HOUR * HOUR
        self.hour_of = ((self.grid - self.h0) // HOUR).astype(np.int64)
        self.n = int(self.hour_of[-1]) + 1 if len(self.grid) else 0
        lo = np.maximum(self.h0 + np.arange(self.n) * HOUR, start)
        hi = np.minimum(self.h0 + (np.arange(self.n) + 1) * HOUR, end)
        self.lo, self.hi = lo, hi
        self.span_h = (hi - lo) / HOUR                      # hours of each hour inside the window
        self.by_tag = dict(tuple(rollup.groupby("tag", sort=False))) if len(rollup) else {}
        self.interval = _interval_ns(cfg)
        self.base = int(cfg.collector.interval_s * 1e9)
        self.index = cfg.tag_index()
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def tag(self, tag: str) -> tuple[np.ndarray, np.ndarray]:
        """(minute means in the tag's unit — NaN without a good reading, validity of the hour
        each minute belongs to)."""
        if tag not in self._cache:
            rows = self.by_tag.get(tag)
            if rows is None:
                rows = pd.DataFrame({c: [] for c in ("bucket", "good", "vsum", "vmax", "last_ts",
                                                     "first_ts", "manual")})
            s = _series(tag, rows, self.grid, self.start, self.end,
                        self.interval.get(tag, self.base))
            good = np.bincount(self.hour_of, s.good, self.n)
            expected = np.bincount(self.hour_of, s.expected, self.n)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(s.good > 0, s.vsum / np.maximum(s.good, 1), np.nan)
            valid = (expected > 0) & (good >= self.frac * expected)
            self._cache[tag] = (mean, valid[self.hour_of])
        return self._cache[tag]

    def hourly(self, per_minute: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """Hourly amounts from a per-minute rate [x/h]: the mean over the minutes of the hour
        that have a value, times the hour's span in the window (NaN for an hour without one)."""
        have = ok & np.isfinite(per_minute)
        s = np.bincount(self.hour_of, np.where(have, per_minute, 0.0), self.n)
        n = np.bincount(self.hour_of, have.astype(np.float64), self.n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, s / np.maximum(n, 1) * self.span_h, np.nan)

    def hour_valid(self, minute_ok: np.ndarray) -> np.ndarray:
        """An hour is valid when all its minutes' hour flags are (they are the same flag)."""
        bad = np.bincount(self.hour_of, (~minute_ok).astype(np.float64), self.n)
        return bad == 0


def _stack_flow(h: _Hours, st: Stack) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(standard dry flow [m3/h], water share X_sw, hour valid, tags used) per minute."""
    q, ok = h.tag(st.flow_tag)
    q = _convert(q, h.index[st.flow_tag].unit, "m3/h")
    used = [st.flow_tag]
    x = np.zeros(len(h.grid))
    if st.moisture_tag is not None:
        m, okm = h.tag(st.moisture_tag)
        x = _convert(m, h.index[st.moisture_tag].unit, "dimensionless")
        ok = ok & okm
        used.append(st.moisture_tag)
    if st.flow_basis == "actual":
        assert st.temperature_tag is not None and st.pressure_tag is not None
        t, okt = h.tag(st.temperature_tag)
        p, okp = h.tag(st.pressure_tag)
        t_k = _convert(t, h.index[st.temperature_tag].unit, "kelvin")
        p_kpa = _convert(p, h.index[st.pressure_tag].unit, "kPa")
        q = q * T0_K / t_k * p_kpa / P0_KPA
        ok = ok & okt & okp
        used += [st.temperature_tag, st.pressure_tag]
    if st.flow_basis != "standard_dry":
        q = q * (1.0 - x)
    return q, x, ok, used


def _point(cfg: Config, h: _Hours, pt: PollutantPoint) -> tuple[PointResult, np.ndarray,
                                                                 np.ndarray]:
    """A point's result and its hourly load [kg] and validity. Loads are summed from minute means
    (concentration × flow), closer than the product of hourly means when both move together (a
    CIP batch: about 1 % on the demo site); validity is per hour."""
    cu = h.index[pt.tag].unit
    c, okc = h.tag(pt.tag)
    c_kg_m3 = c * factor(cu, "kg/m3")
    conv_mean = conv_max = o2_ref = None
    if pt.stream is not None:
        s = next(x for x in cfg.flowsheet.streams if x.id == pt.stream)
        assert s.rate_tag is not None
        q, okq = h.tag(s.rate_tag)
        q = _convert(q, h.index[s.rate_tag].unit, "m3/h")
        used = [pt.tag, s.rate_tag]
        ok = okc & okq
        kind, name, to_env = "water", s.name or s.id, s.to == ENV
        where = s.id
    else:
        st = next(x for x in cfg.pollutants.stacks if x.id == pt.stack)
        q, x, okq, used = _stack_flow(h, st)
        used = [pt.tag] + used
        if st.concentration_basis == "wet":
            c_kg_m3 = c_kg_m3 / (1.0 - x)
        ok = okc & okq
        kind, name, to_env, where = "stack", st.name or st.id, True, st.id
        if st.o2_reference_pct is not None and st.o2_tag is not None:
            o2, oko = h.tag(st.o2_tag)
            o2 = _convert(o2, h.index[st.o2_tag].unit, "percent")
            ok = ok & oko
            used.append(st.o2_tag)
            o2_ref = st.o2_reference_pct
            with np.errstate(invalid="ignore", divide="ignore"):
                conv = np.where(o2 < 21.0, c_kg_m3 / factor(cu, "kg/m3") * (21.0 - o2_ref)
                                / (21.0 - o2), np.nan)
            # hourly converted concentration: the mean of the hour's minutes
            ch = h.hourly(conv, ok) / np.where(h.span_h > 0, h.span_h, 1.0)
            qh = h.hourly(q, ok)
            sel = h.hour_valid(ok) & np.isfinite(ch) & np.isfinite(qh)
            if sel.any():
                w = qh[sel]
                conv_mean = float((ch[sel] * w).sum() / w.sum()) if w.sum() > 0 else \
                    float(ch[sel].mean())
                conv_max = float(ch[sel].max())
    load_h = h.hourly(c_kg_m3 * q, ok)                    # kg in each hour
    flow_h = h.hourly(q, ok)
    ok_h = h.hour_valid(ok) & np.isfinite(load_h) & np.isfinite(flow_h)
    load = np.where(ok_h, load_h, 0.0)
    flow = np.where(ok_h, flow_h, 0.0)
    valid_h = float(h.span_h[ok_h].sum())
    hours = float(h.span_h.sum())
    total = float(load.sum())
    invalid = []
    for i in np.flatnonzero(~ok_h):
        minutes = h.hour_of == i
        lacking = [t for t in used if not h.tag(t)[1][minutes].all()]
        why = ("too few good readings from " + ", ".join(lacking)) if lacking else \
            "no minute with every reading (or O2 at or above 21 %)"
        invalid.append({"start_ns": int(h.lo[i]), "end_ns": int(h.hi[i]), "why": why})
    fl = float(flow.sum())
    mean_c = total / fl / factor(cu, "kg/m3") if fl > 0 else float("nan")
    extrap = total / valid_h * hours if valid_h > 0 else float("nan")
    res = PointResult(where, kind, pt.tag, name, total, extrap, hours, valid_h, invalid, mean_c, cu,
                      fl, conv_mean, conv_max, o2_ref, to_env)
    return res, load, ok_h


def _between(cfg: Config, a: PollutantPoint, b: PollutantPoint) -> list[str]:
    """The nodes between two points: downstream of a's stream and upstream of b (its stream's
    source, or the stack's node), found along the flowsheet."""
    streams = cfg.flowsheet.streams
    start = next(s.to for s in streams if s.id == a.stream) if a.stream else None
    if b.stream is not None:
        goal = next(s.from_ for s in streams if s.id == b.stream)
    else:
        goal = next(st.node for st in cfg.pollutants.stacks if st.id == b.stack)
    if start is None or start == ENV:
        return [goal] if goal != ENV else []
    # breadth-first from start to goal over the streams
    prev: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        n = queue.pop(0)
        if n == goal:
            break
        for s in streams:
            if s.from_ == n and s.to != ENV and s.to not in prev:
                prev[s.to] = n
                queue.append(s.to)
    if goal not in prev:
        return [goal]
    path: list[str] = []
    at: str | None = goal
    while at is not None:
        path.append(at)
        at = prev[at]
    return path[::-1]


def factor_balance(cfg: Config, h: _Hours, f: PollutantFactor) -> FactorBalance:
    pts = [_point(cfg, h, p) for p in f.points]
    results = [r for r, _, _ in pts]
    sections = []
    for (ra, la, oka), (rb, lb, okb), pa, pb in zip(pts, pts[1:], f.points, f.points[1:]):
        both = oka & okb
        lin, lout = float(la[both].sum()), float(lb[both].sum())
        sections.append(Section(ra.where, rb.where, _between(cfg, pa, pb), lin, lout,
                                100.0 * (1.0 - lout / lin) if lin > 0 else None,
                                float(h.span_h[both].sum())))
    first, last = pts[0], pts[-1]
    collected = first[0].load_kg
    eta = f.collection.value if f.collection else None
    notes: list[str] = []
    generated = fugitive = share = None
    if eta is not None and eta > 0:
        generated = collected / eta
        fugitive = generated - collected
        share = 100.0 * (1.0 - eta)
    elif eta is None:
        notes.append("no collection efficiency declared: generation and the fugitive share are "
                     "not known (pollutants.factors[].collection)")
    both = first[2] & last[2]
    removal = None
    if len(pts) > 1:
        lin, lout = float(first[1][both].sum()), float(last[1][both].sum())
        removal = 100.0 * (1.0 - lout / lin) if lin > 0 else None
    lr = last[0]
    if lr.kind == "stack":
        dest = f"air, through {lr.name}"
    elif lr.to_env:
        dest = f"water, with {lr.name}"
    else:
        dest = f"not emitted at the last point ({lr.name} stays inside the site)"
        notes.append("the last point does not leave the site: the emission is not measured")
    for r in results:
        if r.invalid:
            notes.append(f"{r.where}: {len(r.invalid)} invalid hour(s) of {r.hours:.0f}; totals "
                         "over valid hours, the extrapolation beside them is an estimate")
    return FactorBalance(f.id, f.name, f.name_zh, results, sections, collected, eta,
                         f.collection.source if f.collection else None, generated, fugitive,
                         share, lr.load_kg if lr.to_env else float("nan"),
                         lr.load_kg_extrapolated if lr.to_env else float("nan"), dest, removal,
                         notes)


def pollutant_tags(cfg: Config) -> list[str]:
    """Every tag the pollutant balance reads."""
    out: list[str] = []
    streams = {s.id: s for s in cfg.flowsheet.streams}
    for st in cfg.pollutants.stacks:
        out += [t for t in (st.flow_tag, st.temperature_tag, st.pressure_tag, st.moisture_tag,
                            st.o2_tag) if t]
    for f in cfg.pollutants.factors:
        for p in f.points:
            out.append(p.tag)
            if p.stream and streams[p.stream].rate_tag:
                out.append(str(streams[p.stream].rate_tag))
    return list(dict.fromkeys(out))


def pollutant_balance(cfg: Config, rollup: pd.DataFrame, start: int | None = None,
                      end: int | None = None) -> PollutantResult:
    """The pollutant factor balance over [start, end) from the store's per-minute rollup of
    :func:`pollutant_tags` (the window defaults to the span of that data)."""
    rule = VALIDITY_NOTE.format(f=cfg.pollutants.valid_hour_fraction)
    if not cfg.pollutants.factors:
        return PollutantResult(None, None, [], "no-data", "no pollutant factors configured "
                               "(pollutants.factors)", rule)
    good = rollup[rollup["good"] > 0] if len(rollup) else rollup
    if start is None:
        start = int(good["first_ts"].min()) if len(good) else None
    if end is None:
        end = int(good["last_ts"].max()) + 1 if len(good) else None
    if start is None or end is None or end <= start:
        return PollutantResult(None, None, [], "no-data", "no pollutant readings in the window",
                               rule)
    h = _Hours(cfg, rollup, start, end)
    factors = [factor_balance(cfg, h, f) for f in cfg.pollutants.factors]
    empty = [f.factor for f in factors if all(p.valid_hours == 0 for p in f.points)]
    partial = [f.factor for f in factors if any(p.invalid for p in f.points)]
    if len(empty) == len(factors):
        verdict, msg = "no-data", "no valid hour at any point: " + ", ".join(empty)
    elif empty or partial:
        verdict = "incomplete"
        msg = "; ".join(x for x in (
            f"no valid hour for {', '.join(empty)}" if empty else "",
            f"invalid hours at some points of {', '.join(partial)} (listed per point)"
            if partial else "") if x)
    else:
        verdict = "ok"
        msg = f"every point valid over all {h.span_h.sum():.1f} h"
    return PollutantResult(start, end, factors, verdict, msg, rule)


def pollutant_from_store(cfg: Config, store: Any, start: int | None = None,
                         end: int | None = None) -> PollutantResult:
    tags = pollutant_tags(cfg)
    r = store.rollup(tags, start, end) if tags else pd.DataFrame()
    return pollutant_balance(cfg, r, start, end)
