"""The water and energy layers' indicators, beside their balances.

Water (GB/T 12452; formulas as in shared/reference/balance-math.md 4.2, **secondary**: from the
2008 edition's practice, the 2022 text was not retrieved): fresh water V_f (streams with
``water_role: fresh``), reused water V_r (``reused`` and returned ``condensate``), total use
V_t = V_f + V_r, repeated-use rate R = V_r / V_t, condensate reuse rate r_b = condensate / steam
(``steam``: the boiler's output), discharge V_d, fresh water per unit product V_f / Q.

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
    vf = _sum(water, role.get("fresh", []))
    vr = _sum(water, role.get("reused", []) + role.get("condensate", []))
    vt = vf + vr
    steam = _sum(water, role.get("steam", []))
    cond = _sum(water, role.get("condensate", []))
    out: dict[str, Any] = {
        "unit": "t (= m3 of water)", "source": _WATER_SRC,
        "streams": {k: v for k, v in role.items()},
        "fresh_t": vf, "reused_t": vr, "total_use_t": vt,
        "discharged_t": _sum(water, role.get("discharged", [])),
        "repeated_use_rate_pct": _pct(vr, vt) if role.get("reused") or role.get("condensate")
        else None,
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
    }
    prod = _product(energy)
    if prod is not None and prod[0] > 0:
        out["per_unit_product"] = {"value": total / prod[0], "unit": f"kgce/{prod[1]}",
                                   "product": cfg.flowsheet.product}
    return out
