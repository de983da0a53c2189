"""Reconciliation on small networks with hand-computed values (explicit tolerances)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cpaudit import config
from cpaudit.analyzer.recon_table import parse_table
from cpaudit.analyzer.reconcile import ReconcileError, StreamData as S, reconcile
from tests.conftest import ROOT


def by_id(r):  # type: ignore[no-untyped-def]
    return {s["id"]: s for s in r.streams}


def test_splitter_hand_computed() -> None:
    # 100 in, 60 + 38 out, sigma 1 each: residual 2, V_r = 3, each adjustment 2/3
    r = reconcile([S("1", "ENV", "A", 100, 1), S("2", "A", "ENV", 60, 1), S("3", "A", "ENV", 38, 1)])
    s = by_id(r)
    assert s["1"]["reconciled"] == pytest.approx(100 - 2 / 3, abs=1e-12)
    assert s["2"]["reconciled"] == pytest.approx(60 + 2 / 3, abs=1e-12)
    assert s["3"]["reconciled"] == pytest.approx(38 + 2 / 3, abs=1e-12)
    assert r.global_test["statistic"] == pytest.approx(4 / 3, abs=1e-12)
    assert r.global_test["dof"] == 1 and not r.global_test["rejected"]
    assert s["1"]["mt"] == pytest.approx((2 / 3) / np.sqrt(1 / 3), abs=1e-12)
    assert s["1"]["detectability"] == pytest.approx(np.sqrt(1 / 3), abs=1e-12)
    assert r.suspects == []


def test_weights_follow_sigma() -> None:
    # the precise meter (sigma 0.1) barely moves; the residual goes to the others by variance
    r = reconcile([S("1", "ENV", "A", 100, 0.1), S("2", "A", "ENV", 60, 1), S("3", "A", "ENV", 38, 2)])
    s = by_id(r)
    vr = 0.01 + 1 + 4
    assert s["1"]["adjustment"] == pytest.approx(-0.01 * 2 / vr, abs=1e-12)
    assert s["3"]["adjustment"] == pytest.approx(4 * 2 / vr, abs=1e-12)


def test_unmeasured_estimated_and_unobservable_cycle() -> None:
    streams = [S("in", "ENV", "A", 100, 1), S("ab", "A", "B", None, None),
               S("ba", "B", "A", None, None),             # a recycle loop, both unmeasured
               S("out", "B", "ENV", 97, 1), S("side", "A", "ENV", None, None)]
    r = reconcile(streams)
    s = by_id(r)
    assert sorted(r.unobservable) == ["ab", "ba"]
    assert s["ab"]["reconciled"] is None
    # side is observable: in − out; with it unmeasured nothing is redundant
    assert s["side"]["reconciled"] == pytest.approx(3.0, abs=1e-9)
    assert sorted(r.nonredundant) == ["in", "out"] and r.global_test["dof"] == 0


NET = [("1", "ENV", "A"), ("2", "A", "B"), ("3", "B", "C"), ("4", "C", "ENV"), ("5", "A", "C")]


def net(values: dict[str, float], sigma: float = 1.0) -> list[S]:
    return [S(i, f, t, values[i], sigma) for i, f, t in NET]


TRUE = {"1": 100.0, "2": 60.0, "3": 60.0, "4": 100.0, "5": 40.0}


def test_leak_at_an_internal_node_is_found_and_sized() -> None:
    v = dict(TRUE)
    v["3"], v["4"] = 52.0, 92.0    # 8 lost at B, unmetered: everything downstream follows
    r = reconcile(net(v))
    assert r.global_test["rejected"]
    top = r.suspects[0]
    assert (top.kind, top.where) == ("leak", "B") and top.equivalent == []
    assert top.estimate == pytest.approx(8.0, abs=1e-9)


def test_biased_meter_is_found() -> None:
    v = dict(TRUE)
    v["5"] = 49.0                  # meter 5 reads 9 high
    r = reconcile(net(v))
    top = r.suspects[0]
    assert (top.kind, top.where) == ("bias", "5")
    assert top.estimate == pytest.approx(9.0, abs=1e-9)
    assert by_id(r)["5"]["mt_rejected"]


def test_indistinguishable_hypotheses_form_an_equivalence_set() -> None:
    v = dict(TRUE)
    v["1"] = 110.0                 # meter 1 high — or 10 leaking at A: the data cannot tell
    r = reconcile(net(v))
    top = r.suspects[0]
    assert {top.where, *top.equivalent} == {"1", "A"}
    assert sorted(r.equivalent_sets[0]) == ["1", "A"]


def test_two_gross_errors() -> None:
    """A bias on meter 6 and a leak at C at once, on a network with more redundancy (dof 4).
    Serial compensation finds the bias first; with meter 6 set aside A and C are no longer
    separated, so the leak comes back as an equivalence set that contains C. (On the 3-node net
    above, two errors leave too few degrees of freedom and serial elimination picks three biases:
    balance-math.md §2.7 names that limit.)"""
    net7 = [("1", "ENV", "A"), ("2", "A", "B"), ("3", "B", "C"), ("4", "C", "D"),
            ("5", "D", "ENV"), ("6", "A", "C"), ("7", "B", "D")]
    true = {"1": 100.0, "2": 70.0, "3": 50.0, "4": 75.0, "5": 95.0, "6": 30.0, "7": 20.0}
    v = dict(true)
    v["6"] = 40.0
    r = reconcile([S(i, f, t, v[i], 0.5) for i, f, t in net7])
    assert r.global_test["dof"] == 4 and r.global_test["rejected"]
    assert (r.suspects[0].kind, r.suspects[0].where) == ("bias", "6")
    second = r.suspects[1]
    assert "C" in {second.where, *second.equivalent}
    assert second.estimate == pytest.approx(5.0, abs=1e-9)


def test_bad_input() -> None:
    with pytest.raises(ReconcileError, match="sigma"):
        reconcile([S("1", "ENV", "A", 1.0, None), S("2", "A", "ENV", 1.0, 1)])
    with pytest.raises(ReconcileError, match="t.csv:3: value 'abc' is not a number"):
        parse_table("stream,from,to,value,sigma\n1,ENV,A,1,1\n2,A,ENV,abc,1\n", "t.csv")
    with pytest.raises(ReconcileError, match="t.csv:1: header"):
        parse_table("id,from,to,value,sigma\n", "t.csv")


def test_cli_reconcile_json(tmp_path: Path) -> None:
    p = tmp_path / "totals.csv"
    p.write_text("stream,from,to,value,sigma\n" + "".join(
        f"{i},{f},{t},{ {'3': 52.0, '4': 92.0}.get(i, TRUE[i]) },1\n" for i, f, t in NET))
    res = subprocess.run([sys.executable, "-m", "cpaudit", "reconcile", str(p), "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["global_test"]["rejected"] is True and doc["global_test"]["dof"] == 3
    assert doc["suspects"][0]["kind"] == "leak" and doc["suspects"][0]["where"] == "B"
    assert {s["id"] for s in doc["streams"]} == {"1", "2", "3", "4", "5"}
    text = subprocess.run([sys.executable, "-m", "cpaudit", "reconcile", str(p)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert "suspect: leak at B" in text and "REJECTED" in text


def test_textbook_heat_exchanger_with_bypass() -> None:
    """Narasimhan & Jordache (2000), *Data Reconciliation and Gross Error Detection*, chapter 1:
    a splitter, a heat exchanger on one branch, a valve on the bypass and a mixer; six flows
    measured with equal variances. Measured and published reconciled values as in the book's
    chapter-1 table (recalled from the book, not retrieved here; the network and four of the six
    measurements — 101.91, 64.20, 36.44, 98.88 — are reproduced in jckantor/MathProg-Solver,
    examples/DataReconciliation.mod). Published to two decimals: tolerance 0.005."""
    streams = [S("1", "ENV", "SPLIT", 101.91, 1), S("2", "SPLIT", "HX", 64.45, 1),
               S("3", "SPLIT", "VALVE", 34.65, 1), S("4", "HX", "MIXER", 64.20, 1),
               S("5", "VALVE", "MIXER", 36.44, 1), S("6", "MIXER", "ENV", 98.88, 1)]
    s = by_id(reconcile(streams))
    published = {"1": 100.22, "2": 64.50, "3": 35.72, "4": 64.50, "5": 35.72, "6": 100.22}
    for k, v in published.items():
        assert s[k]["reconciled"] == pytest.approx(v, abs=0.005), k


def test_generated_network_faults_are_located() -> None:
    """A generated 300-stream network with a 10 % leak at a well-metered node and a +10 σ bias
    elsewhere: both are found where they were put, the leak's size within 3 σ of its residual."""
    from bench.netgen import network, pick_faults, with_bias, with_leak
    net = network(300, 120, seed=3)
    assert not reconcile(net.streams).global_test["rejected"]
    node, stream = pick_faults(net)
    inflow = sum(x.value or 0.0 for x in net.streams if x.dst == node)
    r = reconcile(with_bias(with_leak(net, node, 0.1 * inflow), stream, 10.0).streams)
    got = {(x.kind, x.where): x for x in r.suspects}
    assert ("leak", node) in got and ("bias", stream) in got, r.suspects
    sig_r = np.sqrt(sum(x.sigma ** 2 for x in net.streams
                        if node in (x.src, x.dst) and x.sigma is not None))
    assert got[("leak", node)].estimate == pytest.approx(0.1 * inflow, abs=3 * sig_r)


