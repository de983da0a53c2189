"""Water (GB/T 12452) and energy (GB/T 2589) layers on a hand-computed case: the demo site's
water and energy tags over one production cycle of one hour, amounts chosen so that every
figure can be checked by hand (explicit tolerances)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cpaudit import config
from cpaudit.analyzer.balance import layer_balance
from cpaudit.analyzer.indicators import energy_summary, water_indicators
from tests.conftest import site_text

T0 = 1_795_000_000_000_000_000
MIN = 60_000_000_000

# amount of each totalizer over the hour (one brew), in the tag's unit. Water content of the
# material streams: 1 − the demo's dry-matter fractions (water: from_component: dry_matter)
AMOUNTS = {
    "water_in.total": 30.0,        # m3, fresh → 30 t
    "malt_in.total": 6000.0,       # kg, dry matter 0.955 → 0.270 t of water
    "adjunct_in.total": 1500.0,    # kg, 0.87 → 0.195 t
    "spent_grains.total": 9000.0,  # kg, 0.20 → 7.2 t
    "sweet_wort.total": 27.5,      # m3 × 1 040 = 28 600 kg, 0.1837 → 23.34618 t
    "hops_in.total": 60.0,         # kg, 0.90 → 0.006 t
    "vapour.total": 2.0,           # m3 × 1 000 → 2 t, evaporation (consumed)
    "hot_wort.total": 25.0,        # m3 × 1 045 = 26 125 kg, 0.1983 → 20.9444125 t; the product
    "steam_kettle.total": 3.6,     # t
    "condensate.total": 3.75,      # m3 × 958 kg/m3 = 3.5925 t (reused, returned condensate)
    "cip_water.total": 4.0,        # m3, fresh → 4 t
    "cip_waste.total": 4.0,        # m3 → 4 t
    "makeup_water.total": 0.83,    # m3, fresh → 0.83 t
    "steam_main.total": 4.2,       # t (the boiler's steam output)
    "steam_other.total": 0.6,      # t, to other workshops (fate: transfer)
    "brewery_ww.total": 20.0,      # m3, other workshops' wastewater (received)
    "ww_influent.total": 24.0,     # m3
    "ww_anaerobic.total": 24.0,    # m3
    "ww_effluent.total": 23.9,     # m3, discharged
    "sludge.total": 100.0,         # kg (fate: waste)
    "gas.total": 300.0,            # Nm3
    "el_brewhouse.energy": 100.0,  # kWh
    "el_boiler.energy": 20.0,      # kWh
    "el_wwtp.energy": 80.0,        # kWh
}
# theoretical: trub 402 kg per brew × 1 brew, water 0.75 → 0.3015 t; blowdown 0.05263 kg per kg
# of main steam × 4 200 kg = 221.046 kg (water)


def frame() -> pd.DataFrame:
    rows = []
    for tag, amount in AMOUNTS.items():
        for k in range(0, 61, 10):
            rows.append((T0 + k * MIN, tag, 500.0 + amount * k / 60, 0, 0))
    # one brew: mashing starts at T0 and again at T0 + 60 min
    for k, state in ((-1, 0.0), (0, 1.0), (20, 2.0), (40, 3.0), (59, 0.0), (60, 1.0)):
        rows.append((T0 + k * MIN, "brewhouse.state", state, 0, 0))
    return pd.DataFrame(rows, columns=["ts", "tag", "value", "quality", "reason"])


@pytest.fixture
def site(tmp_path: Path) -> config.Config:
    p = tmp_path / "site.yaml"
    p.write_text(site_text())
    return config.load(p)


def test_water_balance_closes_with_the_water_in_materials(site: config.Config) -> None:
    """GB/T 12452 on the hand case: the water carried by the material streams (1 − dry matter)
    makes the mash and the kettle balances, the whole and the classes of the identity."""
    f = frame()
    w = layer_balance(site, f, "water")
    assert w.unit == "t" and (w.start_ns, w.end_ns) == (T0, T0 + 60 * MIN)
    nodes = {n.node: n for n in w.nodes}
    # mash: in 30 + 0.27 + 0.195 = 30.465; out 7.2 + 23.34618 = 30.54618 → −0.26647 %
    assert nodes["mash"].total_in == pytest.approx(30.465)
    assert nodes["mash"].total_out == pytest.approx(30.54618)
    assert nodes["mash"].closure_pct == pytest.approx(100 * (30.465 - 30.54618) / 30.465)
    # kettle: in 23.34618 + 0.006 + 3.6 = 26.95218; out 2 + 0.3015 + 20.9444125 + 3.5925
    assert nodes["kettle"].total_in == pytest.approx(26.95218)
    assert nodes["kettle"].total_out == pytest.approx(26.8384125)
    # boiler: 3.5925 + 0.83 in; 4.2 + 0.221046 (blowdown per kg of steam) out
    assert nodes["boiler"].total_in == pytest.approx(4.4225)
    assert nodes["boiler"].total_out == pytest.approx(4.421046)
    assert nodes["header"].closure_pct == pytest.approx(0.0, abs=1e-9)
    # the whole: in 30 + 0.471 (materials) + 4 + 0.83 + 20 = 55.301;
    # out 7.2 + 2 + 0.3015 + 20.9444125 + 0.6 + 0.221046 + 23.9 + 0.1 = 55.2669585
    assert w.overall is not None
    assert w.overall.total_in == pytest.approx(55.301)
    assert w.overall.total_out == pytest.approx(55.2669585)
    assert w.overall.closure_pct == pytest.approx(100 * 0.0340415 / 55.301)
    assert w.verdict == "ok"
    ind = water_indicators(site, w)
    acc = ind["balance"]
    cls = {k: v["t"] for k, v in acc["classes"].items()}
    assert cls == {"fresh": pytest.approx(34.83), "non_conventional": 0.0,
                   "received": pytest.approx(20.0), "in_materials": pytest.approx(0.471),
                   "consumed": pytest.approx(7.2 + 2 + 0.3015 + 20.9444125 + 0.1),
                   "discharged": pytest.approx(0.221046 + 23.9),
                   "exported": pytest.approx(0.6)}
    assert ind["losses_t"] == pytest.approx(0.0340415) and ind["inconsistency_t"] is None
    assert ind["fresh_t"] == pytest.approx(34.83)
    assert ind["reused_t"] == pytest.approx(3.5925)
    assert ind["repeated_use_rate_pct"] == pytest.approx(100 * 3.5925 / 38.4225)
    assert ind["condensate_reuse_rate_pct"] == pytest.approx(100 * 3.5925 / 4.2)
    # charged to the focus: the boiler house's make-up less the 0.6 t of steam exported
    assert ind["charged_fresh_t"] == pytest.approx(34.23)
    pu = ind["fresh_per_unit_product"]
    assert pu["value"] == pytest.approx(34.23 / 25.0) and pu["unit"] == "t/m3"
    assert pu["product"] == "hot_wort" and pu["gross"] == pytest.approx(34.83 / 25.0)
    assert "steam_other" in pu["rule"] and "share 0.1667" in pu["rule"]
    # the station's share 4 / (4 + 20) of its effluent and sludge is the focus's own
    own_d = 0.221046 + 23.9 / 6
    assert ind["charged_discharge_t"] == pytest.approx(own_d)
    assert ind["discharge_rate_pct"] == pytest.approx(100 * own_d / 34.23)
    # the focus's own water: 34.23 charged + 0.471 in materials = 34.701 t against its own
    # consumption 30.4625792 (the station's sludge at 1/6) and discharge 4.2043793: +0.0340415
    own = ind["own_balance"]
    assert own["inputs_t"] == pytest.approx(34.701) and own["losses_t"] == pytest.approx(0.0340415)
    assert ind["leak_rate_pct"] == pytest.approx(100 * 0.0340415 / 34.23)
    own_co = 7.2 + 2 + 0.3015 + 20.9444125 + 0.1 / 6
    assert ind["consumption_rate_pct"] == pytest.approx(100 * own_co / 34.23)
    assert ind["wastewater_reuse_rate_pct"] == 0.0 and ind["non_conventional_share_pct"] == 0.0
    assert ind["direct_cooling_recirculation_rate_pct"] is None
    m = ind["metering"]
    assert m["not_metered"] == ["trub", "blowdown"] and m["streams"] == 22
    assert "secondary" in ind["source"]


def test_a_negative_residual_is_an_inconsistency_not_a_loss(tmp_path: Path) -> None:
    """The final effluent meter reading 10 % high: outputs exceed inputs by 2.39 t. The
    residual is reported as an inconsistency, no negative loss appears."""
    p = tmp_path / "site.yaml"
    p.write_text(site_text())
    cfg = config.load(p)
    f = frame()
    sel = f["tag"] == "ww_effluent.total"
    f.loc[sel, "value"] = 500.0 + (f.loc[sel, "value"] - 500.0) * 1.1
    ind = water_indicators(cfg, layer_balance(cfg, f, "water"))
    assert ind["losses_t"] is None and ind["leak_rate_pct"] is None
    assert ind["inconsistency_t"] == pytest.approx(2.39 - 0.0340415)
    assert "not a loss" in ind["balance"]["residual_note"]


def test_energy_charged_to_the_focus(site: config.Config) -> None:
    """GB/T 2589: gas 300 Nm3 × 1.2128 kgce/Nm3 (the demo's configured LHV) = 363.84 kgce,
    electricity 200 kWh × 0.1229 = 24.58: 388.42 supplied. The boiler house (366.298 kgce) exports
    0.6 t of its 4.2 t of steam at the design enthalpy 2 342 kJ/kg (no pressure reading here):
    heat 47.9466 kgce, deducted at the energy spent making it, 47.9466 / 335.6262 (its effective
    output) × 366.298 = 52.328 kgce; the wastewater station is charged 4 / 24 of its 9.832 kgce:
    1.638667. Charged: 12.29 + (366.298 − 52.328) + 1.638667 = 327.8987 kgce, 13.116 per m3 of
    hot wort. At the heat content alone: 12.29 + (366.298 − 47.9466) + 1.638667 = 332.28007."""
    f = frame()
    e = layer_balance(site, f, "energy")
    assert e.unit == "kgce" and e.verdict == "supply-only"
    s = energy_summary(site, e, layer_balance(site, f, "material"))
    gas, el = s["carriers"]["natural_gas"], s["carriers"]["electricity"]
    assert gas["amount"] == pytest.approx(300.0) and gas["unit"] == "Nm3"
    assert gas["kgce"] == pytest.approx(300 * 1.2128) and gas["status"] == "configured"
    assert el["amount"] == pytest.approx(200.0) and el["kgce"] == pytest.approx(200 * 0.1229)
    total = 300 * 1.2128 + 200 * 0.1229
    assert s["total_kgce"] == pytest.approx(total)
    export = 366.298 * 0.6 / 4.2          # the heat's share of the effective output
    charged = 12.29 + (363.84 + 2.458 - export) + 9.832 / 6
    assert s["charged_kgce"] == pytest.approx(charged)
    pu = s["per_unit_product"]
    assert pu["value"] == pytest.approx(charged / 25.0) and pu["unit"] == "kgce/m3"
    assert pu["gross"] == pytest.approx(total / 25.0)
    assert "steam_other" in pu["rule"] and "deducted" in pu["rule"]
    ops = {r["node"]: r["per_unit_product"] for r in s["per_unit_operation"]}
    assert ops == {"mash": pytest.approx(12.29 / 25), "boiler": pytest.approx(
        (366.298 - export) / 25), "aerobic": pytest.approx(9.832 / 6 / 25)}
    # at the heat content alone (the focus bears the boiler's losses)
    heat = site.model_copy(deep=True)
    heat.allocation.utilities[0] = heat.allocation.utilities[0].model_copy(
        update={"export_basis": "heat_content"})
    s4 = energy_summary(heat, layer_balance(heat, f, "energy"),
                        layer_balance(heat, f, "material"))
    assert s4["charged_kgce"] == pytest.approx(12.29 + 366.298 - 600 * 2342 / 29307.6
                                               + 9.832 / 6)
    assert "heat content" in s4["per_unit_product"]["rule"]
    # the boiler charged by its steam share instead: 3.6 / 4.2 of 366.298
    alt = site.model_copy(deep=True)
    u = alt.allocation.utilities[0]
    alt.allocation.utilities[0] = u.model_copy(update={
        "rule": "measured_share", "focus_streams": ["steam_kettle"],
        "basis_streams": ["steam_main"], "exports": []})
    s3 = energy_summary(alt, layer_balance(alt, f, "energy"), layer_balance(alt, f, "material"))
    assert s3["charged_kgce"] == pytest.approx(12.29 + 366.298 * 3.6 / 4.2 + 9.832 / 6)
    # the campaign's own coefficients and electricity at equal value; Nm3 against a coefficient
    # per m3 at 20 °C: 300 Nm3 = 300 × 293.15 / 273.15 m3
    own = site.model_copy(update={"energy": config.models.EnergySettings(
        electricity="equal_value", equal_value_kgce_kwh=0.305,
        coefficients={"natural_gas": 1.33})})
    s2 = energy_summary(own, layer_balance(own, f, "energy"))
    assert s2["total_kgce"] == pytest.approx(300 * 293.15 / 273.15 * 1.33 + 200 * 0.305)
    assert s2["carriers"]["natural_gas"]["status"] == "configured"
    assert s2["electricity_basis"] == "equal_value"


def test_equal_value_electricity_needs_the_years_coal_rate(tmp_path: Path) -> None:
    p = tmp_path / "site.yaml"
    p.write_text(site_text() + "\nenergy:\n  electricity: equal_value\n")
    with pytest.raises(config.ConfigError) as e:
        config.load(p)
    assert "equal_value_kgce_kwh" in str(e.value)


A0 = T0 // MIN * MIN


def aligned() -> pd.DataFrame:
    """frame() moved onto whole minutes: a rate is integrated per minute of the store's rollup,
    so a gap is located to the minute."""
    f = frame()
    f["ts"] -= T0 - A0
    return f


def test_a_rate_only_stream_is_integrated_and_its_gap_reported(tmp_path: Path) -> None:
    """Brewing water metered by its rate alone (30 m3/h, readings every minute) with 10 minutes
    missing: 30 x 50/60 = 25 m3 over the hour, the gap listed, nothing filled."""
    p = tmp_path / "site.yaml"
    p.write_text(site_text().replace("tag: water_in.total, rate_tag: water_in.flow",
                                     "rate_tag: water_in.flow"))
    cfg = config.load(p)
    f = aligned()
    rows = [(A0 + k * MIN, "water_in.flow", 30.0, 0, 0) for k in range(60) if not 20 <= k < 30]
    f = pd.concat([f, pd.DataFrame(rows, columns=f.columns)], ignore_index=True)
    m = layer_balance(cfg, f, "water")
    w = next(s for s in m.streams if s.stream == "water_in")
    assert w.method == "rate" and w.unit == "m3"
    assert w.amount == pytest.approx(25.0, abs=1e-9)
    assert w.value == pytest.approx(25.0, abs=1e-9)               # t at 1000 kg/m3
    assert w.gaps == [(A0 + 20 * MIN, A0 + 30 * MIN)]
    assert w.rate_coverage == pytest.approx(50 / 60)
    assert "1 gap(s) not filled" in w.note


def test_totalizer_and_rate_disagreeing_is_reported(site: config.Config) -> None:
    """CIP water: the totalizer counts 4 m3 in the hour, the rate reads 4.4 m3/h throughout:
    +10 %, beyond the two meters' classes, said in the note."""
    f = aligned()
    rows = [(A0 + k * MIN, "cip_water.flow", 4.4, 0, 0) for k in range(61)]
    f = pd.concat([f, pd.DataFrame(rows, columns=f.columns)], ignore_index=True)
    m = layer_balance(site, f, "water")
    c = next(s for s in m.streams if s.stream == "cip_water")
    assert c.method == "totalizer" and c.amount == pytest.approx(4.0)
    assert c.rate_amount == pytest.approx(4.4, rel=1e-9)
    assert c.cross_check_pct == pytest.approx(10.0, rel=1e-6)
    assert "+10.0 % of the totalizer" in c.note


def test_cooling_water_recirculation_rate(tmp_path: Path) -> None:
    """The same hour with the CIP water taken as a cooling tower's make-up (4 t, fresh) and the
    packaging wastewater as its circulating water (20 t, reused): r_c = 20 / (20 + 4)."""
    p = tmp_path / "site.yaml"
    text = site_text().replace("water_role: fresh, name: CIP water",
                               "water_role: cooling_makeup, name: CIP water")
    text = text.replace("water_role: received, name: Wastewater from packaging",
                        "water_role: cooling_circulating, name: Wastewater from packaging")
    p.write_text(text)
    cfg = config.load(p)
    ind = water_indicators(cfg, layer_balance(cfg, frame(), "water"))
    assert ind["cooling_recirculation_rate_pct"] == pytest.approx(100 * 20 / 24)
    assert ind["fresh_t"] == pytest.approx(30 + 4 + 0.83)          # make-up is fresh water
    assert ind["reused_t"] == pytest.approx(3.5925 + 20)            # circulating is reused
    assert ind["repeated_use_rate_pct"] == pytest.approx(100 * 23.5925 / (34.83 + 23.5925))


def test_boiler_effective_energy_losses_and_efficiency(site: config.Config) -> None:
    """GB/T 3484 per unit: the boiler is supplied 300 Nm3 of gas and 20 kWh; its effective
    output is 4.2 t of steam x 2 342 kJ/kg (the design point: no pressure reading) = 335.62
    kgce; the efficiency on fuel alone (the default), the electricity reported apart."""
    from cpaudit.analyzer.energy import coefficient
    e = layer_balance(site, frame(), "energy")
    unit = energy_summary(site, e)["units"][0]
    fuel = 300 * coefficient(site, "natural_gas").kgce
    supplied = fuel + 20 * coefficient(site, "electricity").kgce
    effective = 4200 * 2342 / 29307.6
    assert unit["node"] == "boiler" and unit["streams"] == ["steam_main"]
    assert unit["supplied_kgce"] == pytest.approx(supplied, rel=1e-9)
    assert unit["effective_kgce"] == pytest.approx(effective, rel=1e-9)
    assert unit["fuel_kgce"] == pytest.approx(fuel, rel=1e-9)
    assert unit["auxiliary_electricity_kgce"] == pytest.approx(20 * 0.1229, rel=1e-9)
    assert unit["losses_kgce"] == pytest.approx(fuel - effective, rel=1e-9)
    assert unit["efficiency_pct"] == pytest.approx(100 * effective / fuel, rel=1e-9)
    assert "design point" in unit["enthalpy"][0]["how"]


def test_a_metered_steam_pressure_picks_the_enthalpy(site: config.Config) -> None:
    """steam_main.pressure reads 0.9 MPa gauge: 1.001325 MPa abs, saturated steam 2 777.17
    kJ/kg (IAPWS-IF97; steam tables give 2 777.1 at 1.0 MPa), less 436: 2 341.17 kJ/kg."""
    f = aligned()
    rows = [(A0 + k * MIN, "steam_main.pressure", 0.9, 0, 0) for k in range(61)]
    f = pd.concat([f, pd.DataFrame(rows, columns=f.columns)], ignore_index=True)
    unit = energy_summary(site, layer_balance(site, f, "energy"))["units"][0]
    kj = unit["enthalpy"][0]["kj_per_kg"]
    assert kj == pytest.approx(2777.17 - 436, abs=0.05)
    assert unit["effective_kgce"] == pytest.approx(4200 * kj / 29307.6, rel=1e-9)
    assert "1.0013 MPa abs" in unit["enthalpy"][0]["how"]
