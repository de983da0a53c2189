"""The collector service: one poll loop per device on aligned ticks, one writer to the store.

Every scheduled tick of every device ends as samples in the store: good, uncertain/late, or bad
with the reason (timeout, exception, connection, decode, overrun). Health goes in as samples under
the reserved prefix ``_health.<device>.`` so the web can show it from the store.
"""
from __future__ import annotations

import asyncio
import logging
import functools
import gc
import math
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from cpaudit.collector.clock import Clock, TickScheduler, next_tick
from cpaudit.collector.errors import SourceError
from cpaudit.collector.modbus import Link, ModbusDevice, Reading
from cpaudit.config import Config
from cpaudit.config.models import MODBUS_DEVICES, InfluxV1Sink, MqttDevice
from cpaudit.store import Batch, Quality, Reason, SQLiteStore, Store, StoreError
from cpaudit.store.forward import Forwarder, Sink

log = logging.getLogger("cpaudit.collector")

HEALTH_PREFIX = "_health."
BACKOFF_MAX_S = 30.0
# After a restart, the missed ticks are recorded one row per tag and tick while that takes no more
# than this many rows in all (a restart of the demo site after ~20 min); beyond it, each tag gets
# one `down` row at its first missed tick and each device one gap record (`_health.<device>.gap_s`:
# the length of the hole in seconds, reason `down`), so memory and time stay bounded by the devices,
# not by the down time (2,000 devices down for an hour would be 36 M rows). The same bound holds
# for ticks skipped by an overrun or a clock step.
TICK_ROWS_BUDGET = 100_000
OVERRUN_TICK_ROWS = 60         # skipped ticks of one device recorded row by row, beyond: a gap record
CLOCK_STEP_NS = 1_000_000_000  # wall minus monotonic moving by more than this is a step (NTP slews
#                                at most 500 ppm, 0.5 ms a second; ntpd steps beyond 128 ms)


@dataclass
class DeviceHealth:
    name: str
    polls: int = 0
    good_polls: int = 0
    consecutive_failures: int = 0
    last_good_ns: int | None = None
    last_latency_ms: float = math.nan
    last_lateness_ms: float = math.nan
    backoff_until_ns: int = 0
    backoff_s: float = 0.0
    logged_failure: bool = False

    @property
    def state(self) -> str:
        if self.polls == 0:
            return "starting"
        return "online" if self.consecutive_failures == 0 else "offline"


# the most readings kept in memory while the store refuses them (a full disk, a locked file):
# ~30 B each, so ~60 MB. Beyond it, polled readings are not kept: each tag's first refused instant
# is written as a bad `lost` sample once the store accepts again, with the count, so the hole is
# explicit. MQTT readings never count against it: they are acknowledged only once committed, so
# the broker holds them (its in-flight window bounds what is here).
MAX_PENDING_ROWS = 2_000_000
_TS_MAX = 2**63 - 1


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
        tags = list(self._lost_first) + [f"{HEALTH_PREFIX}collector.lost_rows"]
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

    async def run(self) -> None:
        while True:
            # commit half-way between two flush instants of the grid (multiples of flush_s, like
            # the ticks): the store write, which holds the GIL for part of its time, then falls
            # between ticks rather than on them, where polls start
            now = time.time()
            due = (math.floor(now / self.flush_s - 0.5) + 1.5) * self.flush_s
            try:
                await asyncio.wait_for(self._kick.wait(), max(due - now, 0.0))
            except asyncio.TimeoutError:
                pass
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


# what a gateway's tick callback hands its loop: (t_req, live devices, connection, sent requests)
_Due = asyncio.Future[tuple[int, list[ModbusDevice], Any, list[Any] | None]]