# -- bounds, sigma rules, weak points (issue 13 part 4) ---------------------------------------------

def test_bounded_unmeasured_stream_held_at_zero() -> None:
    """in 100, out 103 (σ 1 each), a second outlet unmeasured: unbounded it is 100 − 103 = −3.
    Bounded (≥ 0) it is held at 0; then in and out share the residual −3 equally: 101.5 each;
    objective 1.5² + 1.5² = 4.5; linear ν = 0, bounded ν + k = 1, p ≤ χ²₁ tail of 4.5 = 0.0339."""
    streams = [S("in", "ENV", "A", 100, 1), S("out", "A", "ENV", 103, 1),
               S("side", "A", "ENV", None, None)]
    free = by_id(reconcile(streams, nonnegative=False))
    assert free["side"]["reconciled"] == pytest.approx(-3.0, abs=1e-9)
    r = reconcile(streams)
    s = by_id(r)
    assert s["side"]["reconciled"] == 0.0 and s["side"]["bound_active"]
    assert s["in"]["reconciled"] == pytest.approx(101.5, abs=1e-9)
    assert s["out"]["reconciled"] == pytest.approx(101.5, abs=1e-9)
    b = r.bounds
    assert b["active"] == ["side"] and b["unbounded"]["side"] == pytest.approx(-3.0, abs=1e-9)
    assert b["objective"] == pytest.approx(4.5, abs=1e-9) and b["dof"] == 1
    assert b["p_value_at_most"] == pytest.approx(0.03389, abs=1e-5)
    assert r.global_test["dof"] == 0            # the linear tests are unchanged


