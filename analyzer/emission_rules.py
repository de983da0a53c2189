"""The rules that decide which emission minutes and hours count, and what an invalid hour
counts for: pure functions on the pollutant balance's minute grid (used by analyzer.pollutant).

- **Cycle analyzers.** A tag reporting less often than once a minute (an online COD analyzer's
  2 h digestion cycle: its device's ``interval_s``) has one scheduled result per cycle, at the
  multiples of the interval since the epoch (the collector and the simulators schedule them so).
  A result reported at T holds for the cycle it was sampled over, (T − I, T] (``preceding``,
  the default: a flow-proportional composite sampler fills the analyzer's vessel during that
  cycle), or until the next result, [T, T + I) (``following``). Which of the two HJ 356-2019
  prescribes was not retrieved here: a convention, configurable
  (``pollutants.cycle_value_holds``) [unverified]. A minute is covered when the result of its
  cycle came in good; an hour counts with ``valid_hour_fraction`` of its minutes covered.
- **CEMS status.** A status word's value maps to a state (normal, calibration, blowback,
  maintenance, fault) by the stack's ``status`` map (the device's documentation, with its
  source). A minute with any reading in a state but normal is no emission minute: span gas,
  blowback air or a faulty analyzer's output is left out, and the minute counts as invalid.
  From the rollup: the minute's lowest and highest readings are real readings, so a minute is
  normal exactly when every value between them is (checked per value when the span is small,
  else taken as not normal).
- **Substitution.** HJ 75-2017's treatment of missing data as recalled [unverified: the text was
  not retrieved here, see shared/reference/balance-math.md 4.6]: a run of invalid hours of at
  most 24 h is filled with the arithmetic mean of the valid hour before it and the valid hour
  after it; a longer run with the highest hourly value of the 720 valid hours before it, for
  the concentration and the flow each. An invalid hour's load is the filled concentration times
  the hour's flow — measured when the flow's own tags are valid that hour (a calibration leaves
  the flow meter measuring), else filled the same way; at the window's edge the one neighbour
  there is used [convention].
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cpaudit.config.models import StatusWord, Substitution, status_matcher
from cpaudit.store import Reason

MINUTE = 60_000_000_000
HOUR = 60 * MINUTE

SUBSTITUTION_SOURCE = {
    "hj75": ("HJ 75-2017 missing-data treatment as recalled, text not retrieved here "
             "[unverified]: a run of invalid hours up to {short:g} h takes the mean of the valid "
             "hour before and the valid hour after it, a longer run the highest hourly value of "
             "the {look} valid hours before it, for the concentration and the flow each; an "
             "invalid hour's load = filled concentration x the hour's flow, measured where the "
             "flow is valid [convention]"),
    "mean_valid": ("every invalid hour takes the flow-weighted mean valid-hour concentration "
                   "(and the mean valid flow where the flow is invalid too): an extrapolation, "
                   "a convention, not a standard's rule"),
    "none": "no substitution: invalid hours count zero, the headline is the valid-hours sum",
}

CYCLE_RULE = {
    "preceding": ("a result reported at T holds for the cycle it was sampled over, (T - I, T] "
                  "(convention, configurable: pollutants.cycle_value_holds; HJ 356-2019's own "
                  "rule not retrieved [unverified])"),
    "following": ("a result reported at T holds until the next one, [T, T + I) (convention, "
                  "configurable: pollutants.cycle_value_holds; HJ 356-2019's own rule not "
                  "retrieved [unverified])"),
}


def substitution_text(rule: Substitution) -> str:
    return SUBSTITUTION_SOURCE[rule.rule].format(short=rule.short_run_h, look=rule.lookback_h)


# -- cycle analyzers ------------------------------------------------------------------------
def cycle_minutes(rows: pd.DataFrame | None, grid: np.ndarray, interval: int, holds: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(value per minute of the grid — NaN where the minute's cycle has no good result, covered
    0/1 per minute) for a tag with one result per ``interval`` [ns]. ``rows``: the tag's
    rollup (one good reading per minute bucket at most; more are averaged)."""
    covered = np.zeros(len(grid))
    value = np.full(len(grid), np.nan)
    if rows is None or not len(rows) or not len(grid):
        return value, covered
    good = rows[rows["good"].to_numpy() > 0]
    if not len(good):
        return value, covered
    ts = good["last_ts"].to_numpy(np.float64)
    v = good["vsum"].to_numpy(np.float64) / good["good"].to_numpy(np.float64)
    # each result on its scheduled tick (the nearest multiple of the interval)
    tick = np.round(ts / interval).astype(np.int64) * interval
    order = np.argsort(tick, kind="stable")
    tick, v = tick[order], v[order]
    want = (grid // interval + (1 if holds == "preceding" else 0)) * interval
    i = np.searchsorted(tick, want)
    hit = (i < len(tick)) & (tick[np.minimum(i, len(tick) - 1)] == want)
    value[hit] = v[i[hit]]
    covered[hit] = 1.0
    return value, covered


# -- CEMS status ----------------------------------------------------------------------------
def state_of(word: StatusWord, value: int) -> str:
    for key, state in word.map.items():
        kind, a, b = status_matcher(key)
        if (kind == "mask" and value & a) or (kind != "mask" and a <= value <= b):
            return state
    return word.other


def status_minutes(word: StatusWord, rows: pd.DataFrame | None, grid: np.ndarray
                   ) -> np.ndarray:
    """The state of each minute of the grid from a status tag's rollup ("" without a good
    reading: the status tag's own coverage then decides, as for any tag the point needs)."""
    out = np.full(len(grid), "", dtype=object)
    if rows is None or not len(rows) or not len(grid):
        return out
    r = rows[rows["good"].to_numpy() > 0]
    idx = ((r["bucket"].to_numpy() - grid[0]) // MINUTE).astype(np.int64)
    ok = (idx >= 0) & (idx < len(grid))
    lo = np.round(r["vmin"].to_numpy(np.float64)[ok]).astype(np.int64)
    hi = np.round(r["vmax"].to_numpy(np.float64)[ok]).astype(np.int64)
    idx = idx[ok]
    memo: dict[tuple[int, int], str] = {}
    for k, (a, b) in enumerate(zip(lo.tolist(), hi.tolist())):
        if (a, b) not in memo:
            sa, sb = state_of(word, a), state_of(word, b)
            if sa != "normal" or sb != "normal":
                memo[(a, b)] = sb if sb != "normal" else sa
            elif b - a > 4096:
                memo[(a, b)] = word.other if word.other != "normal" else "fault"
            else:
                between = [state_of(word, x) for x in range(a + 1, b)]
                memo[(a, b)] = next((s for s in between if s != "normal"), "normal")
        out[idx[k]] = memo[(a, b)]
    return out


# -- data flags of online monitoring (HJ 212) -------------------------------------------------
# a sample's reason from an HJ 212 data flag (collector.hj212.FLAG_QUALITY, HJ 212-2017 Table 8)
# -> the state its minute is in; the same words as the CEMS status words where they mean the same
FLAG_STATES = {Reason.CALIBRATION: "calibration", Reason.MAINTENANCE: "maintenance",
               Reason.FAULT: "fault", Reason.STOPPED: "stopped",
               Reason.INSTRUMENT_COMM: "communication fault", Reason.OVER_RANGE: "over range",
               Reason.MANUAL: "set value", Reason.HJ212_FLAG: "flagged"}


def flag_minutes(rows: pd.DataFrame | None, grid: np.ndarray) -> np.ndarray:
    """The state of each minute of the grid from a tag's flagged samples (columns ``ts``,
    ``reason``): a minute holding a sample the logger flagged (C, M, D, F, B, T, S) is not an
    emission minute, as a CEMS status word's would be; "" elsewhere."""
    out = np.full(len(grid), "", dtype=object)
    if rows is None or not len(rows) or not len(grid):
        return out
    idx = ((rows["ts"].to_numpy(np.int64) - grid[0]) // MINUTE).astype(np.int64)
    ok = (idx >= 0) & (idx < len(grid))
    for i, r in zip(idx[ok].tolist(), rows["reason"].to_numpy()[ok].tolist()):
        if out[i] == "":
            out[i] = FLAG_STATES.get(Reason(int(r)), "flagged")
    return out


# -- substitution ---------------------------------------------------------------------------
def fill_hours(values: np.ndarray, ok: np.ndarray, span_h: np.ndarray, lo: np.ndarray,
               hi: np.ndarray, rule: Substitution, weights: np.ndarray | None = None
               ) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """(hourly values with the invalid hours filled — NaN where nothing can fill them, the runs
    filled: start_ns, end_ns, hours, value, basis) for an hourly mean (a concentration, a flow).
    ``span_h``: each hour's length inside the window [h]; ``lo``/``hi``: its bounds [ns];
    ``weights``: for ``mean_valid``, the weight of each valid hour (default its span)."""
    n = len(ok)
    out = np.where(ok, values, np.nan)
    runs: list[dict[str, Any]] = []
    if rule.rule == "none" or ok.all() or not ok.any():
        return out, runs
    valid_idx = np.flatnonzero(ok)
    w = (span_h if weights is None else weights)[ok]
    mean = float((values[ok] * w).sum() / w.sum()) if w.sum() > 0 else float(values[ok].mean())
    edges = np.flatnonzero(np.diff(np.concatenate([[0], (~ok).astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        dur = float(span_h[a:b].sum())
        if rule.rule == "mean_valid":
            v, basis = mean, "mean of the valid hours"
        elif dur <= rule.short_run_h:
            side = [x for x in (a - 1, b) if 0 <= x < n and ok[x]]
            v = float(np.mean(values[side]))
            basis = ("mean of the valid hour before and the valid hour after" if len(side) == 2
                     else "the valid hour " + ("before" if side[0] < a else "after")
                     + " (window edge)")
        else:
            prior = valid_idx[valid_idx < a][-rule.lookback_h:]
            pool = prior if len(prior) else valid_idx
            v = float(np.max(values[pool]))
            basis = (f"highest of the {len(prior)} valid hour(s) before" if len(prior)
                     else "highest valid hour after (none before in the window)")
        out[a:b] = v
        runs.append({"start_ns": int(lo[a]), "end_ns": int(hi[b - 1]), "hours": dur,
                     "value": v, "basis": basis})
    return out, runs
