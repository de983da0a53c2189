"""The report's tables as CSV and XLSX (openpyxl), units in the headers, and its diagrams as SVG.

:func:`tables` turns a :func:`analyzer.iotools.campaign_report` document into named tables, each
a header (with units, e.g. ``inputs [kg]``) and rows; :func:`xlsx_bytes` puts one table per sheet
of a workbook, :func:`csv_text` one table in a CSV, :func:`documents` names every file of an
export and gives its bytes. Nothing here writes a file: the CLI and the web do.
"""
from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from cpaudit.analyzer.sankey import svg

Table = tuple[list[str], list[list[Any]]]


def _r(x: Any, nd: int = 3) -> Any:
    return round(x, nd) if isinstance(x, float) else x


def _node_rows(layer: dict[str, Any]) -> Table:
    u = layer["unit"]
    head = ["node", "name", "名称", f"inputs [{u}]", f"outputs [{u}]", f"accumulation [{u}]",
            f"deviation [{u}]", "closure [%]", f"within {layer['limit_pct']:g} %"]
    rows = []
    for n in layer["nodes"] + ([layer["overall"]] if layer.get("overall") else []):
        rows.append([n["node"], n["name"], n["name_zh"], _r(n["total_in"]), _r(n["total_out"]),
                     _r(n.get("accumulation", 0.0)), _r(n["deviation"]), _r(n["closure_pct"]),
                     "" if n["ok"] is None else ("yes" if n["ok"] else "NO")])
    return head, rows


def _stream_rows(layer: dict[str, Any]) -> Table:
    u = layer["unit"]
    head = ["stream", "method", "tag", "amount", "amount unit", f"value [{u}]",
            "rate integral [amount unit]", "rate vs totalizer [%]", "rate coverage [%]",
            "good samples", "gaps", "resets", "rollovers", "note"]
    rows = []
    for s in layer["streams"]:
        cov = s.get("rate_coverage")
        rows.append([s["stream"], s["method"], s["tag"], _r(s["amount"]), s["unit"],
                     _r(s["value"]), _r(s.get("rate_amount")), _r(s.get("cross_check_pct")),
                     None if cov is None else _r(100 * cov, 2), s["good_samples"],
                     len(s["gaps"]), s["resets"], s["rollovers"], s["note"]])
    return head, rows