def test_bounded_measured_stream_held_at_zero() -> None:
    """in 100 (σ 1), out 103 (σ 1), small 1 (σ 2): r = −4, V_r = 6, the small outlet's
    adjustment −4·4/6 = −2.667 takes it to −1.667 < 0. Held at 0, in and out share −3: 101.5
    each; objective 1.5² + 1.5² + (1/2)² = 4.75."""
    streams = [S("in", "ENV", "A", 100, 1), S("out", "A", "ENV", 103, 1),
               S("small", "A", "ENV", 1, 2)]
    assert by_id(reconcile(streams, nonnegative=False))["small"]["reconciled"] == \
        pytest.approx(1 - 16 / 6, abs=1e-9)
    r = reconcile(streams)
    s = by_id(r)
    assert s["small"]["reconciled"] == 0.0 and s["small"]["adjustment"] == -1.0
    assert s["in"]["reconciled"] == pytest.approx(101.5, abs=1e-9)
    assert r.bounds["objective"] == pytest.approx(4.75, abs=1e-9) and r.bounds["dof"] == 2
    # the global test is the linear one: γ = 16/6, χ²(1)
    assert r.global_test["statistic"] == pytest.approx(16 / 6, abs=1e-9)


def test_bounded_wls_agrees_with_a_general_solver() -> None:
    """A 4-node network where two estimates go negative unbounded (the unmeasured 8: −3.515, the
    small meter 5: −0.037): the active set holds 8 at 0, after which 5 comes back positive, and
    gives the optimum scipy's SLSQP finds for min Σ((z − x)/σ)² s.t. A z = 0, z ≥ 0 (to 1e-4)."""
    from scipy.optimize import minimize

    from cpaudit.analyzer.reconcile import _nodes, incidence
    streams = [S("1", "ENV", "A", 110, 2), S("2", "A", "B", 60, 1), S("3", "A", "C", 49, 1),
               S("4", "B", "D", 63, 1), S("5", "C", "D", 1, 1.5), S("6", "C", "ENV", 51, 1),
               S("7", "D", "ENV", 64, 1), S("8", "B", "ENV", None, None)]
    free = by_id(reconcile(streams, nonnegative=False))
    assert free["8"]["reconciled"] < 0 and free["5"]["reconciled"] < 0
    r = reconcile(streams)
    assert not r.global_test["rejected"] and r.bounds["active"] == ["8"]
    a = incidence(streams, _nodes(streams))
    meas = [j for j, s in enumerate(streams) if s.value is not None]
    x = np.array([streams[j].value or 0.0 for j in range(len(streams))])
    w = np.array([1 / streams[j].sigma ** 2 if j in meas else 0.0  # type: ignore[operator]
                  for j in range(len(streams))])
    res = minimize(lambda z: float(np.sum(w * (z - x) ** 2)), np.maximum(x, 1.0),
                   jac=lambda z: 2 * w * (z - x), method="SLSQP",
                   constraints=[{"type": "eq", "fun": lambda z: a @ z, "jac": lambda z: a}],
                   bounds=[(0, None)] * len(streams), options={"ftol": 1e-12, "maxiter": 500})
    assert res.success
    got = by_id(r)
    for j, s in enumerate(streams):
        assert got[s.id]["reconciled"] == pytest.approx(res.x[j], abs=1e-4), s.id
    assert r.bounds["objective"] == pytest.approx(res.fun, abs=1e-6)


