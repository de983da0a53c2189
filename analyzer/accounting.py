"""What the audit focus is charged with: exports deducted, shared utilities allocated.

GB/T 2589-2020 counts the energy consumed less the energy output to others; GB/T 12452 the water
taken less the water supplied to others. A flowsheet that holds a boiler house or a wastewater
station serving other workshops too must not charge the focus with what it passes on. Each
shared utility (``allocation.utilities``, :mod:`config.allocation`) is charged by its rule:

- ``deduct_exports``: whole, less the exports: water at its mass [t], energy at the heat the
  utility gave it (the mass times the ``energy.effective`` enthalpy gain of the utility's output,
  over 29 307.6 kJ/kgce);
- ``measured_share``: its supply times s = Σ focus_streams / Σ basis_streams (masses over the
  balance window);
- ``fixed``: its supply times the declared share.

A node outside every utility is charged whole. Functions here are pure: they take the balance
results and return figures with the rule, the share and the deducted amounts beside them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cpaudit.analyzer.balance import BalanceResult
from cpaudit.analyzer.totals import StreamTotal
from cpaudit.config import ENV, Config
from cpaudit.config.allocation import Utility

KJ_PER_KGCE = 29307.6     # GB/T 2589-2020 3.7
# the water roles that are fresh water (新水) taken in: what a water-layer charge is made of
FRESH_ROLES = ("fresh", "cooling_makeup", "direct_cooling_makeup")


def _roles(res: BalanceResult) -> set[str] | None:
    """The boundary inputs a charge counts: fresh water in the water layer, everything else."""
    return set(FRESH_ROLES) if res.layer == "water" else None


def _fin(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


@dataclass
class Charge:
    """One utility's charge in one layer [layer unit]."""
    utility: Utility
    supplied: float            # what enters the utility's nodes from the boundary
    charged: float             # what the focus is charged with
    share: float | None        # the share applied (measured or fixed); None for deduct_exports
    deducted: float            # exports deducted (deduct_exports), else supplied − charged
    exports: list[dict[str, Any]]
    note: str

    def to_dict(self, unit: str) -> dict[str, Any]:
        u = self.utility
        return {"utility": u.id, "name": u.name, "name_zh": u.name_zh, "nodes": u.nodes,
                "rule": u.rule, "share": _fin(self.share), "unit": unit,
                "supplied": _fin(self.supplied), "charged": _fin(self.charged),
                "deducted": _fin(self.deducted), "exports": self.exports,
                "source": u.source, "note": self.note}


def _streams(*results: BalanceResult | None) -> dict[str, StreamTotal]:
    out: dict[str, StreamTotal] = {}
    for r in results:
        if r is None:
            continue
        for t in r.streams:
            out.setdefault(t.stream, t)
    return out


def utility_share(u: Utility, totals: dict[str, StreamTotal]) -> tuple[float, str]:
    """The share of a ``measured_share`` or ``fixed`` utility charged to the focus, and how."""
    if u.rule == "fixed":
        assert u.share is not None
        return u.share, f"fixed share {u.share:.4g}"
    num = [totals[s].amount_kg if s in totals else float("nan") for s in u.focus_streams]
    den = [totals[s].amount_kg if s in totals else float("nan") for s in u.basis_streams]
    a, b = float(np.sum(num)), float(np.sum(den))
    if not (np.isfinite(a) and np.isfinite(b)) or b <= 0:
        return float("nan"), "share not measurable: a stream of the share has no total"
    return a / b, (f"measured share {' + '.join(u.focus_streams)} / "
                   f"{' + '.join(u.basis_streams)} = {a / 1000:.6g} t / {b / 1000:.6g} t")


def _supplied(res: BalanceResult, nodes: list[str], roles: set[str] | None, cfg: Config
              ) -> float:
    """What enters ``nodes`` from the boundary in ``res``'s layer (water: only ``roles``)."""
    by = {s.id: s for s in cfg.flowsheet.streams}
    tot = 0.0
    for t in res.streams:
        s = by[t.stream]
        if s.from_ == ENV and s.to in nodes and (roles is None or s.water_role in roles):
            tot += t.value
    return tot


def export_heat(cfg: Config, energy: BalanceResult, u: Utility,
                totals: dict[str, StreamTotal], supplied: float
                ) -> tuple[float, list[dict[str, Any]]]:
    """What a utility's exports are deducted at [kgce]: their heat content — mass × the enthalpy
    gain of the utility's effective output (energy.effective, :func:`effective_kj_per_kg`) — or
    (``export_basis: fuel_equivalent``) the energy spent making them: the heat content over the
    utility's whole effective output, times what the utility was supplied."""
    kj, how = effective_kj_per_kg(cfg, energy, u.nodes)
    eff_kg = sum(t.amount_kg for t in energy.effective
                 if any(e.stream == t.stream and e.node in u.nodes for e in cfg.energy.effective))
    effective = eff_kg * kj / KJ_PER_KGCE
    rows, tot = [], 0.0
    for sid in u.exports:
        t = totals.get(sid)
        kg = t.amount_kg if t is not None else float("nan")
        heat = kg * kj / KJ_PER_KGCE
        if u.export_basis == "fuel_equivalent":
            kgce = heat / effective * supplied if effective > 0 else float("nan")
            basis = (f"the energy spent making it: its heat {heat:.6g} kgce over the utility's "
                     f"effective output {effective:.6g} kgce, times its supply {supplied:.6g} "
                     "kgce (the utility's losses shared)")
        else:
            kgce = heat
            basis = "its heat content (the focus bears all of the utility's losses)"
        rows.append({"stream": sid, "t": _fin(kg / 1000.0), "kj_per_kg": _fin(kj),
                     "heat_kgce": _fin(heat), "kgce": _fin(kgce), "enthalpy": how,
                     "basis": u.export_basis, "basis_text": basis})
        tot += kgce
    return tot, rows


