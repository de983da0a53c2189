"""Changes to a campaign's record: made on the edge box, or asked for in the auditors' office and
carried to the edge box through InfluxDB.

The edge box keeps the campaign's one record. Its web changes it directly (:func:`commit`). The
central view, where the auditors sit, may ask for the same changes (start, stop, a cycle mark, a
hand reading, its retraction) when a shared key allows it:

1. the central web checks what it can (the configuration; the campaign's forwarded start and end:
   :func:`check`) and writes the change into InfluxDB as a point of ``<m>_changes``, its site,
   campaign and id as tags, signed with the key the central server and the edge box share
   (HMAC-SHA256 over site, campaign, id, kind, time, body and who asked: :func:`sign`);
2. the edge box's forwarder reads its campaign's changes there (over the connection it already
   makes: nothing reaches into the plant's network), and :func:`apply_all` checks the signature,
   checks the change again against the edge's own record and applies it, once;
3. the outcome (``change.<id>``: applied or refused, with why) is a record of the campaign like
   the others, forwarded back: the central view shows each change pending, applied or refused.

A change that is read twice is applied once (its outcome is recorded first in the same store);
a change that is not signed with this box's key, names another campaign, or holds anything
but what its kind takes is refused and says why; none of them stops the forwarder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import math
import uuid
from typing import Any, Callable, Protocol

import numpy as np

from cpaudit.store.keys import CHANGE_PREFIX, change_key
from cpaudit.store.sample import Batch, Quality, Reason

log = logging.getLogger("cpaudit.changes")

KINDS = ("start", "stop", "cycle_mark", "manual", "retract")
NOTE_MAX = 500                  # [characters]
TS_MAX = 7_258_118_400 * 1_000_000_000           # 2200-01-01T00:00Z (as the web's API takes)
LOOKBACK_NS = 3_600 * 10**9     # changes asked for up to 1 h before the newest one seen are read


class ChangeRefused(Exception):
    """A change that cannot be made: ``status`` as HTTP says it (400 the change is wrong, 404
    nothing to retract, 409 a reading is there already), ``message`` a sentence naming the
    field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Dated(Protocol):
    """What :func:`check` reads: the campaign's start and end (the edge's, or as forwarded)."""

    def campaign_start(self) -> int | None: ...
    def campaign_end(self) -> int | None: ...


class KeptStore(Dated, Protocol):
    """What a change is made on: the edge box's record (``SQLiteStore``)."""

    def write(self, batch: Batch) -> int: ...
    def begin_campaign(self, ts: int, name: str | None = None) -> None: ...
    def end_campaign(self, ts: int) -> None: ...
    def mark_cycle(self, ts: int) -> list[int]: ...
    def note_manual(self, tag: str, ts: int, note: str) -> None: ...
    def retract_manual(self, tag: str, ts: int, at: int, note: str) -> bool: ...


class Listed(Protocol):
    def meta_items(self) -> dict[str, str]: ...


class RecordStore(KeptStore, Listed, Protocol):
    """... that also records each change's outcome: what :func:`apply_all` takes."""

    def set_meta(self, key: str, value: str) -> None: ...


# -- the body of each kind ---------------------------------------------------------------------
def _ts(body: dict[str, Any], name: str = "ts") -> int:
    v = body.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < TS_MAX:
        raise ChangeRefused(400, f"{name}: expected integer ns between 1970 and 2200")
    return v


def normalized(kind: Any, body: Any) -> dict[str, Any]:
    """The body of a change of ``kind`` with exactly the fields that kind takes, typed; a change
    from outside (read from InfluxDB) goes through here before anything else looks at it."""
    if kind not in KINDS:
        raise ChangeRefused(400, f"kind: expected one of {', '.join(KINDS)}, got {str(kind)[:40]!r}")
    if not isinstance(body, dict):
        raise ChangeRefused(400, "body: expected a JSON object")
    out: dict[str, Any] = {"ts": _ts(body)}
    if kind in ("manual", "retract"):
        tag = body.get("tag")
        if not isinstance(tag, str) or not tag:
            raise ChangeRefused(400, "tag: expected the name of a tag (a string)")
        note = body.get("note", "")
        if not isinstance(note, str):
            raise ChangeRefused(400, "note: expected a string")
        out.update(tag=tag, note=note[:NOTE_MAX])
    if kind == "manual":
        v = body.get("value")
        try:
            value = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        except OverflowError:             # an integer of 400 digits
            value = None
        if value is None or not math.isfinite(value):
            raise ChangeRefused(400, "value: expected a finite number")
        out["value"] = value
    return out


