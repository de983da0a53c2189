"""The collector against what goes wrong around it: a row no store can hold, a full disk, a
restart after a long outage of many devices, a wall clock that steps, a Modbus peer sending bytes
pymodbus cannot frame. Each test asserts counts: what was stored, what was refused and why.

The full disk is a real one (a tmpfs of a few MB, filled by a file); the clock step is the one
part that cannot be real on a shared test machine, so the collector's clock carries an offset the
test moves (the monotonic clock underneath is the machine's)."""
from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cpaudit import config
from cpaudit.collector.clock import Clock
from cpaudit.collector.service import Collector
from cpaudit.collector.sources import Reading
from cpaudit.collector.writer import Writer
from cpaudit.simulators.live import Site
from cpaudit.store import Quality, Reason, SQLiteStore
from tests.collector.test_bad_devices import closing_server
from tests.collector.test_transports import config_for, device
from tests.conftest import brewery_text
from tests.servers import free_port

YEAR_NS = 365 * 86_400 * 10**9


def _fast(tmp_path: Path) -> config.Config:
    p = tmp_path / "fast.yaml"
    p.write_text(brewery_text(**{"interval_s: 1.0": "interval_s: 0.5"}))
    return config.load(p)


# -- the writer ----------------------------------------------------------------------------
def test_writer_rejects_the_one_row_no_store_can_hold_and_keeps_the_others(tmp_path: Path,
                                                                             caplog: Any) -> None:
    st = SQLiteStore(tmp_path / "w.db")
    w = Writer(st, 100)
    acked: list[int] = []
    t0 = 1_700_000_000 * 10**9

    async def go() -> None:
        w.put_readings(t0, [Reading("modbus.a", 1.0)])
        w.put_rows(["mqtt.b", "mqtt.c", "mqtt.d"], [t0, 2**70, t0], [2.0, 3.0, 4.0],
                   done=lambda: acked.append(1))
        # a tag SQLite cannot encode (a lone surrogate from a hostile topic), between good rows
        w.put_readings(t0 + 1, [Reading("modbus.a", 5.0), Reading("bad\ud800tag", 6.0),
                                Reading("modbus.e", 7.0)])
        await w.flush()
    with caplog.at_level(logging.ERROR, "cpaudit.collector"):
        asyncio.run(go())
    df = st.read(None).sort_values(["tag", "ts"])
    assert df[["tag", "value"]].values.tolist() == [
        ["modbus.a", 1.0], ["modbus.a", 5.0], ["modbus.e", 7.0], ["mqtt.b", 2.0], ["mqtt.d", 4.0]]
    assert w.rejected == 2 and w.pending == [] and acked == [1]
    assert w.written == 5
    rejections = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejections) == 2, [r.getMessage() for r in rejections]   # once per kind
    # the store is usable afterwards (no transaction left open by the refused row)
    assert st.write(_batch("modbus.z", t0)) == 1
    st.close()


def test_writer_groups_rows_that_keep_coming_and_commits_a_lone_one_at_once(tmp_path: Path
                                                                         ) -> None:
    """Rows that wait for their commit (an MQTT acknowledgement) are committed without waiting
    for the flush interval (60 s here); while more keep coming, they are grouped into commits at
    most LINGER_MAX_S apart, not one commit each (which halved the MQTT throughput)."""
    from cpaudit.collector.sources import Rows
    st = SQLiteStore(tmp_path / "g.db")
    w = Writer(st, 60_000)
    t0 = 1_700_000_000 * 10**9
    acked: list[int] = []

    def rows(i: int) -> Rows:
        return Rows(["mqtt.v"], [t0 + i], [float(i)], [0], [0], [lambda i=i: acked.append(i)])

    async def go() -> tuple[float, int]:
        task = asyncio.create_task(w.run())
        try:
            t = time.monotonic()
            w.put_push(rows(0))
            while not acked:
                await asyncio.sleep(0.001)
            lone = time.monotonic() - t
            # a stream of 2,000 messages, five every ~1 ms, each waiting for its commit
            for i in range(1, 2001):
                w.put_push(rows(i))
                if i % 5 == 0:
                    await asyncio.sleep(0.001)
            while len(acked) < 2001:
                await asyncio.sleep(0.001)
            assert len(st.read(["mqtt.v"])) == 2001
            return lone, w.commits
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    lone, commits = asyncio.run(go())
    st.close()
    assert lone < 5.0                              # not the 60 s flush interval
    assert acked == list(range(2001))              # every one, in order, once committed
    # ≥ 0.4 s of stream: without the grouping, one commit per loop turn of the feeder (400);
    # grouped, about one per LINGER_MAX_S (10 ms, so ~40), more only when the feeder stalls
    assert 1 < commits <= 200, commits


