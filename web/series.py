"""Series for the pages: a tag downsampled on the server, and closure over time.

Both read the store's per-minute rollup, so a 72 h campaign at 1 s (259 200 readings a tag) is
4 320 rows: the explorer stays fast, and the closure history is a preview that the balance
documents (``/api/v1/balances``, read through the thin frame) make exact.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from cpaudit.analyzer.totals import layer_streams, layer_value, theoretical_per_hour, unwrap
from cpaudit.config import ENV, Config
from cpaudit.store.base import CampaignReader
from cpaudit.store.keys import MINUTE


def _span(store: CampaignReader, start: int | None, end: int | None) -> tuple[int, int]:
    """The request's window [start, end); by default from the campaign's start (its record, else
    the store's first minute) to just after its newest reading."""
    if start is None:
        start = store.campaign_start()
        if start is None:
            first = store.first_minute()
            start = first if first is not None else time.time_ns()
    if end is None:        # the newest reading: a finished campaign is shown whole
        last = store.quick_stats()["last_ts"]
        end = int(last) + 1 if last is not None else time.time_ns()     # just after it
    return int(start), int(end)


def downsample(store: CampaignReader, tag: str, start: int | None, end: int | None,
               points: int) -> dict[str, Any]:
    start, end = _span(store, start, end)
    if end <= start:
        end = start + MINUTE
    bucket = -(-(end - start) // points)
    if bucket >= MINUTE:
        bucket = -(-bucket // MINUTE) * MINUTE
        r = store.rollup([tag], start, end)
        r = r[r["good"] > 0]
        idx = ((r["bucket"].to_numpy(np.int64) - start // MINUTE * MINUTE) // bucket)
        frame = pd.DataFrame({"i": idx, "good": r["good"].to_numpy(), "vsum": r["vsum"].to_numpy(),
                              "vmin": r["vmin"].to_numpy(), "vmax": r["vmax"].to_numpy()})
        g = frame.groupby("i").agg(good=("good", "sum"), vsum=("vsum", "sum"),
                                   vmin=("vmin", "min"), vmax=("vmax", "max"))
        base = start // MINUTE * MINUTE
        source = "rollup"
    else:
        raw = store.read([tag], start, end)
        raw = raw[raw["quality"] == 0]
        idx = (raw["ts"].to_numpy(np.int64) - start) // bucket
        frame = pd.DataFrame({"i": idx, "v": raw["value"].to_numpy()})
        g = frame.groupby("i").agg(good=("v", "size"), vsum=("v", "sum"), vmin=("v", "min"),
                                   vmax=("v", "max"))
        base = start
        source = "raw"
    n = int(-(-(end - base) // bucket))
    mean: list[float | None] = [None] * n
    lo: list[float | None] = [None] * n
    hi: list[float | None] = [None] * n
    gi = g.index.to_numpy(np.int64)
    good = g["good"].to_numpy(np.float64)
    vs, vn, vx = (g[c].to_numpy(np.float64) for c in ("vsum", "vmin", "vmax"))
    for k in np.flatnonzero((gi >= 0) & (gi < n) & (good > 0)):
        i = int(gi[k])
        mean[i] = float(vs[k] / good[k])
        lo[i], hi[i] = float(vn[k]), float(vx[k])
    t = [(base + i * bucket) // 1_000_000 for i in range(n)]
    return {"tag": tag, "start_ns": start, "end_ns": end, "bucket_s": bucket / 1e9,
            "source": source, "t_ms": t, "mean": mean, "min": lo, "max": hi}


def _increments(r: pd.DataFrame, rollover: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Per minute with a good reading: (bucket, amount counted since the previous such minute),
    from the minute's highest reading, a fall taken as a rollover or a reset as
    :func:`analyzer.totals.unwrap` takes it."""
    r = r[r["good"] > 0]
    b = r["bucket"].to_numpy(np.int64)
    cum, _, _ = unwrap(r["vmax"].to_numpy(np.float64), rollover)
    return b, np.diff(cum, prepend=0.0)


def closure_history(cfg: Config, store: CampaignReader, layer: str, start: int | None, end: int | None,
                    step_min: int, trailing_h: int) -> dict[str, Any]:
    start, end = _span(store, start, end)
    if step_min <= 0:
        step_min = int(min(60, max(1, (end - start) / MINUTE / 200)))
    streams = layer_streams(cfg, layer)
    index = cfg.tag_index()
    step = step_min * MINUTE
    grid = np.arange(start // step * step + step, end + step, step, dtype=np.int64)
    grid = grid[grid <= end + step - 1]
    tags = [s.tag for s in streams if s.tag]
    roll = store.rollup(tags, start, end) if tags else pd.DataFrame()
    by_tag = dict(tuple(roll.groupby("tag", sort=False, observed=True))) if len(roll) else {}
    cum: dict[str, np.ndarray] = {}
    missing: list[str] = []
    for s in streams:
        if s.tag is None:
            if s.value is not None and s.per == "hour":    # theoretical: an amount per hour
                per_h, unit = theoretical_per_hour(s)
                try:
                    f, _ = layer_value(cfg, layer, 1.0, unit, s)
                except ValueError:
                    f = float("nan")
                cum[s.id] = f * per_h * (grid - start) / 3.6e12
            else:
                missing.append(s.id)
            continue
        info = index[s.tag]
        rows = by_tag.get(s.tag)
        if rows is None or not len(rows):
            missing.append(s.id)
            continue
        b, d = _increments(rows, info.rollover)
        try:
            f, _ = layer_value(cfg, layer, 1.0, info.unit, s)
        except ValueError:
            f = float("nan")
        c = np.concatenate([[0.0], np.cumsum(d)])
        pos = np.searchsorted(b, grid, side="left")      # minutes before each checkpoint
        cum[s.id] = c[pos] * f
    supply_only = layer in ("water", "energy")
    nodes: dict[str, dict[str, Any]] = {}
    lag = max(1, int(round(trailing_h * 60 / step_min)))

    def closure(ins: list[str], outs: list[str]) -> tuple[list[Any], list[Any]]:
        if any(i not in cum for i in ins + outs) or (supply_only and not outs) or not ins:
            return [None] * len(grid), [None] * len(grid)
        tin = np.sum([cum[i] for i in ins], axis=0)
        tout = np.sum([cum[o] for o in outs], axis=0) if outs else np.zeros(len(grid))
        with np.errstate(invalid="ignore", divide="ignore"):
            cl = np.where(tin > 0, 100.0 * (tin - tout) / tin, np.nan)
            din = tin[lag:] - tin[:-lag] if len(tin) > lag else np.empty(0)
            dout = tout[lag:] - tout[:-lag] if len(tout) > lag else np.empty(0)
            tr = np.where(din > 0, 100.0 * (din - dout) / din, np.nan)
        trailing = [None] * min(lag, len(grid)) + [None if not np.isfinite(x) else float(x)
                                                    for x in tr]
        return [None if not np.isfinite(x) else float(x) for x in cl], trailing
    for n in cfg.flowsheet.nodes:
        ins = [s.id for s in streams if s.to == n.id]
        outs = [s.id for s in streams if s.from_ == n.id]
        if not ins and not outs:
            continue
        cu, tr = closure(ins, outs)
        nodes[n.id] = {"name": n.name, "name_zh": n.name_zh, "cumulative": cu, "trailing": tr}
    cu, tr = closure([s.id for s in streams if s.from_ == ENV],
                     [s.id for s in streams if s.to == ENV])
    nodes["overall"] = {"name": cfg.campaign.audit_focus or "overall",
                        "name_zh": cfg.campaign.audit_focus_zh, "cumulative": cu, "trailing": tr}
    return {"layer": layer, "limit_pct": cfg.requirements.closure_limit_pct,
            "step_min": step_min, "trailing_h": trailing_h,
            "t_ms": [int(x) // 1_000_000 for x in grid], "nodes": nodes, "missing": missing,
            "note": "from the minutes the store keeps (a preview); the balance documents give the "
                    "exact figures over their window"}
