"""The whole analysis of a campaign in one document: what ``cpaudit analyze --json``, the web
API and the exports share, and the library call for a notebook::

    from analyzer.report import campaign_report
    doc = campaign_report(cfg, store)            # validity, balances, reconciliation, diagrams
"""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from analyzer.indicators import energy_summary, water_indicators
from analyzer.material import (component_balance, line_balance, losses, per_raw_material,
                               utilisation)
from analyzer.pollutant import pollutant_from_store
from analyzer.recon_layer import reconcile_balance
from analyzer.sankey import sankey
from analyzer.storeframe import balance_span, balances_from_store, cycle_balances
from analyzer.production import load_node_hint
from analyzer.validity import from_store
from config import Config


def _pollutant_scope(cfg: Config) -> str | None:
    """Whose loads the pollutant factors are when a point lies in a shared utility: the whole
    utility's (the share of each source in a load is not measured, so nothing is allocated)."""
    util = {n: u for u in cfg.allocation.utilities for n in u.nodes}
    streams = {s.id: s for s in cfg.flowsheet.streams}
    stacks = {st.id: st.node for st in cfg.pollutants.stacks}
    hit = set()
    for f in cfg.pollutants.factors:
        for pt in f.points:
            node = stacks.get(pt.stack) if pt.stack else (
                streams[pt.stream].to if pt.stream in streams else None)
            if node in util:
                hit.add(util[node].name or util[node].id)
    if not hit:
        return None
    return (f"the loads at {', '.join(sorted(hit))} are the whole utility's, other workshops' "
            "share included: a source's share of a measured load is not measured, so nothing is "
            "allocated (the energy and water per unit product are)")


def _iso(ns: int | None, tz: str) -> str | None:
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, ZoneInfo(tz)).isoformat(timespec="seconds")


def campaign_report(cfg: Config, store: Any, start: int | None = None, end: int | None = None,
                    validity: bool = True, alpha: float = 0.05, window: str | None = None,
                    per_cycle: bool = True) -> dict[str, Any]:
    """Validity (7.3.3.3), the four balances (7.3.4-7.3.7) with the loss table, utilisation,
    component balances and indicators, the reconciliation of the material and water layers, and
    Sankey data per layer. [start, end] in ns; None = the whole campaign.

    Every balance is taken over the window the validity report accepts (``window``:
    ``best_valid``, the default of ``requirements.balance_window``: cycles, or hours, below the
    audit period's average load left out) or over [start, end] as given (``campaign``);
    ``balance_window`` names it: the cycles used, those left out and why. ``per_cycle``: the
    material closure of each cycle used (``balances.material.per_cycle``)."""
    from store.memo import MemoStore
    store = MemoStore(store)         # each tag's rollup read once for the whole report
    tz = cfg.campaign.timezone
    doc: dict[str, Any] = {"campaign": cfg.campaign.name, "site": cfg.campaign.site,
                           "audit_focus": cfg.campaign.audit_focus,
                           "audit_focus_zh": cfg.campaign.audit_focus_zh, "timezone": tz}
    rule = window or cfg.requirements.balance_window
    # the validity report chooses the balance window, so it is computed even when not shown
    vrep = from_store(cfg, store, start, None if end is None else end + 1, window_rule=rule)
    vdoc = vrep.to_dict()
    if validity:
        doc["validity"] = vdoc
    from analyzer.cycles import campaign_end
    if end is None:          # a campaign stopped by hand ends there
        end = campaign_end(store)
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
    p_end = mat.end_ns if mat.end_ns is not None else (None if end is None else end + 1)
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
    if hasattr(store, "manual"):
        doc["manual"] = manual_entries(store, tz)
    return doc


MANUAL_NOTE = "manual."         # store meta: manual.<tag>.<ts> = the note of a hand reading
MANUAL_RETRACTED = "retracted."  # store meta: retracted.<tag>.<ts> = {"at": ns, "note": why}


