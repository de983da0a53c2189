"""The collector's one writer to the store: every reading of every source goes through it, in
batches committed every ``flush_ms`` in a worker thread, so a slow fsync never delays a poll.

Sources do not call it: the service hands it their readings (polled ones per tick, push ones as
:class:`~collector.sources.Rows`), so a source depends on :mod:`collector.sources` alone.
"""
from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from typing import Callable

import numpy as np

from cpaudit.collector.sources import Reading, Rows
from cpaudit.store import Batch, Quality, Reason, Store, StoreError
from cpaudit.store.keys import COLLECTOR, health_tag

log = logging.getLogger("cpaudit.collector")

# the most readings kept in memory while the store refuses them (a full disk, a locked file):
# ~30 B each, so ~60 MB. Beyond it, polled readings are not kept: each tag's first refused instant
# is written as a bad `lost` sample once the store accepts again, with the count, so the hole is
# explicit. Push sources' readings never count against it: MQTT messages and HJ 212 packets that
# ask for an answer are acknowledged only once committed, so the sender holds them (the broker's
# in-flight window bounds what is here).
MAX_PENDING_ROWS = 2_000_000
_TS_MAX = 2**63 - 1

# Group commit of acknowledged rows. A commit costs a fixed ~0.2 ms of SQLite alone, and several
# times that in a busy collector (the worker thread waits for the GIL at each step; the replies go
# out as one write each), so committing every few messages halves an MQTT source's throughput
# (measured: 8 rows a commit, 0.5x raw aiomqtt). When rows that wait for a commit arrive, the
# writer lingers while more keep arriving — it looks every LINGER_STEP_S — and commits as soon as
# a step brings none (the senders wait for us: a strict in-flight window, loggers awaiting their
# answer) or after LINGER_MAX_S at most. An acknowledgement is thus late by at most LINGER_MAX_S
# plus the commit, and by one step when the senders are waiting.
LINGER_STEP_S = 0.001
LINGER_MAX_S = 0.010


def _row_error(e: BaseException) -> bool:
    """An error about some row of the batch (a value SQLite cannot bind, a constraint), as
    against one about the store (a full disk, a lock, a broken file): then the batch is split to
    find the row; otherwise every row is kept and retried."""
    cause = e.__cause__ if isinstance(e, StoreError) and e.__cause__ is not None else e
    return isinstance(cause, (OverflowError, ValueError, TypeError, sqlite3.IntegrityError,
                              sqlite3.InterfaceError, sqlite3.DataError))


