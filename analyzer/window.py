"""The window a campaign's balances are taken over, as the validity report accepts it.

DB11/T 1156 7.3.3.3 (shared/standard/DB11-T-1156.txt):
  e) 周期性（间歇）生产的企业应按正常生产周期进行逐个工序的实测，至少实测三个周期。连续生产的
     企业应连续（跟班）实测不少于72小时。 — batch plants measure each step over *normal*
     production cycles, at least three; continuous plants measure continuously for no less
     than 72 h;
  f) 实测时生产设施应处于正常运行状态，生产负荷应不低于审核期平均生产负荷。 — while measuring the
     plant runs normally, its load not below the audit period's average load.
A cycle (or, in continuous mode, an hour) below the average load is therefore not one of the
cycles (hours) the standard asks for: it does not count towards the duration, and the balances
leave it out. Judging the load per whole hour in continuous mode, and a low hour breaking the
72 h run, is this software's reading (the standard names no averaging period), said in the
report.

Rules (``requirements.balance_window``, or the caller's choice):

- ``best_valid`` (default): batch, the longest run of consecutive complete cycles at load (ties:
  the best coverage, then the earliest); continuous, the longest run at load without a break on
  a main stream. A balance is one window of whole cycles, so a cycle at load that a cycle which
  does not count separates from the run is left out too, and said so.
- ``campaign``: the whole campaign (or the user's --from/--to) as given, trimmed to whole cycles
  by the balance; every cycle in it is used, and those that do not count are named.

:func:`accepted_window` is pure: it works on the validity report's cycles and checks.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cpaudit.config import Config
from cpaudit.store.keys import MINUTE as _MINUTE

HOUR = 3_600_000_000_000
RULES = ("best_valid", "campaign")
RULE_TEXT = {
    "best_valid": "the window the validity report accepts: the longest run of consecutive "
                  "complete cycles at load (continuous: the longest run at load without a "
                  "break); periods below the audit period's average load do not count "
                  "(DB11/T 1156 7.3.3.3 e, f)",
    "campaign": "the whole campaign (or --from/--to) as given, trimmed to whole cycles: "
                "periods that do not count are included and named",
}


def _iso(ns: int, cfg: Config) -> str:
    import datetime as dt
    from zoneinfo import ZoneInfo
    return dt.datetime.fromtimestamp(ns / 1e9, ZoneInfo(cfg.campaign.timezone)).isoformat(
        timespec="minutes")


def _f(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def accepted_window(cfg: Config, cycles: list[Any], duration: Any, load: Any, start: int,
                    end: int, rule: str = "best_valid") -> dict[str, Any]:
    """The balance window: ``start``/``end`` [ns] (None: as given), the cycles or hours used,
    those left out and why, whether they are enough (``enough``) and the rule, in words.

    ``cycles`` are the validity report's cycles (``complete``, ``counts``, ``low``, ``load``,
    ``coverage``, ``why``), ``duration`` and ``load`` its checks of those ids, [start, end) the
    window it judged."""
    if rule not in RULES:
        raise ValueError(f"balance window rule: one of {', '.join(RULES)}, not {rule!r}")
    req = cfg.requirements
    ld = req.load
    unit = ld.unit if ld is not None else ""
    avg = ld.average if ld is not None else float("nan")
    out: dict[str, Any] = {"rule": rule, "rule_text": RULE_TEXT[rule], "mode": req.mode}
    if req.mode == "batch":
        def row(c: Any) -> dict[str, Any]:
            return {"start": c.start, "end": c.end, "hours": (c.end - c.start) / HOUR,
                    "load": _f(c.load), "coverage": _f(c.coverage), "counts": bool(c.counts)}

        def why(c: Any) -> str:
            if not c.complete:
                return f"not a complete cycle: {c.why}"
            if c.low:
                return (f"below the audit period's average load: {c.load:.3g} {unit} < "
                        f"{avg:g} {unit} (7.3.3.3 f)")
            return ("at load, but not consecutive with the window: a cycle that does not count "
                    "lies between (a balance is one window of whole cycles)")

        if rule == "campaign":
            used, left = list(cycles), []
        else:
            runs: list[list[Any]] = []
            for c in cycles:
                if c.counts and runs and runs[-1] and runs[-1][-1].end == c.start:
                    runs[-1].append(c)
                elif c.counts:
                    runs.append([c])
            best = max(runs, key=lambda r: (len(r), min(x.coverage for x in r), -r[0].start),
                       default=[])
            used = best
            left = [c for c in cycles if c not in best]
        n = sum(1 for c in used if c.counts)
        k = req.min_cycles
        out.update({
            "unit": "cycles", "count": n, "required": k, "enough": n >= k,
            "start": used[0].start if used else (start if rule == "campaign" else None),
            "end": used[-1].end if used else (end if rule == "campaign" else None),
            "used": [row(c) for c in used],
            "left_out": [{**row(c), "why": why(c)} for c in left],
            "included_not_counting": [{**row(c), "why": why(c)} for c in used if not c.counts],
        })
        if not cycles:
            reason = "no complete cycle yet: no balance window"
        elif not used:
            reason = "no cycle counts (none complete at load): no balance window"
        else:
            reason = (f"{len(used)} consecutive cycle(s) from {_iso(used[0].start, cfg)} to "
                      f"{_iso(used[-1].end, cfg)}"
                      if rule == "best_valid" else f"every one of the {len(used)} cycle(s)")
            if left:
                reason += f"; {len(left)} left out"
            if rule == "campaign" and n < len(used):
                reason += f"; {len(used) - n} of them do not count"
        if used and n < k:
            reason += (f"; {n} cycle(s) that count, fewer than the {k} required (7.3.3.3 e): "
                       "not a valid balance yet")
        out["reason"] = reason
        return out
    # continuous
    need = req.min_hours
    below = {(int(b["start"]), int(b["end"])): b.get("load")
             for b in load.details.get("below", [])} if load is not None else {}
    breaks = [(int(a), int(b)) for a, b in duration.details.get("breaks", [])]
    if rule == "campaign":
        a, b = start, end
    else:
        a, b = duration.ranges[0] if duration.ranges else (start, start)
    hours = (b - a) / HOUR
    left = []
    for (x, y), v in sorted(below.items()):
        if rule == "campaign" or not (x >= a and y <= b):
            left.append({"start": x, "end": y, "hours": (y - x) / HOUR, "load": _f(v),
                         "why": f"below the audit period's average load: {v:.3g} {unit} < "
                                f"{avg:g} {unit} (7.3.3.3 f)" if v is not None else
                                "below the audit period's average load (7.3.3.3 f)"})
    for x, y in breaks:
        left.append({"start": x, "end": y, "hours": (y - x) / HOUR, "load": None,
                     "why": f"a break of {(y - x) / 1e9:.0f} s on a main stream (7.3.3.3 e)"})
    if rule == "campaign":
        inc, left = left, []
    else:
        inc = []
        # the rest of the window outside the run: at load without a break, but not in it
        taken = sorted([(r["start"], r["end"]) for r in left] + ([(a, b)] if b > a else []))
        at = start
        for x, y in taken + [(end, end)]:
            if x - at >= HOUR:
                left.append({"start": at, "end": x, "hours": (x - at) / HOUR, "load": None,
                             "why": "at load without a break, but not in the longest run (a "
                                    "balance is one window)"})
            at = max(at, y)
        left.sort(key=lambda r: r["start"])
    counting = hours - sum(r["hours"] for r in inc)
    out.update({"unit": "h", "count": counting, "required": need, "enough": counting >= need
                and not inc, "start": a if b > a else None, "end": b if b > a else None,
                "used": [{"start": a, "end": b, "hours": hours}] if b > a else [],
                "left_out": left, "included_not_counting": inc})
    reason = (f"{hours:.1f} h from {_iso(a, cfg)} to {_iso(b, cfg)}" if b > a else
              "no run at load yet")
    if left:
        reason += f"; {len(left)} period(s) left out"
    if inc:
        reason += f"; {len(inc)} period(s) in it do not count"
    if b > a and not out["enough"]:
        reason += (f"; fewer than the {need:g} h at load without a break required (7.3.3.3 e): "
                   "not a valid balance yet")
    out["reason"] = reason
    return out


def balance_span(cfg: Config, window: dict[str, Any] | None, start: int | None,
                 end: int | None) -> tuple[int | None, int | None, str]:
    """The [start, end] [ns] to take the balances over, from the validity report's
    ``balance_window`` (:func:`analyzer.window.accepted_window`), and how it was chosen.

    ``best_valid`` with a window: its cycles, each edge widened by a little (at most 10 min, a
    quarter of the shortest cycle) so that the balance's trim to whole cycles finds the very
    starts the validity report found and no other; continuous, the run itself. Otherwise the
    window as given."""
    if window is None or window.get("rule") != "best_valid":
        return start, end, "as given"
    if window.get("start") is None or window.get("end") is None:
        return start, end, "as given: no accepted window"
    a, b = int(window["start"]), int(window["end"])
    if window.get("unit") == "cycles" and window.get("used"):
        shortest = min(int(c["end"]) - int(c["start"]) for c in window["used"])
        pad = min(10 * _MINUTE, shortest // 4)
        a, b = a - pad, b + pad
        if start is not None:
            a = max(a, start)
        if end is not None:
            b = min(b, end)
    return a, b, "best valid window"