def _batch(tag: str, ts: int) -> Any:
    from cpaudit.store import Batch
    return Batch([tag], np.array([ts]), np.array([1.0]), np.array([0], np.int8),
                 np.array([0], np.int8))


# -- a full disk -----------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A real filesystem of 16 MB (tmpfs): the store on it, and a file that fills it."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"a full disk needs a tmpfs mount (root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: Path) -> None:
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


@pytest.mark.parametrize("bound", [None, 300], ids=["kept", "beyond-the-bound"])
def test_full_disk_is_seen_and_loses_nothing(tmp_path: Path, small_disk: Path, caplog: Any,
                                             bound: int | None) -> None:
    cfg = _fast(tmp_path)
    st = SQLiteStore(small_disk / "s.db")
    seen: dict[str, Any] = {}

    async def during(col: Collector) -> None:
        if bound is not None:
            col.writer.max_pending = bound
        await asyncio.sleep(2.0)
        filler = small_disk / "filler"
        await asyncio.to_thread(_fill, filler)
        full_at = time.time_ns()
        await asyncio.sleep(4.0)
        from cpaudit.collector.metrics import render
        seen["metrics"] = render(col)
        seen["errors"] = col.writer.store_errors
        seen["pending"] = col.writer.pending_rows
        filler.unlink()
        freed_at = time.time_ns()
        seen["window"] = (full_at, freed_at)
        await asyncio.sleep(3.0)

    async def go() -> Collector:
        async with Site(cfg):
            col = Collector(cfg, st)
            stop = asyncio.Event()
            task = asyncio.create_task(col.run(stop))
            await during(col)
            stop.set()
            await task
            return col
    with caplog.at_level(logging.WARNING, "cpaudit.collector"):
        col = asyncio.run(go())
    assert seen["errors"] >= 3                           # it did fail, and kept failing
    m = seen["metrics"]
    assert "cpaudit_store_write_errors_total" in m
    pend = [ln for ln in m.splitlines() if ln.startswith("cpaudit_store_pending_rows")]
    assert float(pend[0].split()[-1]) > 0, pend
    # one line a minute, not one per attempt (it failed every 0.5 s for 4 s)
    fails = [r for r in caplog.records if "store write failed" in r.getMessage()]
    assert 1 <= len(fails) <= 2, len(fails)
    assert not any(r.exc_info for r in caplog.records if "store write failed" in r.getMessage())
    tag = cfg.flowsheet.streams[0].tag
    df = st.read([tag])
    ticks = df["ts"].to_numpy()
    full_at, freed_at = seen["window"]
    inside = df[(df["ts"] > full_at + 10**9) & (df["ts"] < freed_at - 10**9)]
    if bound is None:
        # every tick from first to last is there, the ones while the disk was full included
        assert np.all(np.diff(ticks) == 500_000_000), "a tick is missing"
        assert (inside["quality"] == Quality.GOOD).all() and len(inside) >= 4
        assert col.writer.lost == 0
    else:
        # beyond the bound: the hole is explicit, once per tag, and counted
        assert col.writer.lost > 0
        lost = st.read(None)
        lost = lost[lost["reason"] == Reason.LOST]
        assert lost.groupby("tag").size().max() == 1
        assert tag in set(lost["tag"])
        count = st.read(["_health.collector.lost_rows"])["value"].tolist()
        assert count == [float(col.writer.lost)]
    health = st.read(["_health.collector.store_ok"])
    assert 0.0 in set(health["value"]) and health["value"].iloc[-1] == 1.0
    st.close()