# -- checks and the change itself ----------------------------------------------------------------
def check(rec: Dated, kind: str, body: dict[str, Any],
          fmt: Callable[[int], Any] = str) -> None:
    """What a change must satisfy by the campaign's records (the edge's, or as forwarded): a
    stop after the start, a hand reading within the campaign. ``fmt`` shows a time."""
    ts = body["ts"]
    if kind == "stop":
        start = rec.campaign_start()
        if start is not None and ts <= start:
            raise ChangeRefused(400, "ts: the campaign cannot stop before it started")
    elif kind == "manual":
        start, stop = rec.campaign_start(), rec.campaign_end()
        if start is not None and ts < start:
            raise ChangeRefused(400, f"ts: {fmt(ts)} is before the campaign started "
                                     f"({fmt(start)})")
        if stop is not None and ts > stop:
            raise ChangeRefused(400, f"ts: {fmt(ts)} is after the campaign stopped ({fmt(stop)})")


def commit(st: KeptStore, kind: str, body: dict[str, Any], *, now: int,
           fmt: Callable[[int], Any] = str) -> dict[str, Any]:
    """Make the change on the edge box's record (checked by :func:`check` first); what it did."""
    check(st, kind, body, fmt)
    ts = body["ts"]
    if kind == "start":
        st.begin_campaign(ts)
        return {"campaign_start": ts}
    if kind == "stop":
        st.end_campaign(ts)
        return {"campaign_end": ts}
    if kind == "cycle_mark":
        return {"marked": ts, "marks": len(st.mark_cycle(ts))}
    tag, note = body["tag"], body["note"]
    if kind == "manual":
        value = body["value"]
        added = st.write(Batch([tag], np.array([ts], np.int64), np.array([value], np.float64),
                               np.array([int(Quality.GOOD)], np.int8),
                               np.array([int(Reason.MANUAL)], np.int8)))
        if not added:
            raise ChangeRefused(409, f"{tag} already has a reading at {ts}; retract it first or "
                                     "choose another time")
        if note:
            st.note_manual(tag, ts, note)
        return {"stored": {"tag": tag, "ts": ts, "value": value, "reason": "manual",
                           "note": note}}
    if not st.retract_manual(tag, ts, now, note):
        raise ChangeRefused(404, f"no manual reading of {tag} at {ts} to retract")
    return {"retracted": {"tag": tag, "ts": ts, "at": now, "note": note}}


# -- a change asked for centrally ----------------------------------------------------------------
def _payload(site: str, campaign: str, cid: str, kind: str, at: int, body: dict[str, Any],
             by: str) -> bytes:
    return json.dumps([site, campaign, cid, kind, at, body, by], sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: bytes, site: str, campaign: str, cid: str, kind: str, at: int,
         body: dict[str, Any], by: str) -> str:
    return hmac.new(key, _payload(site, campaign, cid, kind, at, body, by),
                    hashlib.sha256).hexdigest()


@dataclasses.dataclass(frozen=True)
class Change:
    """A change asked for centrally: ``at`` when [ns, the central server's clock], ``by`` who
    (the address the request came from), ``sig`` its signature."""
    id: str
    kind: str
    at: int
    body: dict[str, Any]
    by: str
    sig: str

    @classmethod
    def new(cls, key: bytes, site: str, campaign: str, kind: str, body: dict[str, Any],
            at: int, by: str) -> Change:
        cid = uuid.uuid4().hex
        return cls(cid, kind, at, body, by, sign(key, site, campaign, cid, kind, at, body, by))

    def signed_by(self, key: bytes, site: str, campaign: str) -> bool:
        want = sign(key, site, campaign, self.id, self.kind, self.at, self.body, self.by)
        return hmac.compare_digest(want, self.sig)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "at": self.at, "body": self.body, "by": self.by}


