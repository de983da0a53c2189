"""The analyzer's one door to a store (pvlib's ``iotools`` is the model): every function that
reads a campaign from a :class:`store.base.CampaignReader` — SQLite on the edge box, InfluxDB
centrally — lives here; the rest of the analyzer is pure (frames and config objects in,
results out). What a notebook calls::

    from cpaudit.config import load; from cpaudit.store.url import open_store
    from cpaudit.analyzer.iotools import campaign_report, validity_from_store
    st = open_store("campaign.db")                # or influxdb://host:8086/db?site=…&campaign=…
    doc = campaign_report(load("campaign.yaml"), st)       # validity, balances, reconciliation
    v = validity_from_store(load("campaign.yaml"), st)
    v.verdict, [c.id for c in v.checks if c.status == "fail"]

Windows are half-open, [start, end) in ns UTC, None = the campaign (its start record to its stop
record, or to the newest sample), the same for the validity report and the balances. A balance
over [start, end) is the change from the instant ``start`` to the instant ``end``: its closing
reading is the one at ``end`` (the only sample at or after ``end`` that is read).

Balances of a long campaign are read through a *thin frame*: a totalizer's amount over a window
needs its readings at the window's edges and every decrease (rollover, reset) in between — not the
3,600 readings an hour in between. The thin frame holds, for each tag and minute, the first and
last good reading (the store's rollup: for a counter that only rises, the minute's minimum and
maximum are exactly those), the raw readings of the minutes where the counter fell (a wrap or a
reset: vmin below the previous minute's vmax) and of the minutes at the edges of the span and of
the balance window. :func:`analyzer.balance.material_balance` on it gives the same result as on
every raw row (tested), in a fraction of the time.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from cpaudit.analyzer.balance import BalanceResult, layer_balance
from cpaudit.analyzer.cycles import effective_config
from cpaudit.analyzer.emission_rules import FLAG_STATES
from cpaudit.analyzer.indicators import energy_summary, water_indicators
from cpaudit.analyzer.material import (component_balance, line_balance, losses, per_raw_material,
                               utilisation)
from cpaudit.analyzer.pollutant import PollutantResult, pollutant_balance, pollutant_tags
from cpaudit.analyzer.production import load_node_hint
from cpaudit.analyzer.recon_layer import reconcile_balance
from cpaudit.analyzer.report import _cycle_rows, _iso, _pollutant_scope, _say_window, _window_doc
from cpaudit.analyzer.sankey import sankey
from cpaudit.analyzer.totals import balance_tags
from cpaudit.analyzer.validity import SKEW_TAG, ValidityReport, _interval_ns, assess, campaign_tags
from cpaudit.analyzer.window import balance_span
from cpaudit.config import Config
from cpaudit.config.models import Hj212Device
from cpaudit.store import Quality
from cpaudit.store.base import CampaignReader
from cpaudit.store.keys import MINUTE, health_tag
from cpaudit.store.memo import MemoStore


def _minute(ns: int) -> int:
    return ns // MINUTE * MINUTE


def _closing(end: int | None) -> int | None:
    """The read bound of a balance over [start, end): its closing reading is the one at the
    instant ``end``, so the samples read run to ``end`` inclusive."""
    return None if end is None else end + 1


def thin_frame(store: CampaignReader, tags: list[str], start: int | None, end: int | None,
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


def balances_from_store(cfg: Config, store: CampaignReader, start: int | None = None,
                        end: int | None = None,
                        layers: Sequence[str] = ("material", "water", "energy"),
                        extra_edges: Sequence[int] = (), frame_out: list[pd.DataFrame] | None = None
                        ) -> dict[str, BalanceResult]:
    """:func:`layer_balance` of each layer over [start, end) (from the instant ``start`` to the
    instant ``end``; None = the campaign), read through the thin frame: the windows are found
    first, then the minutes at their edges are read raw and the balances taken again.
    ``extra_edges`` [ns] are read raw too, and the frame is appended to ``frame_out``: the
    per-cycle balances (:func:`cycle_balances`) reuse it instead of reading again."""
    if not isinstance(store, MemoStore):    # the rollup is read three times: once per tag
        store = MemoStore(store)
    cfg = effective_config(cfg, store.cycle_marks())
    if end is None:
        end = store.campaign_end()
    cyc = cfg.requirements.cycles
    tags = [t for t in balance_tags(cfg, rates=False) if cyc is None or t != cyc.tag]
    hi = _closing(end)
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


def material_balance_from_store(cfg: Config, store: CampaignReader, start: int | None = None,
                                end: int | None = None) -> BalanceResult:
    """:func:`material_balance` over [start, end) read through the thin frame."""
    return balances_from_store(cfg, store, start, end, ("material",))["material"]


def _count_on_rollup(cfg: Config, store: CampaignReader, res: BalanceResult, thin: pd.DataFrame) -> None:
    """The thin frame has two readings a minute: count the samples and find the gaps on the
    rollup (whole minutes inside the window) and the raw edge minutes."""
    from cpaudit.analyzer.validity import tag_gaps
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


def cycle_balances(cfg: Config, store: CampaignReader, cycles: Sequence[tuple[int, int]],
                   layer: str = "material", frame: pd.DataFrame | None = None
                   ) -> list[dict[str, Any]]:
    """The balance of each cycle [start, end) [ns] of ``cycles``: its window, the production load
    is the caller's, the closure [%] per node and overall (``layer``). One thin frame over the
    cycles with the raw minutes at every edge (or ``frame``, one that has them, with the cycle
    tag's transitions), then :func:`layer_balance` per cycle."""
    if not cycles:
        return []
    cfg = effective_config(cfg, store.cycle_marks())
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


def accepted_balances(cfg: Config, store: CampaignReader, start: int | None = None, end: int | None = None,
                      layers: Sequence[str] = ("material", "water", "energy"),
                      rule: str | None = None, validity: Any = None
                      ) -> tuple[dict[str, BalanceResult], dict[str, Any] | None]:
    """:func:`balances_from_store` over the window the validity report accepts (``rule``:
    ``best_valid`` | ``campaign``, default ``requirements.balance_window``), and that window
    (``ValidityReport.balance_window``). [start, end) [ns] bound it; None = the campaign.
    ``validity``: that report when the caller has it already (the web's live one)."""
    store = store if isinstance(store, MemoStore) else MemoStore(store)
    v = validity if validity is not None else validity_from_store(
        cfg, store, start, end, window_rule=rule or cfg.requirements.balance_window)
    if end is None:
        end = store.campaign_end()
    a, b, _ = balance_span(cfg, v.balance_window, start, end)
    return balances_from_store(cfg, store, a, b, layers), v.balance_window


def collector_gaps(store: CampaignReader, cfg: Config) -> dict[str, list[tuple[int, int, str]]]:
    """The holes the collector recorded as its own gap records (``_health.<device>.gap_s``,
    written after a restart or a clock step when the hole is too long to list tick by tick),
    per device: (start, end, ``down`` | ``clock``). A few rows per device: read whole."""
    from cpaudit.store.sample import Reason
    tags = [health_tag(d.name, "gap_s") for d in cfg.devices]
    held = set(store.tags())
    tags = [t for t in tags if t in held]
    if not tags:
        return {}
    out: dict[str, list[tuple[int, int, str]]] = {}
    df = store.read(tags)
    for tag, ts, v, r in zip(df["tag"], df["ts"].tolist(), df["value"].tolist(),
                             df["reason"].tolist()):
        if v == v and r in (Reason.DOWN, Reason.CLOCK):
            dev = tag[len(health_tag("", "")) - 1:-len(".gap_s")]
            out.setdefault(dev, []).append((int(ts), int(ts + v * 1e9), Reason(r).label))
    return out


def validity_from_store(cfg: Config, store: CampaignReader, start: int | None = None,
                        end: int | None = None, window_rule: str | None = None
                        ) -> ValidityReport:
    """The validity report of [start, end) (None = from the campaign's start record to its stop
    record, or to the newest sample): reads the rollup of the campaign's tags and the cycle
    tag's transitions, then :func:`analyzer.validity.assess`."""
    cfg = effective_config(cfg, store.cycle_marks())
    if start is None:
        start = store.campaign_start()
    if end is None:
        end = store.campaign_end()
    tags = list(campaign_tags(cfg)) + [SKEW_TAG]
    rollup = store.rollup(tags, start, end)
    cyc = cfg.requirements.cycles
    states = store.transitions(cyc.tag, start, end) if cyc is not None and cyc.tag else None
    return assess(cfg, rollup, states, start, end, store.tags(), window_rule,
                  collector_gaps(store, cfg))


class LiveValidity:
    """A validity report kept current while the campaign runs: the first call reads the rollup of
    the campaign so far, each later one appends only the minutes written since (the store's
    ``rollup_since``) and the cycle tag's newest transitions, then judges again. The web's live
    page holds one per campaign. Windows other than the default are computed afresh."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.tags = list(campaign_tags(cfg)) + [SKEW_TAG]
        self.seq = 0
        self.start: int | None = None          # the campaign start the rollup was read from
        self.rollup: pd.DataFrame | None = None
        self.states: pd.DataFrame | None = None

    def report(self, store: CampaignReader, start: int | None = None, end: int | None = None
               ) -> ValidityReport:
        first = store.campaign_start()
        if end is not None or (start is not None and start != first) or \
                store.campaign_end() is not None:
            return validity_from_store(self.cfg, store, start, end)
        cfg = effective_config(self.cfg, store.cycle_marks())
        start = first
        cyc = self.cfg.requirements.cycles
        if self.rollup is not None and start != self.start:
            # restarted since (on the web, by a change from the office the collector applied,
            # or forwarded centrally): what was read from the old start is read again
            self.rollup = self.states = None
        self.start = start
        if self.rollup is None:
            self.seq = store.max_seq()
            self.rollup = store.rollup(self.tags, start)
            if cyc is not None and cyc.tag:
                self.states = store.transitions(cyc.tag, start)
        else:
            self.seq, tail = store.rollup_since(self.seq, self.tags)
            if len(tail):
                if start is not None:
                    tail = tail[tail["bucket"] >= start // MINUTE * MINUTE]
                both = pd.concat([self.rollup, tail], ignore_index=True)
                self.rollup = both.drop_duplicates(["tag", "bucket"], keep="last").sort_values(
                    ["tag", "bucket"], kind="stable", ignore_index=True)
            if cyc is not None and cyc.tag:
                since = None if self.states is None or not len(self.states) else \
                    int(self.states["ts"].max())
                new = store.transitions(cyc.tag, since if since is not None else start)
                both = pd.concat([self.states, new], ignore_index=True) \
                    if self.states is not None else new
                # a run of equal values across the seam is one state, not a new transition
                both = both.drop_duplicates("ts").sort_values("ts", ignore_index=True)
                keep = np.concatenate([[True], both["value"].to_numpy()[1:] !=
                                       both["value"].to_numpy()[:-1]])
                self.states = both[keep].reset_index(drop=True)
        return assess(cfg, self.rollup, self.states, start, None)


def pollutant_from_store(cfg: Config, store: CampaignReader, start: int | None = None,
                         end: int | None = None) -> PollutantResult:
    """The pollutant balance of [start, end) from a store. A cycle analyzer's result for the window's last (or, with
    ``following``, first) cycle comes in after (before) the window: the read reaches one
    longest interval beyond the window on each side so that cycle is covered."""
    tags = pollutant_tags(cfg)
    iv = _interval_ns(cfg)
    pad = max([iv.get(t, 0) for t in tags if iv.get(t, 0) > MINUTE], default=0)
    lo = None if start is None or not pad else start - pad
    hi = None if end is None or not pad else end + pad
    r = store.rollup(tags, start if lo is None else lo, end if hi is None else hi) if tags \
        else pd.DataFrame()
    return pollutant_balance(cfg, r, start, end, flagged_samples(
        cfg, store, tags, start if lo is None else lo, end if hi is None else hi))


def flagged_samples(cfg: Config, store: CampaignReader, tags: list[str], start: int | None,
                    end: int | None) -> pd.DataFrame | None:
    """The samples of ``tags`` from HJ 212 loggers that carry a data flag (C, M, D, F, B, T, S
    and others: HJ 212-2017 Table 8) as (ts, tag, reason); None when no tag comes from one.
    Only those tags are read sample by sample (a logger sends every 30 s or slower)."""
    hj = {t.tag for d in cfg.devices if isinstance(d, Hj212Device) for t in d.factors}
    want = [t for t in tags if t in hj]
    if not want:
        return None
    df = store.read(want, start, end)
    if not len(df):
        return None
    flagged = df[df["reason"].isin([int(r) for r in FLAG_STATES]) &
                 (df["quality"] != int(Quality.GOOD))]
    return flagged[["ts", "tag", "reason"]].reset_index(drop=True)


def campaign_report(cfg: Config, store: CampaignReader, start: int | None = None, end: int | None = None,
                    validity: bool = True, alpha: float = 0.05, window: str | None = None,
                    per_cycle: bool = True) -> dict[str, Any]:
    """Validity (7.3.3.3), the four balances (7.3.4-7.3.7) with the loss table, utilisation,
    component balances and indicators, the reconciliation of the material and water layers, and
    Sankey data per layer. [start, end) in ns; None = the whole campaign.

    Every balance is taken over the window the validity report accepts (``window``:
    ``best_valid``, the default of ``requirements.balance_window``: cycles, or hours, below the
    audit period's average load left out) or over [start, end) as given (``campaign``);
    ``balance_window`` names it: the cycles used, those left out and why. ``per_cycle``: the
    material closure of each cycle used (``balances.material.per_cycle``)."""
    store = MemoStore(store)         # each tag's rollup read once for the whole report
    tz = cfg.campaign.timezone
    doc: dict[str, Any] = {"campaign": cfg.campaign.name, "site": cfg.campaign.site,
                           "audit_focus": cfg.campaign.audit_focus,
                           "audit_focus_zh": cfg.campaign.audit_focus_zh, "timezone": tz}
    rule = window or cfg.requirements.balance_window
    # the validity report chooses the balance window, so it is computed even when not shown
    vrep = validity_from_store(cfg, store, start, end, window_rule=rule)
    vdoc = vrep.to_dict()
    if validity:
        doc["validity"] = vdoc
    if end is None:          # a campaign stopped by hand ends there
        end = store.campaign_end()
    bw = vrep.balance_window
    b_start, b_end, how = balance_span(cfg, bw, start, end)
    # the cycles the per-cycle table will show: their edges read raw with the balance's frame
    rows = _cycle_rows(bw, how, b_start, b_end) if per_cycle else []
    frames: list[Any] = []
    layers = balances_from_store(cfg, store, b_start, b_end,
                                 extra_edges=[x for r in rows for x in (r["start"], r["end"])],
                                 frame_out=frames)
    mat = layers["material"]
    has_window = mat.start_ns is not None
    # no balance yet (the first minutes, no complete cycle): say what it will take, no figure
    comps = [component_balance(cfg, mat, c) for c in cfg.components] if has_window else []
    # the pollutant factors over the material balance's window, so that all balances agree
    p_start = mat.start_ns if mat.start_ns is not None else start
    p_end = mat.end_ns if mat.end_ns is not None else end
    pol = pollutant_from_store(cfg, store, p_start, p_end)
    balances: dict[str, Any] = {
        "material": {**mat.to_dict(), "losses": losses(cfg, mat) if has_window else [],
                     "utilisation": utilisation(cfg, mat, comps) if has_window else [],
                     "raw_materials": per_raw_material(cfg, mat, comps) if has_window else [],
                     "production_line": line_balance(cfg, mat) if has_window else None,
                     "components": [c.to_dict() for c in comps]},
        "water": {**layers["water"].to_dict(),
                  "indicators": water_indicators(cfg, layers["water"], mat)},
        "energy": {**layers["energy"].to_dict(),
                   "summary": energy_summary(cfg, layers["energy"], mat)},
        "pollutant": {**pol.to_dict(), "scope": _pollutant_scope(cfg)},
    }
    for v in balances.values():
        v["start"], v["end"] = _iso(v.get("start_ns"), tz), _iso(v.get("end_ns"), tz)
    doc["balance_window"] = _window_doc(cfg, bw, how, vdoc, tz)
    for v in balances.values():
        _say_window(v, doc["balance_window"])
    if rows and has_window:
        balances["material"]["per_cycle"] = _per_cycle(cfg, store, rows, mat, tz,
                                                       frames[0] if frames else None)
    doc["balances"] = balances
    hint = load_node_hint(cfg, vdoc, {n.node: (n.closure_pct, n.ok) for n in mat.nodes},
                          cfg.requirements.closure_limit_pct)
    if hint and validity:
        vdoc["hints"].insert(0, hint)
        vdoc["fixes"] = [f for f in vdoc["fixes"] if f["check"] != "load"]
        if vdoc["verdict"] == "invalid":     # the node comes first: more cycles will not help
            vdoc["fixes"].insert(0, {"check": "load", "fix": hint})
        for c in vdoc["checks"]:
            if c["id"] == "load":
                c["fix"] = hint
    doc["reconciliation"] = {
        "material": reconcile_balance(cfg, mat, alpha),
        "water": reconcile_balance(cfg, layers["water"], alpha),
        "note": "the 5 % closure verdict (DB11/T 1156 7.3.4 b) and the statistical tests are "
                "separate: a closure within 5 % can still be statistically inconsistent with "
                "tight meters, and one beyond 5 % can be within the noise of loose ones",
    }
    doc["sankey"] = {layer: sankey(cfg, res) for layer, res in layers.items()}
    doc["manual"] = manual_entries(store, tz)
    return doc


def manual_entries(store: CampaignReader, tz: str) -> list[dict[str, Any]]:
    """Every reading entered by hand (``store.manual()``), with its note and, when retracted
    (kept with bad quality), when and why: the API's list and the export's table."""
    frame = store.manual()
    notes, gone = store.manual_notes()
    out = []
    for tag, ts, value, q in zip(frame["tag"].tolist(), frame["ts"].tolist(),
                                 frame["value"].tolist(), frame["quality"].tolist()):
        r = gone.get((tag, int(ts)))
        out.append({"tag": tag, "ts": int(ts), "time": _iso(int(ts), tz), "value": value,
                    "note": notes.get((tag, int(ts)), ""), "retracted": q != 0,
                    "retracted_at": _iso(r["at"], tz) if r else None,
                    "retraction_note": r["note"] if r else None})
    return out


def _per_cycle(cfg: Config, store: CampaignReader, rows: list[dict[str, Any]], mat: Any, tz: str,
               frame: Any) -> list[dict[str, Any]]:
    """Each cycle the material balance used: start, end, load, closure per node and overall."""
    rows = [r for r in rows if mat.start_ns <= r["start"] and r["end"] <= mat.end_ns]
    res = cycle_balances(cfg, store, [(r["start"], r["end"]) for r in rows], frame=frame)
    out = []
    for r, b in zip(rows, res):
        out.append({"start": _iso(r["start"], tz), "end": _iso(r["end"], tz),
                    "start_ns": r["start"], "end_ns": r["end"], "hours": r["hours"],
                    "load": r.get("load"), "counts": r.get("counts"),
                    "closure_pct": b["nodes"], "overall_closure_pct": b["overall"],
                    "verdict": b["verdict"], "product": b["product"],
                    "product_unit": b["product_unit"]})
    return out


