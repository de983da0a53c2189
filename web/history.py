"""Closure over time, as the analyzer signs it: ``GET /api/v1/closure-series``.

A closure taken in the middle of a brew is meaningless (the vessels hold material), so for a
batch process the history is one balance per *completed* production cycle (from one cycle start to
the next, :func:`analyzer.cycles.cycle_starts`), taken by :func:`analyzer.iotools.cycle_balances`
exactly as the validity report takes them; for a continuous process it is one balance per trailing
window of ``trailing_h`` hours ending every ``step``. Each point is a whole
:func:`analyzer.balance.layer_balance`: its verdict per node is the one a report over that window
would print. Nothing is interpolated between points; a node the balance cannot judge (a stream
missing, no input) is null at that point.

?layer=material|water|energy&trailing_h=8 (continuous only)&points=24 (most recent windows)
"""
from __future__ import annotations

from typing import Any

import numpy as np
from flask import Blueprint, Flask, request

from cpaudit.config import Config
from cpaudit.store.base import CampaignReader
from cpaudit.store.keys import end_after
from cpaudit.web.app import APIError, get_config, get_store

bp = Blueprint("history", __name__, url_prefix="/api/v1")

HOUR = 3_600_000_000_000
MAX_POINTS = 200


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:      # "²".isdigit() is True
        raise APIError(400, f"{name}: expected an integer between {lo} and {hi}, got {raw[:40]!r}")
    v = int(raw)
    if not lo <= v <= hi:
        raise APIError(400, f"{name}: between {lo} and {hi}")
    return v