class Writer:
    """Collects batches and writes them to the store every ``flush_ms`` in a worker thread, so
    a slow fsync never delays a poll.

    It never loses a row it has taken: a batch the store refuses for its own reasons (a full
    disk) stays pending, in order, up to :data:`MAX_PENDING_ROWS`; a batch refused for one of its
    rows is split until the bad row is alone, and that row is rejected, counted and logged."""

    def __init__(self, store: Store, flush_ms: float) -> None:
        self.store = store
        self.flush_s = flush_ms / 1000
        self.pending: list[Batch] = []
        # readings as plain lists, turned into one Batch at flush — a numpy Batch per device and
        # tick, or per one-sample MQTT message, costs more than the rest of their handling
        self.rows: tuple[list[str], list[int], list[float], list[int], list[int]] = \
            ([], [], [], [], [])
        self.done: list[Callable[[], None]] = []
        self.written = 0
        self.commits = 0
        self.store_errors = 0            # failed writes (each retried)
        self.rejected = 0                # rows refused alone (a row no store can hold)
        self.lost = 0                    # polled rows not kept beyond MAX_PENDING_ROWS
        self.pending_rows = 0
        self.max_pending = MAX_PENDING_ROWS
        self._lost_first: dict[str, int] = {}    # tag -> first instant not kept
        self.failing_since: float | None = None
        self._last_error_log = 0.0
        self._logged_reject: set[str] = set()
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()

    def kick(self) -> None:
        """Commit now rather than at the next flush interval: acknowledgements are waiting, and the
        broker sends no more than its in-flight window (20 by default in Mosquitto) until they
        go out."""
        self._kick.set()

    def put_rows(self, tags: list[str], ts: list[int], values: list[float],
                 done: Callable[[], None] | None = None) -> None:
        """Queue good readings given as plain lists (finite values only); ``done`` is called, in
        order, once they are committed to the store (the MQTT source acknowledges there)."""
        r = self.rows
        r[0].extend(tags)
        r[1].extend(ts)
        r[2].extend(values)
        r[3].extend([0] * len(tags))
        r[4].extend([0] * len(tags))
        if done is not None:
            self.done.append(done)

    def put_push(self, rows: Rows) -> None:
        """Queue a push source's batch (any quality, in its order); its callbacks run, in order,
        once it is committed. Push rows never count against :data:`MAX_PENDING_ROWS`: what waits
        for a commit is acknowledged only then, so the sender holds it."""
        r = self.rows
        r[0].extend(rows.tags)
        r[1].extend(rows.ts)
        r[2].extend(rows.values)
        r[3].extend(rows.quality)
        r[4].extend(rows.reason)
        if rows.done:
            self.done.extend(rows.done)
            self.kick()      # the broker (the logger) waits for the acknowledgement

    def put_readings(self, ts: int, readings: list[Reading]) -> None:
        """Queue one tick's readings of a device (any quality) without building arrays."""
        if self.pending_rows + len(self.rows[0]) >= self.max_pending:
            self._drop(ts, readings)
            return
        r = self.rows
        for x in readings:
            r[0].append(x.tag)
            r[1].append(ts)
            r[2].append(x.value)
            r[3].append(x.quality)
            r[4].append(x.reason)

    def _drop(self, ts: int, readings: list[Reading]) -> None:
        if not self._lost_first:
            log.error("the store has refused writes for a while and %d readings wait in memory: "
                      "new polled readings are no longer kept; each tag's first one not kept is "
                      "recorded as `lost` when the store accepts again", self.pending_rows)
        self.lost += len(readings)
        for x in readings:
            self._lost_first.setdefault(x.tag, ts)

    def _lost_rows(self) -> list[Batch]:
        """Once the store accepts again: one bad `lost` sample per tag at its first instant not
        kept, and the count under the collector's health."""
        if not self._lost_first:
            return []
        tags = list(self._lost_first) + [health_tag(COLLECTOR, "lost_rows")]
        ts = list(self._lost_first.values()) + [min(self._lost_first.values())]
        n = len(tags)
        b = Batch(tags=tags, ts=np.array(ts, np.int64),
                  value=np.r_[np.full(n - 1, np.nan), float(self.lost)],
                  quality=np.r_[np.full(n - 1, Quality.BAD, np.int8), np.int8(Quality.GOOD)],
                  reason=np.r_[np.full(n - 1, Reason.LOST, np.int8), np.int8(Reason.NONE)])
        self._lost_first = {}
        return [b]

    def _reject(self, kind: str, n: int, example: str) -> None:
        self.rejected += n
        if kind not in self._logged_reject:
            self._logged_reject.add(kind)
            log.error("%d reading(s) no store can hold, rejected (%s), e.g. %s; further ones of "
                      "this kind are counted in cpaudit_store_rejected_rows_total", n, kind,
                      example)

    def _take_rows(self) -> list[Batch]:
        tags, ts, values, quality, reason = self.rows
        if not tags:
            return []
        self.rows = ([], [], [], [], [])
        try:
            t = np.array(ts, np.int64)
        except (OverflowError, TypeError, ValueError):
            ok = [isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= _TS_MAX for x in ts]
            bad = ok.count(False)
            first = ok.index(False)
            self._reject("time beyond int64", bad, f"{tags[first]}@{ts[first]!r}")
            keep = [i for i, k in enumerate(ok) if k]
            tags = [tags[i] for i in keep]
            t = np.array([ts[i] for i in keep], np.int64)
            values = [values[i] for i in keep]
            quality = [quality[i] for i in keep]
            reason = [reason[i] for i in keep]
        try:
            v = np.array(values, np.float64)
        except (OverflowError, TypeError, ValueError):
            v = np.array([_float(x) for x in values], np.float64)
        q = np.array(quality, np.int8)
        r = np.array(reason, np.int8)
        wrong = ~np.isfinite(v) & (q == Quality.GOOD)
        if wrong.any():      # never let one bad row wedge the writer: demote it, loudly
            log.error("%d non-finite values marked good; stored as bad/decode", int(wrong.sum()))
            q[wrong], r[wrong] = Quality.BAD, Reason.DECODE
        return [Batch(tags=tags, ts=t, value=v, quality=q, reason=r)]

    def _write(self, batch: Batch) -> int:
        """Write ``batch``; when the store refuses it for a row's sake, split it until that row
        is alone and reject it (runs in the worker thread)."""
        try:
            return self.store.write(batch)
        except Exception as e:  # noqa: BLE001 - sorted below: about a row, or about the store
            if not _row_error(e) or len(batch) == 0:
                raise
            if len(batch) == 1:
                self._reject(type(e.__cause__ or e).__name__, 1,
                             f"{batch.tags[0]}@{int(batch.ts[0])}: {e}")
                return 0
            half = len(batch) // 2
            return self._write(_slice(batch, 0, half)) + self._write(_slice(batch, half,
                                                                            len(batch)))

    async def flush(self) -> None:
        async with self._lock:
            if not self.pending and not self.done and not self.rows[0] and not self._lost_first:
                return
            batches, self.pending = self.pending + self._take_rows(), []
            done, self.done = self.done, []
            lost = self._lost_rows() if self.failing_since is None else []
            try:
                self.written += await asyncio.to_thread(self._write, Batch.concat(batches + lost))
                self.commits += 1
            except BaseException as e:
                self.pending[:0] = batches          # keep them for the next try, in order
                self.pending_rows = sum(len(b) for b in self.pending)
                self.done[:0] = done
                if lost:                            # not written: keep the record to come
                    for tag, t in zip(lost[0].tags[:-1], lost[0].ts[:-1].tolist()):
                        self._lost_first.setdefault(tag, t)
                if isinstance(e, Exception):
                    self.store_errors += 1
                    if self.failing_since is None:
                        self.failing_since = time.monotonic()
                raise
            if self.failing_since is not None:
                log.warning("the store accepts writes again after %.0f s; %d readings that "
                            "waited are written", time.monotonic() - self.failing_since,
                            sum(len(b) for b in batches))
                self.failing_since = None
            self.pending_rows = 0
            for cb in done:
                cb()

    async def _linger(self) -> None:
        """Kicked (rows wait for their commit): wait while more keep coming, within
        :data:`LINGER_MAX_S` (see there)."""
        end = time.monotonic() + LINGER_MAX_S
        n = len(self.rows[0])
        while time.monotonic() < end:
            await asyncio.sleep(LINGER_STEP_S)
            if len(self.rows[0]) == n:
                return
            n = len(self.rows[0])

    async def run(self) -> None:
        while True:
            # commit half-way between two flush instants of the grid (multiples of flush_s, like
            # the ticks): the store write, which holds the GIL for part of its time, then falls
            # between ticks rather than on them, where polls start
            now = time.time()
            due = (math.floor(now / self.flush_s - 0.5) + 1.5) * self.flush_s
            # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancel that comes as
            # the event is set (a kick at stop), and the writer would then never end
            try:
                async with asyncio.timeout(max(due - now, 0.0)):
                    await self._kick.wait()
            except TimeoutError:
                pass
            else:
                await self._linger()
            self._kick.clear()
            try:
                await self.flush()
            except Exception as e:  # noqa: BLE001 - the store failing must be loud but not fatal
                # once a minute, one line: a full disk must not fill the log too
                now_m = time.monotonic()
                if now_m - self._last_error_log >= 60:
                    self._last_error_log = now_m
                    log.error("store write failed (%s); %d readings wait in memory and are "
                              "retried every %.3g s (failed writes so far: %d)", e,
                              self.pending_rows, self.flush_s, self.store_errors)


def _float(x: object) -> float:
    try:
        return float(x)  # type: ignore[arg-type]
    except (OverflowError, TypeError, ValueError):
        return math.nan


def _slice(b: Batch, i: int, j: int) -> Batch:
    return Batch(tags=b.tags[i:j], ts=b.ts[i:j], value=b.value[i:j], quality=b.quality[i:j],
                 reason=b.reason[i:j])
