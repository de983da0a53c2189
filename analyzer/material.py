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

from cpaudit.analyzer.balance import BalanceResult, NodeBalance, _node
from cpaudit.analyzer.totals import StreamTotal
from cpaudit.config import ENV, Config
from cpaudit.config.models import Component


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def production_line(cfg: Config, product: str | None = None) -> set[str]:
    """The nodes that make the product: the product's source node and every node upstream of
    it through material streams, shared utilities (``allocation.utilities``) left out — a
    boiler's steam heats the wort, it is not a raw material of it."""
    pid = product or cfg.flowsheet.product
    utility = {n for u in cfg.allocation.utilities for n in u.nodes}
    streams = [s for s in cfg.flowsheet.streams if "material" in s.layers]
    src = next((s.from_ for s in streams if s.id == pid), None)
    if src is None or src == ENV:
        return {n.id for n in cfg.flowsheet.nodes if n.id not in utility}
    line, todo = {src}, [src]
    while todo:
        n = todo.pop()
        for s in streams:
            if s.to == n and s.from_ != ENV and s.from_ not in line and s.from_ not in utility:
                line.add(s.from_)
                todo.append(s.from_)
    return line


def line_balance(cfg: Config, res: BalanceResult) -> dict[str, Any] | None:
    """The closure of the production line alone (:func:`production_line`: the nodes that make
    the product), over the streams that cross its edge: the whole focus's closure is diluted
    when a shared utility passes other workshops' material through it (the demo's wastewater
    station: two thirds of the focus's input)."""
    if res.overall is None:
        return None
    line = production_line(cfg)
    streams = {s.id: s for s in cfg.flowsheet.streams}
    ins = [t for t in res.streams if streams[t.stream].to in line
           and streams[t.stream].from_ not in line]
    outs = [t for t in res.streams if streams[t.stream].from_ in line
            and streams[t.stream].to not in line]
    nb = _node("production_line", "production line (" + ", ".join(sorted(line)) + ")", "生产线",
               ins, outs, res.limit_pct)
    d = nb.to_dict()
    d["nodes"] = sorted(line)
    d["note"] = ("the nodes that make the product, over the streams crossing their edge "
                 "(utilities' steam and condensate included); the whole focus's closure also "
                 "holds what shared utilities pass through for others")
    return d


def raw_materials(cfg: Config, res: BalanceResult) -> list[StreamTotal]:
    """What enters the production line from the boundary (raw materials, water), in the
    balance's window."""
    line = production_line(cfg)
    streams = {s.id: s for s in cfg.flowsheet.streams}
    return [t for t in res.streams if streams[t.stream].from_ == ENV
            and streams[t.stream].to in line]


