"""Material balance per unit operation and overall (DB11/T 1156 7.3.4).

closure [%] = (inputs − outputs) / inputs × 100, per node and for the audit focus as a whole
(streams crossing the boundary ``ENV``). A balance is usable when |closure| ≤ the limit
(5 % in general, 7.3.4 b); otherwise the cause must be found and the measurement repeated.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cpaudit.analyzer.cycles import whole_cycles
from cpaudit.analyzer.totals import (LAYER_UNIT, StreamTotal, common_window, flowsheet_tags,
                             layer_streams, stream_totals)
from cpaudit.config import ENV, Config


@dataclass
class NodeBalance:
    node: str
    name: str
    name_zh: str
    inputs: dict[str, float]      # stream id -> [kg]
    outputs: dict[str, float]     # stream id -> [kg]
    total_in: float               # [kg]
    total_out: float              # [kg]
    deviation: float              # inputs - outputs [kg]
    closure_pct: float | None     # None when inputs are zero or a stream is missing
    ok: bool | None               # |closure| <= limit; None when it cannot be judged
    missing: list[str] = field(default_factory=list)
    accumulation: float = 0.0     # declared hold-up growth [layer unit]; deviation subtracts it
    accumulation_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("total_in", "total_out", "deviation"):
            d[k] = None if not np.isfinite(d[k]) else d[k]
        return d


@dataclass
class BalanceResult:
    layer: str
    unit: str
    start_ns: int | None
    end_ns: int | None
    limit_pct: float
    nodes: list[NodeBalance]
    overall: NodeBalance | None
    streams: list[StreamTotal]
    verdict: str                  # ok | exceeded | incomplete | no-data | supply-only
    message: str
    product: StreamTotal | None = None   # the main product over the same window
    effective: list[StreamTotal] = field(default_factory=list)   # energy: effective streams
    # energy: the enthalpy gain of each effective stream over the window [kJ/kg] and how found
    enthalpy: dict[str, tuple[float, str]] = field(default_factory=dict)

    @property
    def hours(self) -> float:
        if self.start_ns is None or self.end_ns is None:
            return 0.0
        return (self.end_ns - self.start_ns) / 3.6e12

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer, "unit": self.unit, "start_ns": self.start_ns,
            "end_ns": self.end_ns, "hours": self.hours, "limit_pct": self.limit_pct,
            "verdict": self.verdict, "message": self.message,
            "nodes": [n.to_dict() for n in self.nodes],
            "overall": self.overall.to_dict() if self.overall else None,
            "streams": [s.to_dict() for s in self.streams],
            "product": self.product.to_dict() if self.product else None,
        }


def _node(node_id: str, name: str, name_zh: str, ins: list[StreamTotal],
          outs: list[StreamTotal], limit: float, supply_only: bool = False,
          acc: float = 0.0, acc_source: str = "") -> NodeBalance:
    """deviation = inputs − outputs − declared accumulation; closure = deviation / inputs."""
    i = {s.stream: s.value for s in ins}
    o = {s.stream: s.value for s in outs}
    missing = [s.stream for s in ins + outs if not np.isfinite(s.value)]
    tin = float(sum(v for v in i.values() if np.isfinite(v)))
    tout = float(sum(v for v in o.values() if np.isfinite(v)))
    dev = tin - tout - acc
    closure = None if missing or tin <= 0 or (supply_only and not outs) else 100.0 * dev / tin
    ok = None if closure is None else bool(abs(closure) <= limit)
    return NodeBalance(node_id, name, name_zh, i, o, tin, tout, dev, closure, ok, missing, acc,
                       acc_source)


def _span(w: tuple[int, int]) -> str:
    return f"of {(w[1] - w[0]) / 3.6e12:.2f} h"


def material_balance(cfg: Config, frame: pd.DataFrame, start: int | None = None,
                     end: int | None = None) -> BalanceResult:
    """The material balance of the flowsheet from a frame of samples (7.3.4).

    ``start``/``end`` [ns] bound the window; within it, the window actually used is the one every
    stream's totalizer covers with good samples (trimmed to whole cycles in batch mode).
    """
    return layer_balance(cfg, frame, "material", start, end)


def layer_balance(cfg: Config, frame: pd.DataFrame, layer: str, start: int | None = None,
                  end: int | None = None, rates: pd.DataFrame | None = None) -> BalanceResult:
    """The balance of one layer (material in kg, water in t, energy in kgce) per node and overall.

    In the water and energy layers a node with no metered output is a use point (water consumed
    into the product or evaporated; energy used, whose effective part GB/T 3484 finds by equipment
    tests): what is supplied to it is reported, not judged."""
    limit = cfg.requirements.closure_limit_pct
    unit = LAYER_UNIT[layer]
    # water and energy reach use points (into the product, burnt, dissipated) that no meter sees
    supply_only = layer in ("water", "energy")
    if len(frame) and frame["tag"].dtype == object:
        # per-tag selections compare codes, not strings: 20x faster on a day of 1 s samples
        frame = frame.assign(tag=frame["tag"].astype("category"))
    streams = layer_streams(cfg, layer)
    tags = flowsheet_tags(cfg, layer)
    if not streams:
        return BalanceResult(layer, unit, None, None, limit, [], None, [], "no-data",
                             f"no {layer} streams in the flowsheet")
    window = common_window(frame, tags, start, end)
    if window is None:
        good = set(frame.loc[frame["quality"] == 0, "tag"].unique()) if len(frame) else set()
        silent = [s.id for s in streams if s.tag is not None and s.tag not in good]
        why = (f"no good readings yet from {', '.join(silent)}" if silent else
               "the streams' meters have no time span in common yet")
        return BalanceResult(layer, unit, None, None, limit, [], None, [], "no-data",
                             f"no balance: {why}" if tags else "no measured streams")
    full = window
    cyc, n_cycles = whole_cycles(cfg, frame, window)
    if cyc is None:
        spec = cfg.requirements.cycles
        assert spec is not None
        src = f"state tag {spec.tag}" if spec.source == "state" else (
            "marked boundaries" if spec.source == "marked" else f"{spec.source} {spec.tag}")
        return BalanceResult(layer, unit, None, None, limit, [], None, [], "no-data",
                             f"no balance yet: no complete production cycle ({src}) in the "
                             f"window {_span(full)}")
    window = cyc
    totals = stream_totals(cfg, frame, window, layer, rates=rates, cycles=n_cycles or None)
    by_id = {t.stream: t for t in totals}
    nodes = []
    for n in cfg.flowsheet.nodes:
        if not any(n.id in (s.from_, s.to) for s in streams):
            continue
        ins = [by_id[s.id] for s in streams if s.to == n.id]
        outs = [by_id[s.id] for s in streams if s.from_ == n.id]
        acc = n.accumulation if layer == "material" else None
        nodes.append(_node(n.id, n.name, n.name_zh, ins, outs, limit, supply_only,
                           acc.kg if acc else 0.0, acc.source if acc else ""))
    overall = _node("overall", cfg.campaign.audit_focus or "audit focus",
                    cfg.campaign.audit_focus_zh, [by_id[s.id] for s in streams if s.from_ == ENV],
                    [by_id[s.id] for s in streams if s.to == ENV], limit, supply_only,
                    sum(x.accumulation for x in nodes))
    uses = [n.node for n in nodes if supply_only and not n.outputs]
    if uses:    # what reaches a use point leaves unmetered: the whole cannot close either
        overall.closure_pct, overall.ok = None, None
    judged = [x for x in nodes + [overall]
              if not (supply_only and not x.outputs) and not (uses and x is overall)]
    missing = sorted({m for x in nodes + [overall] for m in x.missing})
    if missing:
        verdict = "incomplete"
        msg = "some streams have no total over the window: " + ", ".join(missing)
    elif not judged:
        verdict = "supply-only"
        msg = (f"{layer} supplied per node in {unit}; no node has a metered {layer} output, so "
               "no closure is judged")
    elif all(x.ok for x in judged):
        verdict = "ok"
        msg = f"every node closes within {limit:g} % (DB11/T 1156 7.3.4 b)"
    else:
        bad = [f"{x.node} {x.closure_pct:+.2f} %" for x in judged if not x.ok]
        verdict = "exceeded"
        msg = (f"closure beyond {limit:g} % at {', '.join(bad)}: find the cause and measure "
               "again (7.3.4 b)")
    if uses and judged:
        msg += (f"; use points (no metered {layer} output, not judged, nor the whole): "
                f"{', '.join(uses)}")
    if n_cycles:
        msg += f"; over {n_cycles} whole production cycle{'s' if n_cycles > 1 else ''}"
    pid = cfg.flowsheet.product
    product = by_id.get(pid) if pid and layer == "material" else None
    if pid and product is None:
        found = stream_totals(cfg, frame, window, "material", {pid}, rates=rates,
                              cycles=n_cycles or None)
        product = found[0] if found else None
    effective: list[StreamTotal] = []
    if layer == "energy" and cfg.energy.effective:
        effective = stream_totals(cfg, frame, window, "material",
                                  {e.stream for e in cfg.energy.effective}, rates=rates,
                                  cycles=n_cycles or None)
    enthalpy = effective_enthalpy(cfg, frame, window, rates) if layer == "energy" else {}
    return BalanceResult(layer, unit, window[0], window[1], limit, nodes, overall, totals,
                         verdict, msg, product, effective, enthalpy)


def effective_enthalpy(cfg: Config, frame: pd.DataFrame, window: tuple[int, int],
                       rates: pd.DataFrame | None) -> dict[str, tuple[float, str]]:
    """Per ``energy.effective`` stream, its enthalpy gain [kJ/kg] over ``window``: saturated
    steam at the mean of the metered pressure's good minutes (IAPWS-IF97; a gauge reading plus
    101.325 kPa) less the feed water's enthalpy; the design point when the pressure has no good
    reading in the window (said so)."""
    from cpaudit.analyzer.energy import saturated_steam_kj_kg
    from cpaudit.analyzer.totals import MINUTE, minute_rates
    from cpaudit.config.units import factor
    out: dict[str, tuple[float, str]] = {}
    index = cfg.tag_index()
    for e in cfg.energy.effective:
        if e.pressure_tag is None:
            assert e.kj_per_kg is not None
            out[e.stream] = (e.kj_per_kg, f"design point {e.kj_per_kg:g} kJ/kg ({e.source})")
            continue
        src = rates if rates is not None and len(rates) and \
            (rates["tag"] == e.pressure_tag).any() else minute_rates(frame, [e.pressure_tag])
        rows = src[(src["tag"] == e.pressure_tag) & (src["bucket"] >= window[0] // MINUTE * MINUTE)
                   & (src["bucket"] < window[1]) & (src["good"] > 0)]
        if not len(rows):
            if e.kj_per_kg is not None:
                out[e.stream] = (e.kj_per_kg, f"design point {e.kj_per_kg:g} kJ/kg: "
                                 f"{e.pressure_tag} has no good reading in the window")
            else:
                out[e.stream] = (float("nan"), f"{e.pressure_tag} has no good reading")
            continue
        p = float(rows["vsum"].sum() / rows["good"].sum()) * factor(
            index[e.pressure_tag].unit, "MPa")
        p_abs = p + 0.101325 if e.pressure_basis == "gauge" else p
        assert e.feed_kj_per_kg is not None
        h = saturated_steam_kj_kg(p_abs)
        out[e.stream] = (h - e.feed_kj_per_kg, f"saturated steam at {p_abs:.4f} MPa abs (mean of "
                         f"{e.pressure_tag}, {e.pressure_basis}) {h:.1f} kJ/kg (IAPWS-IF97) less "
                         f"feed water {e.feed_kj_per_kg:g} kJ/kg")
    return out
