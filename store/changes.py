"""Changes to a campaign's record: made on the edge box, or asked for in the auditors' office and
carried to the edge box through InfluxDB.

The edge box keeps the campaign's one record. Its web changes it directly (:func:`commit`). The
central view, where the auditors sit, may ask for the same changes (start, stop, a cycle mark, a
hand reading, its retraction) when a shared key allows it:

1. the central web checks what it can (the configuration; the campaign's forwarded start and end:
   :func:`check`) and writes the change into InfluxDB as a point of ``<m>_changes``, its site,
   campaign and id as tags, signed with the campaign's key (HMAC-SHA256 over site, campaign, id,
   kind, time, body, who asked, the edge record it is meant for and the start and end the office
   saw: :func:`sign`). The campaign's key is derived from the office's master key
   (:func:`campaign_key`), and only that is given to the edge box;
2. the edge box's forwarder reads its campaign's changes there (over the connection it already
   makes: nothing reaches into the plant's network), and :func:`apply_all` checks the signature,
   checks the change again against the edge's own record and applies it, once;
3. the outcome (``change.<id>``: applied or refused, with why) is a record of the campaign like
   the others, forwarded back: the central view shows each change pending, applied or refused.

A change that is read twice is applied once (it has an outcome; a crash between applying it and
recording that is recognised by the change being in the record already). A change meant for
another record of the campaign (a replaced store), asked for against a start or end that has
changed on the edge since, dated in the edge's future or holding anything but what its kind
takes is refused and says why. A point not signed with the campaign's key is not answered at
all (counted, logged): a forged point cannot take a real change's id. None of them stops the
forwarder.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import math
import re
import threading
import uuid
from typing import Any, Callable, Protocol

import numpy as np
import pandas as pd

from cpaudit.store.keys import CHANGE_PREFIX, FUTURE_SLACK_NS, RECORD_ID, TS_MAX, change_key
from cpaudit.store.sample import Batch, Quality, Reason

log = logging.getLogger("cpaudit.changes")

KINDS = ("start", "stop", "cycle_mark", "manual", "retract")
NOTE_MAX = 500                  # [characters]
LOOKBACK_NS = 7 * 86_400 * 10**9   # changes asked for up to 7 days before the newest answered
IGNORED_MAX = 100_000              # ids of unverified points remembered between reads


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
    def get_meta(self, key: str) -> str | None: ...
    def manual(self) -> pd.DataFrame: ...


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
def campaign_key(master: bytes, site: str, campaign: str) -> bytes:
    """The key of one campaign, derived from the office's master key (``CPAUDIT_CHANGE_KEY``):
    what its edge box is given (``cpaudit change-key``), so that a plant that reads the key on
    its own box cannot sign a change for another plant's campaign."""
    return hmac.new(master, b"cpaudit change key\0" + site.encode() + b"\0" + campaign.encode(),
                    hashlib.sha256).hexdigest().encode()


def _payload(site: str, campaign: str, ch: Change) -> bytes:
    return json.dumps([site, campaign, ch.id, ch.kind, ch.at, ch.body, ch.by, ch.record, ch.seen],
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: bytes, site: str, campaign: str, ch: Change) -> str:
    return hmac.new(key, _payload(site, campaign, ch), hashlib.sha256).hexdigest()


@dataclasses.dataclass(frozen=True)
class Change:
    """A change asked for centrally: ``at`` when [ns, the central server's clock], ``by`` who
    (the user name given with the token, and the address the request came from), ``record``
    the edge record it is meant for (its ``record_id``), ``seen`` the campaign's start and end
    as the office saw them when it asked (the edge box refuses the change when they are no
    longer so), ``sig`` its signature with the campaign's key."""
    id: str
    kind: str
    at: int
    body: dict[str, Any]
    by: str
    record: str
    seen: dict[str, Any]
    sig: str = ""

    @classmethod
    def new(cls, key: bytes, site: str, campaign: str, kind: str, body: dict[str, Any],
            at: int, by: str, record: str, seen: dict[str, Any]) -> Change:
        ch = cls(uuid.uuid4().hex, kind, at, body, by, record, seen)
        return dataclasses.replace(ch, sig=sign(key, site, campaign, ch))

    def signed_by(self, key: bytes, site: str, campaign: str) -> bool:
        try:
            want = sign(key, site, campaign, self)
        except (UnicodeEncodeError, ValueError, TypeError):   # a lone surrogate, a NaN
            return False
        return hmac.compare_digest(want, self.sig)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "at": self.at, "body": self.body, "by": self.by}


