"""7.3.4 beyond the closure: declared accumulation, the loss table, utilisation, a component
balance, the Sankey diagram and the exports, on the hand-computed case of test_balance."""
from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from openpyxl import load_workbook

from cpaudit import config
from cpaudit.analyzer import material_balance
from cpaudit.analyzer.export import csv_text, documents, tables, xlsx_bytes
from cpaudit.analyzer.material import component_balance, losses, utilisation
from cpaudit.analyzer.sankey import sankey, svg
from tests.analyzer.test_balance import AMOUNTS, frame_for

EXTRA = """
components:
  - id: dry_matter
    name: Dry matter
    name_zh: 干物质
    source: "hand-made fractions for the test"
    fractions: {water_in: 0.0, malt_in: 0.95, spent_grains: 0.25, sweet_wort: 0.14, steam_in: 0.0, condensate: 0.0, vapour: 0.0, hot_wort: 0.155}
"""


@pytest.fixture
def cfg(brewery_file: Path, tmp_path: Path) -> config.Config:
    text = brewery_file.read_text()
    text = text.replace("flowsheet:\n  nodes:", "flowsheet:\n  product: hot_wort\n  nodes:")
    text = text.replace(
        "{id: kettle, name: Wort boiling and whirlpool, name_zh: 煮沸与回旋沉淀}",
        "{id: kettle, name: Wort boiling and whirlpool, name_zh: 煮沸与回旋沉淀, "
        "accumulation: {kg: 100, source: 'whirlpool level at start and end'}}")
    text = text.replace("density_kg_m3: 958, name: Steam condensate",
                        "density_kg_m3: 958, fate: transfer, name: Steam condensate")
    p = tmp_path / "c.yaml"
    p.write_text(text + EXTRA)
    return config.load(p)


def test_accumulation_losses_and_utilisation(cfg: config.Config) -> None:
    r = material_balance(cfg, frame_for(AMOUNTS))
    n = {x.node: x for x in r.nodes + [r.overall]}
    # kettle: 10 560 in, 10 209.6 out, 100 held up -> 250.4 unaccounted
    assert n["kettle"].accumulation == 100 and n["kettle"].deviation == pytest.approx(250.4)
    assert n["kettle"].closure_pct == pytest.approx(100 * 250.4 / 10560, abs=1e-9)
    assert n["overall"].deviation == pytest.approx(13200 - 12609.6 - 100)
    rows = losses(cfg, r)
    # condensate is a transfer, hot wort the product: neither is a loss
    assert [(x["stream"] or x["node"], round(x["amount"], 6)) for x in rows] == [
        ("spent_grains", 2400.0), ("vapour", 700.0), ("kettle", 250.4), ("mash", 240.0)]
    assert rows[0]["share_of_input_pct"] == pytest.approx(100 * 2400 / 13200)
    assert rows[2]["kind"] == "deviation" and rows[0]["kind"] == "loss or waste, measured"
    u = utilisation(cfg, r)
    assert u[0]["utilisation_pct"] == pytest.approx(100 * 8360 / 13200)


def test_component_balance(cfg: config.Config) -> None:
    r = material_balance(cfg, frame_for(AMOUNTS))
    c = component_balance(cfg, r, cfg.components[0])
    n = {x.node: x for x in c.nodes + [c.overall]}
    # mash: 1900 in (malt), 600 + 1310.4 out; kettle: 1310.4 in, 1295.8 out
    assert n["mash"].total_in == pytest.approx(1900.0)
    assert n["mash"].closure_pct == pytest.approx(100 * (1900 - 1910.4) / 1900, abs=1e-9)
    assert n["kettle"].closure_pct == pytest.approx(100 * 14.6 / 1310.4, abs=1e-9)
    assert n["overall"].closure_pct == pytest.approx(100 * 4.2 / 1900, abs=1e-9)
    assert c.verdict == "ok" and c.layer == "component:dry_matter"
    u = utilisation(cfg, r, [c])
    # the component figure first: by mass the water taken in mostly leaves in the product
    assert [x["basis"] for x in u] == ["component:dry_matter", "mass"]
    assert u[0]["utilisation_pct"] == pytest.approx(100 * 1295.8 / 1900)


def test_a_stream_without_a_fraction_leaves_the_component_incomplete(cfg: config.Config) -> None:
    comp = cfg.components[0].model_copy(update={"fractions": {
        k: v for k, v in cfg.components[0].fractions.items() if k != "vapour"}})
    c = component_balance(cfg, material_balance(cfg, frame_for(AMOUNTS)), comp)
    assert c.verdict == "incomplete" and "vapour" in c.message


def test_sankey_data_and_svg(cfg: config.Config) -> None:
    r = material_balance(cfg, frame_for(AMOUNTS))
    d = sankey(cfg, r)
    assert len(d["links"]) == 8
    into_kettle = sum(x["value"] for x in d["links"] if x["target"] == "kettle")
    assert into_kettle == pytest.approx(10560.0)
    kettle = next(x for x in d["nodes"] if x["id"] == "kettle")
    assert kettle["ok"] is True and kettle["closure_pct"] == pytest.approx(100 * 250.4 / 10560)
    one = sankey(cfg, r, "mash")        # one unit operation: its four streams
    assert sorted(x["stream"] for x in one["links"]) == [
        "malt_in", "spent_grains", "sweet_wort", "water_in"]
    root = ET.fromstring(svg(d, lang="zh"))
    assert root.tag.endswith("svg")
    texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert "糖化与过滤" in texts and "热麦汁" in texts


def test_exports_have_units_in_headers(cfg: config.Config, tmp_path: Path) -> None:
    from cpaudit.analyzer.recon_layer import reconcile_balance
    r = material_balance(cfg, frame_for(AMOUNTS))
    c = component_balance(cfg, r, cfg.components[0])
    doc = {"campaign": "t", "timezone": "Asia/Shanghai",
           "balances": {"material": {**r.to_dict(), "losses": losses(cfg, r),
                                     "utilisation": utilisation(cfg, r, [c]),
                                     "components": [c.to_dict()]},
                        "water": {"nodes": []}, "energy": {"nodes": []},
                        "pollutant": {"factors": []}},
           "reconciliation": {"material": reconcile_balance(cfg, r)},
           "sankey": {"material": sankey(cfg, r)}}
    t = tables(doc)
    head, rows = t["material balance"]
    assert head[3] == "inputs [kg]" and head[7] == "closure [%]"
    assert [x[0] for x in rows] == ["mash", "kettle", "overall"]
    assert "amount [kg]" in t["material losses"][0]
    assert csv_text(t["material losses"]).splitlines()[1].startswith("mash,")
    wb = load_workbook(io.BytesIO(xlsx_bytes(doc)))
    ws = wb["material balance"]
    assert ws["D1"].value == "inputs [kg]" and ws["H4"].value == pytest.approx(
        round(100 * 590.4 / 13200 - 100 * 100 / 13200, 3))
    files = documents(doc)
    assert files["material-balance.csv"].startswith("\ufeff".encode())   # Excel reads the CJK
    names = set(files)
    assert {"report.xlsx", "report.json", "material-balance.csv",
            "sankey-material-zh.svg"} <= names
