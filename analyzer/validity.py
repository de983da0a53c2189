"""Is this measurement campaign valid? The checks of DB11/T 1156 7.3.3.3, each explained.

Every check is a named result (:class:`Check`): ``pass``, ``fail`` or ``warning``, the figure
(``value``) against its ``limit``, the reason in a sentence and the time ranges involved. The
campaign is valid when no check fails; warnings are remarks an auditor should read, not blockers.

The checks work on the store's per-minute rollup (``store.SQLiteStore.rollup``: good samples,
first/last good time, sum/min/max of the good values per tag and minute) and, in batch mode, on the
transitions of the cycle state tag — never on the raw rows, so 80 h of a whole site at 1 s is
judged in seconds. Time resolution: coverage counts every tick exactly; gaps are exact where they
span a minute boundary, and holes inside a minute (under 60 s) are counted as missing ticks.

Clauses (STANDARD.md, "The campaign must be valid"; e and f in :mod:`analyzer.production`):
  a, b  ``streams``       every stream measured by a tag or theoretical with a source; a main
                          inlet/outlet must be measured
  c     ``calibration:<device>``  the certificate valid over the whole window
  e     ``coverage:<tag>``  good ticks / expected ticks, longest gap, gaps
  e     ``synchrony``     the span every stream's tags cover together; skew between devices
  e     ``duration``      continuous: min_hours at load without a break on a main stream;
                          batch: min_cycles complete cycles at load (every step, streams covered)
  f     ``load``          production load not below the audit period's average: per cycle
                          (batch) or per hour (continuous); those below do not count (e)
  g     ``conditions``, ``units``, ``manual``

``balance_window`` (:mod:`analyzer.window`): the window the balances are taken over, with the
cycles (hours) used, those left out and why.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from cpaudit.analyzer.cycles import cycle_starts
from cpaudit.config import Config
from cpaudit.config.models import TAG_DEVICES, TagKind, stream_unit_problem
from cpaudit.store.keys import MINUTE, health_tag

if TYPE_CHECKING:
    from cpaudit.analyzer.production import Cycle, Load

Status = Literal["pass", "fail", "warning"]
HOUR = 3_600_000_000_000
DAY = 24 * HOUR
SKEW_TAG = health_tag("collector", "skew_ms")

# the order in which failed checks are to be fixed: what invalidates the most comes first
_PRIORITY = ["streams", "calibration", "coverage-main", "duration", "synchrony", "load", "units",
             "conditions", "coverage", "manual"]


@dataclass
class Check:
    id: str
    clause: str                     # the clause of DB11/T 1156 7.3.3.3
    status: Status
    value: Any
    limit: Any
    reason: str
    ranges: list[tuple[int, int]] = field(default_factory=list)   # [start, end) ns
    details: dict[str, Any] = field(default_factory=dict)
    fix: str = ""                   # what the field team should do, when it is not a pass
    group: str = ""                 # for the fix order (see _PRIORITY)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "clause": self.clause, "status": self.status,
                "value": _json(self.value), "limit": _json(self.limit), "reason": self.reason,
                "ranges": [[int(a), int(b)] for a, b in self.ranges],
                "details": _json(self.details), "fix": self.fix}


@dataclass
class ValidityReport:
    start_ns: int | None
    end_ns: int | None
    mode: str
    checks: list[Check]
    verdict: str                     # valid | invalid | no-data
    message: str
    fixes: list[dict[str, str]]
    progress: dict[str, Any]
    best_window: dict[str, Any] | None
    hints: list[str]
    # the window the balances are taken over, the cycles (hours) used and left out and why
    # (analyzer.window.accepted_window); None when there is nothing to judge
    balance_window: dict[str, Any] | None = None

    def check(self, cid: str) -> Check:
        for c in self.checks:
            if c.id == cid:
                return c
        raise KeyError(cid)

    def to_dict(self) -> dict[str, Any]:
        return {"start_ns": self.start_ns, "end_ns": self.end_ns, "mode": self.mode,
                "hours": None if self.start_ns is None or self.end_ns is None
                else (self.end_ns - self.start_ns) / HOUR,
                "verdict": self.verdict, "message": self.message,
                "checks": [c.to_dict() for c in self.checks], "fixes": self.fixes,
                "progress": _json(self.progress), "best_window": _json(self.best_window),
                "hints": self.hints, "balance_window": _json(self.balance_window)}


def _json(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not np.isfinite(x) else float(x)
    return x


def _iso(ns: int, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, tz).isoformat(timespec="minutes")


def _dur(ns: float) -> str:
    s = ns / 1e9
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


# -- what the campaign reads ------------------------------------------------------------------
def campaign_tags(cfg: Config) -> dict[str, str]:
    """Every tag a validity report looks at -> its role (stream, main, rate, load, cycle,
    condition)."""
    out: dict[str, str] = {}
    for s in cfg.flowsheet.streams:
        for t in (s.tag, s.rate_tag):
            if t is not None and out.get(t) != "main":
                out[t] = "main" if s.main else "stream"
        for t in s.conditions:
            out.setdefault(t, "condition")
    if cfg.requirements.load is not None:
        out.setdefault(cfg.requirements.load.tag, "load")
    cyc = cfg.requirements.cycles
    if cyc is not None and cyc.tag is not None:
        out.setdefault(cyc.tag, "cycle")
    return out


def _interval_ns(cfg: Config) -> dict[str, int]:
    """Each tag's expected interval [ns]: its device's, else the collector's."""
    base = cfg.collector.interval_s
    out = {}
    for d in cfg.devices:
        iv = int(round((d.interval_s or base) * 1e9))
        tags = [t.tag for t in d.tags] if isinstance(d, TAG_DEVICES) else \
            [r.tag for r in d.registers] + [c.tag for c in d.computed]
        for t in tags:
            out[t] = iv
    return out