def test_untestable_node_and_blind_meter_named() -> None:
    """Node A has an unmeasured outlet: its balance only computes that outlet, so a leak at A
    cannot show; its two meters are not redundant (detectability 0). Node B (all metered) is
    testable."""
    r = reconcile([S("in", "ENV", "A", 100, 1), S("ab", "A", "B", 60, 1),
                   S("lost", "A", "ENV", None, None), S("out", "B", "ENV", 59, 1)])
    assert [u["node"] for u in r.untestable] == ["A"]
    assert r.untestable[0]["unmeasured"] == ["lost"]
    assert any("node A is not testable" in f and "lost" in f for f in r.findings)
    assert {u["stream"] for u in r.undetectable} == {"in"}
    assert any("meter in has no detectability" in f for f in r.findings)


def test_sigma_rules() -> None:
    """a = 0.5 % of 1 000: rectangular 5/√3 = 2.887; a tolerance of 2σ: 5/2 = 2.5."""
    from cpaudit.analyzer.reconcile import sigma_from_accuracy
    assert sigma_from_accuracy(1000, 0.5) == pytest.approx(5 / np.sqrt(3), abs=1e-12)
    assert sigma_from_accuracy(1000, 0.5, "tolerance_2sigma") == pytest.approx(2.5, abs=1e-12)
    assert sigma_from_accuracy(-1000, 0.5) > 0