def from_point(cid: Any, at: Any, kind: Any, body: Any, by: Any, sig: Any) -> Change | str:
    """A change as InfluxDB gave it back (outside input): the change, or why it is none."""
    if not isinstance(cid, str) or not cid or len(cid) > 64:
        return "id: missing or malformed"
    if isinstance(at, bool) or not isinstance(at, int):
        return "time: not an integer"
    if not isinstance(body, str) or not isinstance(kind, str) or not isinstance(sig, str):
        return "kind, body and sig: expected strings"
    try:
        parsed = json.loads(body)
    except ValueError:
        return "body: not JSON"
    if not isinstance(parsed, dict):
        return "body: not a JSON object"
    return Change(cid, kind, at, parsed, by if isinstance(by, str) else "", sig)


def outcomes(rec: Listed) -> dict[str, dict[str, Any]]:
    """Every central change this record has an outcome for, by id."""
    out = {}
    for k, v in rec.meta_items().items():
        if k.startswith(CHANGE_PREFIX):
            try:
                got = json.loads(v)
            except ValueError:
                got = None
            out[k[len(CHANGE_PREFIX):]] = got if isinstance(got, dict) else {
                "state": "refused", "why": "outcome record unreadable"}
    return out


def since(rec: Listed) -> int | None:
    """From when the changes to read are asked for: :data:`LOOKBACK_NS` before the newest one
    this record has an outcome for (a central clock that was behind a while is forgiven that
    long); None: from the first."""
    ats = [o.get("asked_at") for o in outcomes(rec).values()]
    newest = max((a for a in ats if isinstance(a, int)), default=None)
    return None if newest is None else newest - LOOKBACK_NS


def apply_all(st: RecordStore, changes: list[Change], *, key: bytes, site: str, campaign: str,
              problem: Callable[[str, dict[str, Any]], str | None], now: int,
              fmt: Callable[[int], Any] = str) -> dict[str, int]:
    """Apply the changes read for this campaign that have no outcome yet, in the order asked
    for, and record each outcome; ``problem`` is the configuration's check (a sentence, or
    None). Counts of what happened: {"applied": n, "refused": m}."""
    done = outcomes(st)
    counts = {"applied": 0, "refused": 0}
    for ch in sorted(changes, key=lambda c: (c.at, c.id)):
        if ch.id in done:
            continue
        record: dict[str, Any] = {"kind": ch.kind, "asked_at": ch.at, "by": ch.by, "at": now}
        try:
            if not ch.signed_by(key, site, campaign):
                raise ChangeRefused(401, "signature: not signed with this edge box's key for "
                                         "this campaign")
            body = normalized(ch.kind, ch.body)
            record["body"] = body
            why = problem(ch.kind, body)
            if why:
                raise ChangeRefused(400, why)
            record.update(state="applied", result=commit(st, ch.kind, body, now=now, fmt=fmt))
            counts["applied"] += 1
            log.info("applied the change %s (%s) asked for centrally by %s", ch.id, ch.kind,
                     ch.by or "?")
        except ChangeRefused as e:
            record.update(state="refused", why=e.message, status=e.status)
            counts["refused"] += 1
            log.warning("refused the change %s (%s) asked for centrally: %s", ch.id[:64],
                        str(ch.kind)[:40], e.message)
        st.set_meta(change_key(ch.id), json.dumps(record, ensure_ascii=False))
        done[ch.id] = record
    return counts


def listing(changes: list[Change], done: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each change with its state: pending (the edge box has not answered yet), applied or
    refused (with why), newest first."""
    rows = []
    for ch in sorted(changes, key=lambda c: (c.at, c.id), reverse=True):
        o = done.get(ch.id)
        rows.append({**ch.as_dict(), "state": o.get("state", "refused") if o else "pending",
                     "why": (o or {}).get("why"), "answered_at": (o or {}).get("at")})
    return rows


__all__ = ["KINDS", "Change", "ChangeRefused", "KeptStore", "RecordStore", "apply_all", "check", "commit",
           "from_point", "listing", "normalized", "outcomes", "since", "sign"]