def tables(doc: dict[str, Any]) -> dict[str, Table]:
    """Every table of the report, by sheet name (≤ 31 characters, as Excel wants)."""
    out: dict[str, Table] = {}
    v = doc.get("validity")
    if v:
        out["validity"] = (["check", "clause", "status", "value", "limit", "reason", "fix"],
                           [[c["id"], c["clause"], c["status"], _r(c["value"]), _r(c["limit"]),
                             c["reason"], c.get("fix") or ""] for c in v["checks"]])
    bw = doc.get("balance_window")
    if bw and bw.get("used") is not None:
        out["balance window"] = (
            ["cycle or period", "start", "end", "hours", "load", "used", "why"],
            [[i + 1, x.get("start"), x.get("end"), _r(x.get("hours")), _r(x.get("load")),
              "yes", bw.get("rule_text", "")] for i, x in enumerate(bw["used"])]
            + [["left out", x.get("start"), x.get("end"), _r(x.get("hours")),
                _r(x.get("load")), "no", x.get("why", "")] for x in bw.get("left_out", [])])
    if doc.get("manual"):
        out["manual readings"] = (
            ["tag", "time", "value", "note", "retracted", "retracted at", "why retracted"],
            [[x["tag"], x["time"], x["value"], x["note"], "yes" if x["retracted"] else "",
              x["retracted_at"] or "", x["retraction_note"] or ""] for x in doc["manual"]])
    b = doc["balances"]
    cyc = b["material"].get("per_cycle") or []
    if cyc:
        nodes = list(cyc[0]["closure_pct"])
        out["per cycle"] = (
            ["start", "end", "load", "product", "product unit", "overall closure [%]"]
            + [f"{n} closure [%]" for n in nodes],
            [[x["start"], x["end"], _r(x["load"]), _r(x["product"]), x["product_unit"],
              _r(x["overall_closure_pct"])] + [_r(x["closure_pct"].get(n)) for n in nodes]
             for x in cyc])
    for layer in ("material", "water", "energy"):
        if b[layer].get("nodes"):
            out[f"{layer} balance"] = _node_rows(b[layer])
            out[f"{layer} streams"] = _stream_rows(b[layer])
    m = b["material"]
    if m.get("losses"):
        u = m["unit"]
        out["material losses"] = (
            ["node", "node name", "节点", "what", "名称", "to", "kind", f"amount [{u}]",
             "share of the raw materials [%]", "share of the node's input [%]",
             f"charged to the focus [{u}]", "basis", "source"],
            [[x["node"], x["node_name"], x["node_name_zh"], x["what"], x["what_zh"], x["to"],
              x["kind"], _r(x["amount"]), _r(x["share_of_input_pct"]),
              _r(x.get("share_of_node_input_pct")), _r(x.get("charged_to_focus")),
              x.get("share_basis", ""), x["source"]] for x in m["losses"]])
    if m.get("raw_materials"):
        u = m["unit"]
        out["raw materials"] = (
            ["stream", f"amount [{u}]", "per unit product", "unit", "share [%]", "components"],
            [[x["stream"], _r(x["amount"]), _r(x["per_unit_product"], 4),
              x["per_unit_product_unit"], _r(x["share_of_raw_materials_pct"]),
              "; ".join(f"{k} {_r(v)}" for k, v in x["components"].items())]
             for x in m["raw_materials"]])
    if m.get("utilisation"):
        out["utilisation"] = (
            ["basis", "product", "in product [kg]", "input [kg]", "utilisation [%]", "note"],
            [[x["basis"], x["product"], _r(x["in_product"]), _r(x["input"]),
              _r(x["utilisation_pct"]), x["note"]] for x in m["utilisation"]])
    for c in m.get("components", []):
        if c.get("nodes"):
            out[c["layer"].replace("component:", "component ")[:31]] = _node_rows(c)
    w = b["water"].get("indicators", {})
    bal = w.get("balance", {})
    if "classes" in bal:
        out["water balance"] = (
            ["class", "what", "water [t]", "streams"],
            [[k, c["what"], _r(c["t"]), ", ".join(c["streams"])]
             for k, c in bal["classes"].items()]
            + [["residual", bal["residual_note"], _r(bal["residual_t"]), ""]])
    e = b["energy"].get("summary", {})
    per_unit = [("energy", e.get("per_unit_product")), ("water", w.get("fresh_per_unit_product"))]
    if any(pu for _, pu in per_unit):
        out["per unit product"] = (
            ["layer", "value", "unit", "before deductions", "basis", "rule"],
            [[k, _r(pu["value"], 4), pu["unit"], _r(pu["gross"], 4), pu["basis"], pu["rule"]]
             for k, pu in per_unit if pu])
    alloc = [("energy", a) for a in e.get("allocation", [])] + \
        [("water", a) for a in w.get("allocation", [])]
    if alloc:
        out["allocation"] = (
            ["layer", "utility", "nodes", "rule", "share", "unit", "supplied", "charged",
             "deducted or left to others", "how", "source"],
            [[k, a["utility"], ", ".join(a["nodes"]), a["rule"], _r(a["share"], 5), a["unit"],
              _r(a["supplied"]), _r(a["charged"]), _r(a["deducted"]), a["note"], a["source"]]
             for k, a in alloc])
    if "fresh_t" in w:
        keys = [k for k, val in w.items() if isinstance(val, (int, float)) or val is None]
        out["water indicators"] = (["indicator", "value"], [[k, _r(w[k])] for k in keys])
    if "carriers" in e:
        out["energy carriers"] = (
            ["carrier", "amount", "unit", "coefficient [kgce/unit]", "standard coal [kgce]",
             "coefficient status", "coefficient source"],
            [[k, _r(c["amount"]), c["unit"], c["coefficient"], _r(c["kgce"]), c["status"],
              c["source"]] for k, c in e["carriers"].items()])
    if e.get("units"):
        out["energy units"] = (
            ["node", "supplied [kgce]", "fuel [kgce]", "auxiliary electricity [kgce]",
             "effective [kgce]", "losses [kgce]", "efficiency [%]", "efficiency basis",
             "effective streams", "enthalpy [kJ/kg]", "how the enthalpy was found"],
            [[x["node"], _r(x["supplied_kgce"]), _r(x["fuel_kgce"]),
              _r(x["auxiliary_electricity_kgce"]), _r(x["effective_kgce"]), _r(x["losses_kgce"]),
              _r(x["efficiency_pct"]), x["efficiency_basis"], ", ".join(x["streams"]),
              "; ".join(str(_r(h["kj_per_kg"])) for h in x["enthalpy"]),
              "; ".join(h["how"] for h in x["enthalpy"])] for x in e["units"]])
    p = b["pollutant"]
    if p.get("factors"):
        out["pollutant factors"] = (
            ["factor", "名称", "collected [kg]", "collection efficiency", "generated [kg]",
             "fugitive [kg]", "fugitive share [%]", "removal overall [%]", "emitted [kg]",
             "emitted, extrapolated to invalid hours [kg]", "emitted, valid hours only [kg]",
             "substitution rule", "destination", "notes"],
            [[f["factor"], f["name_zh"], _r(f["collected_kg"]), f["collection_efficiency"],
              _r(f["generated_kg"]), _r(f["fugitive_kg"]), _r(f["fugitive_share_pct"]),
              _r(f["removal_overall_pct"]), _r(f["emitted_kg"]),
              _r(f["emitted_kg_extrapolated"]), _r(f.get("emitted_kg_valid_hours")),
              str(f.get("substitution_rule") or ""), f["destination"], "; ".join(f["notes"])]
             for f in p["factors"]])
        out["pollutant points"] = (
            ["factor", "point", "kind", "tag", "load [kg]", "load extrapolated [kg]",
             "valid hours [h]", "hours [h]", "mean concentration", "concentration unit",
             "flow [m3, stack: standard dry]", "converted mean (reference O2)",
             "converted max hour", "reference O2 [%]"],
            [[f["factor"], x["where"], x["kind"], x["tag"], _r(x["load_kg"], 4),
              _r(x["load_kg_extrapolated"], 4), _r(x["valid_hours"]), _r(x["hours"]),
              _r(x["mean_concentration"]), x["unit"], _r(x["flow_m3"]), _r(x["converted_mean"]),
              _r(x["converted_max_hour"]), x["o2_reference_pct"]]
             for f in p["factors"] for x in f["points"]])
        out["pollutant removal"] = (
            ["factor", "upstream point", "downstream point", "units between", "in [kg]",
             "out [kg]", "removal [%]", "hours valid at both [h]"],
            [[f["factor"], s["upstream"], s["downstream"], ", ".join(s["units"]),
              _r(s["load_in_kg"]), _r(s["load_out_kg"]), _r(s["removal_pct"]),
              _r(s["common_hours"])] for f in p["factors"] for s in f["sections"]])
    for layer, r in doc.get("reconciliation", {}).items():
        if not isinstance(r, dict):
            continue
        u = r.get("unit", "")
        out[f"reconciliation {layer}"] = (
            ["stream", f"measured [{u}]", f"sigma [{u}]", f"reconciled [{u}]",
             f"adjustment [{u}]", "MT", "MT critical", "redundant", "detectability"],
            [[s["id"], _r(s["measured"]), _r(s["sigma"]), _r(s["reconciled"]),
              _r(s["adjustment"]), _r(s["mt"]), _r(s["mt_critical"]), s["redundant"],
              _r(s["detectability"])] for s in r["streams"]])
        g = r["global_test"]
        rows = [["global test", _r(g["statistic"]), g["dof"], _r(g["p_value"], 5),
                 "rejected" if g["rejected"] else "accepted", ""]]
        rows += [[f"suspect: {s['kind']}", _r(s["statistic"]), "", "", s["where"],
                  ", ".join(s["equivalent"])] for s in r["suspects"]]
        out[f"tests {layer}"] = (["test", "statistic", "dof", "p value", "result / where",
                                  "equivalent (cannot be told apart)"], rows)
    return out


