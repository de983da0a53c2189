"""Production cycles and load of a campaign (DB11/T 1156 7.3.3.3 e, f), the part of
:mod:`analyzer.validity` that decides which cycles (or hours) count.

e) batch: at least ``min_cycles`` complete normal production cycles (every step, the streams
   covered, no break on a main stream); continuous: ``min_hours`` without a break.
f) the production load not below the audit period's average: a complete cycle, or in continuous
   mode a span of ``requirements.load.judged_every_h`` (1 h), below it does not count towards
   the duration, and a low span breaks the continuous run.

The checks take the validity report's context (:class:`analyzer.validity._Context`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cpaudit.analyzer.cycles import cycle_starts
from cpaudit.analyzer.totals import unwrap
from cpaudit.analyzer.validity import DAY, HOUR, Check, Status, _Context, _dur, _merge
from cpaudit.config import Config
from cpaudit.config.units import dimension, factor


@dataclass
class Cycle:
    start: int
    end: int
    steps: list[float]
    complete: bool          # every step, streams covered, no break
    why: str = ""
    load: float = float("nan")
    coverage: float = float("nan")
    low: bool = False       # complete, but below the audit period's average load (7.3.3.3 f)

    @property
    def counts(self) -> bool:
        """Counts towards the duration (7.3.3.3 e) and the balances: complete and at load."""
        return self.complete and not self.low


def find_cycles(ctx: _Context) -> tuple[list[Cycle], list[float]]:
    spec = ctx.req.cycles
    if spec is None:
        return [], []
    st = ctx.states.sort_values("ts") if ctx.states is not None else None
    starts = cycle_starts(st, spec)
    starts = starts[(starts >= ctx.start) & (starts <= ctx.end)]
    raw: list[tuple[int, int, list[float]]] = []
    stepped = spec.source == "state" and st is not None
    ts = st["ts"].to_numpy(np.int64) if stepped and st is not None else np.empty(0, np.int64)
    v = st["value"].to_numpy(np.float64) if stepped and st is not None else np.empty(0)
    for a, b in zip(starts[:-1], starts[1:]):
        inside = v[(ts >= a) & (ts < b)]
        raw.append((int(a), int(b), sorted(set(inside.tolist()))))
    steps: list[float] = []
    if stepped and spec.steps:
        steps = sorted(spec.steps)
    elif stepped:   # the steps most cycles go through
        sets = pd.Series([tuple(r[2]) for r in raw])
        steps = list(sets.mode().iloc[0]) if len(sets) else []
    mains = ctx.main_tags()
    tags = [t for t, r in ctx.roles.items() if r in ("main", "stream")]
    out = []
    for a, b, seen in raw:
        why = []
        missing = [s for s in steps if s not in seen]
        if missing:
            why.append("step(s) " + ", ".join(f"{m:g}" for m in missing) + " not reached")
        i, j = ctx.at(a), ctx.at(b)
        cov = min((ctx.series[t].coverage(i, j) for t in tags), default=float("nan"))
        if not cov >= ctx.req.coverage_min:
            why.append(f"coverage {cov:.1%}")
        br = [g for g in ctx.breaks(mains) if g[0] < b and g[1] > a]
        if br:
            why.append(f"a break of {_dur(br[0][1] - br[0][0])} on a main stream")
        out.append(Cycle(a, b, seen, not why, "; ".join(why), coverage=cov))
    return out, steps


def _low_why(c: Cycle, req: Any) -> str:
    ld = req.load
    return (f"below the average load: {c.load:.3g} < {ld.average:g} {ld.unit}" if ld is not None
            else "")


def _first_cycle_eta(ctx: _Context) -> str:
    """No cycle yet: what it will take (the nominal cycle length, when declared)."""
    spec = ctx.req.cycles
    assert spec is not None
    starts = cycle_starts(ctx.states, spec)
    starts = starts[(starts >= ctx.start) & (starts <= ctx.end)]
    what = ("the next marked boundary" if spec.source == "marked" else
            f"{spec.tag} entering state {spec.start_state:g}" if spec.source == "state" else
            f"the {spec.source} {spec.tag} starting a cycle")
    nom = spec.nominal_h * HOUR if spec.nominal_h else None
    if len(starts):
        out = f"no complete cycle yet: the first one started at {ctx.iso(int(starts[0]))}"
        return out + (f" and completes at about {ctx.iso(int(starts[0] + nom))} (nominal "
                      f"{spec.nominal_h:g} h a cycle)" if nom else
                      f" and completes at the next start ({what})")
    out = ("no complete cycle yet, and no cycle start seen: a cycle counts from its start "
           f"({what}) to the next one")
    if nom:
        out += (f"; the first complete cycle ends at the earliest at about "
                f"{ctx.iso(int(ctx.end + nom))}, at the latest about "
                f"{ctx.iso(int(ctx.end + 2 * nom))} (nominal {spec.nominal_h:g} h a cycle)")
    return out


def check_duration(ctx: _Context, cycles: list[Cycle], steps: list[float],
                   low_hours: list[tuple[int, int]] | None = None) -> tuple[Check, dict]:
    """e: batch, ``min_cycles`` complete cycles at load; continuous, ``min_hours`` without a
    break on a main stream and without an hour below the average load (``low_hours``)."""
    low_hours = low_hours or []
    req = ctx.req
    mains = ctx.main_tags()
    breaks = ctx.breaks(mains)
    if req.mode == "batch":
        if req.cycles is None:
            return Check("duration", "e", "fail", 0, req.min_cycles,
                         "batch mode without a cycle definition: requirements.cycles {tag, "
                         "start_state} is needed to count production cycles", group="duration",
                         fix="declare requirements.cycles in the campaign file"), {}
        done = [c for c in cycles if c.counts]
        bad = [c for c in cycles if not c.counts]
        status: Status = "pass" if len(done) >= req.min_cycles else "fail"
        src = req.cycles.source
        if src == "state":
            how = ("steps " + ", ".join(f"{s:g}" for s in steps)) if steps else \
                "steps not known before a first cycle"
        elif src == "marked":
            how = "cycles from the marked boundaries; steps not checked"
        else:
            how = f"cycles from the {src} {req.cycles.tag}; steps not checked"
        at_load = " at load" if req.load is not None else ""
        reason = (f"{len(done)} complete production cycle(s){at_load} of {req.min_cycles} "
                  f"required ({how})")
        eta = _first_cycle_eta(ctx) if not cycles else ""
        if eta:
            reason += "; " + eta
        if bad:
            reason += "; not counted: " + "; ".join(
                f"{ctx.iso(c.start)} ({c.why or _low_why(c, req)})" for c in bad[:5]) + \
                (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        lengths = [c.end - c.start for c in done] or [c.end - c.start for c in cycles]
        typical = float(np.median(lengths)) if lengths else float("nan")
        if not np.isfinite(typical) and req.cycles.nominal_h:
            typical = req.cycles.nominal_h * HOUR
        chk = Check("duration", "e", status, len(done), req.min_cycles, reason,
                    ranges=[(c.start, c.end) for c in done],
                    details={"cycles": [{"start": c.start, "end": c.end, "complete": c.complete,
                                         "why": c.why, "steps": c.steps, "load": c.load,
                                         "at_load": None if not c.complete or req.load is None
                                         else not c.low, "counts": c.counts}
                                        for c in cycles],
                             "typical_cycle_h": typical / HOUR, "first_cycle": eta},
                    fix="" if status == "pass" else
                    f"keep measuring: {req.min_cycles - len(done)} more complete cycle(s)"
                    + at_load, group="duration")
        return chk, {"done": len(done), "typical_ns": typical}
    # continuous: the longest run without a break on a main stream and without an hour below
    # the average load (those do not count, 7.3.3.3 f)
    low = [(int(a), int(b)) for a, b in low_hours]
    breaks_low = _merge(breaks + low)
    edges = [ctx.start] + [x for g in breaks_low for x in g] + [ctx.end]
    runs = [(edges[k], edges[k + 1]) for k in range(0, len(edges), 2) if edges[k + 1] > edges[k]]
    best = max(runs, key=lambda r: r[1] - r[0], default=(ctx.start, ctx.start))
    hours = (best[1] - best[0]) / HOUR
    status = "pass" if hours >= req.min_hours else "fail"
    reason = (f"{hours:.1f} h of continuous measurement, {req.min_hours:g} h required; "
              f"{len(breaks)} break(s) longer than {req.max_break_s:g} s on a main stream")
    if low:
        reason += (f"; {sum(b - a for a, b in low) / HOUR:.0f} hour(s) below the audit period's "
                   "average load do not count and break the run (7.3.3.3 e, f), from "
                   f"{ctx.iso(low[0][0])}")
    chk = Check("duration", "e", status, hours, req.min_hours, reason, ranges=[best],
                details={"breaks": [[a, b] for a, b in breaks],
                         "hours_below_load": [[a, b] for a, b in low]},
                fix="" if status == "pass" else
                f"keep measuring without a break{' and at load' if low else ''}: "
                f"{req.min_hours - hours:.1f} h more",
                group="duration")
    current = runs[-1] if runs and runs[-1][1] == ctx.end else (ctx.end, ctx.end)
    return chk, {"current_run_ns": current[1] - current[0], "best_run": best}


class Load:
    """The production load over any span of grid minutes, in the requirement's unit: from a
    totalizer, the counted amount over the time between the readings that bound the span (the
    last good reading of each minute; rollover and resets as in ``analyzer.totals.unwrap``);
    from a rate, the mean of its good readings."""

    def __init__(self, ctx: _Context) -> None:
        ld = ctx.req.load
        assert ld is not None
        s = ctx.series[ld.tag]
        unit = ctx.index[ld.tag].unit
        dim = dimension(unit)
        self.kind = "total" if dim in ("mass", "volume", "energy") else "rate"
        self.ok = True
        if self.kind == "total":
            rate_dim = {"mass": "mass_rate", "volume": "volume_rate", "energy": "power"}[dim]
            self.ok = rate_dim == dimension(ld.unit)
            known = ~np.isnan(s.vmax)
            self.cum = np.full(len(s.vmax), np.nan)
            if self.ok and known.any():
                c, _, _ = unwrap(s.vmax[known], ctx.index[ld.tag].rollover)
                self.cum[known] = c * factor(unit + "/h", ld.unit)
            self.at = s.last_ts
        else:
            self.ok = dim == dimension(ld.unit)
            self.f = factor(unit, ld.unit) if self.ok else 1.0
            self.vsum, self.good = s.vsum, s.good

    def over(self, i: int, j: int) -> float:
        if self.kind == "rate":
            n = self.good[i:j].sum()
            return float(self.vsum[i:j].sum() / n * self.f) if n else float("nan")
        k = np.flatnonzero(~np.isnan(self.cum[max(i - 1, 0):j])) + max(i - 1, 0)
        if len(k) < 2:
            return float("nan")
        hours = (self.at[k[-1]] - self.at[k[0]]) / HOUR
        return float((self.cum[k[-1]] - self.cum[k[0]]) / hours) if hours > 0 else float("nan")


def check_load(ctx: _Context, cycles: list[Cycle]) -> tuple[Check, Load | None]:
    ld = ctx.req.load
    if ld is None:
        return Check("load", "f", "fail", None, None,
                     "no load requirement: requirements.load {tag, average, unit, source} is "
                     "needed to show the plant ran at no less than the audit period's average "
                     "load (7.3.3.3 f)", group="load",
                     fix="declare the load tag and the audit period's average load"), None
    if ld.tag not in ctx.index:
        return Check("load", "f", "fail", None, ld.average, f"load tag {ld.tag} is not a tag of "
                     "any device", group="load", fix="fix requirements.load.tag"), None
    load = Load(ctx)
    if not load.ok:
        return Check("load", "f", "fail", None, ld.average,
                     f"load tag {ld.tag} in {ctx.index[ld.tag].unit} cannot be compared with an "
                     f"average load in {ld.unit}", group="units",
                     fix="give the average load in a unit of the tag's rate"), None
    m = len(ctx.grid)
    overall = load.over(0, m)
    over = "over the window"
    basis = f"{ld.basis_text()}, {ld.source}"
    periods: list[tuple[int, int, float]] = []
    low: list[tuple[int, int, float]] = []
    hours_low: list[tuple[int, int]] = []
    judged = 0
    if ctx.req.mode == "batch":
        for c in cycles:
            if c.complete:
                c.load = load.over(ctx.at(c.start), ctx.at(c.end))
                c.low = not c.load >= ld.average
                periods.append((c.start, c.end, c.load))
        per = "cycle"
        low = [p for p in periods if not p[2] >= ld.average]
        judged = len(periods)
        at = [p for p in periods if p[2] >= ld.average] or periods
        if at:     # a batch plant's load: over its complete cycles at load, not the partial ones
            span = sum(b - a for a, b, _ in at)
            overall = sum(v * (b - a) for a, b, v in at) / span
            over = f"over {len(at)} complete cycle(s)" + (" at load" if low and
                                                          len(at) < len(periods) else "")
    else:
        for a in range(ctx.start, ctx.end, DAY):
            b = min(a + DAY, ctx.end)
            if b - a >= HOUR:
                periods.append((a, b, load.over(ctx.at(a), ctx.at(b))))
        per = "day"
        step = int(round(ld.judged_every_h * HOUR))
        for a in range(ctx.start, ctx.end - step + 1, step):
            judged += 1
            v = load.over(ctx.at(a), ctx.at(a + step))
            if not v >= ld.average:
                hours_low.append((a, a + step))
        hours_low = _merge(hours_low)
    details = {"tag": ld.tag, "kind": load.kind, "unit": ld.unit, "basis": ld.basis,
               "period_hours": ld.period_hours, "source": ld.source,
               "rule": ("per cycle: a complete cycle below the average does not count" if
                        ctx.req.mode == "batch" else
                        f"per {ld.judged_every_h:g} h from the campaign start: a span below the "
                        "average does not count and breaks the run (requirements.load."
                        "judged_every_h; a convention, 7.3.3.3 f names no period)"),
               f"per_{per}": [{"start": a, "end": b, "load": v, "at_load": v >= ld.average}
                              for a, b, v in periods],
               "hours_below": [[a, b] for a, b in hours_low],
               # the periods that do not count, with their load
               "below": [{"start": a, "end": b, "load": v} for a, b, v in low] +
               [{"start": a, "end": b, "load": load.over(ctx.at(a), ctx.at(b))}
                for a, b in hours_low]}
    fix = ("the periods below the average load do not count (7.3.3.3 f): measure at normal "
           "load to have enough at load")
    if not np.isfinite(overall):
        return Check("load", "f", "fail", None, ld.average,
                     f"no load figure yet: {ld.tag} has too few good readings in the window",
                     group="load", details=details,
                     fix=f"restore {ld.tag} (device {ctx.index[ld.tag].device})"), load
    hours_below = sum(b - a for a, b in hours_low) / HOUR
    if ctx.req.mode == "batch" and not periods:
        status: Status = "warning"
        reason = (f"no complete cycle yet: the load is judged per cycle (so far {overall:.3g} "
                  f"{ld.unit} over the window) against the audit period's average "
                  f"{ld.average:g} {ld.unit} ({basis})")
        fix = ""
    else:
        if (ctx.req.mode == "batch" and len(low) == len(periods)) or \
                (ctx.req.mode == "continuous" and judged and
                 hours_below >= judged * ld.judged_every_h) or \
                (ctx.req.mode == "continuous" and not judged and not overall >= ld.average):
            status = "fail"
        elif low or hours_low:
            status = "warning"
        else:
            status = "pass"
        reason = (f"load {overall:.3g} {ld.unit} {over} against the audit period's average "
                  f"{ld.average:g} {ld.unit} ({basis})")
        if low:
            reason += (f"; {len(low)} {per}(s) below it do not count (7.3.3.3 f): " +
                       ", ".join(f"{ctx.iso(a)} at {v:.3g} {ld.unit}" for a, _, v in low[:5]))
        if hours_low:
            reason += (f"; {hours_below:.0f} hour(s) below it do not count (7.3.3.3 f), from "
                       f"{ctx.iso(hours_low[0][0])}")
    return Check("load", "f", status, overall, ld.average, reason,
                 ranges=[(a, b) for a, b, _ in low] + hours_low, details=details,
                 fix="" if status == "pass" else fix, group="load"), load


def load_node_hint(cfg: Config, report: dict[str, Any],
                   closures: dict[str, tuple[float | None, bool | None]],
                   limit_pct: float) -> str | None:
    """When the load tag is a stream of a node whose balance does not close and the load check is
    not a pass, the hint that the low load and the failing closure point at that node (a leak or
    a meter there), not at the plant's load. ``report`` is a validity report's JSON form,
    ``closures`` the material closure [%] and its verdict per node over the balance window. Pure:
    the report layer, which knows both, calls it."""
    ld = cfg.requirements.load
    if ld is None:
        return None
    chk = next((c for c in report.get("checks", []) if c["id"] == "load"), None)
    if chk is None or chk["status"] == "pass":
        return None
    for s in cfg.flowsheet.streams:
        if ld.tag not in (s.tag, s.rate_tag):
            continue
        for node in (s.from_, s.to):
            closure, ok = closures.get(node, (None, None))
            if ok is False and closure is not None:
                return (f"the load tag {ld.tag} measures {s.id}, a stream of node {node}, whose "
                        f"material balance does not close ({closure:+.2f} %, beyond "
                        f"{limit_pct:g} %): the low load and the failing closure point at "
                        f"{node} (a leak there, or one of its meters), not at the plant's load; "
                        f"find the cause at {node} before measuring at normal load again "
                        "(7.3.4 b)")
    return None