def completed_cycles(cfg: Config, store: CampaignReader, start: int, end: int
                     ) -> list[tuple[int, int]]:
    """The completed cycles [start, end) [ns] of a batch campaign inside [start, end): from one
    cycle start to the next (a cycle still running has no end yet and is left out)."""
    from cpaudit.analyzer.cycles import cycle_starts
    spec = cfg.requirements.cycles
    assert spec is not None
    frame = store.transitions(spec.tag, start, end) if spec.tag else None
    starts = cycle_starts(frame, spec)
    starts = starts[(starts >= start) & (starts < end)]
    return [(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]


def trailing_windows(start: int, end: int, hours: int, points: int) -> list[tuple[int, int]]:
    """Windows of ``hours`` [h] ending at ``end`` and every step before it (about ``points``
    windows over the campaign, a step at least a tenth of the window), the first one starting
    at or after ``start``."""
    width = hours * HOUR
    if end - start < width:
        return [(start, end)] if end > start else []
    step = max(width // 10, -(-(end - start - width) // max(1, points - 1)))
    ends = np.arange(end, start + width - 1, -step, dtype=np.int64)[::-1]
    return [(int(e) - width, int(e)) for e in ends]


def closure_series(cfg: Config, store: CampaignReader, layer: str, trailing_h: int, points: int
                   ) -> dict[str, Any]:
    from cpaudit.analyzer.balance import layer_balance
    from cpaudit.analyzer.cycles import effective_config
    from cpaudit.analyzer.iotools import cycle_balances, thin_frame
    from cpaudit.analyzer.totals import balance_tags
    from cpaudit.store.memo import MemoStore
    from cpaudit.web.series import _span
    store = MemoStore(store)
    cfg = effective_config(cfg, store.cycle_marks())
    start, end = _span(store, None, store.campaign_end())
    limit = cfg.requirements.closure_limit_pct
    batch = cfg.requirements.mode == "batch" and cfg.requirements.cycles is not None
    if batch:
        windows = completed_cycles(cfg, store, start, end)[-points:]
        rows = cycle_balances(cfg, store, windows, layer)
        basis = "cycle"
    else:
        windows = trailing_windows(start, end, trailing_h, points)
        rows = []
        if windows:
            tags = balance_tags(cfg, rates=False)
            frame = thin_frame(store, tags, windows[0][0], end_after(windows[-1][1]),
                               [x for w in windows for x in w])
            for a, b in windows:
                res = layer_balance(cfg, frame, layer, a, b, None)
                rows.append({"start_ns": res.start_ns, "end_ns": res.end_ns,
                             "cycle_start_ns": a, "cycle_end_ns": b, "verdict": res.verdict,
                             "nodes": {n.node: n.closure_pct for n in res.nodes},
                             "overall": res.overall.closure_pct if res.overall else None})
        basis = "trailing"
    names = {n.id: (n.name, n.name_zh) for n in cfg.flowsheet.nodes}
    judged: dict[str, dict[str, Any]] = {}

    def put(node: str, i: int, v: float | None) -> None:
        if node not in judged:
            en, zh = names.get(node, (node, node))
            judged[node] = {"name": en, "name_zh": zh, "closure_pct": [None] * len(rows)}
        judged[node]["closure_pct"][i] = None if v is None or not np.isfinite(v) else float(v)
    for i, r in enumerate(rows):
        for node, v in r["nodes"].items():
            put(node, i, v)
        put("overall", i, r["overall"])
    for n in judged.values():
        vals = [v for v in n["closure_pct"] if v is not None]
        n["ok"] = [None if v is None else bool(abs(v) <= limit) for v in n["closure_pct"]]
        n["fails"] = sum(1 for v in vals if abs(v) > limit)
        n["max_abs_pct"] = max((abs(v) for v in vals), default=None)
    if "overall" in judged:
        judged["overall"].update(name=cfg.campaign.audit_focus or "overall",
                                 name_zh=cfg.campaign.audit_focus_zh or "总体")
    return {"layer": layer, "basis": basis, "limit_pct": limit,
            "trailing_h": None if batch else trailing_h,
            "windows": [{"start_ns": r["start_ns"], "end_ns": r["end_ns"],
                         "verdict": r["verdict"]} for r in rows],
            "t_ms": [None if r["end_ns"] is None else r["end_ns"] // 1_000_000 for r in rows],
            "nodes": judged}


@bp.get("/closure-series")
def closure_series_view():  # type: ignore[no-untyped-def]
    """Closure per node and overall per completed cycle (batch) or per trailing window
    (continuous), each point a whole balance of the analyzer."""
    from cpaudit.web.api import _cached_json
    cfg = get_config()
    layer = request.args.get("layer", "material")
    if layer not in ("material", "water", "energy"):
        raise APIError(400, "layer: one of material, water, energy")
    trailing = _int_arg("trailing_h", 8, 1, 168)
    points = _int_arg("points", 48, 1, MAX_POINTS)
    # a new cycle ends every few hours: recomputed at most once a minute on a live campaign
    return _cached_json("closure-series", (layer, trailing, points),
                        lambda: closure_series(cfg, get_store(), layer, trailing, points),
                        max_age_s=60)


@bp.get("/diagram.svg")
def diagram_svg():  # type: ignore[no-untyped-def]
    """The balance diagram of the live report (?layer=material|water|energy&lang=en|zh): the
    figures of ``/report?validity=0``, taken from its memo instead of balancing the campaign
    again (``/sankey.svg`` balances the request's window, seconds on a long campaign)."""
    from flask import Response

    from cpaudit.analyzer.sankey import svg
    from cpaudit.web.api import _report
    layer = request.args.get("layer", "material")
    lang = request.args.get("lang", "en")
    if layer not in ("material", "water", "energy"):
        raise APIError(400, "layer: one of material, water, energy")
    if lang not in ("en", "zh"):
        raise APIError(400, "lang: en or zh")
    if set(request.args) - {"layer", "lang"}:
        raise APIError(400, "diagram.svg takes layer and lang only (a window: /sankey.svg)")
    data = _report(with_validity=False)["sankey"].get(layer)
    if data is None:
        raise APIError(404, f"no {layer} diagram in the report")
    return Response(svg(data, lang=lang), mimetype="image/svg+xml")


def register(app: Flask) -> None:
    app.register_blueprint(bp)