ID = re.compile(r"[0-9a-f]{32}")
BODY_MAX = 16_384               # [characters] of a change's body as read back (a note is 500)


def from_point(cid: Any, at: Any, kind: Any, body: Any, by: Any, sig: Any,
               record: Any = "", seen: Any = "{}") -> Change | str:
    """A change as InfluxDB gave it back (outside input): the change, or why it is none."""
    if not isinstance(cid, str) or not ID.fullmatch(cid):
        return "id: missing or malformed"
    if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at < TS_MAX:
        return "time: not an integer ns between 1970 and 2200"
    texts = (kind, body, by, sig, record, seen)
    if not all(isinstance(t, str) for t in texts):
        return "kind, body, by, sig, record and seen: expected strings"
    if len(body) > BODY_MAX or len(seen) > 200:
        return "body: too large"
    try:
        for t in texts:
            t.encode()
        parsed, seen_at = json.loads(body), json.loads(seen)
    except (ValueError, RecursionError, UnicodeEncodeError):
        return "body: not JSON (or not UTF-8)"
    if not isinstance(parsed, dict) or not isinstance(seen_at, dict):
        return "body: not a JSON object"
    return Change(cid, kind, at, parsed, by, record, seen_at, sig)


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


def since(rec: Listed, now: int) -> int | None:
    """From when the changes to read are asked for: :data:`LOOKBACK_NS` before the newest one
    this record answered that was not dated in its future (a central clock that was behind a
    while is forgiven that long; one that was ahead moves nothing); None: from the first."""
    ats = [o.get("asked_at") for o in outcomes(rec).values()]
    newest = max((a for a in ats if isinstance(a, int) and a <= now + FUTURE_SLACK_NS),
                 default=None)
    return None if newest is None else newest - LOOKBACK_NS


_applying = threading.Lock()     # two sinks, or the catch-up at stop beside a live thread


def apply_all(st: RecordStore, changes: list[Change], *, key: bytes, site: str, campaign: str,
              problem: Callable[[str, dict[str, Any]], str | None], now: int,
              fmt: Callable[[int], Any] = str, ignored: set[str] | None = None
              ) -> dict[str, int]:
    """Apply the changes read for this campaign that have no outcome yet, in the order asked
    for, and record each outcome; ``problem`` is the configuration's check (a sentence, or
    None). A change not signed with this campaign's key is not this box's to answer: it is
    counted (``unverified``) and logged, and nothing of it is recorded (so a forged point
    cannot take the id of a real change); with ``ignored`` (kept by the caller between reads)
    each such id is counted once. Counts: {"applied", "refused", "unverified"}."""
    counts = {"applied": 0, "refused": 0, "unverified": 0}
    with _applying:
        done = outcomes(st)
        mine = ensure_record_id(st)
        for ch in sorted(changes, key=lambda c: (c.at, c.id)):
            if ch.id in done:
                continue
            if ignored is not None and ch.id in ignored:
                continue
            if not ch.signed_by(key, site, campaign):
                counts["unverified"] += 1
                if ignored is not None:
                    if len(ignored) >= IGNORED_MAX:     # a flood: counted again, not kept
                        ignored.clear()
                    ignored.add(ch.id)
                continue
            record: dict[str, Any] = {"kind": ch.kind, "asked_at": ch.at, "by": ch.by,
                                      "at": now}
            try:
                record["state"], record["result"] = "applied", _apply(
                    st, ch, mine, problem, now, fmt)
                counts["applied"] += 1
                log.info("applied the change %s (%s) asked for centrally by %s", ch.id,
                         ch.kind, ch.by or "?")
            except Exception as e:  # noqa: BLE001 - one change's failure is its own, not the box's
                why = e.message if isinstance(e, ChangeRefused) else \
                    f"not applied: {type(e).__name__}: {e}"[:300]
                record.update(state="refused", why=why,
                              status=e.status if isinstance(e, ChangeRefused) else 500)
                record.pop("result", None)
                counts["refused"] += 1
                (log.warning if isinstance(e, ChangeRefused) else log.exception)(
                    "refused the change %s (%s) asked for centrally: %s", ch.id, ch.kind[:40],
                    why)
            if isinstance(ch.body, dict):
                record["body"] = ch.body
            st.set_meta(change_key(ch.id), json.dumps(record, ensure_ascii=False))
            done[ch.id] = record
    if counts["unverified"]:
        log.warning("%d change(s) for %s / %s not signed with this box's key: ignored (another "
                    "office's key, or forged)", counts["unverified"], site, campaign)
    return counts


