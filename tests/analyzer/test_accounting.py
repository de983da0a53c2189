"""What the audit focus is charged with, on a generated campaign of the demo site, against the
plant model's own figures (simulators/site.py) — the meaning, not only the arithmetic.

Per brew at nominal size (site.py's docstring and build_flows): 30 t of brewing water, 4 t of
CIP water; the boiler makes 3.6 t of jacket steam (returned as condensate) plus 2.8 t/h × 3 h =
8.4 t for other workshops, 12 t in all, from 12 / 0.95 = 12.632 t of feed water; make-up =
feed − condensate = 9.032 t. Hot wort: 28.5 t × (1 − 0.07 − 0.012) = 26.163 t = 25.036 m3.

- Fresh water charged to the focus = 30 + 4 + (9.032 − 8.4 exported in steam) = 34.632 t, per m3
  of hot wort 1.3833 t/m3 (the gross figure charges all make-up: 43.032 / 25.036 = 1.719).
- Energy: gas = 12 000 kg × 2 342 kJ/kg / (0.92 × 35 544 kJ/Nm3) = 859.4 Nm3 × 1.2128 kgce/Nm3 =
  1 042.3 kgce; boiler-house electricity 12 000 × 30/4000 = 90 kWh = 11.06 kgce; the exported
  8 400 kg of the 12 000 kg of steam are deducted at the energy spent making them (the demo's
  export_basis: fuel_equivalent), 8 400 / 12 000 of 1 053.4 kgce: the boiler house is charged
  316.0 kgce. Brew house electricity 40 kW × 3 h + 80 kW × 0.65 × 3 h = 276 kWh = 33.92 kgce.
  Wastewater station 60 kW × 3 h + 94 000 kg × 20/30 000 = 242.7 kWh = 29.82 kgce, of which the
  focus's share is 4 000 / 94 000 of the inflow: 1.269 kgce. Charged 351.2 kgce, 14.03 kgce/m3.

Load follows the daily swing (amplitude 8 %): the continuous terms (steam for others, the
station's base load) and the brews' size do not scale alike, so the model's own figure moves by a
few tenths of a per cent with the window. The meters add their classes — each simulated meter
carries a fixed calibration offset within its class, σ = a/√3 (simulators/meters.py) — and a
charged figure is a difference, which amplifies them. Propagated per brew (σ in the figure's
unit): fresh water 30, 4 and 9.03 t at class 1.0 and 8.4 t exported at 1.5: σ = 0.196 t of
34.63 (0.57 %), with the hot-wort meter (0.5: 0.29 %) 0.64 %; energy: the boiler's 1 053.4 kgce
(gas at 1.5 %, σ 0.87 %: 2.7 kgce of the 316.0 charged) times 1 − 8 400/12 000, the two steam
meters at 1.5 % each: σ of the share 0.7 × 0.87 % × √2 = 0.86 % of 1, 2.9 % of the 0.3 kept
(9.2 kgce): σ = 9.6 of 351.2 kgce (2.7 %), with the hot wort 2.8 %. The tests allow 3 σ plus
0.5 % for the load swing.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from cpaudit import config
from cpaudit.store.sqlite import SQLiteStore
from tests.analyzer.test_pollutant import T0
from tests.conftest import site_text

FRESH_PER_M3 = 34.632 / 25.036
KGCE_PER_M3 = 351.2 / 25.036
TOL_FRESH = 3 * 0.0064 + 0.005      # relative: 3 σ of the meters + the load swing
TOL_KGCE = 3 * 0.028 + 0.005


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from cpaudit.analyzer.iotools import campaign_report
    from cpaudit.simulators.generate import generate
    d = tmp_path_factory.mktemp("acc")
    p = d / "site.yaml"
    p.write_text(site_text())
    cfg = config.load(p)
    st = SQLiteStore(d / "g.db")
    generate(cfg, st, 10, start=T0 / 1e9)
    return campaign_report(cfg, st, validity=False)


def test_per_unit_figures_charge_the_focus_with_what_it_uses(report: dict) -> None:
    b = report["balances"]
    w = b["water"]["indicators"]["fresh_per_unit_product"]
    assert w["unit"] == "t/m3" and w["product"] == "hot_wort"
    assert w["value"] == pytest.approx(FRESH_PER_M3, rel=TOL_FRESH)
    assert w["gross"] == pytest.approx(43.032 / 25.036, rel=TOL_FRESH)
    assert "steam_other" in w["rule"]
    e = b["energy"]["summary"]["per_unit_product"]
    assert e["unit"] == "kgce/m3"
    assert e["value"] == pytest.approx(KGCE_PER_M3, rel=TOL_KGCE)
    assert "deducted at the energy spent making them" in e["rule"]
    assert "measured share" in e["rule"]
    assert e["gross"] > 2.5 * e["value"]       # the whole boiler would be charged otherwise
    units = b["energy"]["summary"]["units"][0]
    assert units["efficiency_basis"] == "fuel"
    # the model's 92 %: gas and main-steam meters at 1.5 %, σ 1.2 % of the ratio: 3 σ = 3.4 pt
    assert units["efficiency_pct"] == pytest.approx(92.0, abs=3.4)
    assert "IAPWS-IF97" in units["enthalpy"][0]["how"]


def test_the_water_balance_closes_and_a_residual_is_never_a_negative_loss(report: dict) -> None:
    w = report["balances"]["water"]
    assert w["verdict"] == "ok"
    nodes = {n["node"]: n for n in w["nodes"]}
    assert nodes["mash"]["closure_pct"] is not None          # judged, no longer a use point
    assert abs(w["overall"]["closure_pct"]) < 1.0
    bal = w["indicators"]["balance"]
    assert abs(bal["residual_pct"]) < 1.0
    assert bal["losses_t"] is None or bal["losses_t"] >= 0
    assert (bal["losses_t"] is None) == (bal["inconsistency_t"] is not None)
    cls = bal["classes"]
    # the window holds whole brews (the first start at T0 is not seen as a change: 2 brews
    # from 3 h to 9 h); 2.8 t/h of steam for others and 30 t/h of received wastewater at
    # nominal load, which swings by up to 8 %
    hours = w["hours"]
    assert hours == pytest.approx(6.0)
    assert cls["exported"]["t"] == pytest.approx(2.8 * hours, rel=0.09)
    assert cls["received"]["t"] == pytest.approx(30.0 * hours, rel=0.09)
    assert cls["in_materials"]["streams"] == ["malt_in", "adjunct_in", "hops_in"]


@pytest.fixture(scope="module")
def report80(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """80 h of the demo site at 30 s ticks (the same plant, meters and offsets as at 1 s)."""
    from cpaudit.analyzer.iotools import campaign_report
    from cpaudit.simulators.generate import generate
    d = tmp_path_factory.mktemp("acc80")
    p = d / "site.yaml"
    p.write_text(site_text(**{"interval_s: 1.0": "interval_s: 30"}))
    cfg = config.load(p)
    st = SQLiteStore(d / "g.db")
    generate(cfg, st, 80, start=T0 / 1e9)
    return campaign_report(cfg, st, validity=False)


def test_80h_intact_per_unit_figures_and_the_water_balance(report80: dict) -> None:
    """The same figures over 25 brews (75 h): the model's ratios hold per brew, so the same
    expectations and tolerances; the flowsheet's water closes, the residual is a loss or an
    inconsistency, never a negative loss, the focus's own rates add up with its inputs."""
    b = report80["balances"]
    assert b["water"]["hours"] == pytest.approx(75.0)
    w = b["water"]["indicators"]
    assert w["fresh_per_unit_product"]["value"] == pytest.approx(FRESH_PER_M3, rel=TOL_FRESH)
    e = b["energy"]["summary"]["per_unit_product"]
    assert e["value"] == pytest.approx(KGCE_PER_M3, rel=TOL_KGCE)
    assert abs(b["water"]["overall"]["closure_pct"]) < 1.0
    for bal in (w["balance"], w["own_balance"]):
        assert (bal["losses_t"] is None) != (bal["inconsistency_t"] is None)
        assert bal["losses_t"] is None or bal["losses_t"] >= 0
        assert bal["inconsistency_t"] is None or bal["inconsistency_t"] > 0
    own = w["own_balance"]
    # consumption + discharge + residual = the focus's own inputs
    assert own["consumed_t"] + own["discharged_t"] + own["residual_t"] == pytest.approx(
        own["inputs_t"])
    assert w["consumption_rate_pct"] + w["discharge_rate_pct"] + (w["leak_rate_pct"] or 0.0) \
        == pytest.approx(100 * (own["inputs_t"] + (own["inconsistency_t"] or 0.0))
                         / w["charged_fresh_t"])