@dataclass
class _Series:
    """One tag's minutes inside the window, on the window's minute grid."""
    tag: str
    interval: int
    good: np.ndarray          # good samples per minute of the grid
    expected: np.ndarray      # expected ticks per minute of the grid
    gaps: list[tuple[int, int]]   # [start, end) ns without a good sample, longer than 1.5 ticks
    first: int | None         # first good ts in the window
    last: int | None
    manual: int
    vsum: np.ndarray
    vmax: np.ndarray          # NaN where no good sample
    last_ts: np.ndarray       # NaN where no good sample

    def coverage(self, i: int = 0, j: int | None = None) -> float:
        e = self.expected[i:j].sum()
        return float(min(self.good[i:j].sum() / e, 1.0)) if e > 0 else float("nan")


def _series(tag: str, r: pd.DataFrame, grid: np.ndarray, start: int, end: int,
            interval: int) -> _Series:
    m = len(grid)
    good = np.zeros(m, np.int64)
    vsum = np.zeros(m)
    vmax = np.full(m, np.nan)
    last_ts = np.full(m, np.nan)
    # ticks expected in each minute of [start, end): the multiples of the interval in it (the
    # collector ticks on them, generate too)
    lo = np.maximum(grid, start)
    hi = np.maximum(np.minimum(grid + MINUTE, end), lo)
    expected = (-(-hi // interval) - -(-lo // interval)).astype(np.float64)
    if len(r):
        idx = ((r["bucket"].to_numpy() - grid[0]) // MINUTE).astype(np.int64)
        ok = (idx >= 0) & (idx < m)
        idx = idx[ok]
        good[idx] = r["good"].to_numpy()[ok]
        vsum[idx] = r["vsum"].to_numpy()[ok]
        vmax[idx] = r["vmax"].to_numpy()[ok]
        last_ts[idx] = r["last_ts"].to_numpy()[ok]
        g = r[ok & (r["good"].to_numpy() > 0)]
        firsts = g["first_ts"].to_numpy(np.float64)
        lasts = g["last_ts"].to_numpy(np.float64)
        manual = int(r["manual"].to_numpy()[ok].sum())
    else:
        firsts = lasts = np.empty(0)
        manual = 0
    # gaps: between the last good sample of a minute and the first of the next minute with one,
    # and at the window's edges
    first_tick = -(-start // interval) * interval
    after_last_tick = -(-end // interval) * interval
    edges_a = np.concatenate([[first_tick - interval], lasts])
    edges_b = np.concatenate([firsts, [after_last_tick]])
    d = edges_b - edges_a
    gaps = [(int(a + interval), int(b)) for a, b in
            zip(edges_a[d > 1.5 * interval], edges_b[d > 1.5 * interval]) if b > a + interval]
    return _Series(tag, interval, good, expected, gaps,
                   int(firsts[0]) if len(firsts) else None,
                   int(lasts[-1]) if len(lasts) else None, manual, vsum, vmax, last_ts)


def tag_gaps(rollup: pd.DataFrame, start: int, end: int, interval: int
             ) -> tuple[list[tuple[int, int]], int]:
    """One tag's gaps in [start, end) and its good samples in the minutes overlapping it, from
    its rollup rows (what a balance read through a thin frame reports)."""
    grid = np.arange(start // MINUTE * MINUTE, end, MINUTE, dtype=np.int64)
    s = _series("", rollup, grid, start, end, interval)
    return s.gaps, int(s.good.sum())


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


# -- the checks -------------------------------------------------------------------------------
class _Context:
    def __init__(self, cfg: Config, rollup: pd.DataFrame, states: pd.DataFrame | None,
                 start: int, end: int) -> None:
        self.cfg = cfg
        self.req = cfg.requirements
        self.tz = ZoneInfo(cfg.campaign.timezone)
        self.start, self.end = start, end
        self.grid = np.arange(start // MINUTE * MINUTE, end, MINUTE, dtype=np.int64)
        self.roles = campaign_tags(cfg)
        self.index = cfg.tag_index()
        intervals = _interval_ns(cfg)
        self.present = set(rollup["tag"].unique()) if len(rollup) else set()
        by_tag = dict(tuple(rollup.groupby("tag", sort=False))) if len(rollup) else {}
        empty = rollup.iloc[0:0]
        self.series = {
            t: _series(t, by_tag.get(t, empty), self.grid, start, end,
                       intervals.get(t, int(cfg.collector.interval_s * 1e9)))
            for t in self.roles}
        self.skew = by_tag.get(SKEW_TAG)
        self.states = states
        self.max_break = int(self.req.max_break_s * 1e9)
        self.collector_gaps: dict[str, list[tuple[int, int, str]]] = {}

    def at(self, ns: int) -> int:
        """Index of the grid minute holding ``ns``."""
        return int(np.clip((ns - self.grid[0]) // MINUTE, 0, len(self.grid)))

    def main_tags(self) -> list[str]:
        mains = [t for t, r in self.roles.items() if r == "main"]
        return mains or [t for t, r in self.roles.items() if r in ("stream", "main")]

    def breaks(self, tags: list[str]) -> list[tuple[int, int]]:
        """Gaps longer than the tolerance on any of ``tags``, merged."""
        return _merge([g for t in tags for g in self.series[t].gaps
                       if g[1] - g[0] > self.max_break])

    def iso(self, ns: int) -> str:
        return _iso(ns, self.tz)


# a stream measured by hand — weighed, dipped, a meter read by hand — with its evidence counts as
# measured (7.3.3.3 b asks that main streams be measured, not that a logger measure them)
HAND_MEASURED = ("weighed", "dip", "meter_reading")


def check_streams(ctx: _Context) -> Check:
    """a, b: every stream measured, or theoretical with a source; main streams measured."""
    bad, silent, theo, by_hand = [], [], [], []
    for s in ctx.cfg.flowsheet.streams:
        if s.provenance == "manual" and s.manual_method in HAND_MEASURED and s.evidence:
            # measured by hand with its evidence (weighbridge tickets, dip sheets): measured
            by_hand.append(f"{s.id} ({s.manual_method}: {s.evidence})")
            continue
        if s.provenance != "measured":
            theo.append(s.id)
            if s.main:
                what = s.provenance if s.provenance != "manual" else (
                    f"manual ({s.manual_method}" + (", without evidence)" if s.manual_method in
                                                    HAND_MEASURED else
                                                    ": statistics or estimates may not replace "
                                                    "measured data, 7.3.3.3 g)"))
                bad.append(f"{s.id} is a main {'inlet' if s.from_ == 'ENV' else 'outlet'} "
                           f"given as {what} ({s.source})")
            continue
        tags = [t for t in (s.tag, s.rate_tag) if t]
        if not any(t in ctx.present for t in tags):
            silent.append(f"{s.id} ({', '.join(tags)})")
    n = len(ctx.cfg.flowsheet.streams)
    measured = n - len(theo) - len(silent)
    problems = bad + [f"no data at all from {x}" for x in silent]
    status: Status = "fail" if problems else "pass"
    reason = ("; ".join(problems) + " (7.3.3.3 a, b: main inlets and outlets must be measured)"
              if problems else
              f"{measured} of {n} streams measured" +
              (f" ({len(by_hand)} by hand with evidence: {'; '.join(by_hand)})"
               if by_hand else "") +
              (f"; {', '.join(theo)} theoretical or manual with a source" if theo else ""))
    fix = ("measure " + ", ".join(s.split(" ")[0] for s in bad + silent) +
           " (check the meter and its wiring; a main stream cannot be estimated)") if problems else ""
    return Check("streams", "a, b", status, measured, n, reason,
                 details={"theoretical": theo, "silent": silent, "main_not_measured": bad,
                          "measured_by_hand": by_hand},
                 fix=fix, group="streams")


_OWN_GAP = {"down": "the collector was not running", "clock": "the wall clock stepped over it"}


def _overlap(gaps: list[tuple[int, int]], own: list[tuple[int, int, str]]) -> dict[str, int]:
    """How much of the coverage ``gaps`` [ns] the collector's own holes cover, per kind."""
    out: dict[str, int] = {}
    for a, b in gaps:
        for lo, hi, why in own:
            ov = min(b, hi) - max(a, lo)
            if ov > 0:
                out[why] = out.get(why, 0) + ov
    return out


def check_coverage(ctx: _Context) -> list[Check]:
    out = []
    need = ctx.req.coverage_min
    for tag, role in ctx.roles.items():
        s = ctx.series[tag]
        cov = s.coverage()
        longest = max((b - a for a, b in s.gaps), default=0)
        dev = ctx.index[tag].device if tag in ctx.index else "?"
        if tag not in ctx.present:
            status: Status = "fail"
            reason = f"no samples at all from {tag} (device {dev})"
        elif not cov >= need:
            status = "fail"
            reason = (f"{cov:.1%} of the ticks good, below {need:.0%}; {len(s.gaps)} gap(s), the "
                      f"longest {_dur(longest)}")
        else:
            status = "pass"
            reason = (f"{cov:.1%} of the ticks good" +
                      (f"; {len(s.gaps)} gap(s), the longest {_dur(longest)}" if s.gaps else
                       ", no gap"))
        own = _overlap(s.gaps, ctx.collector_gaps.get(dev, []))
        fix = f"restore {tag}: look at device {dev} (link, power, address)"
        if own:
            reason += "; " + ", ".join(f"{_dur(ns)} of it while {_OWN_GAP[why]}"
                                       for why, ns in sorted(own.items()))
            if sum(own.values()) >= 0.5 * sum(b - a for a, b in s.gaps):
                fix = (f"most of {tag}'s gaps are the collector's own, not device {dev}'s: "
                       "keep the edge box running (power, service) for the rest of the campaign")
        top = sorted(s.gaps, key=lambda g: g[0] - g[1])[:20]
        out.append(Check(
            f"coverage:{tag}", "e", status, cov, need, reason, ranges=sorted(top),
            details={"role": role, "device": dev, "gaps": len(s.gaps),
                     "longest_gap_s": longest / 1e9, "good": int(s.good.sum()),
                     "expected": float(s.expected.sum()),
                     "collector_own_gap_s": {k: v / 1e9 for k, v in own.items()}},
            fix=fix if status != "pass" else "",
            group="coverage-main" if role in ("main", "load", "cycle") else "coverage"))
    return out


def check_synchrony(ctx: _Context) -> list[Check]:
    tags = [t for t, r in ctx.roles.items() if r in ("main", "stream")]
    spans = {t: (ctx.series[t].first, ctx.series[t].last) for t in tags}
    starts = [a for a, _ in spans.values() if a is not None]
    ends = [b for _, b in spans.values() if b is not None]
    total = ctx.end - ctx.start
    if len(starts) < len(tags) or not starts:
        lo = hi = None
        share = 0.0
    else:
        lo, hi = max(starts), min(ends)
        share = max(hi - lo, 0) / total if total > 0 else 0.0
    need = ctx.req.coverage_min
    late = sorted((t for t, (a, _) in spans.items() if a is not None and lo is not None
                   and a - ctx.start > ctx.max_break), key=lambda t: -(spans[t][0] or 0))
    early = [t for t, (_, b) in spans.items() if b is not None and ctx.end - b > ctx.max_break]
    if lo is None or hi is None or hi <= lo:
        status: Status = "fail"
        reason = "the streams' meters have no time span in common"
        ranges: list[tuple[int, int]] = []
    else:
        # meters that start a few ticks apart are synchronous: only a loss beyond the break
        # tolerance counts
        lost = total - (hi - lo)
        status = "pass" if share >= need or lost <= ctx.max_break else "fail"
        reason = (f"inputs and outputs measured together over {share:.1%} of the window "
                  f"({ctx.iso(lo)} to {ctx.iso(hi)})")
        if late:
            reason += f"; started late: {', '.join(late[:5])}"
        if early:
            reason += f"; stopped early: {', '.join(early[:5])}"
        ranges = [(lo, hi)]
    sync = Check("synchrony", "e", status, share, need, reason, ranges,
                 details={"late": late, "early": early},
                 fix="start every meter at the same time (7.3.3.3 e: synchronously)"
                 if status == "fail" else "", group="synchrony")
    # skew between devices, from the collector's health tag
    limit_ms = ctx.cfg.collector.late_tolerance_ms
    sk = ctx.skew
    if sk is not None and len(sk):
        sk = sk[(sk["bucket"] >= ctx.grid[0]) & (sk["bucket"] < ctx.end) & (sk["good"] > 0)]
    if sk is None or not len(sk):
        skew = Check("skew", "e", "warning", None, limit_ms,
                     "no skew data in the store (the collector records it as "
                     f"{SKEW_TAG}; a generated campaign has none): synchrony judged on the "
                     "time spans only", group="synchrony",
                     fix="run the campaign through cpaudit collect to record the skew")
    else:
        mean = float(sk["vsum"].sum() / sk["good"].sum())
        worst = float(sk["vmax"].max())
        over = sk[sk["vmax"] > limit_ms]
        status = "pass" if worst <= limit_ms else "warning"
        skew = Check("skew", "e", status, worst, limit_ms,
                     f"poll start times spread {mean:.1f} ms on average, {worst:.1f} ms at worst "
                     f"across devices within a tick" +
                     (f"; over {limit_ms:g} ms in {len(over)} minute(s)" if len(over) else ""),
                     ranges=_merge([(int(b), int(b) + MINUTE) for b in over["bucket"]])[:20],
                     details={"mean_ms": mean, "minutes_over": len(over)},
                     fix="too many devices on one line or a slow device: split the polling"
                     if status != "pass" else "", group="synchrony")
    return [sync, skew]


def check_calibration(ctx: _Context, projected_end: int | None) -> list[Check]:
    out = []
    devs: dict[str, list[str]] = {}
    for t, role in ctx.roles.items():
        if t in ctx.index and role != "cycle":
            devs.setdefault(ctx.index[t].device, []).append(t)
    first_day = dt.datetime.fromtimestamp(ctx.start / 1e9, ctx.tz).date()
    last_day = dt.datetime.fromtimestamp(ctx.end / 1e9, ctx.tz).date()
    for name, tags in devs.items():
        cal = ctx.index[tags[0]].calibration
        fix = f"bring the calibration certificate of {name} up to date (7.3.3.3 c)"
        if cal is None:
            out.append(Check(f"calibration:{name}", "c", "fail", None, None,
                             f"device {name} ({', '.join(tags)}) has no calibration certificate "
                             "in the campaign file", fix=fix, group="calibration"))
            continue
        lo = cal.valid_from
        ok = cal.valid_until >= last_day and (lo is None or lo <= first_day)
        status: Status = "pass" if ok else "fail"
        if ok:
            reason = f"certificate {cal.certificate} valid until {cal.valid_until}"
            if projected_end is not None:
                pe = dt.datetime.fromtimestamp(projected_end / 1e9, ctx.tz).date()
                if cal.valid_until < pe:
                    status = "warning"
                    reason += (f", before the campaign can be complete ({pe}): recalibrate "
                               "or replace in time")
        elif cal.valid_until < last_day:
            reason = (f"certificate {cal.certificate} expired on {cal.valid_until}, inside the "
                      f"window ({first_day} to {last_day})")
        else:
            reason = (f"certificate {cal.certificate} valid only from {lo}, after the window "
                      f"starts ({first_day})")
        out.append(Check(f"calibration:{name}", "c", status, str(cal.valid_until),
                         str(last_day), reason, details={"tags": tags,
                                                         "certificate": cal.certificate},
                         fix="" if status == "pass" else fix, group="calibration"))
    return out


def check_conditions(ctx: _Context) -> Check:
    wanted = {t: s.id for s in ctx.cfg.flowsheet.streams for t in s.conditions}
    if not wanted:
        return Check("conditions", "g", "pass", 0, 0,
                     "the campaign file requires no process condition (streams' conditions)",
                     group="conditions")
    need = ctx.req.coverage_min
    low = {t: ctx.series[t].coverage() for t in wanted}
    bad = [f"{t} ({c:.0%})" for t, c in low.items() if not c >= need]
    status: Status = "fail" if bad else "pass"
    reason = (f"process conditions not recorded: {', '.join(bad)}" if bad else
              f"{len(wanted)} process condition(s) recorded beside their streams")
    return Check("conditions", "g", status, len(wanted) - len(bad), len(wanted), reason,
                 details={"tags": {t: {"stream": s, "coverage": low[t]}
                                   for t, s in wanted.items()}},
                 fix="restore the temperature/pressure readings" if bad else "",
                 group="conditions")


def check_units(ctx: _Context) -> Check:
    problems = []
    n = 0
    for s in ctx.cfg.flowsheet.streams:
        for key in ("tag", "rate_tag"):
            tag = getattr(s, key)
            if tag is None:
                continue
            n += 1
            if tag not in ctx.index:
                problems.append(f"{s.id}: unknown tag {tag}")
                continue
            p = stream_unit_problem(s, key, ctx.index[tag].unit)
            if p:
                problems.append(f"{s.id}: {p}")
        for t in s.conditions:
            if t in ctx.index and ctx.index[t].kind != TagKind.CONDITION:
                problems.append(f"{s.id}: condition {t} is not a tag of kind condition")
    status: Status = "fail" if problems else "pass"
    return Check("units", "g", status, n - len(problems), n,
                 "; ".join(problems) if problems else
                 f"every one of the {n} stream tags has a unit its balance can convert, once "
                 "and explicitly", details={"problems": problems}, group="units",
                 fix="give each tag the unit its meter reports" if problems else "")


def check_manual(ctx: _Context) -> Check:
    streams = [s.id for s in ctx.cfg.flowsheet.streams if s.provenance == "manual"]
    entered = {t: s.manual for t, s in ctx.series.items() if s.manual}
    reason = (f"{len(streams)} stream(s) entered by hand ({', '.join(streams)})" if streams
              else "no stream is entered by hand")
    if entered:
        reason += ("; readings marked manual in " + ", ".join(f"{t} ({n})" for t, n in
                                                               entered.items()) +
                   ": kept as manual, never counted as measured")
    return Check("manual", "g", "pass", sum(entered.values()), None, reason,
                 details={"streams": streams, "manual_readings": entered}, group="manual")


# -- beyond the standard ----------------------------------------------------------------------
def _best_window(ctx: _Context, cycles: list[Cycle], cum: Load | None
                 ) -> dict[str, Any] | None:
    req = ctx.req
    tags = [t for t, r in ctx.roles.items() if r in ("main", "stream", "load")]
    avg = req.load.average if req.load else None
    if req.mode == "batch":
        k = req.min_cycles
        best = None
        for i in range(len(cycles) - k + 1):
            run = cycles[i:i + k]
            if not all(c.counts for c in run):
                continue
            cov = min(c.coverage for c in run)
            load = float(np.mean([c.load for c in run])) if avg is not None else float("nan")
            score = (cov, load if np.isfinite(load) else 0.0)
            if best is None or score > best[0]:
                best = (score, run[0].start, run[-1].end, cov, load)
        if best is None:
            return None
        return {"start": best[1], "end": best[2], "cycles": k, "coverage": best[3],
                "load": best[4], "reason": f"{k} consecutive complete cycles from "
                f"{ctx.iso(best[1])} with the best coverage ({best[3]:.1%})"}
    width = int(req.min_hours * HOUR)
    if ctx.end - ctx.start < width:
        return None
    breaks = ctx.breaks(ctx.main_tags())
    good = np.array([ctx.series[t].good for t in tags], dtype=np.float64)
    exp = np.array([ctx.series[t].expected for t in tags])
    cg = np.concatenate([np.zeros((len(tags), 1)), np.cumsum(good, axis=1)], axis=1)
    ce = np.concatenate([np.zeros((len(tags), 1)), np.cumsum(exp, axis=1)], axis=1)
    best = None
    for a in range(ctx.start, ctx.end - width + 1, HOUR):
        b = a + width
        if any(g[0] < b and g[1] > a for g in breaks):
            continue
        i, j = ctx.at(a), ctx.at(b)
        cov = float(np.min((cg[:, j] - cg[:, i]) / np.maximum(ce[:, j] - ce[:, i], 1e-9)))
        if cov < req.coverage_min:
            continue
        load = float("nan")
        if cum is not None and avg is not None:
            days = [cum.over(ctx.at(d), ctx.at(min(d + DAY, b))) for d in range(a, b, DAY)]
            if not all(v >= avg for v in days):
                continue
            load = cum.over(i, j)
        score = (round(cov, 4), load if np.isfinite(load) else 0.0)
        if best is None or score > best[0]:
            best = (score, a, b, cov, load)
    if best is None:
        return None
    return {"start": best[1], "end": best[2], "hours": req.min_hours, "coverage": best[3],
            "load": best[4], "reason": f"{req.min_hours:g} h from {ctx.iso(best[1])} with the "
            f"best coverage ({best[3]:.1%}) and load"}


def _hints(ctx: _Context, cum: Load | None, cycles: list[Cycle]) -> list[str]:
    out = []
    m = len(ctx.grid)
    recent = max(m - 60, 0)
    for t, s in ctx.series.items():
        if t not in ctx.present or m < 120:
            continue
        dev = ctx.index[t].device if t in ctx.index else "?"
        last10 = s.good[max(m - 10, 0):].sum()
        if last10 == 0:
            since = s.last
            out.append(f"{t} silent for the last 10 minutes" +
                       (f" (last good reading {ctx.iso(since)})" if since else "") +
                       f": look at device {dev}")
            continue
        now_cov, all_cov = s.coverage(recent), s.coverage()
        if now_cov < ctx.req.coverage_min <= all_cov:
            out.append(f"coverage of {t} falling: {now_cov:.0%} in the last hour "
                       f"({all_cov:.1%} overall): look at device {dev}")
    ld = ctx.req.load
    if cum is not None and ld is not None:
        if ctx.req.mode == "continuous" and m >= 60:
            v = cum.over(m - 60, m)
            if v < ld.average:
                out.append(f"load dip: {v:.3g} {ld.unit} in the last hour, below the average "
                           f"{ld.average:g}; hours below the average do not count")
        elif cycles and cycles[-1].complete and cycles[-1].load < ld.average:
            out.append(f"the last cycle ran at {cycles[-1].load:.3g} {ld.unit}, below the "
                       f"average {ld.average:g}: it will not count")
    return out


# -- the report -------------------------------------------------------------------------------
def assess(cfg: Config, rollup: pd.DataFrame, states: pd.DataFrame | None = None,
           start: int | None = None, end: int | None = None,
           store_tags: list[str] | None = None, window_rule: str | None = None,
           collector_gaps: dict[str, list[tuple[int, int, str]]] | None = None
           ) -> ValidityReport:
    """The validity report of a campaign from its rollup (``store.ROLLUP_COLUMNS``) and, in batch
    mode, the cycle state tag's transitions (SAMPLE_COLUMNS). ``start``/``end`` [ns] bound the
    window; by default it spans the data. ``store_tags`` (every tag the store holds) only
    sharpens the message when there is nothing to judge. ``window_rule`` (``best_valid`` |
    ``campaign``, default ``requirements.balance_window``) chooses the window the balances are
    to be taken over (``balance_window``). ``collector_gaps`` (per device, the holes the
    collector recorded as its own: down, or a clock step; :func:`collector_gaps`) only explain
    the coverage gaps they overlap."""
    mode = cfg.requirements.mode
    tags = campaign_tags(cfg)
    data = rollup[rollup["tag"].isin(list(tags) + [SKEW_TAG])] if len(rollup) else rollup
    if start is None:
        start = int(data["first_ts"].min()) if len(data) and data["good"].sum() else None
    if end is None and len(data) and data["good"].sum():
        iv = int(cfg.collector.interval_s * 1e9)
        end = int(data["last_ts"].max()) + iv
    if len(data):
        # a window reaching far beyond the data (good or not) is clipped to its minutes (one
        # minute of slack): the per-minute grid is bounded by the data, not by the parameters
        first = int(data["bucket"].min())
        last = int(data["bucket"].max()) + MINUTE
        if start is not None and start < first - MINUTE:
            start = first
        if end is not None and end > last + MINUTE:
            end = last
    elif start is not None and end is not None and end > start:
        start = end = None            # nothing in the window: no grid over it
    if start is None or end is None or end <= start:
        if start is not None and end is not None and end <= start:
            why = "the window is empty (it ends before it starts)"
        elif store_tags is not None and not set(tags) & set(store_tags):
            why = ("the store holds none of the campaign's tags" +
                   (f" (it holds {len(store_tags)} others, e.g. {', '.join(store_tags[:3])}: "
                    "is it the right store for this campaign file?)" if store_tags else
                    " (it is empty)"))
        else:
            why = "no sample of the campaign's tags in the window"
        return ValidityReport(start, end, mode, [], "no-data", f"no validity report: {why}",
                              [], {}, None, [], None)
    ctx = _Context(cfg, data, states, start, end)
    ctx.collector_gaps = collector_gaps or {}
    from cpaudit.analyzer.production import check_duration, check_load, find_cycles
    cycles, steps = find_cycles(ctx)
    load, cum = check_load(ctx, cycles)
    low_hours = [(int(a), int(b)) for a, b in load.details.get("hours_below", [])]
    duration, prog = check_duration(ctx, cycles, steps, low_hours)
    progress = _progress(ctx, prog, duration)
    checks = [check_streams(ctx)]
    checks += check_calibration(ctx, progress.get("earliest_valid_ns"))
    checks += [duration]
    checks += check_coverage(ctx)
    checks += check_synchrony(ctx)
    checks += [load, check_units(ctx), check_conditions(ctx), check_manual(ctx)]
    failed = [c for c in checks if c.status == "fail"]
    order = {g: i for i, g in enumerate(_PRIORITY)}
    fixes = [{"check": c.id, "fix": c.fix or c.reason} for c in
             sorted(failed, key=lambda c: order.get(c.group, 99))]
    if failed:
        verdict = "invalid"
        msg = (f"not valid: {len(failed)} check(s) fail — first {fixes[0]['check']}: "
               f"{fixes[0]['fix']}")
    else:
        verdict = "valid"
        warn = [c.id for c in checks if c.status == "warning"]
        msg = ("valid: every clause of DB11/T 1156 7.3.3.3 is met" +
               (f" (remarks: {', '.join(warn)})" if warn else ""))
        # which periods count (e, f): the cycles or hours at load
        if mode == "batch":
            low = [c for c in cycles if c.complete and c.low]
            msg += (f"; {int(duration.value)} complete cycle(s) at load, "
                    f"{cfg.requirements.min_cycles} required" +
                    (f"; {len(low)} below the average load do not count" if low else ""))
        else:
            msg += (f"; {duration.value:.1f} h at load without a break, "
                    f"{cfg.requirements.min_hours:g} h required")
    best = _best_window(ctx, cycles, cum)
    from cpaudit.analyzer.window import accepted_window
    rule = window_rule or cfg.requirements.balance_window
    accepted = accepted_window(cfg, cycles, duration, load, start, end, rule)
    return ValidityReport(start, end, mode, checks, verdict, msg, fixes, progress, best,
                          _hints(ctx, cum, cycles), accepted)


def _progress(ctx: _Context, prog: dict[str, Any], duration: Check) -> dict[str, Any]:
    req = ctx.req
    if req.mode == "batch":
        done = int(prog.get("done", 0))
        typical = prog.get("typical_ns", float("nan"))
        to_go = max(req.min_cycles - done, 0)
        out: dict[str, Any] = {"unit": "cycles", "done": done, "required": req.min_cycles,
                               "to_go": to_go}
        if to_go == 0:
            c = duration.ranges[req.min_cycles - 1] if duration.ranges else None
            out["earliest_valid_ns"] = c[1] if c else None
        elif np.isfinite(typical):
            # the cycle under way ends one typical length after its start
            spec = req.cycles
            starts = cycle_starts(ctx.states, spec) if spec is not None else np.empty(0)
            starts = starts[starts <= ctx.end]
            last_start = int(starts[-1]) if len(starts) else ctx.end
            out["earliest_valid_ns"] = int(max(last_start + to_go * typical, ctx.end))
        else:
            out["earliest_valid_ns"] = None
        return out
    run = prog.get("current_run_ns", 0) / HOUR
    to_go = max(req.min_hours - run, 0.0)
    out = {"unit": "h", "done": run, "required": req.min_hours, "to_go": to_go}
    if duration.status == "pass":
        best = prog["best_run"]
        out["earliest_valid_ns"] = int(best[0] + req.min_hours * HOUR)
    else:
        out["earliest_valid_ns"] = int(ctx.end + to_go * HOUR)
    return out


