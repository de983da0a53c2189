"""The changes asked for centrally are outside input to the edge box (anyone who may write the
central database may write its changes measurement): fuzzed with Hypothesis, a point read back
is a change or a reason, never an exception; a change signed with the right key but holding
anything at all is applied only when it is whole, else refused with why, and every one gets its
outcome, once; the record is a real SQLite store."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpaudit.store import SQLiteStore
from cpaudit.store.changes import (KINDS, Change, ChangeRefused, apply_all, ensure_record_id,
                                   from_point, normalized, outcomes, sign)

KEY = b"k"
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
KIND = st.sampled_from(KINDS) | st.text(max_size=12)
BODY = st.fixed_dictionaries({}, optional={
    "ts": st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=5) | st.booleans(),
    "tag": st.sampled_from(["hot_wort.total", ""]) | st.text(max_size=10) | st.integers(),
    "value": st.floats() | st.integers() | st.just(10**400) | st.text(max_size=5) | st.none(),
    "note": st.text(max_size=600) | st.integers()}) | JSON


HEX_ID = st.text("0123456789abcdef", min_size=32, max_size=32)
JSON_TEXT = st.builds(json.dumps, JSON) | st.text(max_size=200) | st.just("[" * 5000) \
    | st.just('{"note": "\\ud800"}')


@settings(max_examples=500)
@given(cid=HEX_ID | JSON, at=JSON, kind=JSON, body=JSON_TEXT | JSON, by=JSON, sig=JSON,
       record=JSON_TEXT | JSON, seen=JSON_TEXT | JSON)
def test_a_point_read_back_is_a_change_or_a_reason(cid: Any, at: Any, kind: Any, body: Any,
                                                  by: Any, sig: Any, record: Any,
                                                  seen: Any) -> None:
    got = from_point(cid, at, kind, body, by, sig, record, seen)
    assert isinstance(got, (Change, str))
    if isinstance(got, Change):
        assert isinstance(got.body, dict) and isinstance(got.at, int)
        assert isinstance(got.signed_by(KEY, "S", "C"), bool)   # never raises


@settings(max_examples=500)
@given(kind=KIND, body=BODY)
def test_a_body_is_whole_or_refused_naming_the_field(kind: Any, body: Any) -> None:
    try:
        out = normalized(kind, body)
    except ChangeRefused as e:
        assert e.status == 400 and e.message.split(":")[0] in ("kind", "body", "ts", "tag",
                                                               "value", "note")
        return
    assert kind in KINDS and isinstance(out["ts"], int) and 0 <= out["ts"]
    if kind == "manual":
        assert math.isfinite(out["value"])
    if kind in ("manual", "retract"):
        assert isinstance(out["tag"], str) and len(out["note"]) <= 500
    json.dumps(out)                       # what is recorded is JSON


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(items=st.lists(st.tuples(KIND, BODY), min_size=1, max_size=5))
def test_signed_nonsense_is_refused_and_answered_once(tmp_path: Path,
                                                      items: list[tuple[Any, Any]]) -> None:
    db = tmp_path / "edge.db"
    db.unlink(missing_ok=True)
    s = SQLiteStore(db)
    try:
        s.begin_campaign(10**18)
        record = ensure_record_id(s)
        chs = []
        for i, (kind, body) in enumerate(items):
            if not isinstance(body, dict):
                body = {"raw": body}
            kind = kind if isinstance(kind, str) else str(kind)
            # what the office saw: the start and end now (a change applied before may move them,
            # and then the ones after it are refused for that, as they should be)
            ch = Change(f"{i:032x}", kind, 10**18 + i, body, "fuzz", record,
                        {"start": s.campaign_start(), "end": s.campaign_end()})
            chs.append(dataclasses.replace(ch, sig=sign(KEY, "S", "C", ch)))
        counts = apply_all(s, chs, key=KEY, site="S", campaign="C",
                           problem=lambda k, b: None, now=2 * 10**18)
        done = outcomes(s)
        assert set(done) == {c.id for c in chs}
        assert counts["applied"] + counts["refused"] == len(chs) and not counts["unverified"]
        for c in chs:
            assert done[c.id]["state"] in ("applied", "refused")
            if done[c.id]["state"] == "refused":
                assert done[c.id]["why"]
        again = apply_all(s, chs, key=KEY, site="S", campaign="C",
                          problem=lambda k, b: None, now=2 * 10**18)
        assert again == {"applied": 0, "refused": 0, "unverified": 0}
    finally:
        s.close()
