"""`cpaudit generate`: a campaign written straight into a store, faults included, and judged by
the analyzer as a recorded one would be. Ticks of 10 s keep these tests quick; the benchmark
generates 80 h at 1 s."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cpaudit import config
from cpaudit.analyzer.balance import material_balance
from cpaudit.analyzer.recon_layer import reconcile_balance
from cpaudit.analyzer.totals import balance_tags, good_series, totalizer_amount
from cpaudit.config.scenario import Scenario
from cpaudit.simulators.generate import generate
from cpaudit.store import Quality, Reason, SQLiteStore
from tests.conftest import site_text

T0 = 1_790_000_000.0      # 2026-09-21T14:13:20Z


def site(tmp_path: Path, interval: float = 10.0) -> config.Config:
    p = tmp_path / "site.yaml"
    p.write_text(site_text(**{"interval_s: 1.0": f"interval_s: {interval}"}))
    return config.load(p)


def run(tmp_path: Path, hours: float, faults: list[dict[str, Any]] | None = None,
        name: str = "g", **kw: Any) -> tuple[config.Config, SQLiteStore]:
    cfg = site(tmp_path)
    st = SQLiteStore(tmp_path / f"{name}.db")
    generate(cfg, st, hours, start=T0, scenario=Scenario.model_validate({"faults": faults or []}),
             **kw)
    return cfg, st


def test_intact_site_balances_within_meter_noise(tmp_path: Path) -> None:
    cfg, st = run(tmp_path, 12)
    assert st.get_meta("campaign_start") == str(int(T0 * 1e9))     # the campaign began then
    res = material_balance(cfg, st.read(balance_tags(cfg)))
    assert res.verdict == "ok", res.message
    # brews start at 0, 3, 6, 9 h; the one at 0 h is not seen starting, so 3 h to 9 h: 2 brews
    assert "2 whole production cycles" in res.message
    # within meter noise: each node's imbalance within 3 σ of its meters' classes (the nodal
    # test; a meter of class a % errs by a fixed offset within ±a, simulators/meters.py — the
    # boiler's class-1.5 steam meter alone may put it 2 % off)
    rec = reconcile_balance(cfg, res)
    assert rec is not None and rec["global_test"]["rejected"] is False
    assert all(abs(n.closure_pct or 99) < 5.0 for n in res.nodes)
    assert {x["node"]: round(x["z"], 2) for x in rec["nodal_tests"] if x["z"] >= 3} == {}


def test_a_leak_shows_at_its_node_and_nowhere_else(tmp_path: Path) -> None:
    cfg, st = run(tmp_path, 12, [{"kind": "leak", "node": "anaerobic", "fraction": 0.08}])
    res = material_balance(cfg, st.read(balance_tags(cfg)))
    nodes = {n.node: n for n in res.nodes}
    assert nodes["anaerobic"].closure_pct == pytest.approx(8.0, abs=1.5)
    rec = reconcile_balance(cfg, res)
    assert rec is not None
    # the nodal test rejects at the anaerobic reactor only (its 8 % is over 10 σ of its meters: in and out at class 0.5 and the density ±0.5 %, 0.41 % each)
    assert [x["node"] for x in rec["nodal_tests"] if x["rejected"]] == ["anaerobic"]
    assert rec is not None and rec["global_test"]["rejected"] is True
    top = rec["suspects"][0]
    assert "anaerobic" in {top["where"], *top["equivalent"]}


def test_wire_faults_give_the_collector_qualities(tmp_path: Path) -> None:
    faults = [{"kind": "dropout", "device": "fm_water", "start": "1h", "duration": "10m"},
              {"kind": "exception", "device": "fm_gas", "start": "1h", "duration": "10m"},
              {"kind": "slow", "device": "fm_makeup", "delay_s": 0.8, "start": "1h",
               "duration": "10m"},
              {"kind": "slow", "device": "fm_vapour", "delay_s": 2.0, "start": "1h",
               "duration": "10m"},
              {"kind": "connection_reset", "device": "fm_ww_in", "start": "1h",
               "duration": "10m"}]
    cfg, st = run(tmp_path, 2, faults)
    inside = (int((T0 + 3600) * 1e9), int((T0 + 4200) * 1e9))
    want = {"water_in.total": (Quality.BAD, Reason.TIMEOUT),
            "water_in.flow": (Quality.BAD, Reason.TIMEOUT),
            "gas.total": (Quality.BAD, Reason.EXCEPTION),
            "makeup_water.total": (Quality.UNCERTAIN, Reason.LATE),   # 0.8 s > 500 ms tolerance
            "vapour.total": (Quality.BAD, Reason.TIMEOUT),            # 2 s > the 1 s timeout
            "ww_influent.total": (Quality.BAD, Reason.CONNECTION)}
    df = st.read(list(want))
    for tag, (q, r) in want.items():
        d = df[df["tag"] == tag]
        ins = d[(d["ts"] >= inside[0]) & (d["ts"] < inside[1])]
        out = d[(d["ts"] < inside[0]) | (d["ts"] >= inside[1])]
        assert len(ins) == 60 and set(ins["quality"]) == {q} and set(ins["reason"]) == {r}, tag
        assert set(out["quality"]) == {Quality.GOOD}, tag
        if q == Quality.BAD:
            assert ins["value"].isna().all()
    # nothing else was touched: 2 h x 360 ticks for every Modbus tag
    assert len(st.read(["hot_wort.total"])) == 720


def test_meter_faults_stuck_rollover_reset_bias(tmp_path: Path) -> None:
    faults = [{"kind": "stuck", "device": "fm_sweet_wort", "start": "1h", "duration": "30m"},
              {"kind": "rollover", "device": "ws_malt", "start": "2h"},
              {"kind": "reset", "device": "fm_hot_wort", "start": "4h"},
              {"kind": "bias", "device": "ws_grains", "pct": 10, "start": "0"}]
    cfg, st = run(tmp_path, 6, faults, name="f")
    _, ref = run(tmp_path, 6, [], name="ref")
    a, b = int((T0 + 3600) * 1e9), int((T0 + 5400) * 1e9)
    s = st.read(["sweet_wort.total", "sweet_wort.flow"], a, b)
    assert s.groupby("tag")["value"].nunique().max() == 1            # frozen
    end = int((T0 + 6 * 3600 - 10) * 1e9)
    for tag, roll in (("malt_in.total", 429496729.6), ("hot_wort.total", None)):
        ts, v = good_series(st.read([tag]), tag)
        ts0, v0 = good_series(ref.read([tag]), tag)
        assert (np.diff(v) < 0).sum() == 1                           # one wrap / one reset
        got, resets, rolls = totalizer_amount(ts, v, int(T0 * 1e9), end, roll)
        true, _, _ = totalizer_amount(ts0, v0, int(T0 * 1e9), end, None)
        assert (resets, rolls) == ((0, 1) if roll else (1, 0))
        assert got == pytest.approx(true, abs=0.5 if roll else 0.05), tag
    res = material_balance(cfg, st.read(balance_tags(cfg), None, int((T0 + 3600) * 1e9)))
    assert res.verdict == "no-data" and "no complete production cycle" in res.message
    # the weigher reads 10 % high from the start: its totalizer shows 10 % more spent grains
    grains = [good_series(x.read(["spent_grains.total"]), "spent_grains.total") for x in (st, ref)]
    amounts = [totalizer_amount(ts, v, int(T0 * 1e9), end, 429496729.6)[0] for ts, v in grains]
    assert amounts[0] / amounts[1] == pytest.approx(1.10, abs=0.002)


def test_mqtt_clock_skew_and_broker_loss(tmp_path: Path) -> None:
    faults = [{"kind": "clock_skew", "device": "iot_brewery_ww", "offset_s": 30, "start": "1h",
               "duration": "10m"},
              {"kind": "broker_disconnect", "device": "iot_wwq_effluent", "start": "1h",
               "duration": "10m"}]
    cfg, st = run(tmp_path, 2, faults)
    ts = st.read(["brewery_ww.total"])["ts"].to_numpy() / 1e9 - T0
    assert ((ts >= 3630) & (ts < 4230) & (ts % 10 == 0)).sum() == 60   # stamped 30 s ahead
    eff = st.read(["ww_effluent.cod"])["ts"].to_numpy() / 1e9 - T0
    assert not ((eff >= 3600) & (eff < 4200)).any() and len(eff) == 720 - 60
    cod = st.read(["ww_influent.cod", "ww_effluent.cod"]).groupby("tag")["value"].mean()
    assert cod["ww_effluent.cod"] / cod["ww_influent.cod"] == pytest.approx(0.015, rel=0.1)


def test_drift_load_drop_and_aborted_brew(tmp_path: Path) -> None:
    _, dr = run(tmp_path, 9, [{"kind": "drift", "device": "fm_vapour", "pct_per_day": 2.0}],
                name="d")
    _, st = run(tmp_path, 9, [{"kind": "load_drop", "factor": 0.5, "start": "3h",
                               "duration": "3h"}, {"kind": "abort_cycle", "start": "7h"}],
                name="l")
    _, ref = run(tmp_path, 9, [], name="ref")
    end = int((T0 + 9 * 3600 - 10) * 1e9)

    def amount(s: SQLiteStore, tag: str, a: float = 0, b: int = end) -> float:
        ts, v = good_series(s.read([tag]), tag)
        return totalizer_amount(ts, v, int((T0 + a) * 1e9), b, None)[0]
    # a drift of 2 %/day from the start reads, on average, 2 % x 9 h / 24 h / 2 high after 9 h
    drift = amount(dr, "vapour.total") / amount(ref, "vapour.total")
    assert drift == pytest.approx(1 + 0.02 * 9 / 24 / 2, abs=0.0015)
    # brews at 0 h (full), 3 h (half: the load is halved), 6 h (aborted at 7 h, in lautering)
    ww = amount(st, "brewery_ww.total", 3 * 3600, int((T0 + 6 * 3600) * 1e9)) / amount(
        ref, "brewery_ww.total", 3 * 3600, int((T0 + 6 * 3600) * 1e9))
    assert ww == pytest.approx(0.5, abs=0.02)                         # continuous flow halved
    state = st.read(["brewhouse.state"]).set_index("ts")["value"]
    after = state[state.index >= int((T0 + 7 * 3600) * 1e9)]
    assert (after == 0).all()                                         # the brew stopped at 7 h
    wort = amount(st, "hot_wort.total") / amount(ref, "hot_wort.total")
    assert wort == pytest.approx((1 + 0.5) / 3, abs=0.03)             # against 3 full brews
