"""The balance diagram's layout (analyzer/sankey.py): loops cut where the main line returns to
its utility, every flow an arrow with its amount and unit, labels never on top of each other (the
browser measures the real text in tests/web/test_views.py; here the layout's own estimate)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from cpaudit.analyzer.sankey import _cut_loops, svg, text_width


def _data() -> dict:
    def node(i: str, kind: str, ok: bool | None = True) -> dict:
        return {"id": i, "label": i.title(), "label_zh": "", "kind": kind,
                "closure_pct": 1.0 if kind == "unit" else None, "ok": ok if kind == "unit" else None}

    def link(a: str, b: str, v: float | None) -> dict:
        return {"source": a, "target": b, "stream": f"{a}-{b}", "label": f"{a} to {b}",
                "label_zh": "", "value": v, "method": "totalizer"}
    nodes = [node("in:malt", "source"), node("mash", "unit"), node("kettle", "unit"),
             node("boiler", "unit", False), node("out:wort", "sink"), node("in:gas", "source"),
             node("lone", "unit", None), node("in:x", "source")]
    links = [link("in:malt", "mash", 1000.0), link("mash", "kettle", 900.0),
             link("boiler", "kettle", 100.0), link("kettle", "boiler", 95.0),   # steam, condensate
             link("kettle", "out:wort", 905.0), link("in:gas", "boiler", 50.0),
             link("in:x", "lone", 1.5), link("in:x", "lone", None)]
    return {"layer": "material", "unit": "kg", "node": None, "limit_pct": 5.0,
            "nodes": nodes, "links": links}


def test_a_loop_returns_from_the_main_line() -> None:
    through = {"mash": 1900.0, "kettle": 2000.0, "boiler": 245.0}
    fwd, ret = _cut_loops(["mash", "kettle", "boiler"],
                          [("boiler", "kettle"), ("kettle", "boiler"), ("mash", "kettle")], through)
    assert ret == [("kettle", "boiler")]
    assert sorted(fwd) == [("boiler", "kettle"), ("mash", "kettle")]
    assert _cut_loops(["a"], [], {}) == ([], [])


def test_every_flow_is_drawn_with_its_amount_and_unit() -> None:
    doc = svg(_data())
    root = ET.fromstring(doc)
    ns = "{http://www.w3.org/2000/svg}"
    flows = [p for p in root.iter(f"{ns}path") if "flow" in (p.get("class") or "")]
    assert len(flows) == 7                         # the flow without an amount is not drawn
    labels = [t.text or "" for t in root.iter(f"{ns}text") if "flow-label" in (t.get("class") or "")]
    for want in ("in:malt to mash 1,000.0 kg", "mash to kettle 900.0 kg", "boiler to kettle 100.0 kg",
                 "kettle to boiler 95.0 kg", "kettle to out:wort 905.0 kg", "in:x to lone 1.5 kg"):
        assert any(want in x for x in labels), want
    assert any(x.endswith("(return)") and "kettle to boiler" in x for x in labels)
    # the failing unit's border is red, the one not judged grey
    rects = {r.get("data-node"): r.get("stroke") for r in root.iter(f"{ns}rect") if r.get("data-node")}
    assert rects["boiler"] == "#c62828" and rects["lone"] == "#757575" and rects["mash"] == "#2e7d32"


def test_labels_do_not_overlap_by_the_layouts_own_measure() -> None:
    root = ET.fromstring(svg(_data(), lang="en"))
    ns = "{http://www.w3.org/2000/svg}"
    boxes = []
    for t in root.iter(f"{ns}text"):
        x, y, s = float(t.get("x")), float(t.get("y")), t.text or ""
        size = float(t.get("font-size") or 11)
        w = text_width(s, size)
        x0 = x - w / 2 if t.get("text-anchor") == "middle" else x
        boxes.append((x0, y - size, x0 + w, y + 2, s))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a[4], b[4])
    width = float(root.get("width"))
    assert max(b[2] for b in boxes) <= width


def test_text_width_counts_cjk_as_full_width() -> None:
    assert text_width("糖化", 10) == 20.0
    assert text_width("ab", 10) == 12.0
    assert text_width("糖a", 10) == 16.0 and text_width("", 11) == 0.0