def effective_kj_per_kg(cfg: Config, energy: BalanceResult, nodes: list[str]
                        ) -> tuple[float, str]:
    """The enthalpy gain [kJ/kg] of the first effective output of ``nodes`` over the window:
    from the metered pressure when it has good readings, else the declared design point."""
    for e in cfg.energy.effective:
        if e.node in nodes:
            kj = energy.enthalpy.get(e.stream)
            if kj is not None:
                return kj
    return float("nan"), "no effective output (energy.effective) declared for the utility"


def charges(cfg: Config, res: BalanceResult, *others: BalanceResult | None) -> list[Charge]:
    """Each utility's charge in ``res``'s layer (energy in kgce, water in t of fresh water)."""
    totals = _streams(res, *others)
    roles = _roles(res)
    out = []
    for u in cfg.allocation.utilities:
        sup = _supplied(res, u.nodes, roles, cfg)
        if u.rule == "deduct_exports":
            if res.layer == "energy":
                ded, rows = export_heat(cfg, res, u, totals, sup)
                note = ("exports deducted at the energy spent making them (losses shared)"
                        if u.export_basis == "fuel_equivalent" else
                        "exports deducted at their heat content (the focus bears the losses)")
            else:
                rows = [{"stream": s, "t": _fin(totals[s].amount_kg / 1000.0)
                         if s in totals else None} for s in u.exports]
                ded = float(sum(r["t"] if r["t"] is not None else np.nan for r in rows))
                note = "water leaving for others (its mass) deducted from the fresh water"
            charged = sup - ded
            if np.isfinite(charged) and charged < 0:
                note += (f"; the exports exceed the supply by {-charged:.4g}: inconsistent "
                         "(check the meters), charged as 0")
                charged = 0.0
            out.append(Charge(u, sup, charged, None, ded, rows, note))
        else:
            share, how = utility_share(u, totals)
            out.append(Charge(u, sup, sup * share, share, sup - sup * share, [], how))
    return out


def charged_per_node(cfg: Config, res: BalanceResult, ch: list[Charge]
                     ) -> list[dict[str, Any]]:
    """What each node draws from the boundary and what the focus is charged with for it: a
    utility's charge spread over its nodes in proportion to their supply."""
    by_node = {c_node: c for c in ch for c_node in c.utility.nodes}
    roles = _roles(res)
    rows = []
    for n in cfg.flowsheet.nodes:
        sup = _supplied(res, [n.id], roles, cfg)
        if sup == 0:
            continue
        c = by_node.get(n.id)
        charged = sup if c is None else (c.charged * sup / c.supplied if c.supplied > 0 else 0.0)
        rows.append({"node": n.id, "name": n.name, "name_zh": n.name_zh, "supplied": _fin(sup),
                     "charged": _fin(charged), "utility": c.utility.id if c else None})
    return rows


def per_unit(value: float, res: BalanceResult, cfg: Config, unit: str) -> dict[str, Any] | None:
    """``value`` per unit of the main product over ``res``'s window."""
    t = res.product
    if t is None or not np.isfinite(t.amount) or t.amount <= 0 or not np.isfinite(value):
        return None
    return {"value": value / t.amount, "unit": f"{unit}/{t.unit}", "product": cfg.flowsheet.product,
            "product_amount": t.amount, "product_unit": t.unit}


def rule_text(ch: list[Charge], unit: str) -> str:
    """One line per utility, for the text beside a per-unit figure."""
    parts = []
    for c in ch:
        u = c.utility
        if u.rule == "deduct_exports":
            how = "" if unit != "kgce" else (
                " at the energy spent making them" if u.export_basis == "fuel_equivalent"
                else " at their heat content")
            parts.append(f"{u.name or u.id}: exports ({', '.join(u.exports)}) deducted{how}, "
                         f"{c.deducted:.6g} {unit}")
        elif c.supplied == 0:
            parts.append(f"{u.name or u.id}: nothing of this layer is supplied to it from "
                         f"outside; its outputs are the focus's at the {c.note}, share "
                         f"{c.share:.4g}")
        else:
            parts.append(f"{u.name or u.id}: {c.note}, share {c.share:.4g} "
                         f"({c.supplied - c.charged:.6g} {unit} left to others)")
    return "; ".join(parts) if parts else "no shared utility declared: everything charged"