def losses(cfg: Config, res: BalanceResult) -> list[dict[str, Any]]:
    """The loss table of a material balance, largest first. Each loss has its share of its
    node's input and, when it leaves the production line, of the line's raw materials (the
    inputs from the boundary of the nodes that make the product); a loss of a shared utility
    (a wastewater station treating other workshops' water too) is not a share of the product's
    raw materials: its node share is given, with the part charged to the focus where a share
    rule is declared."""
    if res.overall is None:
        return []
    line = production_line(cfg)
    raw = raw_materials(cfg, res)
    raw_in = float(sum(t.value for t in raw if np.isfinite(t.value)))
    product = cfg.flowsheet.product
    streams = {s.id: s for s in cfg.flowsheet.streams}
    nodes = {n.id: n for n in cfg.flowsheet.nodes}
    node_in = {nb.node: nb.total_in for nb in res.nodes}
    util = {n: u for u in cfg.allocation.utilities for n in u.nodes}
    from cpaudit.analyzer.accounting import utility_share
    totals = {t.stream: t for t in res.streams}
    basis = (f"share of the production line's raw materials ({', '.join(t.stream for t in raw)}"
             f": {raw_in:.6g} {res.unit})")

    def shares(node: str, amount: float) -> dict[str, Any]:
        nin = node_in.get(node, float("nan"))
        d: dict[str, Any] = {"share_of_node_input_pct": _num(100.0 * amount / nin)
                             if nin and nin > 0 else None}
        if node in line and raw_in > 0:
            d["share_of_input_pct"] = _num(100.0 * amount / raw_in)
            d["share_basis"] = basis
        else:
            u = util.get(node)
            d["share_of_input_pct"] = None
            d["share_basis"] = (f"a loss of the shared utility {u.id if u else node}: its share "
                                "of the node's input only")
            if u is not None and u.rule != "deduct_exports":
                sh, how = utility_share(u, totals)
                d["charged_to_focus"] = _num(amount * sh)
                d["charged_rule"] = f"{u.rule}: {how}"
        return d
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
                     "amount": _num(t.value), "unit": res.unit, **shares(s.from_, t.value),
                     "source": s.source or ""})
    for nb in res.nodes:
        if nb.closure_pct is not None and nb.deviation > 0:
            rows.append({"node": nb.node, "node_name": nb.name, "node_name_zh": nb.name_zh,
                         "what": "unaccounted (inputs − outputs − accumulation)",
                         "what_zh": "未计量流失", "stream": None, "to": "unknown",
                         "kind": "deviation", "amount": nb.deviation, "unit": res.unit,
                         **shares(nb.node, nb.deviation), "source": ""})
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
    """Product over the production line's raw materials (:func:`raw_materials`), by mass and
    per component [%] — the dry-matter figure is the meaningful one (the extract yield): water
    taken in mostly leaves with the product, so the mass figure says little."""
    pid = cfg.flowsheet.product
    if res.overall is None or pid is None or res.product is None:
        return []
    rows = []
    p = res.product.value
    raw = raw_materials(cfg, res)
    tin = float(sum(t.value for t in raw if np.isfinite(t.value)))
    names = ", ".join(t.stream for t in raw)
    if np.isfinite(p) and tin > 0:
        rows.append({"basis": "mass", "product": pid, "in_product": p, "input": tin,
                     "unit": res.unit, "utilisation_pct": 100.0 * p / tin,
                     "inputs": [t.stream for t in raw],
                     "note": f"product mass over the production line's raw materials ({names}),"
                             " water included; utilities and other workshops' streams left out"})
    line = production_line(cfg)
    streams = {s.id: s for s in cfg.flowsheet.streams}
    for c in components or []:
        if c.overall is None:
            continue
        prod = next((t.value for t in c.streams if t.stream == pid), float("nan"))
        cin_rows = [t for t in c.streams if streams[t.stream].from_ == ENV
                    and streams[t.stream].to in line and np.isfinite(t.value)]
        cin = float(sum(t.value for t in cin_rows))
        if np.isfinite(prod) and cin > 0:
            rows.append({"basis": c.layer, "product": pid, "in_product": prod, "input": cin,
                         "unit": c.unit, "utilisation_pct": 100.0 * prod / cin,
                         "inputs": [t.stream for t in cin_rows],
                         "note": "component in the product over the component in the raw "
                                 "materials"})
    # the component figures first: by mass the water taken in mostly leaves in the product
    return [r for r in rows if r["basis"] != "mass"] + [r for r in rows if r["basis"] == "mass"]


def per_raw_material(cfg: Config, res: BalanceResult,
                     components: list[BalanceResult] | None = None) -> list[dict[str, Any]]:
    """Each raw material of the production line: its amount, its consumption per unit of
    product (DB11/T 1156 7.3.3.3 g: batch products per unit product) and its share of the raw
    materials, with each component it carries."""
    if res.overall is None or res.product is None or not np.isfinite(res.product.amount) \
            or res.product.amount <= 0:
        return []
    raw = raw_materials(cfg, res)
    tin = float(sum(t.value for t in raw if np.isfinite(t.value)))
    q, qu = res.product.amount, res.product.unit
    out = []
    for t in raw:
        row: dict[str, Any] = {"stream": t.stream, "amount": _num(t.value), "unit": res.unit,
                               "per_unit_product": _num(t.value / q),
                               "per_unit_product_unit": f"{res.unit}/{qu}",
                               "share_of_raw_materials_pct": _num(100.0 * t.value / tin)
                               if tin > 0 else None, "components": {}}
        for c in components or []:
            ct = next((x for x in c.streams if x.stream == t.stream), None)
            if ct is not None:
                row["components"][c.layer.removeprefix("component:")] = _num(ct.value)
        out.append(row)
    return out
