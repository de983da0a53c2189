"""Cycles (hours) at load count, and the balances are taken over the window validity accepts
(DB11/T 1156 7.3.3.3 e, f), on generated campaigns of the demo site with hand-computed loads.

The site model (simulators/site.py): brew k starts at T0 + k·3 h with a size equal to the load
L(t) = 1 + 0.08 sin(2π x / 24 h) + 0.024 sin(2π x / 90 min) at its start (x = t − T0), a load
drop multiplying L inside its window. Hot wort per brew at size 1: 28 500 kg of sweet wort ×
(1 − 0.07 evaporation − 0.012 trub) = 26 163 kg, at 1 045 kg/m³ 25.036 m³: 8.3455 m³/h over a
3 h cycle. At x = k·3 h the ripple is sin(4πk) = 0 and the swing sin(πk/4).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from cpaudit import config
from cpaudit.analyzer.iotools import campaign_report
from cpaudit.analyzer.iotools import validity_from_store
from cpaudit.store import SQLiteStore
from tests.analyzer.test_validity import BATCH, CONTINUOUS, H, T0_NS, make, tick

PER_H = 28_500 * (1 - 0.07 - 0.012) / 1045 / 3     # 8.3455 m3/h of hot wort at size 1


def cycle_load(k: int, factor: float = 1.0) -> float:
    """The load of brew k [m³/h]: 8.3455 × L(k·3 h) × the load drop's factor."""
    return PER_H * (1 + 0.08 * math.sin(math.pi * k / 4)) * factor


@pytest.fixture(scope="module")
def dip(tmp_path_factory: pytest.TempPathFactory) -> tuple[config.Config, SQLiteStore]:
    """80 h, the load at 80 % from 10 h to 16 h (the issue's campaign, 60 s ticks)."""
    return make(tmp_path_factory.mktemp("dip"), 80, BATCH,
                [{"kind": "load_drop", "factor": 0.8, "start": "10h", "duration": "6h"}])


def test_a_6_h_load_dip_leaves_two_brews_out_and_the_campaign_valid(
        dip: tuple[config.Config, SQLiteStore]) -> None:
    """Brews start at 0, 3, …, 78 h; the one at 0 h is not seen starting, the one at 78 h is not
    complete: 25 complete cycles, 3 h to 78 h. Brews 4 (12 h) and 5 (15 h) start inside the dip:
    8.3455 × 0.8 × (1 + 0.08 sin π) = 6.676 and 8.3455 × 0.8 × (1 − 0.08 × 0.7071) = 6.299 m³/h,
    below the 7.5 average: they do not count. 23 at load ≥ 3: valid (it was invalid before)."""
    cfg, st = dip
    r = validity_from_store(cfg, st)
    assert r.verdict == "valid", r.message
    assert r.message.endswith("; 23 complete cycle(s) at load, 3 required; 2 below the average "
                              "load do not count")
    d = r.check("duration")
    assert d.status == "pass" and d.value == 23
    cycles = d.details["cycles"]
    assert len(cycles) == 25 and all(c["complete"] for c in cycles)
    assert [c["start"] for c in cycles if not c["counts"]] == [tick(12), tick(15)]
    ld = r.check("load")
    assert ld.status == "warning"
    below = ld.details["below"]
    assert [b["start"] for b in below] == [tick(12), tick(15)]
    assert below[0]["load"] == pytest.approx(cycle_load(4, 0.8), rel=0.005)     # 6.676
    assert below[1]["load"] == pytest.approx(cycle_load(5, 0.8), rel=0.005)     # 6.299
    assert "2 cycle(s) below it do not count (7.3.3.3 f)" in ld.reason
    assert "per calendar hour: 65 700 over 8 760 h" in ld.reason        # the average's basis
    assert ld.details["basis"] == "calendar_hours" and ld.details["period_hours"] == 8760
    # the balance window: the longest run of consecutive cycles at load, 18 h to 78 h (20); the
    # three at load before the dip are cut off from it by the two that do not count
    bw = r.balance_window
    assert bw is not None and bw["rule"] == "best_valid" and bw["enough"]
    assert (bw["start"], bw["end"], bw["count"]) == (tick(18), tick(78), 20)
    left = {x["start"]: x for x in bw["left_out"]}
    assert sorted(left) == [tick(k) for k in (3, 6, 9, 12, 15)]
    # the hand value 6.676 m3/h as printed (two figures), through the meter's class-0.5 offset
    why = left[tick(12)]["why"]
    assert why.startswith("below the audit period's average load: ")
    shown = float(why.removeprefix("below the audit period's average load: ").split(" ")[0])
    assert shown == pytest.approx(cycle_load(4, 0.8), abs=0.05 + 0.005 * 6.676)
    assert "m3/h < 7.5 m3/h (7.3.3.3 f)" in left[tick(12)]["why"]
    assert left[tick(15)]["load"] == pytest.approx(cycle_load(5, 0.8), rel=0.005)
    assert "not consecutive" in left[tick(3)]["why"]
    assert left[tick(6)]["load"] == pytest.approx(cycle_load(2), rel=0.005)     # 9.013