def manual_entries(store: Any, tz: str) -> list[dict[str, Any]]:
    """Every reading entered by hand (``store.manual()``), with its note and, when retracted
    (kept with bad quality), when and why: the API's list and the export's table."""
    import json
    frame = store.manual()
    if hasattr(store, "meta_items"):
        records = store.meta_items()
    else:                   # a central reader: the records' keys, then the few it needs
        records = {k: store.get_meta(k) or "" for k in store.meta_keys()
                   if k.startswith((MANUAL_NOTE, MANUAL_RETRACTED))}
    notes = {k: v for k, v in records.items() if k.startswith(MANUAL_NOTE)}
    gone = {k: v for k, v in records.items() if k.startswith(MANUAL_RETRACTED)}
    out = []
    for tag, ts, value, q in zip(frame["tag"].tolist(), frame["ts"].tolist(),
                                 frame["value"].tolist(), frame["quality"].tolist()):
        r = json.loads(gone.get(f"{MANUAL_RETRACTED}{tag}.{ts}") or "null")
        out.append({"tag": tag, "ts": int(ts), "time": _iso(int(ts), tz), "value": value,
                    "note": notes.get(f"{MANUAL_NOTE}{tag}.{ts}", ""), "retracted": q != 0,
                    "retracted_at": _iso(r["at"], tz) if r else None,
                    "retraction_note": r["note"] if r else None})
    return out


def _window_doc(cfg: Config, bw: dict[str, Any] | None, how: str, vdoc: dict[str, Any],
                tz: str) -> dict[str, Any]:
    """The balance window as the report names it: rule, span, cycles (hours) used and left out
    with why, and, before there is any, what it will take."""
    out: dict[str, Any] = dict(bw) if bw else {"rule": cfg.requirements.balance_window,
                                               "reason": vdoc["message"]}
    out["chosen"] = how
    out["start"], out["end"] = _iso(out.get("start"), tz), _iso(out.get("end"), tz)
    for key in ("used", "left_out", "included_not_counting"):
        out[key] = [{**r, "start_ns": r["start"], "end_ns": r["end"],
                     "start": _iso(r["start"], tz), "end": _iso(r["end"], tz)}
                    for r in out.get(key, [])]
    for c in vdoc.get("checks", []):
        if c["id"] == "duration" and c["details"].get("first_cycle"):
            out["first_cycle"] = c["details"]["first_cycle"]
    return out


def _say_window(v: dict[str, Any], w: dict[str, Any]) -> None:
    """Each balance names its window; one over fewer cycles (hours) than required says so; one
    not taken yet says what it will take."""
    v["window"] = {k: w.get(k) for k in ("rule", "chosen", "unit", "count", "required", "enough",
                                         "reason")}
    if v.get("start_ns") is None:
        if w.get("first_cycle"):
            v["message"] = f"{v.get('message', '')}; {w['first_cycle']}".lstrip("; ")
        return
    if w.get("enough") is False:
        n, k, u = w.get("count"), w.get("required"), w.get("unit")
        v["message"] = (f"{v.get('message', '')}; over {n:g} {u} that count, fewer than the "
                        f"{k:g} required (DB11/T 1156 7.3.3.3 e): not a valid balance yet"
                        ).lstrip("; ")


def _cycle_rows(bw: dict[str, Any] | None, how: str, start: int | None,
                end: int | None) -> list[dict[str, Any]]:
    """The cycles a per-cycle table shows: those of the accepted window, or (as given) every
    cycle inside [start, end]."""
    if bw is None or bw.get("unit") != "cycles":
        return []
    if how == "best valid window":
        return list(bw.get("used", []))
    rows = [r for r in bw.get("used", []) + bw.get("left_out", [])
            if (start is None or start <= r["start"]) and (end is None or r["end"] <= end)]
    return sorted(rows, key=lambda r: r["start"])


def _per_cycle(cfg: Config, store: Any, rows: list[dict[str, Any]], mat: Any, tz: str,
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
