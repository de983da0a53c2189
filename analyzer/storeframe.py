"""Balances of a long campaign without pulling every raw row: a *thin frame*.

A totalizer's amount over a window needs its readings at the window's edges and every decrease
(rollover, reset) in between — not the 3,600 readings an hour in between. The thin frame holds,
for each tag and minute, the first and last good reading (the store's rollup: for a counter that
only rises, the minute's minimum and maximum are exactly those), the raw readings of the minutes
where the counter fell (a wrap or a reset: vmin below the previous minute's vmax) and of the
minutes at the edges of the span and of the balance window. :func:`analyzer.balance.material_balance`
on it gives the same result as on every raw row (tested), in a fraction of the time.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from analyzer.balance import BalanceResult, layer_balance
from analyzer.totals import balance_tags
from config import Config
from store import Quality

MINUTE = 60_000_000_000


def _minute(ns: int) -> int:
    return ns // MINUTE * MINUTE


def thin_frame(store: Any, tags: list[str], start: int | None, end: int | None,
               exact_at: Sequence[int] = ()) -> pd.DataFrame:
    """The thin frame (SAMPLE_COLUMNS) of ``tags`` over [start, end), with the raw readings of
    the minutes holding any instant of ``exact_at``."""
    r = store.rollup(tags, start, end)
    r = r[r["good"] > 0]
    parts = []
    raw_minutes: dict[str, set[int]] = {t: {_minute(x) for x in exact_at} for t in tags}
    for tag, g in r.groupby("tag", sort=False):
        b = g["bucket"].to_numpy(np.int64)
        vmin, vmax = g["vmin"].to_numpy(), g["vmax"].to_numpy()
        fell = np.concatenate([[False], vmin[1:] < vmax[:-1]]) | (vmin > vmax)
        want = raw_minutes.setdefault(str(tag), set())
        want.update(b[fell].tolist())
        want.update((int(b[0]), int(b[-1])))
        keep = ~np.isin(b, list(want))
        n = int(keep.sum())
        ts = np.empty(2 * n, np.int64)
        ts[0::2] = g["first_ts"].to_numpy()[keep].astype(np.int64)
        ts[1::2] = g["last_ts"].to_numpy()[keep].astype(np.int64)
        val = np.empty(2 * n)
        val[0::2], val[1::2] = vmin[keep], vmax[keep]
        parts.append(pd.DataFrame({"ts": ts, "tag": tag, "value": val,
                                   "quality": np.int8(Quality.GOOD), "reason": np.int8(0)}))
    for tag, minutes in raw_minutes.items():
        for m in sorted(minutes):
            lo = m if start is None else max(m, start)
            hi = m + MINUTE if end is None else min(m + MINUTE, end)
            if hi > lo:
                parts.append(store.read([tag], lo, hi))
    if not parts:
        return store.read(tags, start, end)     # nothing good: the (bad) rows say why
    frame = pd.concat(parts, ignore_index=True)
    # a minute with one good reading gave the same (ts, value) twice
    frame = frame.drop_duplicates(["tag", "ts"], keep="last")
    return frame.sort_values(["tag", "ts"], kind="stable", ignore_index=True)


def balances_from_store(cfg: Config, store: Any, start: int | None = None,
                        end: int | None = None,
                        layers: Sequence[str] = ("material", "water", "energy")
                        ) -> dict[str, BalanceResult]:
    """:func:`layer_balance` of each layer over [start, end], read through the thin frame: the
    windows are found first, then the minutes at their edges are read raw and the balances taken
    again."""
    from analyzer.cycles import campaign_end, effective_config
    cfg = effective_config(cfg, store)
    if end is None:
        end = campaign_end(store)
    cyc = cfg.requirements.cycles
    tags = [t for t in balance_tags(cfg, rates=False) if cyc is None or t != cyc.tag]
    hi = None if end is None else end + 1
    states = store.transitions(cyc.tag, start, hi) if cyc is not None and cyc.tag else None

    def frame(exact: list[int]) -> pd.DataFrame:
        f = thin_frame(store, tags, start, hi, exact)
        return f if states is None else pd.concat([f, states], ignore_index=True)

    first_frame = frame([])
    first = {layer: layer_balance(cfg, first_frame, layer, start, end) for layer in layers}
    edges = [x for r in first.values() if r.start_ns is not None and r.end_ns is not None
             for x in (r.start_ns, r.end_ns)]
    if not edges:
        return first
    thin = frame(edges)
    rate_tags = [s.rate_tag for s in cfg.flowsheet.streams if s.rate_tag] + [
        e.pressure_tag for e in cfg.energy.effective if e.pressure_tag]
    rates = store.rollup(rate_tags, start, hi)
    out = {layer: layer_balance(cfg, thin, layer, start, end, rates) for layer in layers}
    for res in out.values():
        if res.start_ns is not None:
            _count_on_rollup(cfg, store, res, thin)
    return out


def material_balance_from_store(cfg: Config, store: Any, start: int | None = None,
                                end: int | None = None) -> BalanceResult:
    """:func:`material_balance` over [start, end] read through the thin frame."""
    return balances_from_store(cfg, store, start, end, ("material",))["material"]


def _count_on_rollup(cfg: Config, store: Any, res: BalanceResult, thin: pd.DataFrame) -> None:
    """The thin frame has two readings a minute: count the samples and find the gaps on the
    rollup (whole minutes inside the window) and the raw edge minutes."""
    from analyzer.validity import tag_gaps
    assert res.start_ns is not None and res.end_ns is not None
    s0, e0 = res.start_ns, res.end_ns
    inner_lo = -(-s0 // MINUTE) * MINUTE               # first whole minute inside
    inner_hi = (e0 + 1) // MINUTE * MINUTE             # end of the last whole minute inside
    interval = int(cfg.collector.interval_s * 1e9)
    totals = res.streams + ([res.product] if res.product and res.product not in res.streams
                            else [])
    r = store.rollup([t.tag for t in totals if t.tag], s0, e0 + 1)
    by_tag = dict(tuple(r.groupby("tag", sort=False)))
    good = thin[thin["quality"] == int(Quality.GOOD)]
    edge = good[((good["ts"] >= s0) & (good["ts"] < inner_lo)) |
                ((good["ts"] >= max(inner_hi, inner_lo)) & (good["ts"] <= e0))]
    edge_counts = edge.groupby("tag", observed=True).size().to_dict()
    for t in totals:
        if t.tag is None or t.method != "totalizer":
            continue
        rows = by_tag.get(t.tag, r.iloc[0:0])
        t.gaps, _ = tag_gaps(rows, s0, e0 + 1, interval)
        whole = rows[(rows["bucket"] >= inner_lo) & (rows["bucket"] + MINUTE <= inner_hi)]
        t.good_samples = int(whole["good"].sum()) + int(edge_counts.get(t.tag, 0))
