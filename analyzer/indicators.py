"""The water and energy layers' indicators, beside their balances.

Water (GB/T 12452; formulas as in shared/reference/balance-math.md 4.2, **secondary**: from the
2008 edition's practice, the 2022 text was not retrieved): fresh water V_f (streams with
``water_role: fresh``), reused water V_r (``reused`` and returned ``condensate``), total use
V_t = V_f + V_r, repeated-use rate R = V_r / V_t, condensate reuse rate r_b = condensate / steam
(``steam``: the boiler's output), indirect cooling-water recirculation rate r_c = V_cr / (V_cr +
V_cf) (``cooling_circulating``, counted as reused; ``cooling_makeup``, counted as fresh), discharge
V_d, consumption V_co, water exported to others, the losses, fresh water per unit product V_f / Q
(the fresh water charged to the audit focus, :mod:`analyzer.accounting`). The water balance
(:func:`water_accounting`): every boundary stream of the water layer classified — intake (fresh,
non-conventional), water in raw materials, water received from others; consumption (water leaving
in products, by-products, wastes and by evaporation), discharge, exports — and the residual,
inputs − outputs: a loss when positive, an inconsistency when negative (never a negative loss).

Energy (GB/T 2589 coefficients, :mod:`analyzer.energy`): each carrier's physical amount and its
kgce, the comprehensive consumption E = Σ Eᵢ·kᵢ, per node, and per unit product.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cpaudit.analyzer.accounting import (FRESH_ROLES, KJ_PER_KGCE, charged_per_node, charges, per_unit,
                                 rule_text)
from cpaudit.analyzer.balance import BalanceResult
from cpaudit.analyzer.energy import coefficient
from cpaudit.config import ENV, Config

_WATER_SRC = "GB/T 12452 as quoted in balance-math.md 4.2 (secondary)"


def _sum(result: BalanceResult, ids: list[str]) -> float:
    by = {t.stream: t for t in result.streams}
    vals = [by[i].value for i in ids if i in by]
    return float(sum(vals)) if vals and all(np.isfinite(vals)) else float("nan")


def _product(result: BalanceResult) -> tuple[float, str] | None:
    """The main product's amount over the result's window (``flowsheet.product``)."""
    t = result.product
    if t is None or not np.isfinite(t.amount):
        return None
    return t.amount, t.unit


def _fin(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _pct(a: float, b: float) -> float | None:
    return float(100.0 * a / b) if np.isfinite(a) and np.isfinite(b) and b > 0 else None


FRESH = FRESH_ROLES
REUSED = ("reused", "condensate", "cooling_circulating", "direct_cooling_circulating",
          "reused_wastewater")


def _class(cfg: Config, sid: str) -> str | None:
    """What a boundary stream of the water layer is, for the balance of GB/T 12452."""
    s = next(x for x in cfg.flowsheet.streams if x.id == sid)
    r = s.water_role
    if s.from_ == ENV:
        if r in FRESH:
            return "fresh"
        if r == "non_conventional":
            return "non_conventional"
        if r == "received":
            return "received"
        return "in_materials"          # water entering with a raw material (its water content)
    if s.to == ENV:
        if s.fate == "transfer":
            return "exported"
        if r == "discharged":
            return "discharged"
        return "consumed"              # in products, by-products, wastes; evaporated
    return None


_WHAT = {"fresh": "fresh water (新水)", "non_conventional": "non-conventional water (非常规水)",
         "received": "water received from others", "in_materials": "water in raw materials",
         "consumed": "consumption (耗水: in products, by-products, wastes, evaporation)",
         "discharged": "discharge (排水)", "exported": "water supplied to others (外供水)"}


def water_accounting(cfg: Config, water: BalanceResult) -> dict[str, Any]:
    """The water balance of the focus and of each node [t]: inputs, consumption, discharge,
    exports and the residual (a loss when positive, an inconsistency when negative)."""
    if water.overall is None:
        return {"note": water.message}
    sums: dict[str, float] = {k: 0.0 for k in _WHAT}
    streams: dict[str, list[str]] = {k: [] for k in _WHAT}
    for t in water.streams:
        c = _class(cfg, t.stream)
        if c is not None:
            sums[c] += t.value
            streams[c].append(t.stream)
    ins = sums["fresh"] + sums["non_conventional"] + sums["received"] + sums["in_materials"]
    outs = sums["consumed"] + sums["discharged"] + sums["exported"]
    nodes = []
    for n in water.nodes:
        cons = sum(v for sid, v in n.outputs.items() if _class(cfg, sid) == "consumed")
        disc = sum(v for sid, v in n.outputs.items() if _class(cfg, sid) == "discharged")
        expo = sum(v for sid, v in n.outputs.items() if _class(cfg, sid) == "exported")
        nodes.append({"node": n.node, "name": n.name, "name_zh": n.name_zh,
                      "inputs_t": n.total_in, "outputs_t": n.total_out, "consumed_t": cons,
                      "discharged_t": disc, "exported_t": expo,
                      **_residual(n.deviation, n.total_in, n.closure_pct is not None)})
    return {"unit": "t", "classes": {k: {"what": _WHAT[k], "t": sums[k], "streams": streams[k]}
                                     for k in _WHAT},
            "inputs_t": ins, "outputs_t": outs, **_residual(ins - outs, ins, True),
            "nodes": nodes, "identity": "fresh + non-conventional + received + in materials = "
            "consumed + discharged + exported + losses (GB/T 12452 V_f = V_co + V_d + V_l, "
            "widened to the streams that cross the focus's boundary; balance-math.md 4.2, the "
            "identity's text [unverified])", "source": _WATER_SRC}


def _residual(dev: float, tin: float, judged: bool) -> dict[str, Any]:
    """A residual inputs − outputs [t] as a loss (≥ 0) or an inconsistency (< 0)."""
    if not judged or not np.isfinite(dev):
        return {"residual_t": None, "losses_t": None, "inconsistency_t": None,
                "residual_note": "not judged"}
    pct = 100.0 * dev / tin if tin > 0 else float("nan")
    if dev >= 0:
        return {"residual_t": dev, "losses_t": dev, "inconsistency_t": None,
                "residual_pct": pct, "residual_note": "inputs − outputs: leaks, overflows and "
                "what no meter sees"}
    return {"residual_t": dev, "losses_t": None, "inconsistency_t": -dev, "residual_pct": pct,
            "residual_note": f"outputs exceed inputs by {-dev:.4g} t ({-pct:.2f} % of the "
            "inputs): an inconsistency of the meters or the water contents, not a loss"}


def water_indicators(cfg: Config, water: BalanceResult,
                     material: BalanceResult | None = None) -> dict[str, Any]:
    role: dict[str, list[str]] = {}
    for s in cfg.flowsheet.streams:
        if "water" in s.layers and s.water_role:
            role.setdefault(s.water_role, []).append(s.id)
    if water.start_ns is None:
        return {"note": water.message}
    acc = water_accounting(cfg, water)
    by_stream = {t.stream: t.value for t in water.streams}

    def total(roles: tuple[str, ...]) -> float:
        ids = [i for r in roles for i in role.get(r, [])]
        vals = [by_stream[i] for i in ids if i in by_stream]
        return float(sum(vals)) if vals and all(np.isfinite(vals)) else (
            0.0 if not ids else float("nan"))
    vf = total(FRESH)
    vr = total(REUSED)
    vnc = total(("non_conventional",))
    vcr, vcf = total(("cooling_circulating",)), total(("cooling_makeup",))
    vdcr, vdcf = total(("direct_cooling_circulating",)), total(("direct_cooling_makeup",))
    vrw = total(("reused_wastewater",))
    vt = vf + vr
    steam, cond = total(("steam",)), total(("condensate",))
    cl = acc.get("classes", {})
    vco = cl.get("consumed", {}).get("t", float("nan"))
    vd = cl.get("discharged", {}).get("t", float("nan"))
    vex = cl.get("exported", {}).get("t", float("nan"))
    ch = charges(cfg, water, material)
    charged_fresh = vf - sum(c.supplied - c.charged for c in ch)
    # the focus's own discharge: a shared utility's discharge at the share charged
    own_d = _own_outputs(cfg, water, ch, "discharged")
    own_co = _own_outputs(cfg, water, ch, "consumed")
    # the focus's own water balance: the fresh water charged to it and the water in its raw
    # materials against its own consumption and discharge (a shared utility's at its share)
    own_in = charged_fresh + cl.get("in_materials", {}).get("t", 0.0)
    own_res = _residual(own_in - own_co - own_d, own_in, np.isfinite(own_in))
    out: dict[str, Any] = {
        "unit": "t (= m3 of water)", "source": _WATER_SRC,
        "streams": {k: v for k, v in role.items()},
        "fresh_t": vf, "reused_t": vr, "total_use_t": vt,
        "discharged_t": vd, "consumed_t": vco, "exported_t": vex,
        "received_t": cl.get("received", {}).get("t"),
        "in_materials_t": cl.get("in_materials", {}).get("t"),
        "losses_t": acc.get("losses_t"), "inconsistency_t": acc.get("inconsistency_t"),
        "balance": acc,
        "repeated_use_rate_pct": _pct(vr, vt) if any(role.get(r) for r in REUSED) else None,
        "cooling_recirculation_rate_pct": _pct(vcr, vcr + vcf)
        if role.get("cooling_circulating") else None,
        "direct_cooling_recirculation_rate_pct": _pct(vdcr, vdcr + vdcf)
        if role.get("direct_cooling_circulating") else None,
        "direct_cooling_note": None if role.get("direct_cooling_circulating") else
        "no direct cooling water in the flowsheet (water_role direct_cooling_*)",
        "condensate_reuse_rate_pct": _pct(cond, steam) if role.get("steam") else None,
        "wastewater_reuse_rate_pct": _pct(vrw, vrw + own_d),
        "wastewater_reuse_note": "reused wastewater / (reused + the focus's discharge); no "
        "stream with water_role reused_wastewater means none is reused" if not
        role.get("reused_wastewater") else "reused wastewater / (reused + the focus's discharge)",
        "non_conventional_share_pct": _pct(vnc, vnc + vf),
        "charged_fresh_t": _fin(charged_fresh),
        "charged_discharge_t": own_d,
        "own_balance": {"inputs_t": _fin(own_in), "consumed_t": own_co, "discharged_t": own_d,
                        **own_res, "what": "the focus's own water: the fresh water charged to "
                        "it and the water in its raw materials against its consumption and "
                        "discharge (a shared utility's at its share); exports deducted"},
        "leak_rate_pct": _pct(own_res["losses_t"], charged_fresh)
        if own_res["losses_t"] is not None else None,
        "discharge_rate_pct": _pct(own_d, charged_fresh),
        "consumption_rate_pct": _pct(own_co, charged_fresh),
        "rates_note": "leak (V_l), discharge and consumption rates of the focus's own water "
                      "(own_balance) over the fresh water charged to it, so that they add up "
                      "with the water in raw materials; a negative residual gives no leak rate "
                      "but an inconsistency (GB/T 12452 / GB/T 7119 practice as quoted in "
                      "balance-math.md 4.2; the exact formulas [unverified])",
        "metering": _metering(cfg, water),
        "allocation": [c.to_dict("t") for c in ch],
        "allocation_rule": rule_text(ch, "t"),
        "per_node_fresh": charged_per_node(cfg, water, ch),
    }
    pu = per_unit(charged_fresh, water, cfg, "t")
    if pu is not None:
        gross = per_unit(vf, water, cfg, "t")
        out["fresh_per_unit_product"] = {
            **pu, "basis": "fresh water charged to the audit focus: exports deducted, shared "
            "utilities allocated", "rule": out["allocation_rule"],
            "gross": gross["value"] if gross else None,
            "gross_note": "all fresh water entering the flowsheet, before deductions"}
        out["fresh_per_unit_operation"] = [
            {**r, "per_unit_product": (r["charged"] / pu["product_amount"])
             if r["charged"] is not None else None, "unit": pu["unit"]}
            for r in out["per_node_fresh"]]
    return out


def _own_outputs(cfg: Config, water: BalanceResult, ch: list[Any], cls: str) -> float:
    """The focus's own boundary outputs of class ``cls`` [t]: those of a ``measured_share`` or
    ``fixed`` utility at its share."""
    share = {n: c.share for c in ch if c.share is not None for n in c.utility.nodes}
    tot = 0.0
    for n in water.nodes:
        for sid, v in n.outputs.items():
            if _class(cfg, sid) == cls and np.isfinite(v):
                s = share.get(n.node)
                tot += v * (s if s is not None and np.isfinite(s) else 1.0)
    return tot


def _metering(cfg: Config, water: BalanceResult) -> dict[str, Any]:
    """GB 24789-2009 (用水单位水计量器具配备和管理通则): water meter coverage — streams
    measured by a meter over all water streams — and the metered share of the water [%]."""
    ts = water.streams
    measured = [t for t in ts if t.method in ("totalizer", "rate")]
    amount = sum(abs(t.value) for t in ts if np.isfinite(t.value))
    metered = sum(abs(t.value) for t in measured if np.isfinite(t.value))
    return {"streams": len(ts), "metered_streams": len(measured),
            "meter_coverage_pct": _pct(len(measured), len(ts)),
            "metered_water_pct": _pct(metered, amount),
            "not_metered": [t.stream for t in ts if t not in measured],
            "source": "GB 24789-2009 水计量器具配备率 and 水计量率 (definitions recalled, the "
                      "text not retrieved [unverified]); a material stream's water is metered "
                      "with its mass and a declared water content"}


def energy_summary(cfg: Config, energy: BalanceResult,
                   material: BalanceResult | None = None) -> dict[str, Any]:
    if energy.start_ns is None:
        return {"note": energy.message}
    carriers: dict[str, dict[str, Any]] = {}
    by = {s.id: s for s in cfg.flowsheet.streams}
    for t in energy.streams:
        s = by[t.stream]
        if s.carrier is None:
            continue
        c = coefficient(cfg, s.carrier)
        d = carriers.setdefault(s.carrier, {"amount": 0.0, "unit": c.unit, "kgce": 0.0,
                                            "coefficient": c.kgce, "coefficient_unit":
                                            f"kgce/{c.unit}", "status": c.status,
                                            "source": c.source, "streams": [], "notes": []})
        d["streams"].append(t.stream)
        d["kgce"] += t.value
        d["amount"] += t.value / c.kgce
        if t.note and t.note not in d["notes"]:
            d["notes"].append(t.note)
    total = float(sum(d["kgce"] for d in carriers.values()))
    ch = charges(cfg, energy, material)
    charged = total - sum(c.supplied - c.charged for c in ch)
    out: dict[str, Any] = {
        "unit": "kgce", "carriers": carriers, "total_kgce": total,
        "charged_kgce": _fin(charged),
        "electricity_basis": cfg.energy.electricity,
        "per_node_kgce": {n.node: n.total_in for n in energy.nodes},
        "per_node": charged_per_node(cfg, energy, ch),
        "allocation": [c.to_dict("kgce") for c in ch],
        "allocation_rule": rule_text(ch, "kgce"),
        "units": _effective(cfg, energy),
    }
    pu = per_unit(charged, energy, cfg, "kgce")
    if pu is not None:
        gross = per_unit(total, energy, cfg, "kgce")
        out["per_unit_product"] = {
            **pu, "basis": "energy charged to the audit focus: energy supplied to others "
            "deducted, shared utilities allocated (GB/T 2589-2020)",
            "rule": out["allocation_rule"], "gross": gross["value"] if gross else None,
            "gross_note": "all energy entering the flowsheet, before deductions"}
        out["per_unit_operation"] = [
            {**r, "per_unit_product": (r["charged"] / pu["product_amount"])
             if r["charged"] is not None else None, "unit": pu["unit"]}
            for r in out["per_node"]]
    return out


def _effective(cfg: Config, energy: BalanceResult) -> list[dict[str, Any]]:
    """Per unit with a declared effective output (GB/T 3484): supplied, effective, losses and
    efficiency, all in kgce. The efficiency is over the fuel supplied (``energy.efficiency_basis:
    fuel``, auxiliary electricity reported apart) or over everything supplied."""
    by = {t.stream: t for t in energy.effective}
    streams = {s.id: s for s in cfg.flowsheet.streams}
    rows: dict[str, dict[str, Any]] = {}
    for e in cfg.energy.effective:
        t = by.get(e.stream)
        kg = t.amount_kg if t is not None else float("nan")
        kj, how = energy.enthalpy.get(e.stream, (e.kj_per_kg or float("nan"), e.source))
        nb = next((n for n in energy.nodes if n.node == e.node), None)
        fuel = aux = 0.0
        for sid, v in (nb.inputs.items() if nb else []):
            if streams[sid].carrier == "electricity":
                aux += v
            else:
                fuel += v
        basis = cfg.energy.efficiency_basis
        r = rows.setdefault(e.node, {
            "node": e.node, "supplied_kgce": fuel + aux if nb else None, "fuel_kgce": fuel,
            "auxiliary_electricity_kgce": aux, "efficiency_basis": basis,
            "effective_kgce": 0.0, "streams": [], "sources": [], "enthalpy": []})
        r["effective_kgce"] += kg * kj / KJ_PER_KGCE
        r["streams"].append(e.stream)
        r["sources"].append(e.source)
        r["enthalpy"].append({"stream": e.stream, "kj_per_kg": kj if np.isfinite(kj) else None,
                              "how": how})
    for r in rows.values():
        sup = r["fuel_kgce"] if r["efficiency_basis"] == "fuel" else r["supplied_kgce"]
        eff = r["effective_kgce"]
        ok = sup is not None and np.isfinite(eff) and sup > 0
        r["effective_kgce"] = eff if np.isfinite(eff) else None
        r["losses_kgce"] = sup - eff if ok else None
        r["efficiency_pct"] = 100.0 * eff / sup if ok else None
        r["efficiency_note"] = ("effective over the fuel supplied; auxiliary electricity "
                                "reported apart" if r["efficiency_basis"] == "fuel" else
                                "effective over everything supplied, electricity included")
    return list(rows.values())