def test_every_balance_is_taken_over_the_accepted_window(
        dip: tuple[config.Config, SQLiteStore]) -> None:
    cfg, st = dip
    doc = campaign_report(cfg, st)
    b = doc["balances"]
    mat = b["material"]
    assert (mat["start_ns"], mat["end_ns"]) == (tick(18), tick(78))
    assert mat["hours"] == pytest.approx(60.0, abs=0.02)
    assert mat["window"]["rule"] == "best_valid" and mat["window"]["count"] == 20
    assert "fewer than" not in mat["message"]
    # water, energy and pollutant over the same window
    for layer in ("water", "energy", "pollutant"):
        assert (b[layer]["start_ns"], b[layer]["end_ns"]) == (tick(18), tick(78)), layer
    w = doc["balance_window"]
    assert [x["start_ns"] for x in w["left_out"]] == [tick(k) for k in (3, 6, 9, 12, 15)]
    assert [round(x["load"], 2) for x in w["left_out"] if not x["counts"]] == \
        [pytest.approx(cycle_load(4, 0.8), abs=0.04), pytest.approx(cycle_load(5, 0.8), abs=0.04)]
    # the per-cycle table: each of the 20 cycles used, its load and closures
    per = mat["per_cycle"]
    assert [c["start_ns"] for c in per] == [tick(k) for k in range(18, 78, 3)]
    assert all(c["counts"] and c["load"] >= 7.5 for c in per)
    # brew 6 (18 h): 8.3455 × (1 + 0.08 sin(3π/2)) = 8.3455 × 0.92 = 7.678 m³/h
    assert per[0]["load"] == pytest.approx(cycle_load(6), rel=0.005)
    assert all(abs(c["overall_closure_pct"]) < 5 and set(c["closure_pct"]) >= {"mash", "kettle"}
               for c in per)
    # the product of a cycle: 25.036 m³ × its size; brew 6: 23.03 m³
    assert per[0]["product"] == pytest.approx(3 * cycle_load(6), rel=0.005)

    whole = campaign_report(cfg, st, window="campaign")
    m2 = whole["balances"]["material"]
    assert (m2["start_ns"], m2["end_ns"]) == (tick(3), tick(78))
    assert len(m2["per_cycle"]) == 25
    assert [c["start_ns"] for c in m2["per_cycle"] if not c["counts"]] == [tick(12), tick(15)]
    assert [x["start_ns"] for x in whole["balance_window"]["included_not_counting"]] == \
        [tick(12), tick(15)]


def test_a_balance_over_fewer_cycles_than_required_says_so(
        dip: tuple[config.Config, SQLiteStore]) -> None:
    """Up to 10.5 h: complete cycles 3-6 h and 6-9 h, at load: 2 of the 3 required."""
    cfg, st = dip
    doc = campaign_report(cfg, st, None, T0_NS + int(10.5 * H), per_cycle=False)
    mat = doc["balances"]["material"]
    assert (mat["start_ns"], mat["end_ns"]) == (tick(3), tick(9))
    assert mat["window"]["enough"] is False and mat["window"]["count"] == 2
    assert "over 2 cycles that count, fewer than the 3 required" in mat["message"]
    assert doc["validity"]["verdict"] == "invalid"


