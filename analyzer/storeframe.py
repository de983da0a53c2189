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
    # one read per minute for every tag that wants it raw (the edges: all of them)
    by_minute: dict[int, list[str]] = {}
    for tag, minutes in raw_minutes.items():
        for m in minutes:
            by_minute.setdefault(m, []).append(tag)
    for m in sorted(by_minute):
        lo = m if start is None else max(m, start)
        hi = m + MINUTE if end is None else min(m + MINUTE, end)
        if hi > lo:
            parts.append(store.read(by_minute[m], lo, hi))
    if not parts:
        return store.read(tags, start, end)     # nothing good: the (bad) rows say why
    frame = pd.concat(parts, ignore_index=True)
    # a minute with one good reading gave the same (ts, value) twice
    frame = frame.drop_duplicates(["tag", "ts"], keep="last")
    return frame.sort_values(["tag", "ts"], kind="stable", ignore_index=True)


def balances_from_store(cfg: Config, store: Any, start: int | None = None,
                        end: int | None = None,
                        layers: Sequence[str] = ("material", "water", "energy"),
                        extra_edges: Sequence[int] = (), frame_out: list[pd.DataFrame] | None = None
                        ) -> dict[str, BalanceResult]:
    """:func:`layer_balance` of each layer over [start, end], read through the thin frame: the
    windows are found first, then the minutes at their edges are read raw and the balances taken
    again. ``extra_edges`` [ns] are read raw too, and the frame is appended to ``frame_out``:
    the per-cycle balances (:func:`cycle_balances`) reuse it instead of reading again."""
    from analyzer.cycles import campaign_end, effective_config
    from store.memo import MemoStore
    if not isinstance(store, MemoStore):    # the rollup is read three times: once per tag
        store = MemoStore(store)
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
    thin = frame(edges + list(extra_edges))
    if frame_out is not None:
        frame_out.append(thin)
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
        pad = min(10 * MINUTE, shortest // 4)
        a, b = a - pad, b + pad
        if start is not None:
            a = max(a, start)
        if end is not None:
            b = min(b, end)
    return a, b, "best valid window"


def cycle_balances(cfg: Config, store: Any, cycles: Sequence[tuple[int, int]],
                   layer: str = "material", frame: pd.DataFrame | None = None
                   ) -> list[dict[str, Any]]:
    """The balance of each cycle [start, end) [ns] of ``cycles``: its window, the production load
    is the caller's, the closure [%] per node and overall (``layer``). One thin frame over the
    cycles with the raw minutes at every edge (or ``frame``, one that has them, with the cycle
    tag's transitions), then :func:`layer_balance` per cycle."""
    from analyzer.cycles import effective_config
    if not cycles:
        return []
    cfg = effective_config(cfg, store)
    cyc = cfg.requirements.cycles
    tags = [t for t in balance_tags(cfg, rates=False) if cyc is None or t != cyc.tag]
    shortest = min(b - a for a, b in cycles)
    pad = min(10 * MINUTE, shortest // 4)
    lo, hi = min(a for a, _ in cycles) - pad, max(b for _, b in cycles) + pad + 1
    edges = [x for c in cycles for x in c]
    if frame is None:
        frame = thin_frame(store, tags, lo, hi, edges)
        if cyc is not None and cyc.tag:
            frame = pd.concat([frame, store.transitions(cyc.tag, lo, hi)], ignore_index=True)
    ts = frame["ts"].to_numpy(np.int64)
    out = []
    for a, b in cycles:
        # the cycle's rows only: a selection per tag in a short frame, not in the whole one
        part = frame[(ts >= a - pad - MINUTE) & (ts <= b + pad + MINUTE)]
        # no rate cross-check per cycle (the balance over the window has it): seconds saved
        res = layer_balance(cfg, part, layer, a - pad, b + pad, None)
        out.append({
            "start_ns": res.start_ns, "end_ns": res.end_ns, "cycle_start_ns": a,
            "cycle_end_ns": b, "verdict": res.verdict,
            "nodes": {n.node: n.closure_pct for n in res.nodes},
            "overall": res.overall.closure_pct if res.overall else None,
            "overall_in": res.overall.total_in if res.overall else None,
            "product": res.product.amount if res.product else None,
            "product_unit": res.product.unit if res.product else None})
    return out


def accepted_balances(cfg: Config, store: Any, start: int | None = None, end: int | None = None,
                      layers: Sequence[str] = ("material", "water", "energy"),
                      rule: str | None = None, validity: Any = None
                      ) -> tuple[dict[str, BalanceResult], dict[str, Any] | None]:
    """:func:`balances_from_store` over the window the validity report accepts (``rule``:
    ``best_valid`` | ``campaign``, default ``requirements.balance_window``), and that window
    (``ValidityReport.balance_window``). [start, end] [ns] bound it; None = the campaign.
    ``validity``: that report when the caller has it already (the web's live one)."""
    from analyzer.cycles import campaign_end
    from analyzer.validity import from_store
    from store.memo import MemoStore
    store = store if isinstance(store, MemoStore) else MemoStore(store)
    v = validity if validity is not None else from_store(
        cfg, store, start, None if end is None else end + 1,
        window_rule=rule or cfg.requirements.balance_window)
    if end is None:
        end = campaign_end(store)
    a, b, _ = balance_span(cfg, v.balance_window, start, end)
    return balances_from_store(cfg, store, a, b, layers), v.balance_window
