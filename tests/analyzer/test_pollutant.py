"""Pollutant factor balance (7.3.7): a hand-computed case written into a real store, a generated
campaign against the plant model's own pollutant loads, and configuration mistakes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cpaudit import config
from cpaudit.analyzer.iotools import pollutant_from_store
from cpaudit.store.sqlite import SQLiteStore
from tests.conftest import site_text

T0 = 1_795_000_000_000_000_000 // 3_600_000_000_000 * 3_600_000_000_000   # on the hour
S = 1_000_000_000
HOURS = 3
T2H = T0 // (7200 * S) * 7200 * S                                          # on an even hour

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
    "stack.status": 1.0,            # SCS-900UV 0x000A: 0 or 1 normal
    "stack.maintenance": 0.0,       # 0x000B: no maintenance
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
    # 40 mg/m3 x 5605.58 m3/h x 1e-6 = 0.224223 kg/h, over the 2 valid hours; the invalid hour
    # is substituted (HJ 75: mean of the valid hour before and after = 0.224223 kg): headline 3 h
    assert so2.load_kg_valid_hours == pytest.approx(40e-6 * q_sn * 2, rel=1e-9)
    assert so2.load_kg == pytest.approx(40e-6 * q_sn * 3, rel=1e-9)
    assert so2.substituted_kg == pytest.approx(40e-6 * q_sn, rel=1e-9)
    assert so2.substitution["rule"] == "hj75" and "HJ 75" in so2.substitution["source"]
    assert so2.invalid[0]["substituted_kg"] == pytest.approx(40e-6 * q_sn, rel=1e-9)
    assert so2.load_kg_extrapolated == pytest.approx(40e-6 * q_sn * 3, rel=1e-9)
    # converted to 3.5 % O2: 40 x (21 - 3.5)/(21 - 6) = 46.667 mg/m3
    assert so2.converted_mean == pytest.approx(40 * 17.5 / 15, rel=1e-9)
    assert f["NOx"].points[0].load_kg == pytest.approx(50e-6 * q_sn * 3, rel=1e-9)
    assert f["SO2"].emitted_kg == pytest.approx(so2.load_kg)
    assert f["SO2"].emitted_kg_valid_hours == pytest.approx(so2.load_kg_valid_hours)
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
    from cpaudit.simulators.generate import generate
    from cpaudit.simulators.site import BrewerySite
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



# -- issue 13 part 5: cycle analyzers, CEMS status, substitution, per-tag basis -------------
def cycle_site(tmp_path: Path, devices: tuple[str, ...], extra: str = "",
               **subs: str) -> config.Config:
    """The demo site with the named water-quality devices reporting once per 2 h cycle
    (interval_s: 7200), fed by a flow-proportional composite sampler in the simulation."""
    text = site_text(**subs)
    for dev in devices:
        text = text.replace(f"  - name: {dev}\n    protocol: mqtt\n",
                            f"  - name: {dev}\n    protocol: mqtt\n    interval_s: 7200\n")
        topic = dev.replace("iot_wwq_", "ww_")
        text = text.replace(f"      topic: brewery/wwq/{topic}\n      fields: {{cod: cod, nh3n: nh3n}}\n",
                            f"      topic: brewery/wwq/{topic}\n      fields: {{cod: cod, nh3n: nh3n}}\n"
                            "      sample: cycle_composite\n")
    text = text.replace("  cycle_value_holds: preceding", "  cycle_value_holds: preceding" + extra)
    p = tmp_path / "cycle.yaml"
    p.write_text(text)
    return config.load(p)


def write_values(store: SQLiteStore, values: dict[str, np.ndarray], ts: np.ndarray) -> None:
    z = np.zeros(len(ts), np.int8)
    store.write_series([(t, ts, v, z, z) for t, v in values.items()])


def test_cycle_analyzer_result_holds_for_its_cycle(tmp_path: Path) -> None:
    """A COD analyzer on the anaerobic outlet reporting once per 2 h (interval_s 7200), the flow
    at 30 m3/h. Results at T0+2h = 300 mg/L and T0+4h = 600 mg/L; the rule 'preceding': the
    result at T holds for (T - 2h, T]. By hand: hours 0-1 at 300 mg/L x 30 m3/h = 9 kg/h,
    hours 2-3 at 600 x 30 = 18 kg/h: 2 x 9 + 2 x 18 = 54 kg over 4 valid hours (with the
    old per-hour readings rule hours 0 and 2 had no reading at all: invalid)."""
    T0 = T2H       # the results are scheduled at the multiples of 2 h since the epoch
    cfg = cycle_site(tmp_path, ("iot_wwq_anaerobic",))
    assert cfg.device("iot_wwq_anaerobic").interval_s == 7200
    st = SQLiteStore(tmp_path / "c.db")
    ts = T0 + np.arange(4 * 3600, dtype=np.int64) * S
    write_values(st, {"ww_anaerobic.flow": np.full(len(ts), 30.0 / 3600)}, ts)
    cod_ts = np.array([T0 + 2 * 3600 * S, T0 + 4 * 3600 * S], np.int64)
    write_values(st, {"ww_anaerobic.cod": np.array([300.0, 600.0])}, cod_ts)
    # the result of the last cycle comes in at T0+4h, the window's end: read beyond it
    r = pollutant_from_store(cfg, st, T0, T0 + 4 * 3600 * S)
    cod = next(f for f in r.factors if f.factor == "COD").points[1]
    assert cod.hour_rule == "cycle" and cod.interval_s == 7200
    assert cod.valid_hours == pytest.approx(4.0) and not cod.invalid
    assert cod.load_kg == pytest.approx(54.0, rel=1e-9)
    assert cod.mean_concentration == pytest.approx(450.0, rel=1e-9)
    assert "(T - I, T]" in r.validity_rule
    # the same results with 'following' (the result holds until the next one): the result at
    # T0+2h covers hours 2-3 (9 kg/h x 2 = 18 kg); hours 0-1 have no result (T0's is missing):
    # a 2 h run at the window's start, substituted by its one neighbour (hour 2, 9 kg/h):
    # headline 18 + 18 = 36 kg, valid hours alone 18 kg
    cfg2 = cycle_site(tmp_path, ("iot_wwq_anaerobic",)).model_copy(update={
        "pollutants": cfg.pollutants.model_copy(update={"cycle_value_holds": "following"})})
    r2 = pollutant_from_store(cfg2, st, T0, T0 + 4 * 3600 * S)
    c2 = next(f for f in r2.factors if f.factor == "COD").points[1]
    assert c2.valid_hours == pytest.approx(2.0) and len(c2.invalid) == 2
    assert c2.load_kg_valid_hours == pytest.approx(18.0, rel=1e-9)
    assert c2.load_kg == pytest.approx(36.0, rel=1e-9)
    assert c2.substitution["runs"][0]["basis"] == "the valid hour after (window edge)"
    # the first hour of the campaign, before the first result (due at T0+2h, not yet in):
    # no valid hour, nothing to substitute from: 0 kg, said so
    st3 = SQLiteStore(tmp_path / "first.db")
    write_values(st3, {"ww_anaerobic.flow": np.full(3600, 30.0 / 3600)}, ts[:3600])
    write_values(st3, {"ww_anaerobic.cod": np.array([300.0])}, cod_ts[:0] + T0 - 2 * 3600 * S)
    r3 = pollutant_from_store(cfg, st3, T0, T0 + 3600 * S)
    c3 = next(f for f in r3.factors if f.factor == "COD").points[1]
    assert c3.valid_hours == 0 and c3.load_kg == 0.0 and len(c3.invalid) == 1
    assert "ww_anaerobic.cod" in c3.invalid[0]["why"]


def test_generated_2h_cod_analyzer_matches_the_plant(tmp_path: Path) -> None:
    """Golden: the demo site with the influent and final-effluent COD/NH3-N analyzers on a 2 h
    cycle (composite sampling), analysed from an even hour (11 h generated: the result of the
    window's last cycle comes in after the window). Over 9 h every scheduled result is in, so
    all 9 hours count (the old per-hour readings rule: only the 4 hours holding a result, at
    2, 4, 6 and 8 h, valid, 5 invalid, 56 % of the load missing). The load against the plant
    model's own COD mass over 8 h = 4 whole cycles: the composite is each cycle's flow-weighted
    mean, so C x the metered volume is the true mass up to the flow meter: its bias is drawn
    within +-accuracy/2 (KROHNE IFC 050, 0.5 % -> 0.25 %), its noise (sigma = accuracy/3 per
    second) averages out over 28 800 s, float32 registers and the 6-decimal JSON are far below:
    tolerance 0.25 % + 0.05 % (measured: +0.03 %). Over 9 h the last hour holds half a cycle's
    composite, which is not that hour's own mean (-0.6 % measured on this run): the rule's
    resolution is the cycle, said in the result (hour_rule: cycle, interval_s)."""
    from cpaudit.simulators.generate import generate
    from cpaudit.simulators.site import BrewerySite
    cfg = cycle_site(tmp_path, ("iot_wwq_influent", "iot_wwq_effluent"))
    st = SQLiteStore(tmp_path / "g.db")
    t0 = T2H / 1e9
    generate(cfg, st, 11, start=t0)
    r9 = pollutant_from_store(cfg, st, T2H, T2H + 9 * 3600 * S)
    f9 = {x.factor: x for x in r9.factors}
    for p in (f9["COD"].points[0], f9["COD"].points[2], f9["NH3-N"].points[0]):
        assert p.hour_rule == "cycle" and p.valid_hours == pytest.approx(9.0) and not p.invalid
    assert r9.verdict == "ok"
    assert f9["COD"].emitted_kg == f9["COD"].emitted_kg_valid_hours     # nothing substituted
    r = pollutant_from_store(cfg, st, T2H, T2H + 8 * 3600 * S)
    plant = BrewerySite(t0, cfg.simulation.load_amplitude)

    def truth(name: str) -> float:
        return float(plant.total(name, t0 + 8 * 3600) - plant.total(name, t0))
    f = {x.factor: x for x in r.factors}
    tol = 0.5 / 2 / 100 + 0.0005
    assert f["COD"].points[0].load_kg == pytest.approx(truth("cod_influent"), rel=tol)
    assert f["COD"].emitted_kg == pytest.approx(truth("cod_effluent"), rel=tol)
    assert f["NH3-N"].points[0].load_kg == pytest.approx(truth("nh3n_influent"), rel=tol)
    assert f["NH3-N"].emitted_kg == pytest.approx(truth("nh3n_effluent"), rel=tol)


def cems_rows(q_sn_values: dict[str, float], hours: int) -> tuple[np.ndarray, dict[str,
                                                                               np.ndarray]]:
    ts = T0 + np.arange(hours * 3600, dtype=np.int64) * S
    return ts, {t: np.full(len(ts), v) for t, v in q_sn_values.items()}


def test_cems_status_minutes_are_no_emission_and_hours_are_substituted(
        site: config.Config, tmp_path: Path) -> None:
    """Four hours at the stack, the standard dry flow 5605.54 m3/h as in the first test. SO2
    40 mg/m3 in hour 0, 60 in hours 2-3; hour 1 is a calibration (status word 3, SCS-900UV low
    byte 2-7), the analyzer reading span gas 100 mg/m3; in hour 0, 10 minutes of calibration
    with span gas too (50 minutes left >= 45: the hour counts, on its normal minutes).
    By hand (kg = mg/m3 x m3/h x 1e-6 x h): hour 0: 40 x q (not (50 x 40 + 10 x 100)/60 = 50);
    hour 2, 3: 60 x q; hour 1 substituted (HJ 75: mean of the valid hours before and after):
    (40 + 60)/2 x q = 50 x q. Headline (40 + 50 + 60 + 60) x q = 210 q, valid hours alone
    160 q; with mean_valid 160/3 x 4 q; with none 160 q."""
    q_sn = 10000 * 273.15 / 403.15 * 101 / 101.325 * 0.83
    ts, vals = cems_rows(VALUES, 4)
    h = (ts - T0) // (3600 * S)
    m = (ts - T0) // (60 * S)
    cal = (h == 1) | (m < 10)
    vals["stack.so2"] = np.where(h == 0, 40.0, 60.0)
    vals["stack.so2"] = np.where(cal, 100.0, vals["stack.so2"])
    vals["stack.status"] = np.where(cal, 3.0, 1.0)          # 1: normal (measuring)
    vals["stack.maintenance"] = np.zeros(len(ts))
    st = SQLiteStore(tmp_path / "s.db")
    write_values(st, vals, ts)
    r = pollutant_from_store(site, st, T0, T0 + 4 * 3600 * S)
    so2 = next(f for f in r.factors if f.factor == "SO2")
    p = so2.points[0]
    assert p.excluded_minutes == {"calibration": 70}
    assert p.valid_hours == pytest.approx(3.0) and len(p.invalid) == 1
    assert p.invalid[0]["start_ns"] == T0 + 3600 * S
    assert "CEMS calibration 60 min" in p.invalid[0]["why"]
    assert p.load_kg_valid_hours == pytest.approx(160 * q_sn * 1e-6, rel=1e-9)
    assert p.load_kg == pytest.approx(210 * q_sn * 1e-6, rel=1e-9)
    assert so2.emitted_kg == pytest.approx(210 * q_sn * 1e-6, rel=1e-9)
    assert so2.emitted_kg_valid_hours == pytest.approx(160 * q_sn * 1e-6, rel=1e-9)
    run = p.substitution["runs"][0]
    assert run["basis"] == "mean of the valid hour before and the valid hour after"
    assert run["concentration_kg_m3"] == pytest.approx(50e-6, rel=1e-9)   # 50 mg/m3
    assert run["flow_measured_h"] == pytest.approx(1.0)        # the flow meter kept measuring
    assert r.substitution["rule"] == "hj75" and "[unverified]" in r.substitution["source"]
    assert so2.substitution_rule.startswith("hj75: HJ 75-2017")
    # the converted concentration leaves the span gas out as well: 40 and 60 mg/m3 hours only
    assert p.converted_max_hour == pytest.approx(60 * 17.5 / 15, rel=1e-9)
    for rule, expect in (("mean_valid", 160 / 3 * 4), ("none", 160.0)):
        cfg = site.model_copy(update={"pollutants": site.pollutants.model_copy(update={
            "substitution": site.pollutants.substitution.model_copy(update={"rule": rule})})})
        x = next(f for f in pollutant_from_store(cfg, st, T0, T0 + 4 * 3600 * S).factors
                 if f.factor == "SO2")
        assert x.emitted_kg == pytest.approx(expect * q_sn * 1e-6, rel=1e-9), rule
    # a fault word (high byte set, 0x0100) for 30 min of hour 3 and maintenance (0x000B = 1)
    # for 20 min of hour 2: both hours invalid, the states named
    vals["stack.status"] = np.where((h == 3) & (m % 60 < 30), 256.0, vals["stack.status"])
    vals["stack.maintenance"] = np.where((h == 2) & (m % 60 < 20), 1.0, 0.0)
    st2 = SQLiteStore(tmp_path / "s2.db")
    write_values(st2, vals, ts)
    p2 = next(f for f in pollutant_from_store(site, st2, T0, T0 + 4 * 3600 * S).factors
              if f.factor == "SO2").points[0]
    assert p2.excluded_minutes == {"calibration": 70, "fault": 30, "maintenance": 20}
    assert [i["start_ns"] for i in p2.invalid] == [T0 + k * 3600 * S for k in (1, 2, 3)]
    # a run of 3 h after a valid hour 0 and no valid hour after it: hour 0's 40 x q each
    assert p2.load_kg == pytest.approx((40 + 3 * 40) * q_sn * 1e-6, rel=1e-9)


def test_generated_hour_of_cems_calibration(site: config.Config, tmp_path: Path) -> None:
    """Golden: 4 h of the demo site with the CEMS in calibration from 1 h to 2 h (``--fault
    'calibration device=cems start=1h duration=1h'``: status word 3, span gas SO2 100 mg/m3,
    NOx 200). Hour 1's 60 minutes are no emission minutes; its concentration is substituted by
    the mean of hours 0 and 2 (the plant's SO2 is 4 mg/m3 dry while the boiler runs, NOx 25), its
    flow is measured (the flow meter kept measuring). By hand from the plant model's own masses
    per hour (M0 .. M3): headline = 4 mg/m3 x hour 1's measured flow + M0 + M2 + M3 = M0 + M1 +
    M2 + M3, valid hours alone M0 + M2 + M3 (tolerance 0.3 % as in the 6 h test: float32 and
    4-20 mA quantisation of the stack conditions). Had the span gas counted: 100 mg/m3 in hour 1,
    25 x M1 instead of M1."""
    from cpaudit.config.scenario import Scenario, parse_fault
    from cpaudit.simulators.generate import generate
    from cpaudit.simulators.site import BrewerySite
    t0 = T0 / 1e9
    sc = Scenario(faults=[parse_fault("calibration device=cems start=1h duration=1h")])
    st = SQLiteStore(tmp_path / "cal.db")
    generate(site, st, 4, start=t0, scenario=sc)
    status = st.read(["stack.status"], T0, T0 + 4 * 3600 * S)
    assert set(status["value"][(status["ts"] >= T0 + 3600 * S)
                               & (status["ts"] < T0 + 7200 * S)]) == {3.0}
    r = pollutant_from_store(site, st, T0, T0 + 4 * 3600 * S)
    plant = BrewerySite(t0, site.simulation.load_amplitude)
    for fac, name in (("SO2", "so2_stack"), ("NOx", "nox_stack")):
        m = [float(plant.total(name, t0 + (k + 1) * 3600) - plant.total(name, t0 + k * 3600))
             for k in range(4)]
        x = next(f for f in r.factors if f.factor == fac)
        p = x.points[0]
        assert p.excluded_minutes == {"calibration": 60}
        assert len(p.invalid) == 1 and "calibration" in p.invalid[0]["why"]
        assert x.emitted_kg_valid_hours == pytest.approx(m[0] + m[2] + m[3], rel=0.003)
        assert x.emitted_kg == pytest.approx(sum(m), rel=0.003)
        run = p.substitution["runs"][0]
        assert run["flow_measured_h"] == pytest.approx(1.0)
        assert "hj75" in x.substitution_rule
    # the dust monitor is on the PLC, not the gas analyzer: its minutes stay (applies_to)
    dust = next(f for f in r.factors if f.factor == "particulate").points[0]
    assert dust.excluded_minutes == {} and not dust.invalid
    assert r.verdict == "incomplete"


def test_wet_actual_concentration_converted_per_tag(tmp_path: Path) -> None:
    """An in-situ dust monitor reads at stack conditions, wet: 2.0 mg/m3 at 130 degC, 101 kPa,
    17 % water. By hand: C_sd = 2.0 x (273.15 + 130)/273.15 x 101.325/101 / (1 - 0.17)
    = 2.0 x 1.475929 x 1.003218 / 0.83 = 3.567899 mg/m3; load = C_sd x Q_sn (5605.54 m3/h)
    x 1e-6 x 3 h = 0.060000 kg (the same gas in the stack: 2.0 mg per actual m3 x 10000 m3/h
    x 3 h = 0.06 kg, the check). The other points keep the stack's dry, standard basis."""
    text = site_text().replace(
        "points: [{stack: boiler_stack, tag: stack.dust}]",
        "points: [{stack: boiler_stack, tag: stack.dust, concentration_basis: wet, "
        "concentration_state: actual}]")
    p = tmp_path / "wet.yaml"
    p.write_text(text)
    cfg = config.load(p)
    st = SQLiteStore(tmp_path / "w.db")
    write(st)
    r = pollutant_from_store(cfg, st, T0, T0 + HOURS * 3600 * S)
    dust = next(x for x in r.factors if x.factor == "particulate").points[0]
    c_sd = 2.0 * 403.15 / 273.15 * 101.325 / 101 / 0.83
    assert c_sd == pytest.approx(3.567899, abs=1e-6)
    q_sn = 10000 * 273.15 / 403.15 * 101 / 101.325 * 0.83
    assert dust.load_kg == pytest.approx(c_sd * q_sn * 1e-6 * 3, rel=1e-9)
    assert dust.load_kg == pytest.approx(2.0e-6 * 10000 * 3, rel=1e-9)
    assert dust.mean_concentration == pytest.approx(c_sd, rel=1e-9)
    assert dust.concentration_basis == "wet, actual"
    so2 = next(x for x in r.factors if x.factor == "SO2").points[0]
    assert so2.concentration_basis == "dry, standard"
    # an actual-state concentration on a stack without temperature and pressure is an error
    bad = text.replace("      temperature_tag: stack.temperature\n", "").replace(
        "      pressure_tag: stack.pressure          # absolute\n", "").replace(
        "flow_basis: actual", "flow_basis: standard_wet")
    p.write_text(bad)
    with pytest.raises(config.ConfigError) as e:
        config.load(p)
    assert "concentration_state: a wet, actual concentration needs the stack's " \
        "temperature_tag, pressure_tag" in str(e.value)


def test_status_map_and_fault_parsing(tmp_path: Path) -> None:
    from cpaudit.config.models import StatusWord
    from cpaudit.analyzer.emission_rules import state_of
    from cpaudit.config.scenario import Scenario, parse_fault
    w = StatusWord(tag="s", map={"0": "normal", "1": "normal", "2-7": "calibration",
                                 "&0xFF00": "fault"}, source="devices.md 3.7")
    assert [state_of(w, v) for v in (0, 1, 2, 7, 8, 0x0100, 0x0203)] == \
        ["normal", "normal", "calibration", "calibration", "fault", "fault", "fault"]
    with pytest.raises(ValueError, match="status map key '2..7'"):
        StatusWord(tag="s", map={"2..7": "calibration"}, source="x")
    sc = Scenario(faults=[parse_fault("calibration device=cems start=1h duration=30m "
                                      "status=0x05 span_so2=80")])
    f = sc.faults[0]
    assert f.kind == "calibration" and f.status == 5 and f.span_so2 == 80.0  # type: ignore
    assert f.window(0.0) == (3600.0, 5400.0)
    text = site_text()
    p = tmp_path / "s.yaml"
    p.write_text(text)
    cfg = config.load(p)
    from cpaudit.simulators.generate import generate
    with pytest.raises(ValueError, match="not a simulated CEMS analyzer"):
        generate(cfg, SQLiteStore(tmp_path / "x.db"), 0.1, start=T0 / 1e9, scenario=Scenario(
            faults=[parse_fault("calibration device=fm_ww_in start=0")]))


def test_fill_rules_by_hand() -> None:
    """The substitution rules on hourly values (kg/m3 or m3/h: any hourly mean), 1 h each.
    hj75, short run (2 h, <= 24 h): the mean of the neighbours (10 + 30)/2 = 20. A long run
    (30 h > 24 h): the highest of the valid hours before it, at most lookback_h of them: with
    lookback 2 the last two valid hours before (5, 8) -> 8; with 720 all four (10, 30, 5, 8)
    -> 30. mean_valid weighted: (10 x 1 + 30 x 3)/(1 + 3) = 25. none: NaN stays."""
    from cpaudit.analyzer.emission_rules import fill_hours
    from cpaudit.config.models import Substitution
    v = np.array([10.0, np.nan, np.nan, 30.0])
    ok = np.isfinite(v)
    span = np.ones(4)
    lo = np.arange(4) * 3600 * S
    out, runs = fill_hours(v, ok, span, lo, lo + 3600 * S, Substitution())
    assert list(out) == [10.0, 20.0, 20.0, 30.0] and runs[0]["hours"] == 2.0
    assert runs[0]["start_ns"] == 3600 * S and runs[0]["end_ns"] == 3 * 3600 * S
    w = np.array([1.0, 0.0, 0.0, 3.0])
    out, _ = fill_hours(v, ok, span, lo, lo + 3600 * S, Substitution(rule="mean_valid"), w)
    assert out[1] == pytest.approx(25.0)
    out, runs = fill_hours(v, ok, span, lo, lo + 3600 * S, Substitution(rule="none"))
    assert np.isnan(out[1]) and runs == []
    long = np.concatenate([[10.0, 30.0, 5.0, 8.0], np.full(30, np.nan), [1.0]])
    ok = np.isfinite(long)
    n = len(long)
    lo = np.arange(n) * 3600 * S
    out, runs = fill_hours(long, ok, np.ones(n), lo, lo + 3600 * S, Substitution(lookback_h=2))
    assert out[4] == 8.0 and runs[0]["basis"] == "highest of the 2 valid hour(s) before"
    out, _ = fill_hours(long, ok, np.ones(n), lo, lo + 3600 * S, Substitution())
    assert out[20] == 30.0


def test_status_minute_from_its_lowest_and_highest_reading() -> None:
    """A minute's lowest and highest readings are real readings: 0..1 -> normal; 1..3 holds a
    3 (calibration); with the map {0: normal, 2: normal} a minute 0..2 could hold a 1, which
    maps to nothing ('other': fault), so it is not taken as normal."""
    from cpaudit.analyzer.emission_rules import status_minutes
    from cpaudit.config.models import StatusWord
    w = StatusWord(tag="s", map={"0": "normal", "1": "normal", "2-7": "calibration"},
                   source="x")
    grid = np.arange(4, dtype=np.int64) * 60 * S
    rows = pd.DataFrame({"bucket": grid[:3], "good": [60, 60, 60], "vmin": [0.0, 1.0, 0.0],
                         "vmax": [1.0, 3.0, 0.0]})
    assert list(status_minutes(w, rows, grid)) == ["normal", "calibration", "normal", ""]
    w2 = StatusWord(tag="s", map={"0": "normal", "2": "normal"}, source="x")
    rows2 = pd.DataFrame({"bucket": grid[:1], "good": [60], "vmin": [0.0], "vmax": [2.0]})
    assert status_minutes(w2, rows2, grid)[0] == "fault"