def test_continuous_hours_below_the_average_are_left_out_of_the_run(tmp_path: Path) -> None:
    """81 h continuous, load at 80 % from 4 h to 8 h: the steam to other users, 2.8 t/h × L,
    is 2.8 × 0.8 × (1 + 0.08 × mean sin over 4-8 h) = 2.8 × 0.8 × (1 + 0.08 × 24/(2π 4) ×
    (cos 60° − cos 120°)) = 2.8 × 0.8 × 1.0764 = 2.411 t/h < 2.5 (the ripple's 2.67 periods
    average to 0: cos 240° = cos 120°). Those 4 hours do not count and break the run: 8 h to
    81 h = 73 h at load without a break ≥ 72 h, valid; the balance over that run."""
    cfg, st = make(tmp_path, 81, CONTINUOUS,
                   [{"kind": "load_drop", "factor": 0.8, "start": "4h", "duration": "4h"}])
    r = validity_from_store(cfg, st)
    assert r.verdict == "valid", r.message
    assert r.message.endswith("; 73.0 h at load without a break, 72 h required")
    assert r.check("load").status == "warning"
    assert r.check("load").details["hours_below"] == [[T0_NS + 4 * H, T0_NS + 8 * H]]
    d = r.check("duration")
    assert d.value == pytest.approx(73.0, abs=0.05) and d.ranges[0][0] == T0_NS + 8 * H
    bw = r.balance_window
    assert bw is not None and bw["enough"] and bw["start"] == T0_NS + 8 * H
    left = bw["left_out"]
    assert [(x["start"], x["end"]) for x in left] == [(T0_NS, T0_NS + 4 * H),
                                                      (T0_NS + 4 * H, T0_NS + 8 * H)]
    assert "not in the longest run" in left[0]["why"]
    assert left[1]["load"] == pytest.approx(2.8 * 0.8 * 1.0764, rel=0.02)
    # the site's brews are still declared (requirements.cycles): the balance over the run is
    # trimmed to whole brews inside it, 9 h to 78 h (it was 3 h to 78 h over the campaign)
    doc = campaign_report(cfg, st, per_cycle=False)
    mat = doc["balances"]["material"]
    assert (mat["start_ns"], mat["end_ns"]) == (tick(9), tick(78))
    assert "per_cycle" not in mat
    whole = campaign_report(cfg, st, window="campaign", per_cycle=False)
    m2 = whole["balances"]["material"]
    assert (m2["start_ns"], m2["end_ns"]) == (tick(3), tick(78))
    assert [x["start_ns"] for x in whole["balance_window"]["included_not_counting"]] == \
        [r.balance_window["left_out"][1]["start"]] and whole["balance_window"]["left_out"] == []


def test_a_kettle_leak_points_the_low_load_at_the_kettle(tmp_path: Path) -> None:
    """An 8 % leak at the kettle lowers every stream leaving it, the hot wort (the load tag)
    too: 8.3455 × 0.92 × L; brews 5, 6, 7 (L = 0.943, 0.92, 0.943) fall below 7.5 m³/h. The
    kettle's closure is +8 % (inputs − outputs over inputs, every output × 0.92): the hint names
    the kettle, not the plant's load (the closure is below 8 %: the trub is a theoretical
    figure the leak does not scale)."""
    cfg, st = make(tmp_path, 27, BATCH,
                   [{"kind": "leak", "node": "kettle", "fraction": 0.08, "start": "0h"}])
    doc = campaign_report(cfg, st, per_cycle=False)
    v = doc["validity"]
    lows = [c["start"] for c in v["checks"][[c["id"] for c in v["checks"]].index("duration")]
            ["details"]["cycles"] if not c["counts"]]
    assert lows == [tick(15), tick(18), tick(21)]
    kettle = next(n for n in doc["balances"]["material"]["nodes"] if n["node"] == "kettle")
    assert 7.0 < kettle["closure_pct"] < 8.0 and kettle["ok"] is False
    hint = v["hints"][0]
    assert "hot_wort.total measures hot_wort, a stream of node kettle" in hint
    assert "point at kettle" in hint and "not at the plant's load" in hint
    load = next(c for c in v["checks"] if c["id"] == "load")
    assert load["fix"] == hint and "measure at normal load to have" not in load["fix"]


