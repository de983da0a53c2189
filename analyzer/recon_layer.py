"""Reconciliation of one balance layer (material in kg, water in t) over its window.

Every stream of the layer enters :func:`analyzer.reconcile.reconcile` with a standard deviation
σ [the layer's unit], by the rule ``reconciliation.sigma_rule`` (config/models.py
``ReconciliationSettings``; printed in the result):

- a metered stream (totalizer): its tag's accuracy class ±a % read as σ = a/√3 (``rectangular``,
  GUM 4.3.7) or a/2 (``tolerance_2sigma``, the reconciliation convention of a 2σ tolerance);
  a class not declared is taken as ``DEFAULT_ACCURACY_PCT`` and said so;
- a volume meter whose amount becomes mass (or water) through a declared density ρ: the
  density's own ±u_ρ % (``density_uncertainty_pct`` on the stream, else the default) read by the
  same rule and combined in quadrature, σ_rel = √(σ_meter,rel² + σ_ρ,rel²) (GUM 5.1.6, a
  product of independent inputs);
- a theoretical (design) or manual amount without a tag: a measurement of its declared value
  with its ±``uncertainty_pct`` (else ``theoretical_uncertainty_pct``), so its node keeps its
  balance instead of losing it to an unmeasured stream;
- a stream with no total over the window: unmeasured; in the water layer a use point's water
  leaves unmetered as an unmeasured stream to the boundary.

Pure: takes the configuration and the balance result, returns the reconciliation's JSON form.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from cpaudit.analyzer.balance import BalanceResult
from cpaudit.analyzer.reconcile import SIGMA_RULES, StreamData, reconcile, sigma_from_accuracy
from cpaudit.analyzer.totals import layer_streams
from cpaudit.config import ENV, Config
from cpaudit.config.units import dimension

DEFAULT_ACCURACY_PCT = 2.0   # a meter without a declared class is taken as this [%], and said so


def reconcile_balance(cfg: Config, result: BalanceResult, alpha: float = 0.05
                      ) -> dict[str, Any] | None:
    """Reconcile the layer's stream totals over its window (module docstring for the σ of each
    kind of stream). None when there is no window."""
    if result.start_ns is None:
        return None
    rs = cfg.reconciliation
    rule = rs.sigma_rule
    index = cfg.tag_index()
    by_id = {t.stream: t for t in result.streams}
    data: list[StreamData] = []
    assumed: list[str] = []
    theoretical: list[dict[str, Any]] = []
    densities: list[dict[str, Any]] = []
    for s in layer_streams(cfg, result.layer):
        t = by_id[s.id]
        if t.method == "theoretical" and np.isfinite(t.value) and t.value >= 0:
            u = s.uncertainty_pct or rs.theoretical_uncertainty_pct
            src = (s.uncertainty_source or "declared on the stream") if s.uncertainty_pct \
                else rs.theoretical_uncertainty_source
            sigma = max(sigma_from_accuracy(t.value, u, rule), 1e-9)
            theoretical.append({"stream": s.id, "value": t.value, "uncertainty_pct": u,
                                "sigma": sigma, "source": src, "value_source": s.source})
            data.append(StreamData(s.id, s.from_, s.to, t.value, sigma))
            continue
        if t.method != "totalizer" or not np.isfinite(t.value):
            data.append(StreamData(s.id, s.from_, s.to, None, None))
            continue
        acc = index[s.tag].accuracy_pct if s.tag else None
        if acc is None:
            acc = DEFAULT_ACCURACY_PCT
            assumed.append(s.id)
        rel = sigma_from_accuracy(1.0, acc, rule)
        if s.density_kg_m3 and _is_volume(t.unit):
            ud = (s.density_uncertainty_pct if s.density_uncertainty_pct is not None
                  else rs.density_uncertainty_pct)
            rel_d = sigma_from_accuracy(1.0, ud, rule)
            densities.append({"stream": s.id, "density_kg_m3": s.density_kg_m3,
                              "uncertainty_pct": ud, "meter_sigma_pct": 100 * rel,
                              "sigma_pct": 100 * float(np.hypot(rel, rel_d)),
                              "source": "declared on the stream"
                              if s.density_uncertainty_pct is not None
                              else rs.density_uncertainty_source})
            rel = float(np.hypot(rel, rel_d))
        sigma = max(abs(t.value) * rel, 1e-9)
        data.append(StreamData(s.id, s.from_, s.to, t.value, sigma))
    if result.layer in ("water", "energy"):
        # a use point's water or energy leaves unmetered: an unmeasured stream to the boundary
        for n in result.nodes:
            if not n.outputs:
                data.append(StreamData(f"{n.node}:use", n.node, ENV, None, None))
    out = reconcile(data, alpha=alpha, nonnegative=rs.nonnegative,
                    detectability_min=rs.detectability_min).to_dict()
    out["unit"] = result.unit
    out["sigma_rule"] = SIGMA_RULES[rule][0]
    out["settings"] = {"sigma_rule": rule, "alpha": alpha,
                       "theoretical_uncertainty_pct": rs.theoretical_uncertainty_pct,
                       "density_uncertainty_pct": rs.density_uncertainty_pct,
                       "detectability_min": rs.detectability_min,
                       "nonnegative": rs.nonnegative}
    out["theoretical"] = theoretical
    out["density"] = densities
    out["accuracy_assumed"] = {"streams": assumed, "accuracy_pct": DEFAULT_ACCURACY_PCT}
    return out


def _is_volume(unit: str) -> bool:
    try:
        return dimension(unit) == "volume"
    except ValueError:
        return False
