"""Characteristic pollutant factor balance (DB11/T 1156 7.3.7) from measured concentrations.

A factor (COD, NH3-N, SO2, NOx, particulate …) is measured at points from where it is generated to
where it is emitted: a concentration on a wastewater stream (times the stream's flow) or on a stack
(times the flue gas flow at standard dry state). Per point, hour by hour (HJ 75-2017 practice, as in
shared/reference/balance-math.md 4.6-4.7, marked there as secondary):

- an hour counts when every tag the point needs has at least ``valid_hour_fraction`` of its expected
  readings good (HJ 76-2017 App. B as quoted by a vendor: an hour needs 45 valid minutes); a tag
  reporting less often than once a minute (a cycle analyzer) counts its minutes covered by a
  scheduled result instead, the result holding for its cycle (analyzer.emission_rules);
- CEMS status minutes (calibration, blowback, maintenance, fault: the stack's ``status`` map)
  are no emission: left out of the load and counted invalid;
- invalid hours are listed and substituted by the configured rule (``pollutants.substitution``,
  default HJ 75-2017's, [unverified]); the headline total includes the substituted hours, the
  valid-hours-only sum is given beside it (``load_kg_valid_hours``), and the old extrapolation
  (mean valid-hour load × all hours) too, each labelled;
- water: load [kg/h] = C [mg/L] × Q [m3/h] × 10⁻³, from minute means, summed per hour;
- stack: standard dry flow Q_sn = Q_actual × 273.15/(273.15 + t) × p/101.325 × (1 − X_sw) (an
  ``actual`` flow; a ``standard_wet`` flow only loses its water); each point's concentration has
  its basis (the stack's by default): at actual conditions it is taken to standard as
  C × (273.15 + t)/273.15 × 101.325/p, a wet one dry as C/(1 − X_sw); emission rate G [kg/h] = C_dry [mg/m3] × Q_sn [m3/h] × 10⁻⁶; the converted
  concentration (折算浓度) C × (21 − O2_ref)/(21 − O2) is reported beside, not used for mass (so
  an hour's mass does not need the O2 reading; its converted figure does).

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

from cpaudit.analyzer.emission_rules import CYCLE_RULE, substitution_text
from cpaudit.analyzer.pollutant_hours import Hours, convert, stack_flow, substitute, to_standard_dry
from cpaudit.analyzer.validity import MINUTE
from cpaudit.config import ENV, Config
from cpaudit.config.models import PollutantFactor, PollutantPoint
from cpaudit.config.units import factor

VALIDITY_NOTE = ("an hour counts when each tag it needs has {f:.0%} of its expected readings "
                 "good (pollutants.valid_hour_fraction; HJ 76-2017 App. B as quoted by a CEMS "
                 "vendor, http://www.caria-chile.com/st85257/article_812098.html: an hour needs "
                 "at least 45 valid minutes; HJ 75-2017's own text not retrieved); a cycle "
                 "analyzer's minutes count when its cycle's result came in: {cycle}; CEMS "
                 "status minutes other than normal are left out and count invalid")


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
    load_kg_valid_hours: float = 0.0          # the valid hours only (no substitution)
    substituted_kg: float = 0.0               # what the substitution adds to load_kg
    substitution: dict[str, Any] = field(default_factory=dict)   # rule, source, runs
    interval_s: float | None = None           # the concentration tag's reporting interval
    hour_rule: str = "readings"               # readings | cycle
    concentration_basis: str | None = None    # stack points: e.g. "dry, standard"
    excluded_minutes: dict[str, int] = field(default_factory=dict)   # CEMS state -> minutes

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
    collected_kg_valid_hours: float = 0.0
    emitted_kg_valid_hours: float | None = None
    substitution_rule: str = ""

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
    substitution: dict[str, Any] = field(default_factory=dict)    # rule and its source

    def to_dict(self) -> dict[str, Any]:
        return {"layer": "pollutant", "unit": "kg", "start_ns": self.start_ns,
                "end_ns": self.end_ns, "verdict": self.verdict, "message": self.message,
                "validity_rule": self.validity_rule, "substitution": self.substitution,
                "headline": "emitted_kg and load_kg include the substituted invalid hours "
                            "(substitution); *_valid_hours are the valid hours alone",
                "factors": [f.to_dict() for f in self.factors]}


def _num(x: Any) -> Any:
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def _point(cfg: Config, h: Hours, pt: PollutantPoint) -> tuple[PointResult, np.ndarray,
                                                                 np.ndarray]:
    """A point's result and its hourly load [kg] (measured, valid hours) and validity. Loads are
    summed from minute means (concentration × flow), closer than the product of hourly means
    when both move together (a CIP batch: about 1 % on the demo site); validity is per hour."""
    cu = h.index[pt.tag].unit
    conv_mean = conv_max = o2_ref = None
    basis_words = None
    excluded: dict[str, int] = {}
    if pt.stream is not None:
        c, okc = h.tag(pt.tag)
        c_kg_m3 = c * factor(cu, "kg/m3")
        s = next(x for x in cfg.flowsheet.streams if x.id == pt.stream)
        assert s.rate_tag is not None
        q, okq = h.tag(s.rate_tag)
        q = convert(q, h.index[s.rate_tag].unit, "m3/h")
        used = [pt.tag, s.rate_tag]
        ok = okc & okq
        kind, name, to_env = "water", s.name or s.id, s.to == ENV
        where = s.id
    else:
        st = next(x for x in cfg.pollutants.stacks if x.id == pt.stack)
        c, okc = h.tag(pt.tag, st)
        q, x, okq, used = stack_flow(h, st)
        c_kg_m3, okb, more, basis_words = to_standard_dry(h, st, pt, c * factor(cu, "kg/m3"),
                                                           x)
        words = [w for w in st.status if not w.applies_to or pt.tag in w.applies_to]
        used = [pt.tag] + used + [t for t in more if t not in used] + [w.tag for w in words]
        ok = okc & okq & okb
        for w in words:
            ok = ok & h.tag(w.tag)[1]
        states = h.states(st, pt.tag)
        for state in sorted(set(states[states != ""])):
            excluded[str(state)] = int((states == state).sum())
        kind, name, to_env, where = "stack", st.name or st.id, True, st.id
        if st.o2_reference_pct is not None and st.o2_tag is not None:
            o2, oko = h.tag(st.o2_tag, st)
            o2 = convert(o2, h.index[st.o2_tag].unit, "percent")
            # O2 is for the converted concentration only, not for the mass (C x Q_sn)
            okv = ok & oko
            o2_ref = st.o2_reference_pct
            with np.errstate(invalid="ignore", divide="ignore"):
                conv = np.where(o2 < 21.0, c_kg_m3 / factor(cu, "kg/m3") * (21.0 - o2_ref)
                                / (21.0 - o2), np.nan)
            # hourly converted concentration: the mean of the hour's minutes
            ch = h.hourly(conv, okv) / np.where(h.span_h > 0, h.span_h, 1.0)
            qh = h.hourly(q, okv)
            sel = h.hour_valid(okv) & np.isfinite(ch) & np.isfinite(qh)
            if sel.any():
                w_ = qh[sel]
                conv_mean = float((ch[sel] * w_).sum() / w_.sum()) if w_.sum() > 0 else \
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
    filled, runs = substitute(h, cfg, load_h, flow_h, ok_h, q, okq)
    rule = cfg.pollutants.substitution
    invalid = []
    cems = h.states(st, pt.tag) if pt.stack is not None else None
    for i in np.flatnonzero(~ok_h):
        minutes = h.hour_of == i
        lacking = [t for t in dict.fromkeys(used) if not h.tag(t)[1][minutes].all()]
        why = []
        if cems is not None:
            cnt = {str(k): int((cems[minutes] == k).sum())
                   for k in sorted(set(cems[minutes][cems[minutes] != ""]))}
            if cnt:
                why.append("CEMS " + ", ".join(f"{k} {v} min" for k, v in cnt.items())
                           + " (not emission minutes)")
        if lacking:
            why.append("too few good readings from " + ", ".join(lacking))
        if not why:
            why.append("no minute with every reading")
        invalid.append({"start_ns": int(h.lo[i]), "end_ns": int(h.hi[i]), "why": "; ".join(why),
                        "substituted_kg": float(filled[i]) if rule.rule != "none" and
                        np.isfinite(filled[i]) else None})
    fl = float(flow.sum())
    mean_c = total / fl / factor(cu, "kg/m3") if fl > 0 else float("nan")
    extrap = total / valid_h * hours if valid_h > 0 else float("nan")
    headline = float(filled.sum())          # 0 without a valid hour: nothing to fill from
    iv = h.interval_of(pt.tag)
    sub = {"rule": rule.rule, "source": substitution_text(rule), "hours": float(
        sum(r["hours"] for r in runs)), "kg": float(sum(r["kg"] for r in runs)), "runs": runs}
    res = PointResult(where, kind, pt.tag, name, headline, extrap, hours, valid_h, invalid,
                      mean_c, cu, fl, conv_mean, conv_max, o2_ref, to_env, total,
                      headline - total if valid_h > 0 else 0.0, sub, iv / 1e9,
                      "cycle" if iv > MINUTE else "readings", basis_words, excluded)
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


def factor_balance(cfg: Config, h: Hours, f: PollutantFactor) -> FactorBalance:
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
    rule = cfg.pollutants.substitution
    for r in results:
        if r.invalid:
            notes.append(f"{r.where}: {len(r.invalid)} invalid hour(s) of {r.hours:.0f}, "
                         + (f"substituted ({rule.rule}: {r.substituted_kg:.4g} kg); "
                            f"valid hours alone {r.load_kg_valid_hours:.4g} kg"
                            if rule.rule != "none" else
                            "not substituted (substitution: none): the total under-states"))
        for state, m in r.excluded_minutes.items():
            notes.append(f"{r.where}: {m} min of CEMS {state} left out (no emission minutes)")
    return FactorBalance(f.id, f.name, f.name_zh, results, sections, collected, eta,
                         f.collection.source if f.collection else None, generated, fugitive,
                         share, lr.load_kg if lr.to_env else float("nan"),
                         lr.load_kg_extrapolated if lr.to_env else float("nan"), dest, removal,
                         notes, first[0].load_kg_valid_hours,
                         lr.load_kg_valid_hours if lr.to_env else None,
                         f"{rule.rule}: {substitution_text(rule)}")


def pollutant_tags(cfg: Config) -> list[str]:
    """Every tag the pollutant balance reads."""
    out: list[str] = []
    streams = {s.id: s for s in cfg.flowsheet.streams}
    for st in cfg.pollutants.stacks:
        out += [t for t in (st.flow_tag, st.temperature_tag, st.pressure_tag, st.moisture_tag,
                            st.o2_tag) if t]
        out += [w.tag for w in st.status]
    for f in cfg.pollutants.factors:
        for p in f.points:
            out.append(p.tag)
            if p.stream and streams[p.stream].rate_tag:
                out.append(str(streams[p.stream].rate_tag))
    return list(dict.fromkeys(out))


def pollutant_balance(cfg: Config, rollup: pd.DataFrame, start: int | None = None,
                      end: int | None = None, flags: pd.DataFrame | None = None
                      ) -> PollutantResult:
    """The pollutant factor balance over [start, end) from the store's per-minute rollup of
    :func:`pollutant_tags` (the window defaults to the span of that data). ``flags``: the
    samples of those tags an online monitor's data logger flagged (``ts``, ``tag``, ``reason``,
    :func:`flagged_samples`); their minutes are no emission minutes, named by the flag."""
    rule = VALIDITY_NOTE.format(f=cfg.pollutants.valid_hour_fraction,
                                cycle=CYCLE_RULE[cfg.pollutants.cycle_value_holds])
    sub = {"rule": cfg.pollutants.substitution.rule,
           "source": substitution_text(cfg.pollutants.substitution)}
    if not cfg.pollutants.factors:
        return PollutantResult(None, None, [], "no-data", "no pollutant factors configured "
                               "(pollutants.factors)", rule, sub)
    good = rollup[rollup["good"] > 0] if len(rollup) else rollup
    if start is None:
        start = int(good["first_ts"].min()) if len(good) else None
    if end is None:
        end = int(good["last_ts"].max()) + 1 if len(good) else None
    if start is None or end is None or end <= start:
        return PollutantResult(None, None, [], "no-data", "no pollutant readings in the window",
                               rule, sub)
    h = Hours(cfg, rollup, start, end, flags)
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
    if partial and cfg.pollutants.substitution.rule != "none":
        msg += f"; invalid hours substituted ({cfg.pollutants.substitution.rule})"
    return PollutantResult(start, end, factors, verdict, msg, rule, sub)


