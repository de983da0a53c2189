"""Readings entered by hand (a handheld meter, a weighbridge ticket).

POST /api/v1/manual           store one: {tag, value, ts?, note?} (token); reason ``manual``,
                              never presented as measured
POST /api/v1/manual/retract   retract one: {tag, ts, note?} (token); it stays in the record as
                              retracted (bad quality), never deleted
GET  /api/v1/manual           every reading entered by hand, with its note and, when retracted,
                              when and why

A reading is checked before it is stored: a finite number, within the tag's declared
``valid_range`` (else within a physical bound: a totalizer is not negative nor above its
rollover; no magnitude above :data:`config.checks.PHYSICAL_BOUND`), dated within the campaign
(after its start, before its stop) and not in the future. Centrally, with ``CPAUDIT_CHANGE_KEY``,
the same checks run against the configuration and the forwarded records, and the reading travels
to the edge box (202; ``GET /api/v1/changes`` says when it was applied).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from cpaudit.analyzer.iotools import manual_entries
from cpaudit.config import checks
from cpaudit.store.changes import NOTE_MAX
from cpaudit.web.api import _body_ts, _require_token, make_change
from cpaudit.web.app import APIError, get_config, get_store
from cpaudit.web.params import parse_number

bp = Blueprint("manual", __name__, url_prefix="/api/v1")



def _tag(body: dict[str, Any]) -> str:
    tag = body.get("tag")
    why = checks.tag_problem(get_config(), tag)
    if why:
        raise APIError(400, why)
    assert isinstance(tag, str)
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
    _require_token()
    body = _body()
    tag = _tag(body)
    value = parse_number("value", body.get("value"))
    why = checks.value_problem(get_config(), tag, value)
    if why:
        raise APIError(400, why)
    ts = _body_ts(body)
    # no cache to drop: the documents are keyed by the write sequence, and the live validity
    # reads the minutes written since (a retraction moves its row to the end of that order)
    done = make_change("manual", {"tag": tag, "ts": ts, "value": value, "note": _note(body)})
    return (jsonify(done), 201) if isinstance(done, dict) else done


@bp.post("/manual/retract")
def retract():  # type: ignore[no-untyped-def]
    """Retract a reading entered by hand: kept, marked retracted (bad quality), with why."""
    _require_token()
    body = _body()
    tag = _tag(body)
    if "ts" not in body:
        raise APIError(400, "ts: the time of the reading to retract (as GET /manual gives it)")
    ts = _body_ts(body)
    done = make_change("retract", {"tag": tag, "ts": ts, "note": _note(body)})
    return jsonify(done) if isinstance(done, dict) else done


@bp.get("/manual")
def manual_list():  # type: ignore[no-untyped-def]
    return jsonify({"manual": manual_entries(get_store(), get_config().campaign.timezone)})