def _apply(st: RecordStore, ch: Change, mine: str, problem: Callable[[str, dict[str, Any]],
           str | None], now: int, fmt: Callable[[int], Any]) -> dict[str, Any]:
    if ch.record != mine:
        raise ChangeRefused(409, "record: asked for another record of this campaign (the edge "
                                 "box's store was replaced since): ask again")
    body = normalized(ch.kind, ch.body)
    if body["ts"] > now + FUTURE_SLACK_NS:
        raise ChangeRefused(400, f"ts: {fmt(body['ts'])} is in the future by this edge box's "
                                 "clock (its clock or the office's is wrong)")
    held = {"start": st.campaign_start(), "end": st.campaign_end()}
    if {k: ch.seen.get(k) for k in held} != held:
        raise ChangeRefused(409, "seen: the campaign's start or end changed on the edge box "
                                 "since the office asked (start "
                                 f"{fmt(held['start']) if held['start'] else '-'}, end "
                                 f"{fmt(held['end']) if held['end'] else '-'}): ask again")
    why = problem(ch.kind, body)
    if why:
        raise ChangeRefused(400, why)
    try:
        return commit(st, ch.kind, body, now=now, fmt=fmt)
    except ChangeRefused:
        if _made_already(st, ch.kind, body):   # applied before its outcome could be recorded
            return {"already": True}
        raise


def _made_already(st: RecordStore, kind: str, body: dict[str, Any]) -> bool:
    """Whether this very change is in the record already (a crash between applying a change and
    recording its outcome): the same hand reading, or its retraction."""
    if kind not in ("manual", "retract"):
        return False
    m = st.manual()
    m = m[(m["tag"] == body["tag"]) & (m["ts"] == body["ts"])]
    if kind == "manual":
        return bool(len(m)) and float(m["value"].iloc[0]) == body["value"]
    return bool(len(m)) and int(m["quality"].iloc[0]) == int(Quality.BAD)


def ensure_record_id(st: RecordStore) -> str:
    """This edge record's id (made once, kept and forwarded with the records): a change is
    meant for one record, not for whatever store later holds the same campaign name."""
    rid = st.get_meta(RECORD_ID)
    if not rid:
        rid = uuid.uuid4().hex
        st.set_meta(RECORD_ID, rid)
    return rid


def listing(changes: list[Change], done: dict[str, dict[str, Any]],
            key: bytes | None = None, site: str = "", campaign: str = ""
            ) -> list[dict[str, Any]]:
    """Each change with its state, newest first: pending (the edge box has not answered yet),
    applied or refused (with why). With ``key`` only the changes signed with it (this office's;
    a point anyone else wrote there is not listed)."""
    rows = []
    for ch in sorted(changes, key=lambda c: (c.at, c.id), reverse=True):
        if key is not None and not ch.signed_by(key, site, campaign):
            continue
        o = done.get(ch.id)
        rows.append({**ch.as_dict(), "state": o.get("state", "refused") if o else "pending",
                     "why": (o or {}).get("why"), "answered_at": (o or {}).get("at")})
    return rows


__all__ = ["KINDS", "Change", "ChangeRefused", "KeptStore", "RecordStore", "apply_all",
           "campaign_key", "check", "commit", "ensure_record_id", "from_point", "listing",
           "normalized", "outcomes", "since", "sign"]
