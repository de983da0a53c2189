"""The balance diagram of DB11/T 1156 Appendix B as a Sankey: data (for the web) and SVG (for the
report), overall or for one unit operation.

Streams from the boundary become source nodes and streams to it sink nodes, each named after its
stream; a unit operation's colour says its closure against the limit (green within, red beyond,
grey not judged). Widths are proportional to the layer's unit (kg, t of water, kgce). The SVG is
drawn here, with no library: columns by distance from the sources, links as bands between them.
"""
from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from analyzer.balance import BalanceResult
from config import ENV, Config

OK, BAD, UNKNOWN = "#2e7d32", "#c62828", "#757575"


def sankey(cfg: Config, res: BalanceResult, node: str | None = None) -> dict[str, Any]:
    """Sankey data of a balance: all of it, or only the streams of unit operation ``node``."""
    streams = {s.id: s for s in cfg.flowsheet.streams}
    names = {n.id: n for n in cfg.flowsheet.nodes}
    judged = {n.node: n for n in res.nodes}
    nodes: dict[str, dict[str, Any]] = {}
    links = []
    for t in res.streams:
        s = streams[t.stream]
        if node is not None and node not in (s.from_, s.to):
            continue
        ends = []
        for end, role in ((s.from_, "source"), (s.to, "sink")):
            if end == ENV or (node is not None and end != node):
                nid = f"{'in' if role == 'source' else 'out'}:{s.id}"
                nodes.setdefault(nid, {"id": nid, "label": s.name or s.id,
                                       "label_zh": s.name_zh, "kind": role,
                                       "closure_pct": None, "ok": None})
            else:
                nid = end
                nb = judged.get(end)
                n = names[end]
                nodes.setdefault(nid, {"id": nid, "label": n.name or n.id,
                                       "label_zh": n.name_zh, "kind": "unit",
                                       "closure_pct": nb.closure_pct if nb else None,
                                       "ok": nb.ok if nb else None})
            ends.append(nid)
        v = t.value
        links.append({"source": ends[0], "target": ends[1], "stream": s.id,
                      "label": s.name or s.id, "label_zh": s.name_zh,
                      "value": float(v) if np.isfinite(v) else None, "method": t.method})
    return {"layer": res.layer, "unit": res.unit, "node": node, "limit_pct": res.limit_pct,
            "nodes": list(nodes.values()), "links": links}


def _columns(data: dict[str, Any]) -> dict[str, int]:
    """Column of each node: sources 0, then the longest distance over the flowsheet with its
    recycles cut (a depth-first search drops the edges back to a node on its own path)."""
    out_links: dict[str, list[str]] = {}
    for link in data["links"]:
        out_links.setdefault(link["source"], []).append(link["target"])
    ids = [n["id"] for n in data["nodes"]]
    state: dict[str, int] = {}          # 1 on the path, 2 done
    order: list[str] = []
    forward: dict[str, list[str]] = {i: [] for i in ids}

    def visit(a: str) -> None:
        state[a] = 1
        for b in out_links.get(a, []):
            if state.get(b) == 1:
                continue                 # a recycle back up the path
            forward[a].append(b)
            if b not in state:
                visit(b)
        state[a] = 2
        order.append(a)
    roots = [n["id"] for n in data["nodes"] if n["kind"] == "source"] + ids
    for r in roots:
        if r not in state:
            visit(r)
    col = {i: 0 for i in ids}
    for a in reversed(order):            # topological order of the forward edges
        for b in forward[a]:
            col[b] = max(col[b], col[a] + 1)
    last = max([c for i, c in col.items()] + [1])
    for n in data["nodes"]:              # sinks in the last column
        if n["kind"] == "sink":
            col[n["id"]] = last
    return col


