"""The API's OpenAPI 3.1 description, served at /api/v1/openapi.json.

Exact enough to fuzz from (tests/web/test_fuzz.py runs schemathesis on it): every parameter
carries the type, range or set of values the API accepts — times within
[:data:`web.params.TS_MIN`, :data:`web.params.TS_MAX`), integers within their bounds, the
campaign's own tags and nodes — so that what the description allows the API takes, and what it
refuses is 400 (or 401/403/404/409 for state: a token, a reading already there, a campaign not
started). What it cannot say: ``to`` after ``from``, a manual reading within its tag's range and
the campaign.
"""
from __future__ import annotations

from typing import Any

from cpaudit.web.params import PHYSICAL_BOUND, TS_MAX, TS_MIN

# an ISO 8601 date-time with an offset, from 1970 to 2199 (what web.params.parse_time accepts)
_DAY = (r"((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|"
        r"(0[13578]|1[02])-31)")
# an ISO 8601 date-time with an offset, from 1971 to 2199 (within what web.params.parse_time
# accepts; 29 February left out of the pattern, not of the API)
ISO = (r"^(197[1-9]|19[89][0-9]|20[0-9]{2}|21[0-8][0-9]|219[0-8])-" + _DAY +
       r"T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
       r"(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$")
TIME: dict[str, Any] = {"anyOf": [
    {"type": "integer", "minimum": TS_MIN, "maximum": TS_MAX - 1,
     "description": "ns since the epoch (UTC)"},
    {"type": "string", "pattern": ISO, "description": "ISO 8601 with an offset"}]}
LAYERS = ["material", "water", "energy"]
# every table analyzer.export.tables can give (which ones a report has depends on the campaign;
# tests/web/test_fuzz.py checks that a report's tables are among these)
TABLES = ["validity", "balance window", "manual readings", "per cycle", "material balance",
          "material streams", "water balance", "water streams", "energy balance",
          "energy streams", "material losses", "raw materials", "utilisation", "per unit product",
          "allocation", "water indicators", "energy carriers", "energy units",
          "pollutant factors", "pollutant points", "pollutant removal", "reconciliation material",
          "reconciliation water", "tests material", "tests water"]
_WINDOW = [
    {"name": "from", "in": "query", "schema": TIME,
     "description": "window start: ISO 8601 with an offset, or ns since the epoch (1970..2199); "
                    "clipped to the data"},
    {"name": "to", "in": "query", "schema": TIME,
     "description": "window end (after from): ISO 8601 with an offset, or ns since the epoch"},
]
# the balances' window rule (requirements.balance_window by default)
_BAL = [{"name": "window", "in": "query", "schema": {"type": "string",
                                                      "enum": ["best_valid", "campaign"]},
         "description": "best_valid: the window the validity report accepts (cycles or hours "
                        "at load, DB11/T 1156 7.3.3.3 e, f); campaign: [from, to] as given"}]
_ERROR = {"description": "bad parameter", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
    "required": ["error", "status"]}}}}
_STATE = {"401": {"description": "missing or wrong token", "content": _ERROR["content"]},
          "403": {"description": "no token configured", "content": _ERROR["content"]},
          "405": {"description": "a central view without CPAUDIT_CHANGE_KEY: read-only",
                  "content": _ERROR["content"]},
          "409": {"description": "(a central view) the edge box takes no change from the "
                  "office", "content": _ERROR["content"]},
          "413": {"description": "body larger than 64 KiB", "content": _ERROR["content"]}}
_BUSY = {"503": {"description": "busy with other custom windows (retry)",
                 "content": _ERROR["content"]}}


def _q(name: str, desc: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": desc,
            "required": required}


def _get(summary: str, params: list[dict[str, Any]] | None = None,
         media: str = "application/json") -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {media: {}}},
                                 "400": _ERROR, "401": _STATE["401"]}
    if params and any(p["name"] == "from" for p in params):
        responses |= _BUSY
    return {"get": {"summary": summary, "parameters": params or [], "responses": responses}}


def _diagram() -> dict[str, Any]:
    """The live report's balance diagram: layer and lang only (404 for a layer the campaign
    does not balance)."""
    op = _get("the live report's balance diagram (no window: /sankey.svg takes one)", [
        _q("layer", "the balance layer", {"type": "string", "enum": LAYERS}),
        _q("lang", "label language", {"type": "string", "enum": ["en", "zh"]})],
        "image/svg+xml")
    op["get"]["responses"]["404"] = {"description": "no diagram of that layer in the report",
                                     "content": _ERROR["content"]}
    return op


def _post(summary: str, body: dict[str, Any], ok: str = "200",
          more: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"post": {"summary": summary, "security": [{"token": []}],
                     "requestBody": {"required": body.get("required") is not None,
                                     "content": {"application/json": {"schema": body}}},
                     "responses": {ok: {"description": "done"},
                                   "202": {"description": "a central view with "
                                           "CPAUDIT_CHANGE_KEY: sent to the edge box, pending "
                                           "until it applies it (GET /api/v1/changes)"},
                                   "400": _ERROR, **_STATE,
                                   **(more or {})}}}


_TS_BODY = {"type": "object", "properties": {"ts": TIME},
            "description": "ts: when (default now); not in the future"}


