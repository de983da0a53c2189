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
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, request

from cpaudit.analyzer.iotools import LiveValidity
from cpaudit.store.keys import HEALTH_PREFIX as HEALTH
from cpaudit.store.keys import FUTURE_SLACK_NS, MINUTE
from cpaudit.web.app import (CUSTOM_RUNNING, CUSTOM_WAITING, APIError, edge_store, get_config, get_store,
                     presented_token)
from cpaudit.web.params import parse_int, parse_time

bp = Blueprint("api", __name__, url_prefix="/api/v1")

def _time_param(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    return parse_time(name, raw)


def _window() -> tuple[int | None, int | None]:
    """The ``from``/``to`` parameters of a request, checked, and clipped to the data (from the
    campaign's start, or its first minute if later, to its last reading; one minute of slack):
    what a request costs is bounded by the data, not by its parameters (``from=0`` is 1970)."""
    start, end = _time_param("from"), _time_param("to")
    if start is not None and end is not None and end <= start:
        raise APIError(400, "to must be after from")
    if start is None and end is None:
        return start, end
    st = get_store()
    firsts = [x for x in (st.campaign_start(), st.first_minute()) if x is not None]
    last = st.quick_stats()["last_ts"]
    if not firsts or last is None:                 # no data at all: an empty minute
        start = start if start is not None else end - MINUTE  # type: ignore[operator]
        return start, start + MINUTE
    lo, hi = max(firsts), max(last, max(firsts)) + MINUTE
    if start is not None and start < lo - MINUTE:
        start = lo
    if end is not None and end > hi + MINUTE:
        end = hi
    if start is not None and start >= hi:          # after the data: an empty minute
        start, end = hi, hi + MINUTE
    elif end is not None and end <= lo:            # before it: the same
        start, end = lo - MINUTE, lo
    return start, end


def _custom_window() -> bool:
    """The request asks for a window of its own (``from`` or ``to``), not the live campaign."""
    return bool(request.args.get("from") or request.args.get("to"))


CUSTOM_KEPT = 16        # custom-window results kept (least recently computed dropped first)


def _memo(kind: str, key: tuple[Any, ...], compute: Any, per_second: bool = False,
          max_age_s: int = 0) -> Any:
    """A result computed once per write sequence (``MAX(seq)``, an index lookup: new data, new
    result) and, with ``per_second``, at most once a second (for what depends on the clock, e.g. a
    device going stale), then served to every client meanwhile. With ``max_age_s`` (a balance over
    an open window: seconds to compute on a long campaign that gets new data every second) it is
    recomputed at most that often.

    The live documents (no ``from``/``to``): one computation at a time per kind, so that twenty
    clients arriving together wait for one result (the first time) or get the previous one
    meanwhile (later: a live page never waits for a recomputation); one entry per kind is kept. A custom window
    is computed outside that lock, in one of :data:`web.app.CUSTOM_RUNNING` slots (a slow one
    never holds up the live poll); more than :data:`web.app.CUSTOM_WAITING` waiting get 503."""
    ext = current_app.extensions
    if max_age_s:     # an open window on a live site: recomputed every max_age_s at most
        full = (kind, *key, int(time.time() // max_age_s))
    else:
        full = (kind, *key, get_store().max_seq(), int(time.time()) if per_second else 0)
    if _custom_window():
        return _custom(full, compute)
    cache = ext["cpaudit_cache"]
    value = cache.get(full)
    if value is None:
        with ext["cpaudit_lock"]:
            lock = ext.setdefault("cpaudit_locks", {}).setdefault(kind, threading.Lock())
            last = ext.setdefault("cpaudit_last", {}).get((kind, *key))
        # while one client recomputes a live document, the others get the previous one (at most
        # one computation old) instead of waiting seconds on a long campaign
        if last is not None and not lock.acquire(blocking=False):
            return last
        if last is None:
            lock.acquire()
        try:
            value = cache.get(full)
            if value is None:
                value = compute()
                with ext["cpaudit_lock"]:
                    for k in [k for k in cache if k[0] == kind]:
                        del cache[k]
                    cache[full] = value
                    ext["cpaudit_last"] = {k: v for k, v in ext["cpaudit_last"].items()
                                           if k[0] != kind} | {(kind, *key): value}
        finally:
            lock.release()
    return value


def _custom(full: tuple[Any, ...], compute: Any) -> Any:
    """:func:`_memo` of a custom window: bounded concurrency, a small cache of its own."""
    ext = current_app.extensions
    cache = ext["cpaudit_custom_cache"]
    value = cache.get(full)
    if value is not None:
        return value
    queued = ext["cpaudit_custom_queued"]
    with ext["cpaudit_lock"]:
        if queued[0] >= CUSTOM_WAITING + CUSTOM_RUNNING:
            raise APIError(503, "busy with other custom windows: try again in a minute (the "
                                "live campaign is served meanwhile)")
        queued[0] += 1
    try:
        if not ext["cpaudit_custom"].acquire(timeout=120):
            raise APIError(503, "busy with other custom windows: try again in a minute")
        try:
            value = cache.get(full)
            if value is None:
                value = compute()
                with ext["cpaudit_lock"]:
                    cache[full] = value
                    while len(cache) > CUSTOM_KEPT:
                        del cache[next(iter(cache))]
            return value
        finally:
            ext["cpaudit_custom"].release()
    finally:
        with ext["cpaudit_lock"]:
            queued[0] -= 1


def _cached_json(kind: str, key: tuple[Any, ...], compute: Any, per_second: bool = False,
                 max_age_s: int = 0) -> Any:
    """:func:`_memo` of a JSON document, serialised once."""
    from flask import Response
    body = _memo(kind, key, lambda: current_app.json.dumps(compute()).encode(), per_second,
                 max_age_s)
    return Response(body, mimetype="application/json")


def _iso(ns: int | None, tz: str) -> str | None:
    if ns is None:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, ZoneInfo(tz)).isoformat(timespec="seconds")


def _value_tag(d: Any) -> str | None:
    """The tag a device's row shows as its last value: its first total, else its first rate,
    else its first tag."""
    from cpaudit.config.models import TAG_DEVICES
    tags = ([(t.tag, t.kind.value) for t in d.tags] if isinstance(d, TAG_DEVICES) else
            [(r.tag, r.kind.value) for r in d.registers if r.type.value != "string"]
            + [(c.tag, c.kind.value) for c in d.computed])
    for want in ("total", "rate"):
        for t, k in tags:
            if k == want:
                return t
    return tags[0][0] if tags else None


def devices_state() -> list[dict[str, Any]]:
    cfg = get_config()
    st = get_store()
    keys = ("online", "latency_ms", "lateness_ms", "consecutive_failures", "backoff_s", "polls",
            "good_polls", "received", "malformed")
    shown = {d.name: _value_tag(d) for d in cfg.devices}
    last = st.last([f"{HEALTH}{d.name}.{k}" for d in cfg.devices for k in keys]
                   + [t for t in shown.values() if t])
    tags, values, stamps = last["tag"].tolist(), last["value"].tolist(), last["ts"].tolist()
    vals: dict[tuple[str, str], Any] = {(t, "v"): v for t, v in zip(tags, values)}
    vals |= {(t, "ts"): ts for t, ts in zip(tags, stamps)}
    vals |= {(t, "q"): q for t, q in zip(tags, last["quality"].tolist())}
    index = cfg.tag_index()
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
        polls, good = vals.get((p + "polls", "v")), vals.get((p + "good_polls", "v"))
        vt = shown[d.name]
        out.append({
            "name": d.name, "model": d.model, "protocol": d.protocol, "state": state,
            "online": online, "last_ts": int(ts) if ts is not None else None,
            "latency_ms": vals.get((p + "latency_ms", "v")),
            "lateness_ms": vals.get((p + "lateness_ms", "v")),
            "success_rate": good / polls if polls and good is not None else None,
            "consecutive_failures": vals.get((p + "consecutive_failures", "v")),
            "backoff_s": vals.get((p + "backoff_s", "v")),
            "received": vals.get((p + "received", "v")),
            "malformed": vals.get((p + "malformed", "v")),
            "value_tag": vt, "value": vals.get((vt, "v")) if vt else None,
            "value_unit": index[vt].unit if vt in index else None,
            "value_good": vals.get((vt, "q")) == 0 if vt else None,
        })
    return out


def sinks_state() -> list[dict[str, Any]]:
    cfg = get_config()
    keys = ("backlog", "errors", "forwarded", "since_last_forward_s", "undeliverable")
    last = get_store().last([f"{HEALTH}sink.{s.name}.{k}" for s in cfg.sinks for k in keys])
    v = dict(zip(last["tag"].tolist(), last["value"].tolist()))
    return [{"name": s.name, "kind": s.kind,
             **{k: v.get(f"{HEALTH}sink.{s.name}.{k}") for k in keys}} for s in cfg.sinks]


def store_state() -> dict[str, Any]:
    """The collector's own store, from its health samples: writing or refusing (a full disk),
    readings waiting in memory, failed writes, readings not kept beyond the memory bound."""
    p = f"{HEALTH}collector."
    keys = {"ok": "store_ok", "pending_rows": "store_pending_rows",
            "write_errors": "store_write_errors", "lost_rows": "lost_rows"}
    last = get_store().last([p + k for k in keys.values()])
    v = dict(zip(last["tag"].tolist(), last["value"].tolist()))
    return {k: v.get(p + tag) for k, tag in keys.items()}


@bp.get("/campaign")
def campaign():  # type: ignore[no-untyped-def]
    return _cached_json("campaign", (), _campaign_doc, per_second=True)


def _campaign_doc() -> dict[str, Any]:
    cfg = get_config()
    st = get_store()
    stats = st.quick_stats()          # index lookups: a full scan takes seconds on 80 h
    start = st.campaign_start()
    devs = devices_state()
    now = time.time_ns()
    stop = st.campaign_end()
    last = stats["last_ts"] or now
    upto = min(last, stop) if stop else last     # a stopped campaign stops ageing
    return {
        "name": cfg.campaign.name, "site": cfg.campaign.site,
        "audit_focus": cfg.campaign.audit_focus, "audit_focus_zh": cfg.campaign.audit_focus_zh,
        "timezone": cfg.campaign.timezone, "mode": cfg.requirements.mode,
        "required_hours": cfg.requirements.min_hours,
        "start_ns": start, "start": _iso(start, cfg.campaign.timezone),
        "last_ts": stats["last_ts"], "last": _iso(stats["last_ts"], cfg.campaign.timezone),
        # to the newest reading, or to the stop: a finished campaign does not keep ageing
        "elapsed_s": (upto - start) / 1e9 if start else 0.0,
        "end_ns": stop, "end": _iso(stop, cfg.campaign.timezone) if stop else None,
        "samples": stats["samples"],
        "devices_online": sum(1 for d in devs if d["online"]), "devices_total": len(devs),
        "load": {**cfg.requirements.load.model_dump(),
                 "kind": cfg.tag_index()[cfg.requirements.load.tag].kind.value}
        if cfg.requirements.load else None,
        "min_cycles": cfg.requirements.min_cycles,
    }


@bp.get("/devices")
def devices():  # type: ignore[no-untyped-def]
    return _cached_json("devices", (), lambda: {"devices": devices_state(),
                                                "sinks": sinks_state(),
                                                "store": store_state()}, per_second=True)


@bp.get("/balance")
def balance():  # type: ignore[no-untyped-def]
    cfg = get_config()
    start, end = _window()

    window = _window_rule()

    def doc() -> dict[str, Any]:
        from cpaudit.analyzer.iotools import accepted_balances
        # the default window of the whole campaign: the live validity report chooses it (it
        # adds the newest minutes to what it holds instead of judging 80 h again)
        live = _live_validity(start, end) if window is None and start is None and end is None \
            else None
        res, bw = accepted_balances(cfg, get_store(), start, end, ("material",), window, live)
        result = res["material"].to_dict()
        result["start"] = _iso(result["start_ns"], cfg.campaign.timezone)
        result["end"] = _iso(result["end_ns"], cfg.campaign.timezone)
        result["window"] = None if bw is None else {
            k: bw.get(k) for k in ("rule", "unit", "count", "required", "enough", "reason")}
        return result
    # an open window on a live campaign is at most 10 s old; a closed one is exact
    return _cached_json("balance", (start, end, window), doc,
                        max_age_s=10 if end is None else 0)


@bp.get("/validity")
def validity():  # type: ignore[no-untyped-def]
    cfg = get_config()
    start, end = _window()

    def doc() -> dict[str, Any]:
        from cpaudit.analyzer.iotools import validity_from_store
        # a custom window is judged afresh, outside the live report's lock
        rep = _live_validity(start, end) if start is None and end is None else \
            validity_from_store(cfg, get_store(), start, end)
        out = rep.to_dict()
        tz = cfg.campaign.timezone
        out["start"], out["end"] = _iso(out["start_ns"], tz), _iso(out["end_ns"], tz)
        return out   # type: ignore[no-any-return]
    return _cached_json("validity", (start, end), doc)


def _live_validity(start: int | None, end: int | None) -> Any:
    """The app's one live validity report (:class:`LiveValidity`), one caller at a time: the
    validity and the balance documents share it."""
    ext = current_app.extensions
    with ext["cpaudit_lock"]:
        live = ext.setdefault("cpaudit_validity", LiveValidity(get_config()))
        lock = ext.setdefault("cpaudit_live_lock", threading.Lock())
    with lock:
        return live.report(get_store(), start, end)


def _window_rule() -> str | None:
    """``?window=best_valid|campaign``: the balance window (default: the campaign file's
    ``requirements.balance_window``)."""
    from cpaudit.analyzer.window import RULES
    w = request.args.get("window") or None
    if w is not None and w not in RULES:
        raise APIError(400, f"window: one of {', '.join(RULES)}")
    return w


def _report(with_validity: bool = False) -> dict[str, Any]:
    """The campaign report for the request's window (:func:`_memo`)."""
    from cpaudit.analyzer.iotools import campaign_report
    cfg = get_config()
    start, end = _window()
    raw_alpha = request.args.get("alpha", "0.05")
    try:
        alpha = float(raw_alpha)
    except ValueError:
        raise APIError(400, f"alpha: expected a number, got {raw_alpha!r}") from None
    if not 0 < alpha < 1:
        raise APIError(400, "alpha must be between 0 and 1")
    # an open window on a live campaign: at most 15 s old (seconds to compute on a long one)
    window = _window_rule()
    doc = _memo("report", (start, end, alpha, with_validity, window),
                lambda: campaign_report(cfg, get_store(), start, end, validity=with_validity,
                                        alpha=alpha, window=window),
                max_age_s=15 if end is None else 0)
    return dict(doc)


@bp.get("/balances")
def balances():  # type: ignore[no-untyped-def]
    return jsonify(_report()["balances"])


@bp.get("/report")
def report():  # type: ignore[no-untyped-def]
    return jsonify(_report(with_validity=request.args.get("validity", "1") != "0"))


@bp.get("/export.xlsx")
def export_xlsx():  # type: ignore[no-untyped-def]
    import io

    from flask import send_file

    from cpaudit.analyzer.export import xlsx_bytes
    buf = io.BytesIO(xlsx_bytes(_report(with_validity=True)))
    name = "".join(c if c.isalnum() else "-" for c in get_config().campaign.name).strip("-")
    return send_file(buf, as_attachment=True, download_name=f"{name or 'campaign'}.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.get("/tables")
def tables_list():  # type: ignore[no-untyped-def]
    """The names of the report's tables (each one is /export.csv?table=NAME)."""
    from cpaudit.analyzer.export import tables
    return jsonify({"tables": list(tables(_report(with_validity=True)))})


@bp.get("/export.csv")
def export_csv():  # type: ignore[no-untyped-def]
    """One table of the report as CSV (UTF-8 with a BOM, so that Excel shows the Chinese names),
    units in the header."""
    from flask import Response

    from cpaudit.analyzer.export import csv_text, tables
    name = request.args.get("table", "")
    all_tables = tables(_report(with_validity=True))
    if name not in all_tables:
        raise APIError(400, f"table: one of {', '.join(all_tables)}")
    fname = "".join(c if c.isalnum() else "-" for c in name)
    return Response("\ufeff" + csv_text(all_tables[name]), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{fname}.csv"'})


@bp.get("/sankey.svg")
def sankey_svg():  # type: ignore[no-untyped-def]
    from flask import Response

    from cpaudit.analyzer.sankey import sankey, svg
    from cpaudit.analyzer.iotools import accepted_balances
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
    rule = _window_rule()

    def draw() -> str:
        res = accepted_balances(cfg, get_store(), start, end, (layer,), rule)[0][layer]
        return svg(sankey(cfg, res, node), lang=lang)  # type: ignore[no-any-return]
    # a custom window takes one of the bounded slots, as the reports do
    body = _custom(("sankey", layer, node, lang, start, end, rule, get_store().max_seq()),
                   draw) if _custom_window() else draw()
    return Response(body, mimetype="image/svg+xml")


# -- the explorer, the history charts, manual entries ------------------------------------------

MAX_POINTS = 5000


@bp.get("/tags")
def tags():  # type: ignore[no-untyped-def]
    """Every configured tag with its unit, kind and device."""
    cfg = get_config()
    return jsonify({"tags": [{"tag": t.name, "unit": t.unit, "kind": t.kind.value,
                              "device": t.device} for t in cfg.tag_index().values()]})


def _int_param(name: str, default: int, lo: int, hi: int) -> int:
    return parse_int(name, request.args.get(name), default, lo, hi)


@bp.get("/series")
def series():  # type: ignore[no-untyped-def]
    """One tag over [from, to), at most ``points`` buckets: min, mean and max of the good readings
    in each (from the store's per-minute rollup when a bucket spans a minute or more, from the raw
    readings otherwise); a bucket without a good reading is a gap (null), not interpolated."""
    from cpaudit.web.series import downsample
    cfg = get_config()
    tag = request.args.get("tag", "")
    index = cfg.tag_index()
    if tag not in index and not tag.startswith(HEALTH):
        raise APIError(400, f"tag: unknown tag {tag!r}")
    start, end = _window()
    points = _int_param("points", 1000, 10, MAX_POINTS)
    out = downsample(get_store(), tag, start, end, points)
    out["unit"] = index[tag].unit if tag in index else ""
    return jsonify(out)


@bp.get("/closure-history")
def closure_history():  # type: ignore[no-untyped-def]
    """Closure per node over time, cumulative since the start and over a trailing window, from
    the store's per-minute rollup (?layer=material|water|energy&step_min=60&trailing_h=)."""
    from cpaudit.web.series import closure_history as history
    cfg = get_config()
    layer = request.args.get("layer", "material")
    if layer not in ("material", "water", "energy"):
        raise APIError(400, "layer: one of material, water, energy")
    step = _int_param("step_min", 0, 0, 1440)      # 0: about 200 steps over the window
    default_trailing = 3 if cfg.requirements.mode == "batch" else 8
    trailing = _int_param("trailing_h", default_trailing, 1, 168)
    start, end = _window()
    return _cached_json("history", (layer, step, trailing, start, end),
                        lambda: history(cfg, get_store(), layer, start, end, step, trailing))


def _require_token() -> None:
    """State changes need ``Authorization: Bearer <CPAUDIT_TOKEN>``; without a configured token
    they are refused outright."""
    import hmac
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        # another site's page posting with the browser's remembered credentials (CSRF)
        raise APIError(403, "a change sent from another site's page is refused")
    token = current_app.config.get("CPAUDIT_TOKEN")
    if not token:
        raise APIError(403, "changes need an access token: start the server with CPAUDIT_TOKEN")
    got = presented_token() or ""
    if not hmac.compare_digest(got.encode(), token.encode()):
        raise APIError(401, "missing or wrong access token (Authorization: Bearer ...)")




def _body_ts(body: Any) -> int:
    """``ts`` of a JSON body: ISO 8601 with an offset, or ns; now when absent. Not in the future
    (the campaign's records are facts: a start, a stop, a mark or a reading dated 2030 would make
    every later report judge a window that has not happened)."""
    if body is not None and not isinstance(body, dict):
        raise APIError(400, "expected a JSON object, e.g. {\"ts\": \"2026-05-01T08:00+08:00\"}")
    raw_ts = body.get("ts") if isinstance(body, dict) else None
    now = time.time_ns()
    if raw_ts is None:
        return now
    ts = parse_time("ts", raw_ts)
    if ts > now + FUTURE_SLACK_NS:
        raise APIError(400, f"ts: {ts} is in the future (now is {now})")
    return ts


def _changed() -> None:
    """The campaign's definition changed (start, end, cycle marks): every cached document and the
    live validity are recomputed."""
    ext = current_app.extensions
    with ext["cpaudit_lock"]:
        ext["cpaudit_cache"].clear()
        ext["cpaudit_custom_cache"].clear()
        ext.pop("cpaudit_last", None)
        ext.pop("cpaudit_validity", None)


# the changes a campaign's record takes (store.changes): made here on the edge box; asked for
# centrally (CPAUDIT_CHANGE_KEY), where they travel to the edge box
CHANGE_PATHS = {"/api/v1/campaign/start": "start", "/api/v1/campaign/stop": "stop",
                "/api/v1/cycle-mark": "cycle_mark", "/api/v1/manual": "manual",
                "/api/v1/manual/retract": "retract"}


def make_change(kind: str, body: dict[str, Any]) -> Any:
    """Make the change ``kind`` (checked by the configuration already) on the edge box's record
    and answer what it did; centrally, check it against the forwarded records and send it to the
    edge box (202, pending until the box applies it). A refusal is the APIError it names."""
    from cpaudit.store import changes
    tz = get_config().campaign.timezone

    def shown(ns: int) -> str | None:
        return _iso(ns, tz)
    try:
        body = changes.normalized(kind, body)
        st = get_store()
        changes.check(st, kind, body, shown)
        if current_app.extensions["cpaudit_central"]:
            return _ask_edge(st, kind, body)
        with current_app.extensions["cpaudit_lock"]:
            done = changes.commit(edge_store(), kind, body, now=time.time_ns(), fmt=shown)
    except changes.ChangeRefused as e:
        raise APIError(e.status, e.message) from None
    if kind in ("start", "stop", "cycle_mark"):
        _changed()
    return done


def _ask_edge(st: Any, kind: str, body: dict[str, Any]) -> Any:
    """A change asked for centrally: signed with the campaign's key and written beside its data
    in InfluxDB, where the edge box's forwarder reads it (store.changes)."""
    from cpaudit.store.changes import Change
    from cpaudit.store.keys import RECORD_ID
    record = st.get_meta(RECORD_ID)
    if not st.edge_status().get("accepts_changes") or not record:
        raise APIError(409, "this campaign's edge box takes no change from the office (its sink "
                            "names no changes_key_env, or it has not said so yet): make the "
                            "change on the edge box")
    ch = Change.new(_campaign_key(st), st.scope.get("site", ""), st.scope.get("campaign", ""),
                    kind, body, time.time_ns(), _asker(), record,
                    {"start": st.campaign_start(), "end": st.campaign_end()})
    st.write_change(ch)
    return jsonify({"queued": {**ch.as_dict(), "state": "pending"}}), 202


def _campaign_key(st: Any) -> bytes:
    from cpaudit.store.changes import campaign_key
    return campaign_key(str(current_app.config["CPAUDIT_CHANGE_KEY"]).encode(),
                        st.scope.get("site", ""), st.scope.get("campaign", ""))


def _asker() -> str:
    """Who asks: the user name given with the token (HTTP Basic), at the request's address."""
    auth = request.authorization
    user = (auth.username or "") if auth is not None and auth.type == "basic" else ""
    addr = request.remote_addr or ""
    return f"{user[:80]}@{addr}" if user else addr


@bp.post("/campaign/start")
def campaign_start():  # type: ignore[no-untyped-def]
    """Start (or restart) the campaign at ``ts`` (default now): the analyses count from there."""
    _require_token()
    ts = _body_ts(request.get_json(silent=True))
    done = make_change("start", {"ts": ts})
    if not isinstance(done, dict):
        return done
    return jsonify({"campaign_start": ts, "start": _iso(ts, get_config().campaign.timezone)})


@bp.post("/campaign/stop")
def campaign_stop():  # type: ignore[no-untyped-def]
    """Stop the campaign at ``ts`` (default now): the analyses end there; recording goes on, and
    the raw data are kept."""
    _require_token()
    ts = _body_ts(request.get_json(silent=True))
    done = make_change("stop", {"ts": ts})
    if not isinstance(done, dict):
        return done
    return jsonify({"campaign_end": ts, "end": _iso(ts, get_config().campaign.timezone)})


@bp.post("/cycle-mark")
def cycle_mark():  # type: ignore[no-untyped-def]
    """Mark a production cycle boundary at ``ts`` (default now), for a campaign that counts its
    cycles from marks (``requirements.cycles.source: marked``)."""
    from cpaudit.config.checks import cycle_mark_problem
    _require_token()
    why = cycle_mark_problem(get_config())
    if why:
        raise APIError(400, why)
    ts = _body_ts(request.get_json(silent=True))
    done = make_change("cycle_mark", {"ts": ts})
    if not isinstance(done, dict):
        return done
    return jsonify(done), 201


@bp.get("/changes")
def changes_list():  # type: ignore[no-untyped-def]
    """The changes asked for centrally: centrally every one with its state (pending, applied,
    refused and why); on the edge box the ones it answered."""
    from cpaudit.store import changes
    st = get_store()
    done = changes.outcomes(st)
    unverified = None
    if current_app.extensions["cpaudit_central"] and current_app.config.get("CPAUDIT_CHANGE_KEY"):
        # this office's changes only (signed with the campaign's key), and how many the box
        # found signed with no key it knows (another office's, or forged)
        asked = [c for c in st.changes() if not isinstance(c, str)]  # type: ignore[attr-defined]
        rows = changes.listing(asked, done, _campaign_key(st), st.scope.get("site", ""),
                               st.scope.get("campaign", ""))
        unverified = st.edge_status().get("changes_unverified")  # type: ignore[attr-defined]
    else:            # the edge box, or an office without the key: what the box answered
        rows = [{"id": k, **v} for k, v in sorted(done.items(), key=lambda kv: (
            kv[1].get("asked_at") if isinstance(kv[1].get("asked_at"), int) else 0),
            reverse=True)]
    return jsonify({"changes": rows, "central": current_app.extensions["cpaudit_central"],
                    "unverified_at_edge": unverified,
                    "may_ask": bool(current_app.extensions["cpaudit_central"]
                                    and current_app.config.get("CPAUDIT_CHANGE_KEY"))})


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    from cpaudit.web.openapi import spec
    return jsonify(spec(get_config()))
