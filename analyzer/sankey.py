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

from cpaudit.analyzer.balance import BalanceResult
from cpaudit.config import ENV, Config

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


def text_width(text: str, size: float = 11.0) -> float:
    """Estimated width [px] of ``text`` at font ``size`` [px]: CJK characters a full em, digits
    and Latin letters about 0.58 em (a sans-serif's average; generous, so boxes never clip)."""
    wide = sum(1 for ch in text if ord(ch) > 0x2E80)
    return size * (wide + 0.6 * (len(text) - wide))


def _cut_loops(units: list[str], edges: list[tuple[str, str]], through: dict[str, float]
               ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(forward, returns): the unit-to-unit edges with each loop cut once. The edge cut is the
    one leaving the loop's node of largest throughput: a loop of a utility with the main line
    (steam to the kettle, condensate back to the boiler) returns from the main line."""
    forward = list(edges)
    returns: list[tuple[str, str]] = []
    while True:
        nxt: dict[str, list[str]] = {}
        for x, y in forward:
            nxt.setdefault(x, []).append(y)
        state: dict[str, int] = {}
        path: list[str] = []
        loop: list[str] | None = None

        def visit(x: str) -> None:
            nonlocal loop
            state[x] = 1
            path.append(x)
            for y in nxt.get(x, []):
                if loop is not None:
                    return
                if state.get(y) == 1:
                    loop = path[path.index(y):]
                    return
                if y not in state:
                    visit(y)
            path.pop()
            state[x] = 2
        for u in units:
            if u not in state and loop is None:
                visit(u)
        if loop is None:
            return forward, returns
        ring = list(zip(loop, loop[1:] + loop[:1]))
        cut = max(ring, key=lambda e: (through.get(e[0], 0.0), e))
        forward.remove(cut)
        returns.append(cut)


def _fmt(v: float) -> str:
    return f"{v:,.1f}" if abs(v) < 1e6 else f"{v:,.0f}"


def svg(data: dict[str, Any], width: int = 0, lang: str = "en") -> str:
    """The balance diagram as a standalone SVG document, laid out as a process flow balance
    diagram (DB11/T 1156 Appendix B, Figure B.1 names one for the brewing workshop; its drawing is
    not in the text we hold, so the layout follows the usual form of such diagrams, not a copy):
    each unit operation a box, coloured by its closure; what enters it from outside the boundary
    listed above it, what leaves to the boundary below it; flows between units as arrows from left
    to right, their width by amount, each labelled with its name, amount and unit; a loop's return
    flow drawn under its line. Every label has its own space: nothing overlaps by construction
    (the browser tests measure it). ``width`` [px]: 0 = as wide as the layout needs."""
    zh = lang == "zh"
    unit = data["unit"]
    by_id = {n["id"]: n for n in data["nodes"]}
    links = [x for x in data["links"] if x["value"]]

    def name(n: dict[str, Any]) -> str:
        return n["label_zh"] if zh and n.get("label_zh") else n["label"]

    def flow_text(x: dict[str, Any]) -> str:
        label = x["label_zh"] if zh and x.get("label_zh") else x["label"]
        return f"{label} {_fmt(x['value'])} {unit}"
    units = [n["id"] for n in data["nodes"] if n["kind"] == "unit"]
    ins: dict[str, list[dict[str, Any]]] = {u: [] for u in units}      # from the boundary
    outs: dict[str, list[dict[str, Any]]] = {u: [] for u in units}     # to the boundary
    inner: list[dict[str, Any]] = []
    through = {u: 0.0 for u in units}
    for x in links:
        a, b = by_id[x["source"]], by_id[x["target"]]
        if a["kind"] == "unit":
            through[a["id"]] += x["value"]
        if b["kind"] == "unit":
            through[b["id"]] += x["value"]
        if a["kind"] == "unit" and b["kind"] == "unit":
            inner.append(x)
        elif b["kind"] == "unit":
            ins[b["id"]].append(x)
        elif a["kind"] == "unit":
            outs[a["id"]].append(x)
    edges = sorted({(x["source"], x["target"]) for x in inner})
    forward, returns = _cut_loops(units, edges, through)
    # columns: the longest path over the forward edges
    col = {u: 0 for u in units}
    for _ in units:
        for x, y in forward:
            col[y] = max(col[y], col[x] + 1)
    # lanes: units joined by flows, each its own band of rows, biggest first
    lane_of: dict[str, int] = {}
    for u in units:
        if u in lane_of:
            continue
        k = len(set(lane_of.values()))
        stack = [u]
        while stack:
            v = stack.pop()
            if v in lane_of:
                continue
            lane_of[v] = k
            stack += [y for x, y in edges if x == v] + [x for x, y in edges if y == v]
    lanes = sorted(set(lane_of.values()), key=lambda k: min(units.index(u) for u in units
                                                           if lane_of[u] == k))
    # rows in a lane: column by column, each unit in the row of its biggest forward inflow
    row: dict[str, float] = {}
    for k in lanes:
        members = [u for u in units if lane_of[u] == k]
        for c in sorted({col[u] for u in members}):
            here = [u for u in members if col[u] == c]
            want = {}
            for u in here:
                feeds = [(x["value"], row[x["source"]]) for x in inner if x["target"] == u
                         and x["source"] in row and (x["source"], u) in forward]
                want[u] = max(feeds)[1] if feeds else 0.0
            taken: set[int] = {int(row[u]) for u in members if u in row and col[u] == c}
            for u in sorted(here, key=lambda v: (want[v], -through[v])):
                r = int(np.floor(want[u] + 0.5))
                while r in taken:
                    r += 1
                taken.add(r)
                row[u] = float(r)
    line_h, pad, box_w, size = 15.0, 8.0, 150.0, 11.0
    biggest = max([x["value"] for x in links] + [1.0])

    def stroke(v: float) -> float:
        return 1.5 + 12.0 * (v / biggest) ** 0.5

    n_in = {u: sum(1 for x in inner if x["target"] == u) for u in units}
    n_out = {u: sum(1 for x in inner if x["source"] == u) for u in units}
    box_h = {u: max(46.0, 26.0 * max(n_in[u], n_out[u]) + 14.0) for u in units}
    # column widths: the box and its lists, then a gutter for its outgoing labels and tracks
    ncol = max(col.values(), default=0) + 1
    list_w = {c: max([box_w] + [text_width("↓ " + flow_text(x)) + 4 for u in units if col[u] == c
                                for x in ins[u] + outs[u]]) for c in range(ncol)}
    label_w = {c: max([0.0] + [text_width(flow_text(x)) + 12 for x in inner
                               if col[x["source"]] == c
                               and (x["source"], x["target"]) in forward]) for c in range(ncol)}
    # a forward flow bends in the gutter just before its target's column, so a flow that skips
    # columns runs along its source's row (free there: rows follow the biggest inflow)
    tracks = {c: [x for x in inner if col[x["target"]] - 1 == c
                  and (x["source"], x["target"]) in forward] for c in range(ncol)}
    left_margin = 24.0 + 14.0 * len(returns)
    x_col: dict[int, float] = {}
    cx = left_margin
    for c in range(ncol):
        x_col[c] = cx
        body = max(list_w[c], box_w + label_w[c] + 12.0 * len(tracks[c]) + 12.0)
        cx += body + 40.0 + 14.0 * len(returns)
    note = (f"单元边框颜色：平衡偏差率在 {data['limit_pct']:g} % 以内为绿色，超限为红色，未判定为灰色；"
            f"↓ 在单元上方为自系统边界外输入，在下方为输出至边界外" if zh else
            f"unit border: closure within {data['limit_pct']:g} % green, beyond red, not judged "
            "grey; ↓ above a unit: from outside the boundary, below: to outside it")
    total_w = max(float(width), cx + 16.0, left_margin + text_width(note) + 16.0)
    # vertical: per lane and row, room above for the inputs, the box, below for the outputs
    top = 44.0
    y_box: dict[str, float] = {}
    lane_bottom: dict[int, float] = {}
    yy = top
    for k in lanes:
        members = [u for u in units if lane_of[u] == k]
        for r in sorted({int(row[u]) for u in members}):
            in_row = [u for u in members if int(row[u]) == r]
            above = max(len(ins[u]) for u in in_row) * line_h + (pad if any(ins[u] for u in in_row)
                                                                 else 0.0)
            below = max(len(outs[u]) for u in in_row) * line_h + (pad if any(outs[u] for u in
                                                                              in_row) else 0.0)
            name_lines = max(2 if text_width(name(by_id[u]), 12) > box_w - 10 else 1
                             for u in in_row)
            h = max(box_h[u] for u in in_row) + 18.0 * (name_lines - 1)
            for u in in_row:
                box_h[u] = h
                y_box[u] = yy + above
            yy += above + h + below + 24.0
        n_ret = sum(1 for a, b in returns if lane_of[a] == k)
        lane_bottom[k] = yy - 12.0
        yy += n_ret * (line_h + 14.0) + 18.0
    height = yy + 10.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" height="{height:.0f}" '
             f'viewBox="0 0 {total_w:.0f} {height:.0f}" font-family="Noto Sans CJK SC, '
             f'WenQuanYi Micro Hei, Microsoft YaHei, Helvetica, Arial, sans-serif" '
             f'font-size="{size:g}">',
             f'<title>{escape(data["layer"])} balance ({escape(unit)})</title>',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="11" '
             'markerHeight="11" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
             '<path d="M0,0 L10,5 L0,10 z" fill="#607d8b"/></marker></defs>',
             '<rect width="100%" height="100%" fill="white"/>']
    heading = {"material": ("Material balance", "物料平衡图"), "water": ("Water balance", "水平衡图"),
               "energy": ("Energy balance", "能量平衡图")}.get(data["layer"], (data["layer"],) * 2)
    parts.append(f'<text x="{left_margin:.0f}" y="22" font-size="14" font-weight="bold">'
                 f'{escape(heading[1] if zh else heading[0])} [{escape(unit)}]</text>')

    def text(xx: float, yy: float, s: str, cls: str, extra: str = "") -> None:
        parts.append(f'<text class="{cls}" x="{xx:.1f}" y="{yy:.1f}" {extra}>{escape(s)}</text>')

    def path(d: str, v: float, cls: str, title: str) -> None:
        parts.append(f'<path class="{cls}" d="{d}" fill="none" stroke="#90a4ae" '
                     f'stroke-opacity="0.8" stroke-width="{stroke(v):.1f}" '
                     f'marker-end="url(#arrow)"><title>{escape(title)}</title></path>')
    # ports: where each inner flow leaves its source and enters its target
    out_port: dict[int, float] = {}
    in_port: dict[int, float] = {}
    for u in units:
        leaving = sorted([i for i, x in enumerate(inner) if x["source"] == u],
                         key=lambda i: y_box.get(inner[i]["target"], 0.0))
        entering = sorted([i for i, x in enumerate(inner) if x["target"] == u],
                          key=lambda i: y_box.get(inner[i]["source"], 0.0))
        for ports, ids in ((out_port, leaving), (in_port, entering)):
            for j, i in enumerate(ids):
                ports[i] = y_box[u] + box_h[u] * (j + 1) / (len(ids) + 1) + 6.0
    ret_i = 0
    lane_ret: dict[int, int] = {}
    for i, f in enumerate(inner):
        a, b = f["source"], f["target"]
        xa = x_col[col[a]] + box_w
        xb = x_col[col[b]]
        ya, yb = out_port[i], in_port[i]
        title = flow_text(f)
        if (a, b) in forward:
            g = col[b] - 1
            k = tracks[g].index(f)
            xt = x_col[g] + box_w + label_w[g] + 6.0 + 12.0 * k
            if abs(ya - yb) < 0.5:
                d = f"M{xa:.1f},{ya:.1f} L{xb - 2:.1f},{yb:.1f}"
            else:
                d = (f"M{xa:.1f},{ya:.1f} L{xt:.1f},{ya:.1f} L{xt:.1f},{yb:.1f} "
                     f"L{xb - 2:.1f},{yb:.1f}")
            path(d, f["value"], "flow", title)
            text(xa + 6.0, ya - 4.0 - stroke(f["value"]) / 2, title, "flow-label")
        else:   # a loop's return: down its own channel under the lane, back left, up into b
            lane = lane_of[a]
            m = lane_ret.get(lane, 0)
            lane_ret[lane] = m + 1
            yc = lane_bottom[lane] + 10.0 + m * (line_h + 14.0)
            xs = xa + label_w[col[a]] + 6.0 + 12.0 * len(tracks[col[a]]) + 4.0
            xl = xb - 16.0 - 14.0 * ret_i
            ret_i += 1
            d = (f"M{xa:.1f},{ya:.1f} L{xs:.1f},{ya:.1f} L{xs:.1f},{yc:.1f} L{xl:.1f},{yc:.1f} "
                 f"L{xl:.1f},{yb:.1f} L{xb - 2:.1f},{yb:.1f}")
            path(d, f["value"], "flow return", title)
            mark = "（回流）" if zh else " (return)"
            text(xl + 8.0, yc + line_h, title + mark, "flow-label return-label")
    for u in units:
        n = by_id[u]
        bx, by, h = x_col[col[u]], y_box[u], box_h[u]
        colour = UNKNOWN if n["ok"] is None else (OK if n["ok"] else BAD)
        parts.append(f'<rect class="unit" data-node="{escape(u)}" x="{bx:.1f}" y="{by:.1f}" '
                     f'width="{box_w:g}" height="{h:.1f}" rx="4" fill="white" stroke="{colour}" '
                     f'stroke-width="2.5"><title>{escape(name(n))}</title></rect>')
        label = name(n)
        lines = [label]
        if text_width(label, 12) > box_w - 10:        # two lines, split at a space or mid-way
            cut = label.rfind(" ", 0, len(label) // 2 + 6)
            cut = cut if cut > 0 else len(label) // 2
            lines = [label[:cut].strip(), label[cut:].strip()]
        for j, ln in enumerate(lines):
            text(bx + box_w / 2, by + 18.0 + 16.0 * j, ln, "unit-name",
                 'text-anchor="middle" font-size="12" font-weight="bold"')
        if n["closure_pct"] is not None:
            fig = f"{n['closure_pct']:+.2f} %"
            text(bx + box_w / 2, by + 20.0 + 16.0 * len(lines), fig, "unit-closure",
                 f'text-anchor="middle" fill="{colour}"')
        for j, f in enumerate(ins[u]):               # from outside the boundary, above the box
            yy = by - pad - (len(ins[u]) - 1 - j) * line_h
            text(bx, yy - 3.0, "↓ " + flow_text(f), "flow-label boundary-in")
            parts.append(f'<path class="flow boundary" d="M{bx + 4:.1f},{yy:.1f} '
                         f'L{bx + 4:.1f},{by - 1:.1f}" stroke="#90a4ae" stroke-width="1" '
                         f'fill="none"><title>{escape(flow_text(f))}</title></path>')
        for j, f in enumerate(outs[u]):              # to outside the boundary, below the box
            yy = by + h + pad + (j + 1) * line_h - 3.0
            text(bx, yy, "↓ " + flow_text(f), "flow-label boundary-out")
            parts.append(f'<path class="flow boundary" d="M{bx + 4:.1f},{by + h + 1:.1f} '
                         f'L{bx + 4:.1f},{yy - 11:.1f}" stroke="#90a4ae" stroke-width="1" '
                         f'fill="none"><title>{escape(flow_text(f))}</title></path>')
    text(left_margin, height - 12.0, note, "note", 'fill="#455a64"')
    parts.append("</svg>")
    return "\n".join(parts)
