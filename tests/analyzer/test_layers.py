"""Water (GB/T 12452) and energy (GB/T 2589) layers on a hand-computed case: the demo site's
water and energy tags over one production cycle of one hour, amounts chosen so that every
figure can be checked by hand (explicit tolerances)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import config
from analyzer.balance import layer_balance
from analyzer.indicators import energy_summary, water_indicators
from tests.conftest import site_text

T0 = 1_795_000_000_000_000_000
MIN = 60_000_000_000

# amount of each totalizer over the hour, in the tag's unit
AMOUNTS = {
    "water_in.total": 30.0,        # m3, fresh → 30 t
    "hot_wort.total": 25.0,        # m3, the product
    "steam_kettle.total": 3.6,     # t
    "condensate.total": 3.0,       # m3 × 958 kg/m3 = 2.874 t (reused, returned condensate)
    "cip_water.total": 4.0,        # m3, fresh → 4 t
    "cip_waste.total": 4.0,        # m3 → 4 t
    "makeup_water.total": 1.46,    # m3, fresh → 1.46 t
    "steam_main.total": 4.2,       # t (the boiler's steam output)
    "steam_other.total": 0.6,      # t
    "brewery_ww.total": 20.0,      # m3
    "ww_influent.total": 24.0,     # m3
    "ww_anaerobic.total": 24.0,    # m3
    "ww_effluent.total": 23.9,     # m3, discharged
    "sludge.total": 100.0,         # kg
    "gas.total": 300.0,            # Nm3
    "el_brewhouse.energy": 100.0,  # kWh
    "el_boiler.energy": 20.0,      # kWh
    "el_wwtp.energy": 80.0,        # kWh
}


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


def test_water_balance_and_its_indicators(site: config.Config) -> None:
    f = frame()
    w = layer_balance(site, f, "water")
    assert w.unit == "t" and (w.start_ns, w.end_ns) == (T0, T0 + 60 * MIN)
    nodes = {n.node: n for n in w.nodes}
    # a use point: water into the product at the mash, no water output metered: not judged
    assert nodes["mash"].total_in == pytest.approx(30.0) and nodes["mash"].closure_pct is None
    # kettle jacket: 3.6 t of steam in, 2.874 t of condensate out: (3.6 - 2.874) / 3.6
    assert nodes["kettle"].closure_pct == pytest.approx(100 * 0.726 / 3.6, abs=1e-9)
    # boiler: 2.874 + 1.46 in; 4.2 + 0.21 (blowdown, theoretical 210 kg/h) out
    assert nodes["boiler"].total_in == pytest.approx(4.334)
    assert nodes["boiler"].total_out == pytest.approx(4.41)
    # header closes exactly: 4.2 = 3.6 + 0.6
    assert nodes["header"].closure_pct == pytest.approx(0.0, abs=1e-9)
    # the water into the mash leaves in the wort, unmetered as water: the whole is not judged
    assert w.overall is not None and w.overall.closure_pct is None
    assert "use points" in w.message and "mash" in w.message
    assert w.verdict == "exceeded"      # the kettle's jacket loses 20 % in this made-up case
    ind = water_indicators(site, w)
    assert ind["fresh_t"] == pytest.approx(30 + 4 + 1.46)
    assert ind["reused_t"] == pytest.approx(2.874)
    assert ind["total_use_t"] == pytest.approx(35.46 + 2.874)
    assert ind["repeated_use_rate_pct"] == pytest.approx(100 * 2.874 / 38.334)
    assert ind["condensate_reuse_rate_pct"] == pytest.approx(100 * 2.874 / 4.2)
    assert ind["discharged_t"] == pytest.approx(23.9)
    assert ind["fresh_per_unit_product"] == {"value": pytest.approx(35.46 / 25.0),
                                             "unit": "t/m3", "product": "hot_wort"}
    assert "secondary" in ind["source"]


def test_energy_in_standard_coal_with_configurable_coefficients(site: config.Config) -> None:
    f = frame()
    e = layer_balance(site, f, "energy")
    assert e.unit == "kgce" and e.verdict == "supply-only"
    assert all(n.closure_pct is None for n in e.nodes)     # no metered energy output
    s = energy_summary(site, e)
    gas, el = s["carriers"]["natural_gas"], s["carriers"]["electricity"]
    assert gas["amount"] == pytest.approx(300.0) and gas["unit"] == "m3"
    assert gas["kgce"] == pytest.approx(300 * 1.2143) and gas["status"] == "unverified"
    assert el["amount"] == pytest.approx(200.0) and el["kgce"] == pytest.approx(200 * 0.1229)
    total = 300 * 1.2143 + 200 * 0.1229
    assert s["total_kgce"] == pytest.approx(total)
    assert s["per_node_kgce"]["boiler"] == pytest.approx(300 * 1.2143 + 20 * 0.1229)
    assert s["per_unit_product"]["value"] == pytest.approx(total / 25.0)
    assert s["per_unit_product"]["unit"] == "kgce/m3"
    # the campaign's own gas coefficient (its measured LHV) and electricity at equal value
    own = site.model_copy(update={"energy": config.models.EnergySettings(
        electricity="equal_value", equal_value_kgce_kwh=0.305,
        coefficients={"natural_gas": 1.33})})
    s2 = energy_summary(own, layer_balance(own, f, "energy"))
    assert s2["total_kgce"] == pytest.approx(300 * 1.33 + 200 * 0.305)
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
    text = text.replace("layers: [material, water], name: Wastewater from packaging",
                        "layers: [material, water], water_role: cooling_circulating, "
                        "name: Wastewater from packaging")
    p.write_text(text)
    cfg = config.load(p)
    ind = water_indicators(cfg, layer_balance(cfg, frame(), "water"))
    assert ind["cooling_recirculation_rate_pct"] == pytest.approx(100 * 20 / 24)
    assert ind["fresh_t"] == pytest.approx(30 + 4 + 1.46)          # make-up is fresh water
    assert ind["reused_t"] == pytest.approx(2.874 + 20)             # circulating is reused
    assert ind["repeated_use_rate_pct"] == pytest.approx(100 * 22.874 / (35.46 + 22.874))
    # fresh − discharged, no consumption declared: 35.46 − 23.9, labelled unverified
    assert ind["unaccounted_t"] == pytest.approx(35.46 - 23.9)
    assert "unverified" in ind["unaccounted_note"]


def test_boiler_effective_energy_losses_and_efficiency(site: config.Config) -> None:
    """GB/T 3484 per unit: the boiler is supplied 300 Nm3 of gas and 20 kWh; its effective
    output is 4.2 t of steam x 2 342 kJ/kg (declared in the demo site) = 335.62 kgce."""
    from analyzer.energy import coefficient
    e = layer_balance(site, frame(), "energy")
    unit = energy_summary(site, e)["units"][0]
    supplied = 300 * coefficient(site, "natural_gas").kgce + \
        20 * coefficient(site, "electricity").kgce
    effective = 4200 * 2342 / 29307.6
    assert unit["node"] == "boiler" and unit["streams"] == ["steam_main"]
    assert unit["supplied_kgce"] == pytest.approx(supplied, rel=1e-9)
    assert unit["effective_kgce"] == pytest.approx(effective, rel=1e-9)
    assert unit["losses_kgce"] == pytest.approx(supplied - effective, rel=1e-9)
    assert unit["efficiency_pct"] == pytest.approx(100 * effective / supplied, rel=1e-9)
    assert "steam tables" in unit["sources"][0]
