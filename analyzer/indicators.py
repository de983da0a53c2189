"""The water and energy layers' indicators, beside their balances.

Water (GB/T 12452; formulas as in shared/reference/balance-math.md 4.2, **secondary**: from the
2008 edition's practice, the 2022 text was not retrieved): fresh water V_f (streams with
``water_role: fresh``), reused water V_r (``reused`` and returned ``condensate``), total use
V_t = V_f + V_r, repeated-use rate R = V_r / V_t, condensate reuse rate r_b = condensate / steam
(``steam``: the boiler's output), indirect cooling-water recirculation rate r_c = V_cr / (V_cr +
V_cf) (``cooling_circulating``, counted as reused; ``cooling_makeup``, counted as fresh), discharge
V_d, consumption V_co, the unaccounted rest V_f − V_co − V_d (leaks and overflows; the identity is
unverified, so it is labelled as such), fresh water per unit product V_f / Q.

Energy (GB/T 2589 coefficients, :mod:`analyzer.energy`): each carrier's physical amount and its
kgce, the comprehensive consumption E = Σ Eᵢ·kᵢ, per node, and per unit product.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from analyzer.balance import BalanceResult
from analyzer.energy import coefficient
from config import Config

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


def _pct(a: float, b: float) -> float | None:
    return float(100.0 * a / b) if np.isfinite(a) and np.isfinite(b) and b > 0 else None


def water_indicators(cfg: Config, water: BalanceResult) -> dict[str, Any]:
    role: dict[str, list[str]] = {}
    for s in cfg.flowsheet.streams:
        if "water" in s.layers and s.water_role:
            role.setdefault(s.water_role, []).append(s.id)
    if water.start_ns is None:
        return {"note": water.message}
    vf = _sum(water, role.get("fresh", []) + role.get("cooling_makeup", []))
    vr = _sum(water, role.get("reused", []) + role.get("condensate", [])
              + role.get("cooling_circulating", []))
    vcr = _sum(water, role.get("cooling_circulating", []))
    vcf = _sum(water, role.get("cooling_makeup", []))
    vco = _sum(water, role.get("consumed", []))
    vd = _sum(water, role.get("discharged", []))
    vt = vf + vr
    steam = _sum(water, role.get("steam", []))
    cond = _sum(water, role.get("condensate", []))
    out: dict[str, Any] = {
        "unit": "t (= m3 of water)", "source": _WATER_SRC,
        "streams": {k: v for k, v in role.items()},
        "fresh_t": vf, "reused_t": vr, "total_use_t": vt,
        "discharged_t": vd,
        "consumed_t": vco if role.get("consumed") else None,
        "unaccounted_t": vf - vd - (vco if role.get("consumed") else 0.0)
        if role.get("discharged") else None,
        "unaccounted_note": "V_f − V_co − V_d: leaks, overflows and what no meter sees "
                            "(identity V_f = V_co + V_d + V_l unverified, balance-math.md 4.2)",
        "repeated_use_rate_pct": _pct(vr, vt) if role.get("reused") or role.get("condensate")
        or role.get("cooling_circulating") else None,
        "cooling_recirculation_rate_pct": _pct(vcr, vcr + vcf)
        if role.get("cooling_circulating") else None,
        "condensate_reuse_rate_pct": _pct(cond, steam) if role.get("steam") else None,
    }
    prod = _product(water)
    if prod is not None and prod[0] > 0:
        out["fresh_per_unit_product"] = {"value": vf / prod[0], "unit": f"t/{prod[1]}",
                                         "product": cfg.flowsheet.product}
    return out


def energy_summary(cfg: Config, energy: BalanceResult) -> dict[str, Any]:
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
                                            "source": c.source, "streams": []})
        d["streams"].append(t.stream)
        d["kgce"] += t.value
        d["amount"] += t.value / c.kgce
    total = float(sum(d["kgce"] for d in carriers.values()))
    out: dict[str, Any] = {
        "unit": "kgce", "carriers": carriers, "total_kgce": total,
        "electricity_basis": cfg.energy.electricity,
        "per_node_kgce": {n.node: n.total_in for n in energy.nodes},
        "units": _effective(cfg, energy),
    }
    prod = _product(energy)
    if prod is not None and prod[0] > 0:
        out["per_unit_product"] = {"value": total / prod[0], "unit": f"kgce/{prod[1]}",
                                   "product": cfg.flowsheet.product}
    return out


KJ_PER_KGCE = 29307.6     # GB/T 2589-2020 3.7


def _effective(cfg: Config, energy: BalanceResult) -> list[dict[str, Any]]:
    """Per unit with a declared effective output (GB/T 3484): supplied, effective, losses and
    efficiency, all in kgce."""
    by = {t.stream: t for t in energy.effective}
    supplied = {n.node: n.total_in for n in energy.nodes}
    rows: dict[str, dict[str, Any]] = {}
    for e in cfg.energy.effective:
        t = by.get(e.stream)
        kg = t.amount_kg if t is not None else float("nan")
        r = rows.setdefault(e.node, {"node": e.node, "supplied_kgce": supplied.get(e.node),
                                     "effective_kgce": 0.0, "streams": [], "sources": []})
        r["effective_kgce"] += kg * e.kj_per_kg / KJ_PER_KGCE
        r["streams"].append(e.stream)
        r["sources"].append(e.source)
    for r in rows.values():
        sup, eff = r["supplied_kgce"], r["effective_kgce"]
        ok = sup is not None and np.isfinite(eff) and sup > 0
        r["effective_kgce"] = eff if np.isfinite(eff) else None
        r["losses_kgce"] = sup - eff if ok else None
        r["efficiency_pct"] = 100.0 * eff / sup if ok else None
    return list(rows.values())