def spec(cfg: Any = None) -> dict[str, Any]:
    """The description; with the campaign's config, its tags and nodes as the allowed values."""
    tag: dict[str, Any] = {"type": "string"}
    node: dict[str, Any] = {"type": "string"}
    if cfg is not None:
        tag = {"type": "string", "enum": sorted(cfg.tag_index())}
        node = {"type": "string", "enum": [n.id for n in cfg.flowsheet.nodes]}
    series_tag = {"anyOf": [tag, {"type": "string", "pattern": r"^_health\.[A-Za-z0-9_.-]+$"}]}
    manual = {"type": "object", "required": ["tag", "value"], "properties": {
        "tag": tag, "value": {"type": "number", "minimum": -PHYSICAL_BOUND,
                              "maximum": PHYSICAL_BOUND},
        "ts": TIME, "note": {"type": "string", "maxLength": 500}}}
    retract = {"type": "object", "required": ["tag", "ts"], "properties": {
        "tag": tag, "ts": TIME, "note": {"type": "string", "maxLength": 500}}}
    conflict = {"409": {"description": "the tag already has a reading at ts",
                        "content": _ERROR["content"]}}
    missing = {"404": {"description": "no such manual reading (or retracted already)",
                       "content": _ERROR["content"]}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "cpaudit API", "version": "1",
                 "description": "Measurement campaigns and balances (DB11/T 1156). Every figure "
                                "the pages show comes from here. Errors are JSON "
                                "{error, status}. Served beyond localhost, reads need the token "
                                "too (or the read-only token)."},
        "paths": {
            "/api/v1/campaign": _get("campaign name, start, elapsed, devices online, load"),
            "/api/v1/devices": _get("per-device state, success rate, latency, lateness, last "
                                    "value; sink backlog"),
            "/api/v1/validity": _get("campaign validity (7.3.3.3): checks, verdict, fixes, "
                                     "progress, best window, hints", _WINDOW),
            "/api/v1/balance": _get("material balance per node and overall", _WINDOW + _BAL),
            "/api/v1/balances": _get("the four balances (material, water, energy, pollutant)",
                                     _WINDOW + _BAL),
            "/api/v1/report": _get("validity, balances, reconciliation and Sankey data",
                                   _WINDOW + _BAL + [
                                       _q("alpha", "significance level",
                                          {"type": "number", "exclusiveMinimum": 0,
                                           "exclusiveMaximum": 1}),
                                       _q("validity", "0: without the validity report",
                                          {"type": "string", "enum": ["0", "1"]})]),
            "/api/v1/export.xlsx": _get("the report as XLSX, one sheet per table", _WINDOW,
                                        "application/vnd.openxmlformats-officedocument."
                                        "spreadsheetml.sheet"),
            "/api/v1/tables": _get("the names of the report's tables"),
            "/api/v1/export.csv": _get("one table of the report as CSV", _WINDOW + [
                _q("table", "a name from /api/v1/tables (which ones a report has depends on "
                   "the campaign: 400 for one it has not)", {"type": "string", "enum": TABLES},
                   required=True)], "text/csv"),
            "/api/v1/sankey.svg": _get("a layer's balance diagram", _WINDOW + _BAL + [
                _q("layer", "the balance layer", {"type": "string", "enum": LAYERS}),
                _q("node", "one unit operation", node),
                _q("lang", "label language", {"type": "string", "enum": ["en", "zh"]})],
                "image/svg+xml"),
            "/api/v1/tags": _get("every configured tag with unit, kind and device"),
            "/api/v1/series": _get("one tag downsampled on the server (min, mean, max per "
                                   "bucket; gaps null)", _WINDOW + [
                _q("tag", "a configured tag, or a health tag (_health.…)", series_tag,
                   required=True),
                _q("points", "buckets", {"type": "integer", "minimum": 10, "maximum": 5000})]),
            "/api/v1/closure-history": _get("closure per node over time, cumulative and "
                                            "trailing", _WINDOW + [
                _q("layer", "the balance layer", {"type": "string", "enum": LAYERS}),
                _q("step_min", "minutes a step (0: about 200 steps)",
                   {"type": "integer", "minimum": 0, "maximum": 1440}),
                _q("trailing_h", "hours of the trailing window",
                   {"type": "integer", "minimum": 1, "maximum": 168})]),
            "/api/v1/closure-series": _get("closure per node and overall per completed cycle "
                                           "(batch) or trailing window (continuous), each point "
                                           "a whole balance of the analyzer", [
                _q("layer", "the balance layer", {"type": "string", "enum": LAYERS}),
                _q("trailing_h", "hours of a trailing window (continuous campaigns)",
                   {"type": "integer", "minimum": 1, "maximum": 168}),
                _q("points", "at most this many points",
                   {"type": "integer", "minimum": 1, "maximum": 200})]),
            "/api/v1/diagram.svg": _diagram(),
            "/api/v1/manual": {
                **_get("every reading entered by hand, with its note and retraction"),
                **_post("store a reading entered by hand (reason manual, never measured); "
                        "within the tag's range and the campaign, not in the future", manual,
                        "201", conflict)},
            "/api/v1/manual/retract": _post("retract a reading entered by hand: kept in the "
                                            "record as retracted, with why", retract,
                                            more=missing),
            "/api/v1/campaign/start": _post("start (or restart) the campaign at ts", _TS_BODY),
            "/api/v1/campaign/stop": _post("stop the campaign at ts (recording goes on)",
                                           _TS_BODY),
            "/api/v1/cycle-mark": _post("mark a production cycle boundary at ts "
                                        "(cycles.source: marked)", _TS_BODY, "201"),
            "/api/v1/changes": _get("the changes asked for centrally, each pending, applied "
                                    "or refused (with why); on the edge box the ones it "
                                    "answered"),
            "/api/v1/openapi.json": _get("this description"),
            "/healthz": _get("the server answers and its store opens (open without a token)"),
        },
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                                     "description": "CPAUDIT_TOKEN"}}},
    }