def test_recon_layer_sigmas_by_rule_density_and_design(brewery: config.Config) -> None:
    """The quick brewhouse campaign over a 1 h window (test_balance's amounts): the weigher on
    malt (class 0.5, 2 000 kg) σ = 0.5/√3 % = 5.774 kg; the hot-wort meter (class 0.5, 8 m³ ×
    1 045 = 8 360 kg) with its density's ±0.5 %: √(0.5² + 0.5²)/√3 % = 0.4082 % = 34.13 kg;
    with tolerance_2sigma: 2 000 × 0.25 % = 5.0 and 8 360 × √(0.25² + 0.25²) % = 29.56 kg."""
    from cpaudit import config as cfgmod
    from cpaudit.analyzer import material_balance
    from cpaudit.analyzer.recon_layer import reconcile_balance
    from tests.analyzer.test_balance import AMOUNTS, frame_for
    r = material_balance(brewery, frame_for(AMOUNTS))
    rec = reconcile_balance(brewery, r)
    assert rec is not None
    s = {x["id"]: x for x in rec["streams"]}
    assert s["malt_in"]["sigma"] == pytest.approx(2000 * 0.005 / np.sqrt(3), rel=1e-9)
    assert s["hot_wort"]["sigma"] == pytest.approx(8360 * np.sqrt(0.5) / 100 / np.sqrt(3),
                                                   rel=1e-9)
    assert {d["stream"] for d in rec["density"]} == {"water_in", "sweet_wort", "condensate",
                                                     "vapour", "hot_wort"}
    assert "GUM 4.3.7" in rec["sigma_rule"] and rec["settings"]["sigma_rule"] == "rectangular"
    data = brewery.model_dump(by_alias=True, exclude_none=True)
    data["reconciliation"] = {"sigma_rule": "tolerance_2sigma"}
    tol = cfgmod.Config.model_validate(data)
    rec2 = reconcile_balance(tol, material_balance(tol, frame_for(AMOUNTS)))
    assert rec2 is not None
    s2 = {x["id"]: x for x in rec2["streams"]}
    assert s2["malt_in"]["sigma"] == pytest.approx(5.0, rel=1e-9)
    assert s2["hot_wort"]["sigma"] == pytest.approx(8360 * np.sqrt(2) * 0.25 / 100, rel=1e-9)
    assert "Sigmafine" in rec2["sigma_rule"]
    with pytest.raises(ValueError, match="sigma_rule"):
        cfgmod.Config.model_validate(data | {"reconciliation": {"sigma_rule": "normal"}})


def test_recon_layer_theoretical_stream_keeps_its_node(brewery: config.Config) -> None:
    """The brewhouse with its vapour declared instead of metered (0.7 m³ × 1 000 = 700 kg/h,
    ±10 %): the kettle keeps its balance (ν = 2, both nodes testable) and the vapour enters
    with σ = 10 %/√3 of 700 = 40.41 kg; without a declared uncertainty the default ±25 % and
    its source are used."""
    from cpaudit import config as cfgmod
    from cpaudit.analyzer import material_balance
    from cpaudit.analyzer.recon_layer import reconcile_balance
    from tests.analyzer.test_balance import AMOUNTS, frame_for
    data = brewery.model_dump(by_alias=True, exclude_none=True)
    for st in data["flowsheet"]["streams"]:
        if st["id"] == "vapour":
            st.update(provenance="theoretical", value=700, unit="kg/h", source="design",
                      uncertainty_pct=10)
            del st["tag"], st["rate_tag"]
    cfg = cfgmod.Config.model_validate(data)
    amounts = {k: v for k, v in AMOUNTS.items() if k != "vapour.total"}
    rec = reconcile_balance(cfg, material_balance(cfg, frame_for(amounts)))
    assert rec is not None
    assert rec["global_test"]["dof"] == 2 and rec["untestable"] == []
    vap = next(x for x in rec["streams"] if x["id"] == "vapour")
    assert vap["measured"] == pytest.approx(700, rel=1e-9)
    assert vap["sigma"] == pytest.approx(70 / np.sqrt(3), rel=1e-9)
    assert rec["theoretical"][0]["source"] == "declared on the stream"
    for st in data["flowsheet"]["streams"]:
        if st["id"] == "vapour":
            del st["uncertainty_pct"]
    cfg = cfgmod.Config.model_validate(data)
    rec = reconcile_balance(cfg, material_balance(cfg, frame_for(amounts)))
    assert rec is not None
    assert rec["theoretical"][0]["uncertainty_pct"] == 25.0
    assert "convention" in rec["theoretical"][0]["source"]