def _first(doc: dict[str, Any]) -> None:
    mat = doc["balances"]["material"]
    assert mat["start_ns"] is None and mat["verdict"] == "no-data"
    assert "no complete production cycle" in mat["message"]
    assert "the first complete cycle ends at the earliest at about" in mat["message"]
    assert doc["balance_window"]["first_cycle"]
    assert mat["losses"] == [] and mat["components"] == []


@pytest.mark.parametrize("hours", [1.0, 1 / 6, 1 / 60])
def test_the_first_hour_answers_with_what_it_will_take(tmp_path: Path, hours: float) -> None:
    """1 h, 10 min and 1 min of a batch campaign (1 s ticks): no complete brew, no traceback;
    the balance says what it will take (3 h a brew, nominal_h: 3)."""
    cfg, st = make(tmp_path, hours, {})
    doc = campaign_report(cfg, st)
    _first(doc)
    d = next(c for c in doc["validity"]["checks"] if c["id"] == "duration")
    assert d["status"] == "fail" and d["value"] == 0
    # no start seen yet: the first complete cycle ends one to two cycles after now
    end = doc["validity"]["end_ns"]
    assert f"{_iso(cfg, end + 3 * H)}" in d["reason"]
    assert f"{_iso(cfg, end + 6 * H)}" in d["reason"]
    load = next(c for c in doc["validity"]["checks"] if c["id"] == "load")
    assert load["status"] == "warning" and "no complete cycle yet" in load["reason"]


def _iso(cfg: config.Config, ns: int) -> str:
    import datetime as dt
    from zoneinfo import ZoneInfo
    return dt.datetime.fromtimestamp(ns / 1e9, ZoneInfo(cfg.campaign.timezone)).isoformat(
        timespec="minutes")


def test_a_large_kettle_leak_is_the_first_fix_not_more_cycles(tmp_path: Path) -> None:
    """A 20 % leak at the kettle: 8.3455 × 0.8 × L ≤ 8.3455 × 0.8 × 1.08 = 7.21 m³/h < 7.5 for
    every brew: no cycle at load, the duration fails; measuring longer will not help, the kettle
    comes first."""
    cfg, st = make(tmp_path, 13.5, BATCH,
                   [{"kind": "leak", "node": "kettle", "fraction": 0.2, "start": "0h"}])
    doc = campaign_report(cfg, st, per_cycle=False)
    v = doc["validity"]
    assert v["verdict"] == "invalid"
    load = next(c for c in v["checks"] if c["id"] == "load")
    assert load["status"] == "fail"
    assert v["fixes"][0]["check"] == "load" and "point at kettle" in v["fixes"][0]["fix"]
    assert [f["check"] for f in v["fixes"]].count("load") == 1
    # no window: the balance falls back to the campaign as given, and says so
    assert doc["balance_window"]["chosen"] == "as given: no accepted window"
    assert doc["balances"]["material"]["start_ns"] == tick(3)


def test_the_average_load_states_its_basis(tmp_path: Path) -> None:
    """65 700 m³ is 7.5 m³/h over 8 760 calendar hours but 65 700 / 7 200 = 9.125 m³/h over
    7 200 operating hours. Against 9.125 no brew is at load: 8.3455 × L ≤ 8.3455 × 1.08 = 9.01.
    An average that disagrees with output / hours is a configuration error."""
    op = {"basis: calendar_hours ": "basis: operating_hours",
          "period_hours: 8760": "period_hours: 7200", "average: 7.5\n": "average: 9.125\n"}
    cfg, st = make(tmp_path, 13.5, {**BATCH, **op})
    r = validity_from_store(cfg, st)
    ld = r.check("load")
    assert "average 9.125 m3/h (per operating hour: 65 700 over 7 200 h" in ld.reason
    assert ld.status == "fail" and r.check("duration").value == 0
    assert r.balance_window is not None and r.balance_window["count"] == 0
    bad = tmp_path / "bad.yaml"
    from tests.conftest import site_text
    bad.write_text(site_text(**{"period_hours: 8760": "period_hours: 7200"}))
    with pytest.raises(config.ConfigError) as e:
        config.load(bad)
    assert "disagrees with period_output / period_hours = 65700 / 7200 = 9.125" in str(e.value)
