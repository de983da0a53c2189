"""The whole analysis of a campaign in one document: what ``cpaudit analyze --json``, the web
API and the exports share, and the library call for a notebook::

    from analyzer.report import campaign_report
    doc = campaign_report(cfg, store)            # validity, balances, reconciliation, diagrams
"""
from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from analyzer.indicators import energy_summary, water_indicators
from analyzer.material import component_balance, losses, per_raw_material, utilisation
from analyzer.pollutant import pollutant_from_store
from analyzer.recon_layer import reconcile_balance
from analyzer.sankey import sankey
from analyzer.storeframe import balances_from_store
from analyzer.validity import from_store
from config import Config


def _iso(ns: int | None, tz: str) -> str | None:
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, ZoneInfo(tz)).isoformat(timespec="seconds")


def campaign_report(cfg: Config, store: Any, start: int | None = None, end: int | None = None,
                    validity: bool = True, alpha: float = 0.05) -> dict[str, Any]:
    """Validity (7.3.3.3), the four balances (7.3.4-7.3.7) with the loss table, utilisation,
    component balances and indicators, the reconciliation of the material and water layers, and
    Sankey data per layer. [start, end] in ns; None = the whole campaign."""
    tz = cfg.campaign.timezone
    doc: dict[str, Any] = {"campaign": cfg.campaign.name, "site": cfg.campaign.site,
                           "audit_focus": cfg.campaign.audit_focus,
                           "audit_focus_zh": cfg.campaign.audit_focus_zh, "timezone": tz}
    if validity:
        doc["validity"] = from_store(cfg, store, start,
                                     None if end is None else end + 1).to_dict()
    from analyzer.cycles import campaign_end
    if end is None:          # a campaign stopped by hand ends there
        end = campaign_end(store)
    layers = balances_from_store(cfg, store, start, end)
    mat = layers["material"]
    comps = [component_balance(cfg, mat, c) for c in cfg.components]
    # the pollutant factors over the material balance's window, so that all balances agree
    p_start = mat.start_ns if mat.start_ns is not None else start
    p_end = mat.end_ns if mat.end_ns is not None else (None if end is None else end + 1)
    pol = pollutant_from_store(cfg, store, p_start, p_end)
    balances: dict[str, Any] = {
        "material": {**mat.to_dict(), "losses": losses(cfg, mat),
                     "utilisation": utilisation(cfg, mat, comps),
                     "raw_materials": per_raw_material(cfg, mat, comps),
                     "components": [c.to_dict() for c in comps]},
        "water": {**layers["water"].to_dict(),
                  "indicators": water_indicators(cfg, layers["water"], mat)},
        "energy": {**layers["energy"].to_dict(),
                   "summary": energy_summary(cfg, layers["energy"], mat)},
        "pollutant": pol.to_dict(),
    }
    for v in balances.values():
        v["start"], v["end"] = _iso(v.get("start_ns"), tz), _iso(v.get("end_ns"), tz)
    doc["balances"] = balances
    doc["reconciliation"] = {
        "material": reconcile_balance(cfg, mat, alpha),
        "water": reconcile_balance(cfg, layers["water"], alpha),
        "note": "the 5 % closure verdict (DB11/T 1156 7.3.4 b) and the statistical tests are "
                "separate: a closure within 5 % can still be statistically inconsistent with "
                "tight meters, and one beyond 5 % can be within the noise of loose ones",
    }
    doc["sankey"] = {layer: sankey(cfg, res) for layer, res in layers.items()}
    return doc