def svg(data: dict[str, Any], width: int = 1400, lang: str = "en") -> str:
    """The Sankey as a standalone SVG document."""
    links = [x for x in data["links"] if x["value"]]
    col = _columns(data)
    ncol = max(col.values(), default=0) + 1
    size = {n["id"]: 0.0 for n in data["nodes"]}
    inflow = {n["id"]: 0.0 for n in data["nodes"]}
    outflow = {n["id"]: 0.0 for n in data["nodes"]}
    for x in links:
        outflow[x["source"]] += x["value"]
        inflow[x["target"]] += x["value"]
    for k in size:
        size[k] = max(inflow[k], outflow[k])
    margin, node_w, gap, label_w = 24, 14, 36, 270
    height = 560
    per_col: dict[int, list[str]] = {}
    for n in data["nodes"]:
        per_col.setdefault(col[n["id"]], []).append(n["id"])
    biggest = max((sum(size[i] for i in ids) for ids in per_col.values()), default=1.0) or 1.0
    most = max((len(ids) for ids in per_col.values()), default=1)
    scale = (height - 2 * margin - 30 - gap * (most - 1)) / biggest
    x_of = {c: margin + label_w + c * (width - 2 * margin - 2 * label_w - node_w) / max(ncol - 1, 1)
            for c in range(ncol)}
    y0: dict[str, float] = {}
    for c, ids in per_col.items():
        y = margin + 30.0                # room for the labels above the first bar
        for i in ids:
            y0[i] = y
            y += max(size[i] * scale, 2.0) + gap
    by_id = {n["id"]: n for n in data["nodes"]}
    out_off = {k: 0.0 for k in size}
    in_off = {k: 0.0 for k in size}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" '
             f'viewBox="0 0 {width} {height + 40}" font-family="Noto Sans CJK SC, Microsoft YaHei, '
             f'Helvetica, Arial, sans-serif" font-size="11">',
             f'<title>{escape(data["layer"])} balance ({escape(data["unit"])})</title>']
    for x in sorted(links, key=lambda v: -v["value"]):
        a, b = x["source"], x["target"]
        w = x["value"] * scale
        xa, xb = x_of[col[a]] + node_w, x_of[col[b]]
        ya = y0[a] + out_off[a] + w / 2
        yb = y0[b] + in_off[b] + w / 2
        out_off[a] += w
        in_off[b] += w
        mid = (xa + xb) / 2 if xb > xa else xa + 60
        c2 = mid if xb > xa else xb - 60
        label = x["label_zh"] if lang == "zh" and x["label_zh"] else x["label"]
        parts.append(
            f'<path d="M{xa:.1f},{ya:.1f} C{mid:.1f},{ya:.1f} {c2:.1f},{yb:.1f} {xb:.1f},{yb:.1f}" '
            f'fill="none" stroke="#90a4ae" stroke-opacity="0.55" stroke-width="{max(w, 1):.1f}">'
            f'<title>{escape(label)}: {x["value"]:,.1f} {escape(data["unit"])}</title></path>')
    for i, n in by_id.items():
        h = max(size[i] * scale, 2.0)
        nx, y = x_of[col[i]], y0[i]
        colour = UNKNOWN if n["ok"] is None else (OK if n["ok"] else BAD)
        if n["kind"] != "unit":
            colour = "#546e7a"
        label = n["label_zh"] if lang == "zh" and n["label_zh"] else n["label"]
        parts.append(f'<rect x="{nx:.1f}" y="{y:.1f}" width="{node_w}" height="{h:.1f}" '
                     f'fill="{colour}"><title>{escape(label)}</title></rect>')
        text = f"{label} {size[i]:,.0f}"
        if n["closure_pct"] is not None:
            text += f" ({n['closure_pct']:+.2f} %)"
        halo = 'stroke="white" stroke-width="3" paint-order="stroke"'
        if n["kind"] == "unit":          # two lines above the bar, centred
            figure = f"{size[i]:,.0f}" + (f" ({n['closure_pct']:+.2f} %)"
                                          if n["closure_pct"] is not None else "")
            parts.append(f'<text x="{nx + node_w / 2:.1f}" y="{y - 16:.1f}" text-anchor="middle" '
                         f'font-weight="bold" {halo}>{escape(label)}</text>')
            parts.append(f'<text x="{nx + node_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
                         f'fill="{colour}" {halo}>{escape(figure)}</text>')
        elif n["kind"] == "source":
            parts.append(f'<text x="{nx - 4:.1f}" y="{y + h / 2 + 4:.1f}" text-anchor="end" '
                         f'{halo}>{escape(text)}</text>')
        else:
            parts.append(f'<text x="{nx + node_w + 4:.1f}" y="{y + h / 2 + 4:.1f}" '
                         f'text-anchor="start" {halo}>{escape(text)}</text>')
    parts.append(f'<text x="{margin}" y="{height + 30}" fill="#455a64">{escape(data["layer"])} '
                 f'balance, {escape(data["unit"])}; unit colour: closure within '
                 f'{data["limit_pct"]:g} % green, beyond red, not judged grey</text>')
    parts.append("</svg>")
    return "\n".join(parts)
