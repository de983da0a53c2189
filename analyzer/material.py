"""What DB11/T 1156 7.3.4 d asks of a material balance beyond its closure: where material is
lost, how much, to where and its share (3, 4); utilisation of the main raw materials (2); and one
balance per named component (7.3.4 c: toxic substances, dry matter …).

- **Losses**: every output to the boundary that is not the main product (by-products, wastes,
  emissions: measured or theoretical, as the stream says), and every node's positive deviation
  (what went in and is neither measured out nor declared held up: unaccounted), each with its
  share of the overall input.
- **Utilisation**: the product's mass over the mass of the inputs from the boundary; per
  component, the component in the product over the component in the inputs.
- **Component balance**: each stream's total times the component's declared mass fraction, per
  node touched by the component and over their boundary.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from analyzer.balance import BalanceResult, NodeBalance, _node
from analyzer.totals import StreamTotal
from config import ENV, Config
from config.models import Component


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def losses(cfg: Config, res: BalanceResult) -> list[dict[str, Any]]:
    """The loss table of a material balance, largest first."""
    if res.overall is None:
        return []
    total_in = res.overall.total_in
    product = cfg.flowsheet.product
    streams = {s.id: s for s in cfg.flowsheet.streams}
    nodes = {n.id: n for n in cfg.flowsheet.nodes}
    rows: list[dict[str, Any]] = []
    for t in res.streams:
        s = streams[t.stream]
        if s.to != ENV or s.id == product or s.fate in ("product", "transfer"):
            continue
        n = nodes.get(s.from_)
        rows.append({"node": s.from_, "node_name": n.name if n else s.from_,
                     "node_name_zh": n.name_zh if n else "", "what": s.name or s.id,
                     "what_zh": s.name_zh, "stream": s.id, "to": "boundary (ENV)",
                     "kind": (s.fate or "loss or waste").replace("_", "-") + (
                         ", theoretical" if t.method == "theoretical" else ", measured"),
                     "amount": _num(t.value), "unit": res.unit,
                     "share_of_input_pct": _num(100.0 * t.value / total_in)
                     if total_in > 0 else None, "source": s.source or ""})
    for nb in res.nodes:
        if nb.closure_pct is not None and nb.deviation > 0:
            rows.append({"node": nb.node, "node_name": nb.name, "node_name_zh": nb.name_zh,
                         "what": "unaccounted (inputs − outputs − accumulation)",
                         "what_zh": "未计量流失", "stream": None, "to": "unknown",
                         "kind": "deviation", "amount": nb.deviation, "unit": res.unit,
                         "share_of_input_pct": 100.0 * nb.deviation / total_in
                         if total_in > 0 else None, "source": ""})
    return sorted(rows, key=lambda r: -(r["amount"] or 0.0))


def component_balance(cfg: Config, res: BalanceResult, comp: Component) -> BalanceResult:
    """The balance of ``comp`` over the material balance's window: each stream's mass times its
    declared fraction, per node the component touches, and over their boundary."""
    frac = comp.fractions
    streams = [s for s in cfg.flowsheet.streams if "material" in s.layers]
    # the nodes the component passes through (a stream declared 0 % does not draw its other end in)
    touched = {n for s in streams if frac.get(s.id, 0.0) > 0 for n in (s.from_, s.to) if n != ENV}
    by_id = {t.stream: t for t in res.streams}

    def scaled(sid: str) -> StreamTotal:
        t = by_id[sid]
        f = frac.get(sid)
        if f is None:
            return replace(t, value=float("nan"), note="no mass fraction declared for "
                           f"{comp.id}")
        return replace(t, value=t.value * f)
    limit = res.limit_pct
    nodes: list[NodeBalance] = []
    for n in cfg.flowsheet.nodes:
        if n.id not in touched:
            continue
        ins = [scaled(s.id) for s in streams if s.to == n.id]
        outs = [scaled(s.id) for s in streams if s.from_ == n.id]
        nodes.append(_node(n.id, n.name, n.name_zh, ins, outs, limit))
    b_in = [scaled(s.id) for s in streams if s.to in touched and s.from_ not in touched]
    b_out = [scaled(s.id) for s in streams if s.from_ in touched and s.to not in touched]
    overall = _node("overall", f"{comp.name or comp.id} ({', '.join(sorted(touched))})",
                    comp.name_zh, b_in, b_out, limit)
    missing = sorted({m for x in nodes + [overall] for m in x.missing})
    if res.start_ns is None:
        verdict, msg = "no-data", res.message
    elif missing:
        verdict, msg = "incomplete", ("no fraction or total for " + ", ".join(missing))
    elif all(x.ok for x in nodes + [overall]):
        verdict, msg = "ok", f"every node closes within {limit:g} % on {comp.id}"
    else:
        bad = [f"{x.node} {x.closure_pct:+.2f} %" for x in nodes + [overall]
               if x.ok is False]
        verdict, msg = "exceeded", f"{comp.id} closure beyond {limit:g} % at {', '.join(bad)}"
    used = [scaled(s.id) for s in streams if s.id in frac]
    out = BalanceResult(f"component:{comp.id}", res.unit, res.start_ns, res.end_ns, limit, nodes,
                        overall, used, verdict, f"{msg}; fractions: {comp.source}")
    return out


def utilisation(cfg: Config, res: BalanceResult,
                components: list[BalanceResult] | None = None) -> list[dict[str, Any]]:
    """Product over inputs from the boundary, by mass and per component [%]."""
    pid = cfg.flowsheet.product
    if res.overall is None or pid is None or res.product is None:
        return []
    rows = []
    p = res.product.value
    tin = res.overall.total_in
    if np.isfinite(p) and tin > 0:
        rows.append({"basis": "mass", "product": pid, "in_product": p, "input": tin,
                     "unit": res.unit, "utilisation_pct": 100.0 * p / tin,
                     "note": "product mass over everything that enters from the boundary "
                             "(water included)"})
    for c in components or []:
        if c.overall is None:
            continue
        prod = next((t.value for t in c.streams if t.stream == pid), float("nan"))
        cin = c.overall.total_in
        if np.isfinite(prod) and cin > 0:
            rows.append({"basis": c.layer, "product": pid, "in_product": prod, "input": cin,
                         "unit": c.unit, "utilisation_pct": 100.0 * prod / cin,
                         "note": "component in the product over the component entering"})
    return rows