class Collector:
    def __init__(self, cfg: Config, store: Store, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.clock = clock or Clock()
        self.ticks = TickScheduler(self.clock)
        self.writer = Writer(store, cfg.collector.flush_ms)
        self._late_ns = int(cfg.collector.late_tolerance_ms * 1e6)
        self.links: dict[tuple[object, ...], Link] = {}
        self.devices: list[ModbusDevice] = []
        self.health: dict[str, DeviceHealth] = {}
        self.mqtt: list["MqttSource"] = []
        for d in cfg.devices:
            if isinstance(d, MODBUS_DEVICES):
                link = self.links.setdefault(d.link_key, Link(d))
                self.devices.append(ModbusDevice(d, link))
                self.health[d.name] = DeviceHealth(d.name)
            elif isinstance(d, MqttDevice):
                from cpaudit.collector.mqtt import MqttSource
                self.mqtt.append(MqttSource(d, self.writer, self.clock))
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.forwarders: list[Forwarder] = []
        self._tick_starts: dict[int, list[int]] = {}     # tick -> poll start times [ns]
        self._skews: list[float] = []                    # recent per-tick spreads [ms]
        self.metrics_server: asyncio.AbstractServer | None = None
        self.clock_steps: dict[str, int] = {}
        self._clock_offset = self.clock.now_ns() - time.monotonic_ns()
        self._last_step_at: int | None = None
        self._garbage = 0
        self._garbage_logged = -math.inf

    def interval_ns(self, dev: ModbusDevice) -> int:
        return int(round((dev.cfg.interval_s or self.cfg.collector.interval_s) * 1e9))

    async def _device_loop(self, dev: ModbusDevice, start_ns: int) -> None:
        interval = self.interval_ns(dev)
        h = self.health[dev.cfg.name]
        tick = next_tick(start_ns, interval)
        while not self._stopping:
            if not await self.clock.sleep_until(tick, interval):
                # the wall clock went back: take up the schedule on the new time at once
                # rather than waiting the step out with no polls
                self._check_clock()
                tick = next_tick(self.clock.now_ns(), interval)
                continue
            t_req = self.clock.now_ns()
            polled = t_req >= h.backoff_until_ns
            if not polled:
                readings = dev.all_bad(Reason.CONNECTION)
            else:
                try:
                    readings = await dev.poll()
                except asyncio.CancelledError:
                    self._record_stop(dev, tick, interval)
                    raise
            t_done = self.clock.now_ns()
            self._after_poll(dev, readings, tick, t_req, t_done, polled)
            tick = self._next(dev, tick, t_done, interval)

    async def _gateway_loop(self, link: Link, devs: list[ModbusDevice], start_ns: int) -> None:
        """A pipelined gateway: at each tick, every unit id's requests are written back to back
        (no await between them), then the replies are collected, each under its own timeout, so
        a dead unit id delays no other. The writing happens in the tick's scheduler callback, with
        every other connected gateway's (:class:`TickScheduler`), so the skew between devices is
        the time of the socket writes, not of the tasks waking one after another."""
        interval = self.interval_ns(devs[0])
        tick = next_tick(start_ns, interval)
        loop = asyncio.get_running_loop()
        while not self._stopping:
            due: _Due = \
                loop.create_future()
            self.ticks.at(tick, functools.partial(self._gateway_send, link, devs, due))
            t_req, live, conn, sent = await due
            if tick - t_req > interval:
                # the wall clock went back while waiting (the scheduler fires on monotonic time):
                # the poll is stamped with the tick on the new time
                self._check_clock()
                tick = t_req // interval * interval
            results: dict[str, list[Reading]] = {
                d.cfg.name: d.all_bad(Reason.CONNECTION) for d in devs if d not in live}
            if live and sent is None:       # not connected at the tick: connect now, then send
                try:
                    conn = await link.ensure(devs[0].cfg.name)
                    sent = [d.send(conn) for d in live]
                except SourceError as e:
                    results.update({d.cfg.name: d.all_bad(e.reason) for d in live})
            if sent is not None:
                try:
                    done = await asyncio.gather(*(d.finish(conn, p) for d, p in zip(live, sent)))
                except asyncio.CancelledError:
                    for d in devs:
                        self._record_stop(d, tick, interval)
                    raise
                results.update({d.cfg.name: r for d, r in zip(live, done)})
            t_done = self.clock.now_ns()
            nxt = tick
            for d in devs:
                self._after_poll(d, results[d.cfg.name], tick, t_req, t_done, d in live)
                nxt = self._next(d, tick, t_done, interval)
            tick = nxt

    def _gateway_send(self, link: Link, devs: list[ModbusDevice],
                      due: _Due
                      ) -> None:
        """At the tick (scheduler callback): queue every live unit id's requests on the gateway's
        connection, to be written with the other gateways' once all have queued theirs."""
        if due.cancelled():
            return
        t_req = self.clock.now_ns()
        live = [d for d in devs if t_req >= self.health[d.cfg.name].backoff_until_ns]
        conn = link.client if link.client is not None and link.client.connected else None
        sent = None
        if conn is not None and live:
            conn.cork()
            sent = [d.send(conn) for d in live]

            def write() -> None:
                at = conn.uncork()
                for d in live:
                    d.sent_ns = at
            self.ticks.after(write)
        due.set_result((t_req, live, conn, sent))

    def _record_stop(self, dev: ModbusDevice, tick: int, interval: int) -> None:
        """Stopped mid-poll: the ticks already due are recorded as missing, not lost."""
        self._record_gap(dev, tick, next_tick(self.clock.now_ns(), interval), interval,
                         Reason.DOWN, OVERRUN_TICK_ROWS)

    def _after_poll(self, dev: ModbusDevice, readings: list[Reading], tick: int, t_req: int,
                    t_done: int, polled: bool) -> None:
        h = self.health[dev.cfg.name]
        if polled:
            # the skew is when the read actually started (after waiting for a shared link)
            t_req = dev.sent_ns or t_req
            self._tick_starts.setdefault(tick, []).append(t_req)
        good = [r for r in readings if r.quality == Quality.GOOD]
        if t_done - tick > self._late_ns:
            readings = [Reading(r.tag, r.value, Quality.UNCERTAIN, Reason.LATE)
                        if r.quality == Quality.GOOD else r for r in readings]
        self._account(h, dev, good, readings, tick, t_req, t_done)
        self.writer.put_readings(tick, readings)
        self.writer.put_readings(tick, self._health_readings(h, t_req, t_done, tick))

    def _next(self, dev: ModbusDevice, tick: int, t_done: int, interval: int) -> int:
        nxt = tick + interval
        if t_done >= nxt:  # overrun: every skipped tick is recorded, never silently lost
            skipped_to = next_tick(t_done, interval)
            # a clock step forward since the tick: the skipped ticks never came in real time
            self._check_clock()
            reason = Reason.CLOCK if self._stepped_since(tick) else Reason.OVERRUN
            self._record_gap(dev, nxt, skipped_to, interval, reason, OVERRUN_TICK_ROWS)
            nxt = skipped_to
        return nxt

    def _record_gap(self, dev: ModbusDevice, first: int, upto: int, interval: int,
                    reason: Reason, row_limit: int) -> int:
        """Ticks ``first``, ``first + interval`` … before ``upto`` of ``dev`` had no reading: one
        bad row per tag and tick while they are at most ``row_limit``; else one bad row per tag
        at ``first`` and a gap record of the device (bounded output, whatever the hole). The rows
        queued."""
        n = (upto - first) // interval
        if n <= 0:
            return 0
        if n <= row_limit:
            bad = dev.all_bad(reason)
            for t in range(first, upto, interval):
                self.writer.put_readings(t, bad)
            return n * len(bad)
        self.writer.put_readings(first, dev.all_bad(reason))
        self.writer.put_readings(first, [Reading(f"{HEALTH_PREFIX}{dev.cfg.name}.gap_s",
                                                 (upto - first) / 1e9, Quality.BAD, reason)])
        return len(dev.tags) + 1

    def _account(self, h: DeviceHealth, dev: ModbusDevice, good: list[Reading],
                 readings: list[Reading], tick: int, t_req: int, t_done: int) -> None:
        h.polls += 1
        h.last_latency_ms = (t_done - t_req) / 1e6
        h.last_lateness_ms = (t_req - tick) / 1e6
        if good:
            h.good_polls += 1
            if h.consecutive_failures:
                log.warning("%s: back online after %d failed polls", dev.cfg.name,
                            h.consecutive_failures)
            h.consecutive_failures = 0
            h.backoff_until_ns = 0
            h.backoff_s = 0.0
            h.last_good_ns = tick
            h.logged_failure = False
            return
        h.consecutive_failures += 1
        reason = readings[0].reason.label if readings else "none"
        if not h.logged_failure:
            log.warning("%s: poll failed (%s); repeats are logged at debug level until it "
                        "recovers", dev.cfg.name, reason)
            h.logged_failure = True
        if h.consecutive_failures >= 3 and readings and readings[0].reason == Reason.CONNECTION:
            backoff = min(BACKOFF_MAX_S, 2 ** (h.consecutive_failures - 3))
            h.backoff_until_ns = t_done + int(backoff * 1e9)
            h.backoff_s = backoff

    def _health_readings(self, h: DeviceHealth, t_req: int, t_done: int, tick: int
                         ) -> list[Reading]:
        p = f"{HEALTH_PREFIX}{h.name}."
        backoff_s = max(0.0, (h.backoff_until_ns - t_done) / 1e9)
        return [
            Reading(p + "online", 1.0 if h.consecutive_failures == 0 else 0.0),
            Reading(p + "latency_ms", (t_done - t_req) / 1e6),
            Reading(p + "lateness_ms", (t_req - tick) / 1e6),
            Reading(p + "consecutive_failures", float(h.consecutive_failures)),
            Reading(p + "backoff_s", backoff_s),
            Reading(p + "polls", float(h.polls)),
            Reading(p + "good_polls", float(h.good_polls)),
        ]

    def skew_stats(self) -> dict[str, float]:
        """Spread of poll start times across devices within a tick [ms], over recent ticks."""
        if not self._skews:
            return {"p50_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan, "ticks": 0}
        a = np.asarray(self._skews)
        return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
                "max_ms": float(a.max()), "ticks": len(a)}

    async def _collector_health(self) -> None:
        """Each tick, the skew of the tick before (all its polls have started by now)."""
        interval = int(self.cfg.collector.interval_s * 1e9)
        while True:
            tick = next_tick(self.clock.now_ns(), interval)
            await self.clock.sleep_until(tick)
            done = [t for t in self._tick_starts if t < tick]
            readings = []
            for t in sorted(done):
                starts = self._tick_starts.pop(t)
                if len(starts) >= 2:
                    spread = (max(starts) - min(starts)) / 1e6
                    self._skews.append(spread)
                    readings.append((t, spread))
            del self._skews[:-3600]
            for t, spread in readings:
                self.writer.put_readings(t, [Reading(f"{HEALTH_PREFIX}collector.skew_ms", spread)])
            w = self.writer
            p = f"{HEALTH_PREFIX}collector."
            self.writer.put_readings(tick, [
                Reading(p + "store_pending_rows", float(w.pending_rows + len(w.rows[0]))),
                Reading(p + "store_write_errors", float(w.store_errors)),
                Reading(p + "store_ok", 1.0 if w.failing_since is None else 0.0)])

    def _last_of(self) -> dict[str, int]:
        """Each device tag's last stored instant (one read for all; runs in a thread)."""
        last_all = self.store.last([t for d in self.devices for t in d.tags])
        return dict(zip(last_all["tag"], last_all["ts"].tolist()))

    def _record_downtime(self, now: int, last_of: dict[str, int] | None = None) -> None:
        """After a restart, the ticks each device missed while the collector was not running are
        recorded as bad with reason ``down``: the gap is explicit and limited to the down time.
        ``now`` is the instant the poll loops start from, so the two meet without a hole. Row by
        row while all of it fits :data:`TICK_ROWS_BUDGET`, else one row per tag and a gap record
        per device, so a long outage of many devices costs no more than a short one."""
        holes = []
        rows = 0
        if last_of is None:
            last_of = self._last_of()
        for dev in self.devices:
            interval = self.interval_ns(dev)
            seen = [last_of[t] for t in dev.tags if t in last_of]
            if not seen:
                continue
            first_missing = int(max(seen)) + interval
            upto = next_tick(now, interval)              # the first tick this run will poll
            n = (upto - first_missing) // interval
            if n > 0:
                holes.append((dev, first_missing, upto, interval))
                rows += n * len(dev.tags)
        if not holes:
            return
        per_tick = rows <= TICK_ROWS_BUDGET
        longest = max((u - f) / 1e9 for _, f, u, _ in holes)
        log.info("%d device(s) missed ticks while the collector was down (longest %.0f s); "
                 "recorded as `down`%s", len(holes), longest,
                 "" if per_tick else " as one gap record per device (too long to list tick by "
                 "tick)")
        for dev, first, upto, interval in holes:
            self._record_gap(dev, first, upto, interval, Reason.DOWN,
                             (upto - first) // interval if per_tick else 0)

    # -- the clock ----------------------------------------------------------------------------
    def _stepped_since(self, t_ns: int) -> bool:
        return self._last_step_at is not None and self._last_step_at >= t_ns

    def _check_clock(self) -> int:
        """The step of the wall clock against the monotonic one since the last check [ns] (0 when
        within :data:`CLOCK_STEP_NS`); a step is counted, logged and recorded as
        ``_health.collector.clock_step_s`` (signed seconds) at the new time."""
        offset = self.clock.now_ns() - time.monotonic_ns()
        step = offset - self._clock_offset
        self._clock_offset = offset
        if abs(step) <= CLOCK_STEP_NS:
            return 0
        now = self.clock.now_ns()
        way = "forward" if step > 0 else "back"
        self.clock_steps[way] = self.clock_steps.get(way, 0) + 1
        self._last_step_at = now
        log.warning("the wall clock stepped %s by %.3f s (against the monotonic clock); %s",
                    way, abs(step) / 1e9,
                    "the ticks it jumped over are recorded as `clock`, one record per device"
                    if step > 0 else "polling goes on at once on the new time; readings on "
                    "instants already stored keep the earlier ones (counted as ignored)")
        self.writer.put_readings(now, [Reading(f"{HEALTH_PREFIX}collector.clock_step_s",
                                               step / 1e9)])
        return step

    async def _clock_watch(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self._check_clock()

    def garbage_frames(self) -> int:
        return self._garbage

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
        """pymodbus lets an unframeable reply escape its protocol, and asyncio prints a full
        traceback for each ("Fatal error: protocol.data_received() call failed"): one line a
        minute and a counter instead; the connection is dropped and re-made as for any error."""
        if str(ctx.get("message", "")).startswith("Fatal error: protocol.data_received()"):
            self._garbage += 1
            now = time.monotonic()
            if now - self._garbage_logged >= 60:
                self._garbage_logged = now
                exc = ctx.get("exception")
                log.warning("a Modbus peer sent bytes that could not be framed (%s: %s); the "
                            "connection is re-made (%d such so far, counted in "
                            "cpaudit_modbus_garbage_total)", type(exc).__name__, exc,
                            self._garbage)
            return
        loop.default_exception_handler(ctx)

    def _sinks(self) -> list[Forwarder]:
        if not self.cfg.sinks:
            return []
        if not isinstance(self.store, SQLiteStore):
            raise ValueError("forwarding needs the SQLite store as the record")
        out = []
        # every point carries its site and campaign: many edge boxes share one database
        scope = {"site": self.cfg.campaign.site, "campaign": self.cfg.campaign.name}
        for s in self.cfg.sinks:
            sink: Sink
            if isinstance(s, InfluxV1Sink):
                from cpaudit.store.influx import InfluxV1Store
                pw = os.environ.get(s.password_env) if s.password_env else None
                sink = InfluxV1Store(s.url, s.database, measurement=s.measurement,
                                     username=s.username, password=pw, create=False,
                                     scope=scope)
            else:
                from cpaudit.store.influx import InfluxV2Sink
                sink = InfluxV2Sink(s.url, os.environ.get(s.token_env, ""), s.org, s.bucket,
                                    s.measurement, scope=scope)
            out.append(Forwarder(self.store, sink, s.name, batch_size=s.batch_size))
        return out

    async def _sink_health(self, forwarders: list[Forwarder]) -> None:
        interval = int(self.cfg.collector.interval_s * 1e9)
        while True:
            tick = next_tick(self.clock.now_ns(), interval)
            await self.clock.sleep_until(tick)
            readings = []
            for f in forwarders:
                p = f"{HEALTH_PREFIX}sink.{f.name}."
                last = f.stats.last_forward_ns
                readings += [
                    Reading(p + "backlog", float(f.stats.backlog)),
                    Reading(p + "errors", float(f.stats.errors)),
                    Reading(p + "undeliverable", float(f.stats.undeliverable)),
                    Reading(p + "forwarded", float(f.stats.forwarded)),
                    Reading(p + "backoff_s", f.stats.backoff_s),
                    Reading(p + "since_last_forward_s",
                            (tick - last) / 1e9 if last else math.nan,
                            Quality.GOOD if last else Quality.BAD,
                            Reason.NONE if last else Reason.CONNECTION),
                ]
            self.writer.put_readings(tick, readings)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set (or the task is cancelled); flush what was collected."""
        if isinstance(self.store, SQLiteStore) and self.store.get_meta("campaign_start") is None:
            try:
                self.store.set_meta("campaign_start", str(time.time_ns()))
                self.store.set_meta("campaign_name", self.cfg.campaign.name)
            except StoreError as e:
                log.error("%s; samples are kept in memory and written when the store accepts "
                          "them", e)
        # the devices, plans and config live as long as the collector: out of the collector's
        # way (a full collection walking them paused the loop for ~150 ms at 2,000 devices)
        gc.collect()
        gc.freeze()
        start_ns = self.clock.now_ns()
        self._tasks = []
        gateways: dict[int, list[ModbusDevice]] = {}
        for d in self.devices:
            if d.link.pipelined:
                gateways.setdefault(id(d.link), []).append(d)
            else:
                self._tasks.append(asyncio.create_task(self._device_loop(d, start_ns),
                                                       name=d.cfg.name))
        for devs in gateways.values():
            by_interval: dict[int, list[ModbusDevice]] = {}
            for d in devs:
                by_interval.setdefault(self.interval_ns(d), []).append(d)
            for group in by_interval.values():
                self._tasks.append(asyncio.create_task(
                    self._gateway_loop(group[0].link, group, start_ns), name=group[0].link.label))
        # polling has started (its readings wait in memory); what the store last holds is read
        # before the writer commits any of them, so the gap since is found and recorded without
        # holding the polls up (2,000 devices: 40 k tags, ~1-2 s of reading)
        try:
            last_of = await asyncio.to_thread(self._last_of)
        except asyncio.CancelledError:
            for task in self._tasks:
                task.cancel()
            raise
        except StoreError as e:
            log.error("%s; the ticks missed while the collector was down are not recorded", e)
            last_of = {}
        self._record_downtime(start_ns, last_of)
        writer = asyncio.create_task(self.writer.run(), name="writer")
        self.forwarders = self._sinks()
        fwd_stop = threading.Event()
        threads = [threading.Thread(target=f.run, args=(fwd_stop,), name=f"forward-{f.name}",
                                    daemon=True) for f in self.forwarders]
        for t in threads:
            t.start()
        if self.forwarders:
            self._tasks.append(asyncio.create_task(self._sink_health(self.forwarders)))
        self._tasks.append(asyncio.create_task(self._collector_health()))
        self._tasks.append(asyncio.create_task(self._clock_watch()))
        asyncio.get_running_loop().set_exception_handler(self._loop_exception)
        if self.cfg.collector.metrics_port is not None:
            from cpaudit.collector.metrics import serve
            self.metrics_server = await serve(self, self.cfg.collector.metrics_host,
                                              self.cfg.collector.metrics_port)
        for m in self.mqtt:
            self._tasks.append(asyncio.create_task(m.run(), name=m.cfg.name))
            self._tasks.append(asyncio.create_task(m.health_loop(self.cfg.collector.interval_s)))
        from cpaudit.collector.hj212_server import hj212_sources      # HJ 212 data loggers (push)
        self.hj212 = hj212_sources(self.cfg, self.writer, self.clock, self.store)
        for h in self.hj212:
            await h.start()
            self._tasks.append(asyncio.create_task(h.run(), name=h.label))
            self._tasks.append(asyncio.create_task(h.health_loop(self.cfg.collector.interval_s)))
        log.info("collecting from %d Modbus devices every %.3g s and %d MQTT connections",
                 len(self.devices), self.cfg.collector.interval_s, len(self.mqtt))
        try:
            if stop is None:
                await asyncio.gather(*self._tasks)  # runs until cancelled
            else:
                await stop.wait()
        finally:
            self._stopping = True
            if self.metrics_server is not None:
                self.metrics_server.close()
            for task in self._tasks + [writer]:
                task.cancel()
            await asyncio.gather(*self._tasks, writer, return_exceptions=True)
            try:
                await self.writer.flush()
            except StoreError as e:
                n = sum(len(b) for b in self.writer.pending)
                log.error("stopping with %d samples the store refused (%s); unacknowledged MQTT "
                          "messages will be redelivered, polled samples are lost", n, e)
            fwd_stop.set()
            for t in threads:
                await asyncio.to_thread(t.join, 10)
            for f in self.forwarders:      # a last catch-up, so a clean stop leaves no backlog
                try:
                    await asyncio.wait_for(asyncio.to_thread(f.drain), 10)
                except (StoreError, asyncio.TimeoutError) as e:
                    log.warning("%s: %d samples not forwarded at stop (%s); they stay in the "
                                "store and go at the next start", f.name, f.stats.backlog, e)
                f.sink.close()
            for d in self.devices:
                d.close()
