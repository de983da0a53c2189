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
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from collector.clock import Clock, TickScheduler, next_tick
from collector.errors import SourceError
from collector.modbus import Link, ModbusDevice, Reading
from config import Config
from config.models import MODBUS_DEVICES, InfluxV1Sink, MqttDevice
from store import Batch, Quality, Reason, SQLiteStore, Store, StoreError
from store.forward import Forwarder, Sink

log = logging.getLogger("cpaudit.collector")

HEALTH_PREFIX = "_health."
BACKOFF_MAX_S = 30.0
MAX_GAP_TICKS = 86_400      # ticks recorded as `down` per device after a restart (1 day at 1 s)


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


class Writer:
    """Collects batches and writes them to the store every ``flush_ms`` in a worker thread, so
    a slow fsync never delays a poll."""

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
        r = self.rows
        for x in readings:
            r[0].append(x.tag)
            r[1].append(ts)
            r[2].append(x.value)
            r[3].append(x.quality)
            r[4].append(x.reason)

    def _take_rows(self) -> list[Batch]:
        tags, ts, values, quality, reason = self.rows
        if not tags:
            return []
        self.rows = ([], [], [], [], [])
        v = np.array(values, np.float64)
        q = np.array(quality, np.int8)
        r = np.array(reason, np.int8)
        wrong = ~np.isfinite(v) & (q == Quality.GOOD)
        if wrong.any():      # never let one bad row wedge the writer: demote it, loudly
            log.error("%d non-finite values marked good; stored as bad/decode", int(wrong.sum()))
            q[wrong], r[wrong] = Quality.BAD, Reason.DECODE
        return [Batch(tags=tags, ts=np.array(ts, np.int64), value=v, quality=q, reason=r)]

    async def flush(self) -> None:
        async with self._lock:
            if not self.pending and not self.done and not self.rows[0]:
                return
            batches, self.pending = self.pending + self._take_rows(), []
            done, self.done = self.done, []
            try:
                self.written += await asyncio.to_thread(self.store.write, Batch.concat(batches))
                self.commits += 1
            except BaseException:
                self.pending[:0] = batches          # keep them for the next try, in order
                self.done[:0] = done
                raise
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
            except Exception:  # noqa: BLE001 - the store failing must be loud but not fatal
                log.exception("store write failed; will retry")


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
                from collector.mqtt import MqttSource
                self.mqtt.append(MqttSource(d, self.writer, self.clock))
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.forwarders: list[Forwarder] = []
        self._tick_starts: dict[int, list[int]] = {}     # tick -> poll start times [ns]
        self._skews: list[float] = []                    # recent per-tick spreads [ms]
        self.metrics_server: asyncio.AbstractServer | None = None

    def interval_ns(self, dev: ModbusDevice) -> int:
        return int(round((dev.cfg.interval_s or self.cfg.collector.interval_s) * 1e9))

    async def _device_loop(self, dev: ModbusDevice, start_ns: int) -> None:
        interval = self.interval_ns(dev)
        h = self.health[dev.cfg.name]
        tick = next_tick(start_ns, interval)
        while not self._stopping:
            await self.clock.sleep_until(tick)
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
        now = self.clock.now_ns()
        for t in range(tick, now + 1, interval):
            self.writer.put_readings(t, dev.all_bad(Reason.DOWN))

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
            for t in range(nxt, skipped_to, interval):
                self.writer.put_readings(t, dev.all_bad(Reason.OVERRUN))
            nxt = skipped_to
        return nxt

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

    def _record_downtime(self, now: int) -> None:
        """After a restart, the ticks each device missed while the collector was not running are
        recorded as bad with reason ``down``: the gap is explicit and limited to the down time.
        ``now`` is the instant the poll loops start from, so the two meet without a hole."""
        for dev in self.devices:
            interval = self.interval_ns(dev)
            last = self.store.last(dev.tags)
            if last.empty:
                continue
            first_missing = int(last["ts"].max()) + interval
            upto = next_tick(now, interval)              # the first tick this run will poll
            n = (upto - first_missing) // interval
            if n <= 0:
                continue
            if n > MAX_GAP_TICKS:
                log.warning("%s: down for %d ticks; recording the last %d as `down`, the "
                            "earlier ones stay absent", dev.cfg.name, n, MAX_GAP_TICKS)
                first_missing = upto - MAX_GAP_TICKS * interval
            log.info("%s: %d ticks missed while the collector was down, recorded as `down`",
                     dev.cfg.name, min(n, MAX_GAP_TICKS))
            for t in range(first_missing, upto, interval):
                self.writer.put_readings(t, dev.all_bad(Reason.DOWN))

    def _sinks(self) -> list[Forwarder]:
        if not self.cfg.sinks:
            return []
        if not isinstance(self.store, SQLiteStore):
            raise ValueError("forwarding needs the SQLite store as the record")
        out = []
        for s in self.cfg.sinks:
            sink: Sink
            if isinstance(s, InfluxV1Sink):
                from store.influx import InfluxV1Store
                pw = os.environ.get(s.password_env) if s.password_env else None
                sink = InfluxV1Store(s.url, s.database, measurement=s.measurement,
                                     username=s.username, password=pw, create=False)
            else:
                from store.influx import InfluxV2Sink
                sink = InfluxV2Sink(s.url, os.environ.get(s.token_env, ""), s.org, s.bucket,
                                    s.measurement)
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
        self._record_downtime(start_ns)
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
        if self.cfg.collector.metrics_port is not None:
            from collector.metrics import serve
            self.metrics_server = await serve(self, self.cfg.collector.metrics_host,
                                              self.cfg.collector.metrics_port)
        for m in self.mqtt:
            self._tasks.append(asyncio.create_task(m.run(), name=m.cfg.name))
            self._tasks.append(asyncio.create_task(m.health_loop(self.cfg.collector.interval_s)))
        from collector.hj212_server import hj212_sources      # HJ 212 data loggers (push)
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