def xlsx_bytes(doc: dict[str, Any]) -> bytes:
    """The workbook: a sheet about the campaign, then one per table."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    wb = Workbook()
    wb.remove(wb.active)
    about = wb.create_sheet("campaign")
    for row in (["campaign", doc["campaign"]], ["site", doc.get("site", "")],
                ["audit focus", doc.get("audit_focus", "")],
                ["审核重点", doc.get("audit_focus_zh", "")], ["time zone", doc["timezone"]],
                ["balance window", doc["balances"]["material"].get("start"),
                 doc["balances"]["material"].get("end")],
                ["validity", (doc.get("validity") or {}).get("verdict", "")],
                ["material balance", doc["balances"]["material"]["verdict"],
                 doc["balances"]["material"]["message"]]):
        about.append(row)
    for name, (head, rows) in tables(doc).items():
        ws = wb.create_sheet(_sheet(name))
        ws.append(head)
        for c in ws[1]:
            c.font = Font(bold=True)
        for r in rows:
            ws.append([_cell(x) for x in r])
        ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _cell(x: Any) -> Any:
    if isinstance(x, (list, dict)):
        return json.dumps(x, ensure_ascii=False)
    return x


def _sheet(name: str) -> str:
    return re.sub(r"[\[\]:*?/\\]", "_", name)[:31]


def csv_text(table: Table) -> str:
    head, rows = table
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(head)
    for r in rows:
        w.writerow(["" if x is None else x for x in r])
    return buf.getvalue()


def documents(doc: dict[str, Any]) -> dict[str, bytes]:
    """Every file of an export, by name: report.xlsx, report.json, one CSV per table (UTF-8 with
    a BOM: Excel reads the CJK right) and one SVG per layer's Sankey (English and Chinese
    labels)."""
    out = {"report.xlsx": xlsx_bytes(doc),
           "report.json": json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8")}
    for name, t in tables(doc).items():
        fname = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".csv"
        out[fname] = csv_text(t).encode("utf-8-sig")
    for layer, data in doc.get("sankey", {}).items():
        if data["links"]:
            for lang in ("en", "zh"):
                out[f"sankey-{layer}-{lang}.svg"] = svg(data, lang=lang).encode("utf-8")
    return out
