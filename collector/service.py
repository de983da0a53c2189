"""The collector service: runs a list of sources without knowing their protocol, and one writer
to the store.

Polled sources (:class:`~collector.sources.PolledSource`) get one poll loop each on aligned ticks
(sources sharing a pipelined link, one loop per link and interval); push sources
(:class:`~collector.sources.PushSource`) are iterated, their batches handed to the writer as they
come. :func:`collector.kinds.build_sources` makes the sources from the config; a
:class:`~collector.sources.Companion` (the forwarding to the sinks, built by ``cpaudit collect``)
runs beside.

Every scheduled tick of every polled source ends as samples in the store: good, uncertain/late, or
bad with the reason (timeout, exception, connection, decode, overrun). Health goes in as samples
under the reserved prefix ``_health.<device>.`` (:func:`store.keys.health_tag`) so the web can
show it from the store.
"""
from __future__ import annotations

import asyncio
import functools
import gc
import logging
import math
import time
from contextlib import aclosing
from typing import Any, Sequence

import numpy as np

from cpaudit.collector.clock import Clock, TickScheduler, next_tick
from cpaudit.collector.errors import SourceError
from cpaudit.collector.kinds import Sources, build_sources
from cpaudit.collector.sources import (Companion, DeviceHealth, PipelinedSource, PolledSource, PushSource,
                               Reading, SharedLink, shared_link)
from cpaudit.collector.writer import Writer
from cpaudit.config import Config
from cpaudit.store import Quality, Reason, SQLiteStore, Store, StoreError
from cpaudit.store.keys import COLLECTOR, health_tag

log = logging.getLogger("cpaudit.collector")

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


# what a gateway's tick callback hands its loop: (t_req, live devices, connection, sent requests)
_Due = asyncio.Future[tuple[int, list[PipelinedSource], Any, list[Any] | None]]


