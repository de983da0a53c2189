"""Readings entered by hand (a handheld meter, a weighbridge ticket).

POST /api/v1/manual           store one: {tag, value, ts?, note?} (token); reason ``manual``,
                              never presented as measured
POST /api/v1/manual/retract   retract one: {tag, ts, note?} (token); it stays in the record as
                              retracted (bad quality), never deleted
GET  /api/v1/manual           every reading entered by hand, with its note and, when retracted,
                              when and why

A reading is checked before it is stored: a finite number, within the tag's declared
``valid_range`` (else within a physical bound: a totalizer is not negative nor above its
rollover; no magnitude above :data:`web.params.PHYSICAL_BOUND`), dated within the campaign (after
its start, before its stop) and not in the future.
"""
from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, jsonify, request

from cpaudit.analyzer.iotools import manual_entries
from cpaudit.web.api import _body_ts, _iso, _require_token
from cpaudit.web.app import APIError, edge_store, get_config, get_store
from cpaudit.web.params import PHYSICAL_BOUND, parse_number

bp = Blueprint("manual", __name__, url_prefix="/api/v1")

NOTE_MAX = 500                  # [characters]


def _declared_range(tag: str) -> tuple[float, float] | None:
    for d in get_config().devices:
        for r in [*getattr(d, "registers", []), *getattr(d, "tags", [])]:
            if getattr(r, "tag", None) == tag:
                return getattr(r, "valid_range", None)
    return None


def _check_value(tag: str, value: float) -> None:
    info = get_config().tag_index()[tag]
    declared = _declared_range(tag)
    if declared is not None:
        lo, hi = declared
        if not lo <= value <= hi:
            raise APIError(400, f"value: {value:g} {info.unit} is outside the range declared for "
                                f"{tag} ({lo:g} .. {hi:g} {info.unit})")
        return
    if abs(value) > PHYSICAL_BOUND:
        raise APIError(400, f"value: {value:g} {info.unit} is beyond any meter "
                            f"(|value| <= {PHYSICAL_BOUND:g})")
    if info.kind.value == "total" and value < 0:
        raise APIError(400, f"value: a totalizer ({tag}) does not read negative")
    if info.rollover is not None and value > info.rollover:
        raise APIError(400, f"value: {value:g} is above the rollover of {tag} "
                            f"({info.rollover:g} {info.unit})")


def _check_ts(ts: int) -> None:
    st = get_store()
    start, stop = st.campaign_start(), st.campaign_end()
    tz = get_config().campaign.timezone
    if start is not None and ts < start:
        raise APIError(400, f"ts: {_iso(ts, tz)} is before the campaign started "
                            f"({_iso(start, tz)})")
    if stop is not None and ts > stop:
        raise APIError(400, f"ts: {_iso(ts, tz)} is after the campaign stopped ({_iso(stop, tz)})")


def _tag(body: dict[str, Any]) -> str:
    tag = body.get("tag")
    if not isinstance(tag, str):
        raise APIError(400, "tag: expected the name of a tag (a string)")
    if tag not in get_config().tag_index():
        raise APIError(400, f"tag: unknown tag {tag[:80]!r}")
    return tag


def _note(body: dict[str, Any]) -> str:
    note = body.get("note", "")
    if not isinstance(note, str):
        raise APIError(400, "note: expected a string")
    return note[:NOTE_MAX]


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise APIError(400, "expected a JSON object: {\"tag\": ..., \"value\": ...}")
    return body


@bp.post("/manual")
def manual():  # type: ignore[no-untyped-def]
    """Store a reading entered by hand, checked as the module says."""
    from cpaudit.store import Batch, Quality, Reason
    _require_token()
    body = _body()
    tag = _tag(body)
    value = parse_number("value", body.get("value"))
    _check_value(tag, value)
    ts = _body_ts(body)
    _check_ts(ts)
    note = _note(body)
    st = edge_store()
    added = st.write(Batch([tag], [ts], [value], [int(Quality.GOOD)], [int(Reason.MANUAL)]))
    if not added:
        raise APIError(409, f"{tag} already has a reading at {ts}; retract it first or choose "
                            "another time")
    if note:
        st.note_manual(tag, ts, note)
    # no cache to drop: the documents are keyed by the write sequence, and the live validity
    # reads the minutes written since (a retraction moves its row to the end of that order)
    return jsonify({"stored": {"tag": tag, "ts": ts, "value": value, "reason": "manual",
                               "note": note}}), 201


@bp.post("/manual/retract")
def retract():  # type: ignore[no-untyped-def]
    """Retract a reading entered by hand: kept, marked retracted (bad quality), with why."""
    _require_token()
    body = _body()
    tag = _tag(body)
    if "ts" not in body:
        raise APIError(400, "ts: the time of the reading to retract (as GET /manual gives it)")
    ts = _body_ts(body)
    note = _note(body)
    now = time.time_ns()
    if not edge_store().retract_manual(tag, ts, now, note):
        raise APIError(404, f"no manual reading of {tag} at {ts} to retract")
    return jsonify({"retracted": {"tag": tag, "ts": ts, "at": now, "note": note}})


@bp.get("/manual")
def manual_list():  # type: ignore[no-untyped-def]
    return jsonify({"manual": manual_entries(get_store(), get_config().campaign.timezone)})

