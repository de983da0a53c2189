"""JSON API, version 1. Every figure the pages show comes from here.

GET /api/v1/campaign   campaign name, start, elapsed, samples, devices online
GET /api/v1/balance    material balance per node and overall (?from=&to=, ISO 8601 or ns)
GET /api/v1/devices    per-device state from the collector's health samples
GET /api/v1/balances   the four balances (material with losses, utilisation and components; water
                       and energy with their indicators; pollutant factors) (?from=&to=)
GET /api/v1/report     validity, balances, reconciliation (material, water) and Sankey data in
                       one document, as ``cpaudit analyze --json`` prints it (?from=&to=&alpha=)
GET /api/v1/export.xlsx  the report's tables, one sheet each, units in the headers (?from=&to=)
GET /api/v1/sankey.svg   a layer's balance diagram (?layer=material|water|energy&node=&lang=en|zh)
GET /api/v1/validity   the campaign's validity (DB11/T 1156 7.3.3.3): checks, verdict, fixes,
                       progress, best window, hints (?from=&to=); live: only the newest minutes
                       are read again between calls
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, request

from analyzer.storeframe import material_balance_from_store
from analyzer.validity import LiveValidity
from web.app import APIError, get_config, get_store

bp = Blueprint("api", __name__, url_prefix="/api/v1")

HEALTH = "_health."


def _time_param(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        t = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise APIError(400, f"{name}: expected ISO 8601 time or integer ns, got {raw!r}") from None
    if t.tzinfo is None:
        raise APIError(400, f"{name}: give a time zone offset, e.g. {raw}+08:00")
    return int(t.timestamp() * 1e9)


def _window() -> tuple[int | None, int | None]:
    """The ``from``/``to`` parameters of a request, checked."""
    start, end = _time_param("from"), _time_param("to")
    if start is not None and end is not None and end <= start:
        raise APIError(400, "to must be after from")
    return start, end


def _iso(ns: int | None, tz: str) -> str | None:
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, ZoneInfo(tz)).isoformat(timespec="seconds")


def devices_state() -> list[dict[str, Any]]:
    cfg = get_config()
    st = get_store()
    last = st.last([f"{HEALTH}{d.name}.{k}" for d in cfg.devices
                    for k in ("online", "latency_ms", "consecutive_failures", "backoff_s")])
    tags, values, stamps = last["tag"].tolist(), last["value"].tolist(), last["ts"].tolist()
    vals: dict[tuple[str, str], Any] = {(t, "v"): v for t, v in zip(tags, values)}
    vals |= {(t, "ts"): ts for t, ts in zip(tags, stamps)}
    now = time.time_ns()
    out = []
    for d in cfg.devices:
        p = f"{HEALTH}{d.name}."
        ts = vals.get((p + "online", "ts"))
        interval = (d.interval_s or cfg.collector.interval_s) * 1e9
        fresh = ts is not None and now - ts <= 3 * interval + 2e9
        online = bool(fresh and vals.get((p + "online", "v")) == 1.0)
        state = "online" if online else ("offline" if ts is not None else "unknown")
        if ts is not None and not fresh:
            state = "stale"
        out.append({
            "name": d.name, "model": d.model, "state": state, "online": online,
            "last_ts": int(ts) if ts is not None else None,
            "latency_ms": vals.get((p + "latency_ms", "v")),
            "consecutive_failures": vals.get((p + "consecutive_failures", "v")),
            "backoff_s": vals.get((p + "backoff_s", "v")),
        })
    return out


@bp.get("/campaign")
def campaign():  # type: ignore[no-untyped-def]
    cfg = get_config()
    st = get_store()
    stats = st.stats()
    start_meta = st.get_meta("campaign_start")
    start = int(start_meta) if start_meta else stats["first_ts"]
    devs = devices_state()
    now = time.time_ns()
    return jsonify({
        "name": cfg.campaign.name, "site": cfg.campaign.site,
        "audit_focus": cfg.campaign.audit_focus, "audit_focus_zh": cfg.campaign.audit_focus_zh,
        "timezone": cfg.campaign.timezone, "mode": cfg.requirements.mode,
        "required_hours": cfg.requirements.min_hours,
        "start_ns": start, "start": _iso(start, cfg.campaign.timezone),
        "last_ts": stats["last_ts"], "last": _iso(stats["last_ts"], cfg.campaign.timezone),
        "elapsed_s": (now - start) / 1e9 if start else 0.0,
        "samples": stats["samples"],
        "devices_online": sum(1 for d in devs if d["online"]), "devices_total": len(devs),
    })


@bp.get("/devices")
def devices():  # type: ignore[no-untyped-def]
    return jsonify({"devices": devices_state()})


@bp.get("/balance")
def balance():  # type: ignore[no-untyped-def]
    cfg = get_config()
    start, end = _window()
    st = get_store()
    cache = current_app.extensions["cpaudit_cache"]
    # new data = a new write sequence; MAX(seq) is an index lookup, stats() a full scan
    key = ("balance", start, end, st.max_seq())
    if key not in cache:
        result = material_balance_from_store(cfg, st, start, end).to_dict()
        result["start"] = _iso(result["start_ns"], cfg.campaign.timezone)
        result["end"] = _iso(result["end_ns"], cfg.campaign.timezone)
        cache.clear()
        cache[key] = result
    return jsonify(cache[key])


@bp.get("/validity")
def validity():  # type: ignore[no-untyped-def]
    cfg = get_config()
    start, end = _window()
    ext = current_app.extensions
    with ext["cpaudit_lock"]:
        live = ext.setdefault("cpaudit_validity", LiveValidity(cfg))
        out = live.report(get_store(), start, end).to_dict()
    tz = cfg.campaign.timezone
    out["start"], out["end"] = _iso(out["start_ns"], tz), _iso(out["end_ns"], tz)
    return jsonify(out)


def _report(with_validity: bool = False) -> dict[str, Any]:
    """The campaign report for the request's window, cached until new data arrive."""
    from analyzer.report import campaign_report
    cfg = get_config()
    start, end = _window()
    raw_alpha = request.args.get("alpha", "0.05")
    try:
        alpha = float(raw_alpha)
    except ValueError:
        raise APIError(400, f"alpha: expected a number, got {raw_alpha!r}") from None
    if not 0 < alpha < 1:
        raise APIError(400, "alpha must be between 0 and 1")
    st = get_store()
    cache = current_app.extensions["cpaudit_cache"]
    key = ("report", start, end, alpha, with_validity, st.max_seq())
    if key not in cache:
        doc = campaign_report(cfg, st, start, end, validity=with_validity, alpha=alpha)
        for k in [k for k in cache if k[0] == "report"]:
            del cache[k]
        cache[key] = doc
    return dict(cache[key])