class Collector:
    """``Collector(cfg, store)`` collects from every device of the config into ``store``;
    ``beside`` runs companions next to it (the forwarders to the config's sinks: see
    :mod:`collector.forwarding`; without them the sinks are not fed). ``sources``: what to
    collect from, by default :func:`~collector.kinds.build_sources` of the config (a test, or a
    protocol not yet in the config, adds its own there)."""

    def __init__(self, cfg: Config, store: Store, clock: Clock | None = None,
                 beside: Sequence[Companion] = (), sources: Sources | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.clock = clock or Clock()
        self.ticks = TickScheduler(self.clock)
        self.writer = Writer(store, cfg.collector.flush_ms)
        self._late_ns = int(cfg.collector.late_tolerance_ms * 1e6)
        self.sources = sources if sources is not None else build_sources(cfg, self.clock, store)
        self.devices: list[PolledSource] = self.sources.polled
        self.push: list[PushSource] = self.sources.push
        self.beside = list(beside)
        self.health: dict[str, DeviceHealth] = {d.name: DeviceHealth(d.name)
                                                for d in self.devices}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._tick_starts: dict[int, list[int]] = {}     # tick -> poll start times [ns]
        self._skews: list[float] = []                    # recent per-tick spreads [ms]
        self.metrics_server: asyncio.AbstractServer | None = None
        self.clock_steps: dict[str, int] = {}
        self._clock_offset = self.clock.now_ns() - time.monotonic_ns()
        self._last_step_at: int | None = None
        self._garbage = 0
        self._garbage_logged = -math.inf

    # the sources of one kind (metrics and tests look them up by kind)
    @property
    def mqtt(self) -> list[Any]:
        return self.sources.by_kind.get("mqtt", [])

    @property
    def hj212(self) -> list[Any]:
        return self.sources.by_kind.get("hj212", [])

    @property
    def links(self) -> dict[int, SharedLink]:
        """The connections the polled sources take turns on, one entry each."""
        links = [getattr(d, "link", None) for d in self.devices]
        return {id(x): x for x in links if x is not None}

    def interval_ns(self, dev: PolledSource) -> int:
        return int(round((dev.interval_s or self.cfg.collector.interval_s) * 1e9))

    async def _device_loop(self, dev: PolledSource, start_ns: int) -> None:
        interval = self.interval_ns(dev)
        h = self.health[dev.name]
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

    async def _gateway_loop(self, link: SharedLink, devs: list[PipelinedSource],
                            start_ns: int) -> None:
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
                d.name: d.all_bad(Reason.CONNECTION) for d in devs if d not in live}
            if live and sent is None:       # not connected at the tick: connect now, then send
                try:
                    conn = await link.ensure(devs[0].name)
                    sent = [d.send(conn) for d in live]
                except SourceError as e:
                    results.update({d.name: d.all_bad(e.reason) for d in live})
            if sent is not None:
                try:
                    done = await asyncio.gather(*(d.finish(conn, p) for d, p in zip(live, sent)))
                except asyncio.CancelledError:
                    for d in devs:
                        self._record_stop(d, tick, interval)
                    raise
                results.update({d.name: r for d, r in zip(live, done)})
            t_done = self.clock.now_ns()
            nxt = tick
            for d in devs:
                self._after_poll(d, results[d.name], tick, t_req, t_done, d in live)
                nxt = self._next(d, tick, t_done, interval)
            tick = nxt

    def _gateway_send(self, link: SharedLink, devs: list[PipelinedSource],
                      due: _Due
                      ) -> None:
        """At the tick (scheduler callback): queue every live unit id's requests on the gateway's
        connection, to be written with the other gateways' once all have queued theirs."""
        if due.cancelled():
            return
        t_req = self.clock.now_ns()
        live = [d for d in devs if t_req >= self.health[d.name].backoff_until_ns]
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

    def _record_stop(self, dev: PolledSource, tick: int, interval: int) -> None:
        """Stopped mid-poll: the ticks already due are recorded as missing, not lost."""
        self._record_gap(dev, tick, next_tick(self.clock.now_ns(), interval), interval,
                         Reason.DOWN, OVERRUN_TICK_ROWS)

    def _after_poll(self, dev: PolledSource, readings: list[Reading], tick: int, t_req: int,
                    t_done: int, polled: bool) -> None:
        h = self.health[dev.name]
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

    def _next(self, dev: PolledSource, tick: int, t_done: int, interval: int) -> int:
        nxt = tick + interval
        if t_done >= nxt:  # overrun: every skipped tick is recorded, never silently lost
            skipped_to = next_tick(t_done, interval)
            # a clock step forward since the tick: the skipped ticks never came in real time
            self._check_clock()
            reason = Reason.CLOCK if self._stepped_since(tick) else Reason.OVERRUN
            self._record_gap(dev, nxt, skipped_to, interval, reason, OVERRUN_TICK_ROWS)
            nxt = skipped_to
        return nxt

    def _record_gap(self, dev: PolledSource, first: int, upto: int, interval: int,
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
        self.writer.put_readings(first, [Reading(health_tag(dev.name, "gap_s"),
                                                 (upto - first) / 1e9, Quality.BAD, reason)])
        return len(dev.tags) + 1

    def _account(self, h: DeviceHealth, dev: PolledSource, good: list[Reading],
                 readings: list[Reading], tick: int, t_req: int, t_done: int) -> None:
        h.polls += 1
        h.last_latency_ms = (t_done - t_req) / 1e6
        h.last_lateness_ms = (t_req - tick) / 1e6
        if good:
            h.good_polls += 1
            if h.consecutive_failures:
                log.warning("%s: back online after %d failed polls", dev.name,
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
                        "recovers", dev.name, reason)
            h.logged_failure = True
        if h.consecutive_failures >= 3 and readings and readings[0].reason == Reason.CONNECTION:
            backoff = min(BACKOFF_MAX_S, 2 ** (h.consecutive_failures - 3))
            h.backoff_until_ns = t_done + int(backoff * 1e9)
            h.backoff_s = backoff

    def _health_readings(self, h: DeviceHealth, t_req: int, t_done: int, tick: int
                         ) -> list[Reading]:
        tag = h.tags
        backoff_s = max(0.0, (h.backoff_until_ns - t_done) / 1e9)
        return [
            Reading(tag[0], 1.0 if h.consecutive_failures == 0 else 0.0),
            Reading(tag[1], (t_done - t_req) / 1e6),
            Reading(tag[2], (t_req - tick) / 1e6),
            Reading(tag[3], float(h.consecutive_failures)),
            Reading(tag[4], backoff_s),
            Reading(tag[5], float(h.polls)),
            Reading(tag[6], float(h.good_polls)),
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
                self.writer.put_readings(t, [Reading(health_tag(COLLECTOR, "skew_ms"), spread)])
            w = self.writer
            self.writer.put_readings(tick, [
                Reading(health_tag(COLLECTOR, "store_pending_rows"),
                        float(w.pending_rows + len(w.rows[0]))),
                Reading(health_tag(COLLECTOR, "store_write_errors"), float(w.store_errors)),
                Reading(health_tag(COLLECTOR, "store_ok"), 1.0 if w.failing_since is None
                        else 0.0)])

    async def _health_beside(self) -> None:
        """Each tick, the health of the push sources and of the companions."""
        interval = int(self.cfg.collector.interval_s * 1e9)
        parts: list[PushSource | Companion] = [*self.push, *self.beside]
        while True:
            tick = next_tick(self.clock.now_ns(), interval)
            await self.clock.sleep_until(tick)
            for x in parts:
                self.writer.put_readings(tick, x.health(tick))

    async def _take(self, src: PushSource) -> None:
        """Hand a push source's batches to the writer as they come, until it ends."""
        put = self.writer.put_push
        try:
            async with aclosing(src.samples()) as batches:
                async for rows in batches:
                    put(rows)
        except Exception:
            log.exception("%s: the source failed and is no longer read", src.label)
            raise

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
        self.writer.put_readings(now, [Reading(health_tag(COLLECTOR, "clock_step_s"),
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

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run until ``stop`` is set (or the task is cancelled); flush what was collected."""
        if isinstance(self.store, SQLiteStore) and self.store.campaign_start() is None:
            try:
                self.store.begin_campaign(time.time_ns(), self.cfg.campaign.name)
            except StoreError as e:
                log.error("%s; samples are kept in memory and written when the store accepts "
                          "them", e)
        # the devices, plans and config live as long as the collector: out of the collector's
        # way (a full collection walking them paused the loop for ~150 ms at 2,000 devices)
        gc.collect()
        gc.freeze()
        start_ns = self.clock.now_ns()
        self._tasks = []
        self._start_polling(start_ns)
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
        takes: list[asyncio.Task[None]] = []
        started: list[Companion] = []
        try:
            for c in self.beside:
                c.start()
                started.append(c)
            self._tasks.append(asyncio.create_task(self._collector_health()))
            self._tasks.append(asyncio.create_task(self._clock_watch()))
            asyncio.get_running_loop().set_exception_handler(self._loop_exception)
            if self.cfg.collector.metrics_port is not None:
                from cpaudit.collector.metrics import serve
                self.metrics_server = await serve(self, self.cfg.collector.metrics_host,
                                                  self.cfg.collector.metrics_port)
            for src in self.push:
                await src.start()
                takes.append(asyncio.create_task(self._take(src), name=src.label))
            if self.push or self.beside:
                self._tasks.append(asyncio.create_task(self._health_beside()))
            log.info("collecting from %d polled and %d push sources every %.3g s",
                     len(self.devices), len(self.push), self.cfg.collector.interval_s)
            if stop is None:
                await asyncio.gather(*self._tasks, *takes)  # runs until cancelled
            else:
                await stop.wait()
        finally:
            self._stopping = True
            if self.metrics_server is not None:
                self.metrics_server.close()
            await self._stop(takes, writer, started)

    def _start_polling(self, start_ns: int) -> None:
        """One loop per polled source; sources sharing a pipelined link, one per link and
        interval (their requests go out together at each tick)."""
        shared: dict[int, list[PipelinedSource]] = {}
        for d in self.devices:
            link = shared_link(d)
            if link is not None:
                shared.setdefault(id(link), []).append(d)  # type: ignore[arg-type]
            else:
                self._tasks.append(asyncio.create_task(self._device_loop(d, start_ns),
                                                       name=d.name))
        for devs in shared.values():
            by_interval: dict[int, list[PipelinedSource]] = {}
            for d in devs:
                by_interval.setdefault(self.interval_ns(d), []).append(d)
            for group in by_interval.values():
                self._tasks.append(asyncio.create_task(
                    self._gateway_loop(group[0].link, group, start_ns), name=group[0].link.label))

    async def _stop(self, takes: list[asyncio.Task[None]], writer: asyncio.Task[None],
                    started: list[Companion]) -> None:
        """The push sources stop receiving and hand on what they hold; the rest is cancelled;
        the last commit; then the companions close (the forwarders catch up with it)."""
        for src in self.push:
            try:
                await src.aclose()
            except Exception:  # noqa: BLE001 - one source failing to close stops no other
                log.exception("%s: closing failed", src.label)
        if takes:
            await asyncio.wait(takes, timeout=5)
        for task in self._tasks + takes + [writer]:
            task.cancel()
        await asyncio.gather(*self._tasks, *takes, writer, return_exceptions=True)
        try:
            await self.writer.flush()
        except StoreError as e:
            n = sum(len(b) for b in self.writer.pending)
            log.error("stopping with %d samples the store refused (%s); unacknowledged MQTT "
                      "messages will be redelivered, polled samples are lost", n, e)
        for c in started:
            await c.aclose()
        for d in self.devices:
            d.close()
