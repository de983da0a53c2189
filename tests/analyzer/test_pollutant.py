"""Pollutant factor balance (7.3.7): a hand-computed case written into a real store, a generated
campaign against the plant model's own pollutant loads, and configuration mistakes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import config
from analyzer.pollutant import pollutant_from_store
from store.sqlite import SQLiteStore
from tests.conftest import site_text

T0 = 1_795_000_000_000_000_000 // 3_600_000_000_000 * 3_600_000_000_000   # on the hour
S = 1_000_000_000
HOURS = 3

# constant readings over 3 h (the tag's unit as configured in the demo site)
VALUES = {
    "stack.flow": 10000.0,          # m3/h, actual
    "stack.temperature": 130.0,     # degC
    "stack.pressure": 101.0,        # kPa, absolute
    "stack.moisture": 17.0,         # percent
    "stack.o2": 6.0,                # percent, dry
    "stack.so2": 40.0,              # mg/m3, dry
    "stack.nox": 50.0,
    "stack.dust": 2.0,
    "ww_influent.flow": 30.0 / 3600,    # m3/s
    "ww_influent.cod": 2000.0,          # mg/L
    "ww_influent.nh3n": 30.0,
    "ww_anaerobic.flow": 30.0 / 3600,
    "ww_anaerobic.cod": 300.0,
    "ww_anaerobic.nh3n": 30.0,
    "ww_effluent.flow": 29.7 / 3600,
    "ww_effluent.cod": 30.0,
    "ww_effluent.nh3n": 2.4,
}


@pytest.fixture
def site(tmp_path: Path) -> config.Config:
    p = tmp_path / "site.yaml"
    p.write_text(site_text())
    return config.load(p)


def write(store: SQLiteStore, drop: dict[str, tuple[int, int]] | None = None) -> None:
    ts = T0 + np.arange(HOURS * 3600, dtype=np.int64) * S
    series = []
    for tag, v in VALUES.items():
        keep = np.ones(len(ts), bool)
        if drop and tag in drop:
            a, b = drop[tag]
            keep[(ts >= a) & (ts < b)] = False
        n = int(keep.sum())
        series.append((tag, ts[keep], np.full(n, v), np.zeros(n, np.int8), np.zeros(n, np.int8)))
    store.write_series(series)


def test_stack_and_wastewater_hand_computed(site: config.Config, tmp_path: Path) -> None:
    st = SQLiteStore(tmp_path / "p.db")
    # SO2: 30 minutes of the second hour lost -> 50 % of that hour: invalid (rule 75 %)
    write(st, {"stack.so2": (T0 + 3600 * S, T0 + 5400 * S)})
    r = pollutant_from_store(site, st, T0, T0 + HOURS * 3600 * S)
    f = {x.factor: x for x in r.factors}
    # standard dry flow: 10000 x 273.15/403.15 x 101/101.325 x (1 - 0.17) = 5605.54 m3/h
    q_sn = 10000 * 273.15 / 403.15 * 101 / 101.325 * 0.83
    assert q_sn == pytest.approx(5605.54, abs=0.01)
    so2 = f["SO2"].points[0]
    assert so2.valid_hours == pytest.approx(2.0)
    assert len(so2.invalid) == 1 and so2.invalid[0]["start_ns"] == T0 + 3600 * S
    assert "stack.so2" in so2.invalid[0]["why"]
    # 40 mg/m3 x 5605.58 m3/h x 1e-6 = 0.224223 kg/h, over the 2 valid hours
    assert so2.load_kg == pytest.approx(40e-6 * q_sn * 2, rel=1e-9)
    assert so2.load_kg_extrapolated == pytest.approx(40e-6 * q_sn * 3, rel=1e-9)
    # converted to 3.5 % O2: 40 x (21 - 3.5)/(21 - 6) = 46.667 mg/m3
    assert so2.converted_mean == pytest.approx(40 * 17.5 / 15, rel=1e-9)
    assert f["NOx"].points[0].load_kg == pytest.approx(50e-6 * q_sn * 3, rel=1e-9)
    assert f["SO2"].emitted_kg == pytest.approx(so2.load_kg)
    assert f["SO2"].destination.startswith("air")
    assert f["SO2"].fugitive_kg == pytest.approx(0.0) and f["SO2"].fugitive_share_pct == 0.0
    # COD: 2000 mg/L x 30 m3/h = 60 kg/h; 300 x 30 = 9 kg/h; 30 x 29.7 = 0.891 kg/h
    cod = f["COD"]
    assert [p.load_kg for p in cod.points] == pytest.approx([180.0, 27.0, 2.673], rel=1e-9)
    assert cod.sections[0].units == ["anaerobic"] and cod.sections[1].units == ["aerobic"]
    assert cod.sections[0].removal_pct == pytest.approx(85.0, abs=1e-9)
    assert cod.sections[1].removal_pct == pytest.approx(100 * (1 - 0.891 / 9), abs=1e-9)
    assert cod.removal_overall_pct == pytest.approx(100 * (1 - 0.891 / 60), abs=1e-9)
    assert cod.generated_kg == pytest.approx(180.0) and cod.emitted_kg == pytest.approx(2.673)
    assert cod.destination.startswith("water")
    assert r.verdict == "incomplete" and "SO2" in r.message
    assert "75%" in r.validity_rule


def test_collection_efficiency_gives_generation_and_fugitive(tmp_path: Path) -> None:
    text = site_text().replace(
        'collection: {value: 1.0, source: "boiler flue gas is ducted to the stack (organised '
        'emission)"}\n      points: [{stack: boiler_stack, tag: stack.dust}]',
        'collection: {value: 0.8, source: "hood capture test"}\n'
        '      points: [{stack: boiler_stack, tag: stack.dust}]')
    p = tmp_path / "s.yaml"
    p.write_text(text)
    cfg = config.load(p)
    st = SQLiteStore(tmp_path / "p.db")
    write(st)
    r = pollutant_from_store(cfg, st, T0, T0 + HOURS * 3600 * S)
    dust = next(x for x in r.factors if x.factor == "particulate")
    q_sn = 10000 * 273.15 / 403.15 * 101 / 101.325 * 0.83
    collected = 2e-6 * q_sn * 3
    assert dust.collected_kg == pytest.approx(collected, rel=1e-9)
    assert dust.generated_kg == pytest.approx(collected / 0.8, rel=1e-9)
    assert dust.fugitive_kg == pytest.approx(collected / 0.8 * 0.2, rel=1e-9)
    assert dust.fugitive_share_pct == pytest.approx(20.0)
    assert r.verdict == "ok"


def test_generated_campaign_matches_the_plant_model(site: config.Config, tmp_path: Path) -> None:
    """Six hours of the demo site at 1 s: the loads computed from concentrations and flows
    (hourly means, 4-20 mA quantisation of the stack conditions) against the plant model's own
    pollutant masses over the same window."""
    from simulators.generate import generate
    from simulators.site import BrewerySite
    st = SQLiteStore(tmp_path / "g.db")
    t0 = T0 / 1e9
    generate(site, st, 6, start=t0)
    r = pollutant_from_store(site, st, T0, T0 + 6 * 3600 * S)
    plant = BrewerySite(t0, site.simulation.load_amplitude)
    t1 = t0 + 6 * 3600

    def truth(name: str) -> float:
        return float(plant.total(name, t1) - plant.total(name, t0))
    f = {x.factor: x for x in r.factors}
    assert f["COD"].points[0].load_kg == pytest.approx(truth("cod_influent"), rel=0.003)
    assert f["COD"].emitted_kg == pytest.approx(truth("cod_effluent"), rel=0.003)
    assert f["NH3-N"].points[0].load_kg == pytest.approx(truth("nh3n_influent"), rel=0.003)
    assert f["SO2"].emitted_kg == pytest.approx(truth("so2_stack"), rel=0.003)
    assert f["NOx"].emitted_kg == pytest.approx(truth("nox_stack"), rel=0.003)
    assert f["COD"].sections[0].removal_pct == pytest.approx(85.0, abs=0.5)
    assert r.verdict == "ok"


def test_configuration_mistakes_name_the_field(tmp_path: Path) -> None:
    bad = site_text().replace("points: [{stack: boiler_stack, tag: stack.so2}]",
                              "points: [{stack: chimney, tag: stack.o2}]")
    p = tmp_path / "bad.yaml"
    p.write_text(bad)
    with pytest.raises(config.ConfigError) as e:
        config.load(p)
    text = str(e.value)
    assert "pollutants.factors[2].points[0].stack: unknown stack 'chimney'" in text
    assert "pollutants.factors[2].points[0].tag: tag 'stack.o2' has unit 'percent'" in text
    line = next(i for i, x in enumerate(bad.splitlines(), 1) if "stack: chimney" in x)
    assert f"bad.yaml:{line}:" in text

