"""The forwarder: ships samples from the SQLite record to a sink (InfluxDB) with a durable cursor.

The cursor is the SQLite ``seq`` of the last sample the sink acknowledged, kept in the store's
``meta`` table and moved only after the sink answered success. So: nothing is skipped; after an
outage the forwarder catches up from the cursor; after a crash between the sink's acknowledgement
and the cursor update a batch is sent twice, which is harmless because a sample's series and
timestamp identify it (the write is idempotent). Nothing is ever deleted from SQLite: it is the
raw data of record.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

from cpaudit.store.base import PointsRejected, StoreError
from cpaudit.store.changes import ensure_record_id, since
from cpaudit.store.lineproto import format_lines, unrepresentable
from cpaudit.store.sample import Batch
from cpaudit.store.sqlite import SQLiteStore

log = logging.getLogger("cpaudit.forward")

CHANGES_EVERY_S = 5.0    # how often the changes asked for centrally are read


class Sink(Protocol):
    def write(self, batch: Batch) -> int: ...
    def close(self) -> None: ...


@dataclass
class ForwardStats:
    forwarded: int = 0
    batches: int = 0
    errors: int = 0
    last_error: str = ""
    last_forward_ns: int | None = None
    backlog: int = 0
    backoff_s: float = 0.0
    rollup_rows: int = 0         # per-minute rollup rows forwarded beside the samples
    rollup_refused: int = 0      # of which the sink refused (their samples are undeliverable)
    undeliverable: int = 0       # samples the sink refused for what they hold, recorded as such
    changes_applied: int = 0     # changes asked for centrally, applied to the record
    changes_refused: int = 0     # ... refused (with why, in the record)
    changes_malformed: int = 0   # points of the changes measurement that are no change (each read)
    changes_unverified: int = 0  # changes not signed with this campaign's key (not answered)
    changes_errors: int = 0      # reads of the changes that failed (forwarding went on)
    history: list[str] = field(default_factory=list)


class Forwarder:
    def __init__(self, source: SQLiteStore, sink: Sink, name: str = "influx", *,
                 batch_size: int = 5000, idle_s: float = 0.5, backoff_max_s: float = 30.0,
                 take_changes: Callable[[list[Any]], dict[str, int]] | None = None) -> None:
        self.source, self.sink, self.name = source, sink, name
        # the changes asked for centrally: read from the sink every CHANGES_EVERY_S and handed
        # to take_changes (store.changes.apply_all, bound to this campaign and its key); None:
        # this box takes no change from the office
        self.take_changes = take_changes if hasattr(sink, "changes") else None
        self._changes_read = 0.0
        self.batch_size, self.idle_s, self.backoff_max_s = batch_size, idle_s, backoff_max_s
        self.key = f"forward.{name}.cursor"
        self.rkey = f"forward.{name}.rollup_seq"
        self._meta_sent: dict[str, str] = {}
        self._status_sent = 0
        self._backlog_sent = -1
        self.stats = ForwardStats()
        self._logged_kinds: set[str] = set()
        self._why: dict[str, str | None] = {}     # tag -> why line protocol cannot carry it
        # a sink that takes line protocol as text (InfluxV1Store): formatted ahead, off its thread
        self._text_sink = all(hasattr(sink, a) for a in ("write_lines", "measurement", "scope"))

    @property
    def cursor(self) -> int:
        v = self.source.get_meta(self.key)
        return int(v) if v else 0

    def step(self) -> int:
        """Forward one batch after the cursor. Returns how many samples went; raises StoreError
        when the sink refused (the cursor does not move)."""
        cur = self.cursor
        last, batch = self.source.changes(cur, self.batch_size)
        if len(batch) == 0:
            self.stats.backlog = 0
            return 0
        self.deliver(batch)
        self._acknowledged(last, len(batch))
        return len(batch)

    def deliver(self, batch: Batch) -> None:
        """Write ``batch`` to the sink, so that one bad point never blocks the others: samples
        whose tag line protocol cannot carry are set aside first; when the sink refuses the rest
        for what they hold (HTTP 400/413/422), the batch is halved until each refused sample is
        alone. Those are recorded as undeliverable, with the sink's reason, and the cursor moves
        on. Any other failure (the sink unreachable, a wrong password) raises StoreError and
        the batch is retried whole. Writes are idempotent, so re-sending a half is harmless."""
        self._send(self._prepare(batch))

    def _prepare(self, batch: Batch) -> tuple[Batch, list[tuple[str, int, str]], str | None]:
        """(what can go, what cannot with why, its line-protocol body if the sink takes text):
        the CPU part of a delivery, done while the previous batch is in flight."""
        bad: list[tuple[str, int, str]] = []
        why = self._why
        present = set(batch.tags)
        for t in present.difference(why):
            why[t] = unrepresentable(t)
        if any(why[t] for t in present):
            keep = [i for i, t in enumerate(batch.tags) if why[t] is None]
            bad += [(t, int(ts), str(why[t])) for t, ts in zip(batch.tags, batch.ts.tolist())
                    if why[t] is not None]
            batch = _take(batch, keep)
        body = None
        if self._text_sink and len(batch):
            body = format_lines(batch, self.sink.measurement,  # type: ignore[attr-defined]
                                self.sink.scope)  # type: ignore[attr-defined]
        return batch, bad, body

    def _send(self, prepared: tuple[Batch, list[tuple[str, int, str]], str | None]) -> None:
        batch, bad, body = prepared
        if body is not None:
            try:
                self.sink.write_lines(body)  # type: ignore[attr-defined]
            except PointsRejected:
                self._isolate(batch, bad)
        else:
            self._isolate(batch, bad)
        if bad:
            self.source.mark_undeliverable(self.name, bad)
            self.stats.undeliverable += len(bad)
            kinds = sorted({r.split(":")[0] for _, _, r in bad})
            if not self._logged_kinds.issuperset(kinds):
                self._logged_kinds.update(kinds)
                log.error("%s: %d sample(s) the sink cannot take, recorded as undeliverable "
                          "(kept in SQLite), e.g. %s@%d: %s", self.name, len(bad), bad[0][0],
                          bad[0][1], bad[0][2])

    def _rollup_isolated(self, write: Any, frame: Any) -> None:
        """As :meth:`_isolate`, for rollup rows: a minute the sink refuses is left out (its
        samples are recorded undeliverable already) and the others go."""
        if len(frame) == 0:
            return
        try:
            write(frame)
        except PointsRejected as e:
            if len(frame) == 1:
                self.stats.rollup_refused += 1
                log.debug("%s: rollup row of %s refused: %s", self.name, frame["tag"].iloc[0],
                          e.detail)
                return
            half = len(frame) // 2
            self._rollup_isolated(write, frame.iloc[:half])
            self._rollup_isolated(write, frame.iloc[half:])

    def _isolate(self, batch: Batch, bad: list[tuple[str, int, str]]) -> None:
        if len(batch) == 0:
            return
        try:
            self.sink.write(batch)
        except PointsRejected as e:
            if len(batch) == 1:
                bad.append((batch.tags[0], int(batch.ts[0]), f"HTTP {e.status}: {e.detail}"))
                return
            half = len(batch) // 2
            self._isolate(_take(batch, range(half)), bad)
            self._isolate(_take(batch, range(half, len(batch))), bad)

    def _acknowledged(self, last: int, n: int) -> None:
        """The sink took the batch ending at seq ``last``: move the durable cursor, count it."""
        self.source.set_meta(self.key, str(last))
        self.stats.forwarded += n
        self.stats.batches += 1
        self.stats.last_forward_ns = time.time_ns()
        self.stats.backlog = self.source.max_seq() - last
        if time.time_ns() - self._status_sent >= 10 * 10**9:     # catching up: say how far
            self._send_status()

    def drain(self) -> int:
        """Forward until the backlog is empty (or the sink fails: StoreError).

        Pipelined: batch k+1 is read from SQLite while batch k is in flight; the cursor still
        moves only after the sink acknowledged each batch, in order."""
        total = 0
        last, batch = self.source.changes(self.cursor, self.batch_size)
        prepared = self._prepare(batch) if len(batch) else None
        with ThreadPoolExecutor(1, thread_name_prefix=f"forward-{self.name}") as ex:
            while prepared is not None:
                fut = ex.submit(self._send, prepared)
                # read and format the next batch while this one is in flight
                nxt_last, nxt = self.source.changes(last, self.batch_size)
                nxt_prepared = self._prepare(nxt) if len(nxt) else None
                fut.result()                      # StoreError: the cursor stays where it was
                self._acknowledged(last, len(batch))
                total += len(batch)
                last, batch, prepared = nxt_last, nxt, nxt_prepared
        self.stats.backlog = max(0, self.source.max_seq() - last)
        self.forward_records()
        return total

    def forward_records(self) -> None:
        """Beside the samples, what a central reader needs to answer as the edge does: the
        per-minute rollup of the minutes the forwarded samples touched (its own cursor, moved
        after the sink took them) and the campaign's records (start, end, configuration …),
        sent again when they change. Sinks without these (a plain time-series sink) get the
        samples only."""
        write_rollup = getattr(self.sink, "write_rollup", None)
        if write_rollup is None:
            return
        rcur = int(self.source.get_meta(self.rkey) or 0)
        if self.source.max_seq() > rcur:
            newest, frame = self.source.rollup_changes(rcur)
            if len(frame):
                for t in set(frame["tag"]).difference(self._why):
                    self._why[t] = unrepresentable(t)
                frame = frame[[self._why[t] is None for t in frame["tag"]]]
                self._rollup_isolated(write_rollup, frame)
            self.source.set_meta(self.rkey, str(newest))
            self.stats.rollup_rows += len(frame)
        if (self.take_changes is not None
                and time.monotonic() - self._changes_read >= CHANGES_EVERY_S):
            self.read_changes()
        items = self.source.meta_items()
        if items != self._meta_sent:
            self.sink.write_meta(items)  # type: ignore[attr-defined]
            self._meta_sent = items
        if (time.time_ns() - self._status_sent >= 10 * 10**9
                or self.stats.backlog != self._backlog_sent):
            self._send_status()

    def read_changes(self) -> None:
        """Read this campaign's changes asked for centrally and hand them over; a point that is
        no change is counted and logged (once per kind of fault), never applied."""
        assert self.take_changes is not None
        self._changes_read = time.monotonic()
        ensure_record_id(self.source)     # forwarded below: the office signs changes for it
        try:
            got = self.sink.changes(since(self.source, time.time_ns()))  # type: ignore[attr-defined]
        except StoreError as e:
            # a user that may write but not read the database: the samples still go
            self.stats.changes_errors += 1
            if "changes-read" not in self._logged_kinds:
                self._logged_kinds.add("changes-read")
                log.error("%s: cannot read the changes asked for centrally (%s); forwarding "
                          "goes on, the changes wait", self.name, e)
            return
        faulty = [g for g in got if isinstance(g, str)]
        if faulty:
            self.stats.changes_malformed += len(faulty)
            if not self._logged_kinds.issuperset(f"change: {w}" for w in faulty):
                self._logged_kinds.update(f"change: {w}" for w in faulty)
                log.error("%s: %d point(s) of the changes measurement are no change, ignored: "
                          "%s", self.name, len(faulty), faulty[0])
        try:
            counts = self.take_changes([g for g in got if not isinstance(g, str)])
        except Exception:  # noqa: BLE001 - the changes never stop the samples
            self.stats.changes_errors += 1
            log.exception("%s: applying the changes asked for centrally failed; forwarding "
                          "goes on", self.name)
            return
        self.stats.changes_applied += counts.get("applied", 0)
        self.stats.changes_refused += counts.get("refused", 0)
        self.stats.changes_unverified += counts.get("unverified", 0)
        if counts.get("unverified"):
            self._status_sent = 0         # the office hears of it with the next records

    def _send_status(self) -> None:
        write_status = getattr(self.sink, "write_status", None)
        if write_status is None:
            return
        now = time.time_ns()
        last = self.source.quick_stats()["last_ts"]
        write_status({"backlog": self.stats.backlog, "forwarded": self.stats.forwarded,
                      "newest_sample_ts": float(last) if last is not None else math.nan,
                      "undeliverable": self.stats.undeliverable,
                      "accepts_changes": float(self.take_changes is not None),
                      "changes_unverified": float(self.stats.changes_unverified)}, now)
        self._status_sent, self._backlog_sent = now, self.stats.backlog

    def run(self, stop: threading.Event) -> None:
        backoff = 0.0
        logged = False
        while not stop.is_set():
            try:
                self.drain()
            except StoreError as e:
                self.stats.errors += 1
                self.stats.last_error = str(e)
                self.stats.backlog = self.source.max_seq() - self.cursor
                backoff = min(self.backoff_max_s, max(0.5, backoff * 2))
                self.stats.backoff_s = backoff
                if not logged:
                    log.warning("%s: forwarding paused (%s); retrying with backoff, backlog %d",
                                self.name, e, self.stats.backlog)
                    logged = True
                stop.wait(backoff)
                continue
            if logged:
                log.warning("%s: forwarding resumed; %d samples still to catch up",
                            self.name, self.stats.backlog)
                logged = False
            backoff = 0.0
            self.stats.backoff_s = 0.0
            stop.wait(self.idle_s)


def resend(source: SQLiteStore, sinks: Sequence[str] | None = None) -> dict[str, int]:
    """Forward the whole record again, from its first sample, to ``sinks`` (names; None = every
    sink this record has forwarded to): their cursors go back to the start, the samples already
    forwarded stay (a write is idempotent on the series and time). What an edge box needs after
    an upgrade that changed the series (site and campaign tags since 0.1: the points forwarded
    before carry neither, and a central reader scoped to the campaign does not see them).
    A running collector picks the reset up at its next batch. Returns, per sink, where its
    cursor stood."""
    held = {k[len("forward."):-len(".cursor")]: int(source.get_meta(k) or 0)
            for k in source.meta_keys() if k.startswith("forward.") and k.endswith(".cursor")}
    names = list(held) if sinks is None else list(sinks)
    for n in names:
        source.set_meta(f"forward.{n}.cursor", "0")
        source.set_meta(f"forward.{n}.rollup_seq", "0")
    return {n: held.get(n, 0) for n in names}


def _take(b: Batch, idx: "range | list[int]") -> Batch:
    ix = list(idx)
    return Batch(tags=[b.tags[i] for i in ix], ts=b.ts[ix], value=b.value[ix],
                 quality=b.quality[ix], reason=b.reason[ix])