def test_material_shares_have_meaningful_denominators(report: dict) -> None:
    m = report["balances"]["material"]
    util = {u["basis"]: u for u in m["utilisation"]}
    # dry matter: hot wort 26.163 t × 0.1983 over malt 6 × 0.955 + rice 1.5 × 0.87 + hops
    # 0.06 × 0.9 per brew = 5.188 / 7.089 = 73.2 %
    assert util["component:dry_matter"]["utilisation_pct"] == pytest.approx(73.2, abs=1.0)
    assert util["mass"]["inputs"] == ["water_in", "malt_in", "adjunct_in", "hops_in"]
    losses = {x["stream"]: x for x in m["losses"] if x["stream"]}
    # spent grains 9 t of 37.56 t of raw materials per brew: 24.0 %
    assert losses["spent_grains"]["share_of_input_pct"] == pytest.approx(24.0, abs=0.5)
    # the final effluent is the shared station's: no share of the wort's raw materials
    assert losses["ww_effluent"]["share_of_input_pct"] is None
    assert losses["ww_effluent"]["charged_to_focus"] == pytest.approx(
        losses["ww_effluent"]["amount"] * 4 / 94, rel=0.02)
    # trub 402 kg per brew, per cycle: 2 brews in the window
    trub = next(s for s in m["streams"] if s["stream"] == "trub")
    assert trub["amount"] == pytest.approx(402 * 2) and "per cycle" in trub["note"]


def test_allocation_mistakes_name_the_field(tmp_path: Path) -> None:
    text = site_text().replace("nodes: [boiler, header]", "nodes: [boiler, haeder]")
    text = text.replace("exports: [steam_other]", "exports: [steam_kettle]")
    with pytest.raises(config.ConfigError) as e:
        config.load_text(text, "site.yaml")
    msgs = [str(p) for p in e.value.problems]
    assert any("allocation.utilities[0].nodes[1]" in m and "unknown node 'haeder'" in m
               for m in msgs), msgs
    assert any("allocation.utilities[0].exports[0]" in m and "must leave" in m for m in msgs)
    bad = site_text().replace("rule: measured_share        #", "rule: fixed        #")
    with pytest.raises(config.ConfigError) as e:
        config.load_text(bad, "site.yaml")
    assert "share" in str(e.value)