# -- a restart after a long outage of many devices -----------------------------------------
def test_restart_after_an_hour_down_of_2000_devices_is_bounded(tmp_path: Path) -> None:
    from bench.scale_bench import config_text
    p = tmp_path / "scale.yaml"
    p.write_text(config_text([free_port() for _ in range(20)], 100))
    cfg = config.load(p)
    st = SQLiteStore(tmp_path / "s.db")
    now = time.time_ns() // 10**9 * 10**9
    last = now - 3600 * 10**9
    col = Collector(cfg, st)
    tags = [t for d in col.devices for t in d.tags]
    st.write(_rows(tags, last))
    tracemalloc.start()
    col._record_downtime(now)
    queued = len(col.writer.rows[0])
    asyncio.run(col.writer.flush())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # one `down` row per tag at its first missed tick, one gap record per device: not 144 M rows
    assert queued == len(tags) + len(col.devices) == 42_000
    assert peak < 120 * 2**20, f"{peak / 2**20:.0f} MiB"
    df = st.read(None)
    down = df[df["reason"] == Reason.DOWN]
    assert set(down["ts"]) == {last + 10**9}
    gaps = down[down["tag"].str.endswith(".gap_s")]
    assert len(gaps) == 2000
    assert np.allclose(gaps["value"], 3600.0, atol=1.0)
    st.close()


def test_a_short_restart_is_still_recorded_tick_by_tick(tmp_path: Path) -> None:
    cfg = _fast(tmp_path)
    st = SQLiteStore(tmp_path / "s.db")
    col = Collector(cfg, st)
    now = time.time_ns() // 10**9 * 10**9
    tags = [t for d in col.devices for t in d.tags]
    st.write(_rows(tags, now - 30 * 10**9))
    col._record_downtime(now)
    asyncio.run(col.writer.flush())
    d = st.read([tags[0]])
    assert len(d) == 1 + 60 and (d["reason"].iloc[1:] == Reason.DOWN).all()
    st.close()


def _rows(tags: list[str], ts: int) -> Any:
    from cpaudit.store import Batch
    n = len(tags)
    return Batch(tags, np.full(n, ts), np.ones(n), np.zeros(n, np.int8), np.zeros(n, np.int8))


# -- the wall clock steps -----------------------------------------------------------------
class SteppingClock(Clock):
    """The machine's clock plus an offset the test moves: a step as NTP makes one."""

    def __init__(self) -> None:
        self.offset = 0

    def now_ns(self) -> int:
        return time.time_ns() + self.offset


def test_clock_steps_forward_and_back_leave_a_bounded_explicit_record(tmp_path: Path) -> None:
    cfg = _fast(tmp_path)
    st = SQLiteStore(tmp_path / "s.db")
    clock = SteppingClock()
    marks: dict[str, int] = {}

    async def go() -> Collector:
        async with Site(cfg):
            col = Collector(cfg, st, clock=clock)
            stop = asyncio.Event()
            task = asyncio.create_task(col.run(stop))
            await asyncio.sleep(2.0)
            clock.offset = YEAR_NS                 # a box booted with a stale clock synchronises
            marks["fwd"] = clock.now_ns()
            await asyncio.sleep(3.0)
            clock.offset = 0                       # and back again
            marks["back"] = clock.now_ns()
            await asyncio.sleep(3.0)
            stop.set()
            await task
            return col
    col = asyncio.run(go())
    df = st.read(None)
    assert len(df) < 20_000, len(df)                       # not 63 M overrun rows
    steps = st.read(["_health.collector.clock_step_s"])       # in time order: back is earlier
    assert np.allclose(sorted(steps["value"]), [-YEAR_NS / 1e9, YEAR_NS / 1e9], atol=5)
    assert steps["ts"].min() >= marks["back"] - 10**9 and steps["ts"].max() >= marks["fwd"]
    assert col.clock_steps == {"forward": 1, "back": 1}
    clk = df[df["reason"] == Reason.CLOCK]
    assert len(clk) and clk.groupby("tag").size().max() == 1   # one row per tag, whatever the step
    gaps = clk[clk["tag"].str.endswith(".gap_s")]
    assert len(gaps) == len(col.devices)
    assert np.allclose(gaps["value"], YEAR_NS / 1e9, rtol=1e-6)
    tag = cfg.flowsheet.streams[0].tag
    good = st.read([tag])
    good = good[good["quality"] == Quality.GOOD]["ts"].to_numpy()
    after_fwd = good[good > marks["fwd"] - 10**9]
    after_back = good[(good >= marks["back"] - 10**9) & (good < marks["fwd"] - 10**9)]
    assert len(after_fwd) >= 4, "polling did not go on after the step forward"
    # after the step back, polling went on at once on the new time, not after a year
    assert len(after_back) >= 4 and after_back.min() - marks["back"] < 1.5e9
    st.close()