@bp.get("/balances")
def balances():  # type: ignore[no-untyped-def]
    return jsonify(_report()["balances"])


@bp.get("/report")
def report():  # type: ignore[no-untyped-def]
    return jsonify(_report(with_validity=True))


@bp.get("/export.xlsx")
def export_xlsx():  # type: ignore[no-untyped-def]
    import io

    from flask import send_file

    from analyzer.export import write_xlsx
    doc = _report(with_validity=True)
    buf = io.BytesIO()
    write_xlsx(doc, buf)
    buf.seek(0)
    name = "".join(c if c.isalnum() else "-" for c in get_config().campaign.name).strip("-")
    return send_file(buf, as_attachment=True, download_name=f"{name or 'campaign'}.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.get("/sankey.svg")
def sankey_svg():  # type: ignore[no-untyped-def]
    from flask import Response

    from analyzer.sankey import sankey, svg
    from analyzer.storeframe import balances_from_store
    layer = request.args.get("layer", "material")
    lang = request.args.get("lang", "en")
    node = request.args.get("node") or None
    if layer not in ("material", "water", "energy"):
        raise APIError(400, "layer: one of material, water, energy")
    if lang not in ("en", "zh"):
        raise APIError(400, "lang: en or zh")
    cfg = get_config()
    if node is not None and node not in {n.id for n in cfg.flowsheet.nodes}:
        raise APIError(400, f"node: unknown node {node!r}")
    start, end = _window()
    res = balances_from_store(cfg, get_store(), start, end, (layer,))[layer]
    return Response(svg(sankey(cfg, res, node), lang=lang), mimetype="image/svg+xml")
