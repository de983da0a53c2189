"""The API's OpenAPI 3.1 description, served at /api/v1/openapi.json."""
from __future__ import annotations

from typing import Any

_WINDOW = [
    {"name": "from", "in": "query", "schema": {"type": "string"},
     "description": "window start: ISO 8601 with an offset, or ns since the epoch"},
    {"name": "to", "in": "query", "schema": {"type": "string"},
     "description": "window end: ISO 8601 with an offset, or ns since the epoch"},
]
# the balances' window rule (requirements.balance_window by default)
_BAL = [{"name": "window", "in": "query", "schema": {"type": "string",
                                                      "enum": ["best_valid", "campaign"]},
         "description": "best_valid: the window the validity report accepts (cycles or hours "
                        "at load, DB11/T 1156 7.3.3.3 e, f); campaign: [from, to] as given"}]
_ERROR = {"description": "bad parameter", "content": {"application/json": {"schema": {
    "type": "object", "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}}}}}


def _get(summary: str, params: list[dict[str, Any]] | None = None,
         media: str = "application/json") -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params or [],
                    "responses": {"200": {"description": "OK", "content": {media: {}}},
                                  "400": _ERROR}}}


def _post(summary: str) -> dict[str, Any]:
    return {"post": {"summary": summary, "security": [{"token": []}],
                     "requestBody": {"content": {"application/json": {"schema": {
                         "type": "object", "properties": {"ts": {"type": ["string", "integer"]}}}}}},
                     "responses": {"200": {"description": "done"}, "201": {"description": "done"},
                                   "400": _ERROR, "401": {"description": "missing or wrong token"},
                                   "403": {"description": "no token configured"}}}}


def spec() -> dict[str, Any]:
    q = lambda name, desc, typ="string": {"name": name, "in": "query",  # noqa: E731
                                          "schema": {"type": typ}, "description": desc}
    return {
        "openapi": "3.1.0",
        "info": {"title": "cpaudit API", "version": "1",
                 "description": "Measurement campaigns and balances (DB11/T 1156). Every figure "
                                "the pages show comes from here. Errors are JSON "
                                "{error, status}."},
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
                                   _WINDOW + _BAL + [q("alpha", "significance level",
                                                       "number")]),
            "/api/v1/export.xlsx": _get("the report as XLSX, one sheet per table", _WINDOW,
                                        "application/vnd.openxmlformats-officedocument."
                                        "spreadsheetml.sheet"),
            "/api/v1/tables": _get("the names of the report's tables"),
            "/api/v1/export.csv": _get("one table of the report as CSV", _WINDOW + [
                q("table", "a name from /api/v1/tables")], "text/csv"),
            "/api/v1/sankey.svg": _get("a layer's balance diagram", _WINDOW + [
                q("layer", "material | water | energy"), q("node", "one unit operation"),
                q("lang", "en | zh")], "image/svg+xml"),
            "/api/v1/tags": _get("every configured tag with unit, kind and device"),
            "/api/v1/series": _get("one tag downsampled on the server (min, mean, max per "
                                   "bucket; gaps null)", _WINDOW + [
                q("tag", "the tag"), q("points", "buckets, 10..5000", "integer")]),
            "/api/v1/closure-history": _get("closure per node over time, cumulative and "
                                            "trailing", _WINDOW + [
                q("layer", "material | water | energy"), q("step_min", "minutes", "integer"),
                q("trailing_h", "hours", "integer")]),
            "/api/v1/manual": {"post": {
                "summary": "store a reading entered by hand (reason manual, never measured)",
                "security": [{"token": []}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "required": ["tag", "value"],
                    "properties": {"tag": {"type": "string"}, "value": {"type": "number"},
                                   "ts": {"type": ["string", "integer"]},
                                   "note": {"type": "string"}}}}}},
                "responses": {"201": {"description": "stored"}, "400": _ERROR,
                              "401": {"description": "missing or wrong token"},
                              "403": {"description": "no token configured"}}}},
            "/api/v1/campaign/start": _post("start (or restart) the campaign at ts"),
            "/api/v1/campaign/stop": _post("stop the campaign at ts (recording goes on)"),
            "/api/v1/cycle-mark": _post("mark a production cycle boundary at ts "
                                        "(cycles.source: marked)"),
            "/api/v1/openapi.json": _get("this description"),
        },
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer",
                                                     "description": "CPAUDIT_TOKEN"}}},
    }