# -- bytes pymodbus cannot frame --------------------------------------------------------------
async def lying_server(port: int) -> asyncio.AbstractServer:
    """Answers with an MBAP frame whose byte count exceeds the packet: pymodbus raises inside
    its protocol's data_received, and asyncio would print a traceback for each."""
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(260):
                w.write(data[:2] + b"\x00\x00\x00\x05" + data[6:7] + b"\x03\x04\x00\x01")
                await w.drain()
        except ConnectionError:
            pass
        finally:
            w.close()
    return await asyncio.start_server(handle, "127.0.0.1", port)


def test_unframeable_replies_are_one_line_and_counted(tmp_path: Path, caplog: Any) -> None:
    good, junk, closer = free_port(), free_port(), free_port()
    devs = (device("G", f"protocol: modbus_tcp\n    port: {good}\n    simulate: {{stream: s}}", 1)
            + device("J", f"protocol: modbus_tcp\n    port: {junk}", 1)
            + device("C", f"protocol: modbus_tcp\n    port: {closer}", 1))
    cfg = config_for(tmp_path, devs.replace("timeout_s: 1.0", "timeout_s: 0.3"))
    st = SQLiteStore(tmp_path / "s.db")

    async def go() -> Collector:
        s1, s2 = await lying_server(junk), await closing_server(closer)
        async with Site(cfg):
            col = Collector(cfg, st)
            stop = asyncio.Event()
            task = asyncio.create_task(col.run(stop))
            await asyncio.sleep(4.0)
            stop.set()
            await task
        s1.close()
        s2.close()
        return col
    with caplog.at_level(logging.WARNING):
        col = asyncio.run(go())
    assert col.garbage_frames() >= 3
    fatal = [r for r in caplog.records if "data_received() call failed" in r.getMessage()]
    assert fatal == [], "asyncio printed pymodbus' traceback"
    ours = [r for r in caplog.records if "could not be framed" in r.getMessage()]
    assert len(ours) == 1 and ours[0].exc_info is None
    j = st.read(["J.i16"])
    assert (j["quality"] == Quality.BAD).all() and len(j) >= 6
    g = st.read(["G.i16"])
    assert (g[g["reason"] != Reason.DOWN]["quality"] == Quality.GOOD).all()
    st.close()


def test_validity_names_the_collectors_own_gap(tmp_path: Path) -> None:
    """Half an hour without fm_water's readings, and the gap record a collector writes when it
    restarts after such a hole: the coverage check says the hole was the collector's, not the
    device's. (The record's writing is tested above; coverage gaps are seen between minutes, so
    the hole is made with generate's dropout, deterministic, rather than a half-hour wait.)"""
    import subprocess
    import sys

    from cpaudit.analyzer.iotools import validity_from_store
    from cpaudit.store import Batch
    from tests.conftest import ROOT
    db = tmp_path / "g.db"
    subprocess.run([sys.executable, "-m", "cpaudit", "generate",
                    str(ROOT / "config/examples/brewery.yaml"), "--hours", "2", "--store",
                    str(db), "--quiet", "--origin", "2026-11-24T08:00+08:00",
                    "--fault", "dropout device=fm_water start=30m duration=30m"],
                   cwd=ROOT, check=True, capture_output=True)
    cfg = config.load(ROOT / "config/examples/brewery.yaml")
    st = SQLiteStore(db)
    t0 = 1_795_478_400 * 10**9 + 30 * 60 * 10**9
    st.write(Batch(["_health.fm_water.gap_s"], np.array([t0]), np.array([1800.0]),
                   np.array([Quality.BAD], np.int8), np.array([Reason.DOWN], np.int8)))
    r = validity_from_store(cfg, st)
    tag = "water_in.total"
    cov = next(c for c in r.checks if c.id == f"coverage:{tag}")
    assert "30 min of it while the collector was not running" in cov.reason, cov.reason
    assert abs(cov.details["collector_own_gap_s"]["down"] - 1800) < 5
    assert "edge box" in cov.fix
    other = next(c for c in r.checks if c.id == "coverage:malt_in.total")
    assert "collector" not in other.reason
    st.close()
