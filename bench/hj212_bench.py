"""HJ 212: packets per second from 100 concurrent data loggers into the durable store (framed,
CRC-checked, parsed, mapped to tags, committed to SQLite, raw packets kept) against a raw asyncio
TCP reader of the same stream in the same run: ``readline`` per packet with the least a durable
reader does (split, insert; see :func:`_raw`), and ``readline`` alone as the ceiling. The
loggers are one sender process writing pre-built 2011 packets (8 factors, Flag=4: no answer
asked, so both receivers see the same bytes) as fast as the sockets take them, from one "go"
after every logger has connected: both receivers are timed from that instant to their last
commit. (Until 2026-12-04 the collector's timer started when the bench first saw a packet
counted, which could be after the event loop had parsed most of them: its figure swung from
0.2x to 1.0x of the baseline between runs of the same code.)"""
from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import ROOT, header, line, ratio_at_least, raw_sample_db, tmpdir

LOGGERS = 100
PACKETS = 300                  # per logger
FACTORS = ("a21026", "a21002", "a19001", "a34013", "a01014", "a01011", "a01012", "a00000")

SENDER = r"""
import asyncio, sys
sys.path.insert(0, ".")
from cpaudit.simulators.hj212_logger import encode
port, loggers, packets = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
codes = sys.argv[4].split(",")
t0 = 1_795_000_000

def seg(i, k):
    import datetime as dt
    d = dt.datetime.fromtimestamp(t0 + k, dt.timezone(dt.timedelta(hours=8)))
    cp = ";".join(f"{c}-Rtd={10 + j + k % 7}.5,{c}-Flag=N" for j, c in enumerate(codes))
    return (f"QN={d:%Y%m%d%H%M%S}000;ST=31;CN=2011;PW=123456;MN=BENCH{i:019d};Flag=4;"
            f"CP=&&DataTime={d:%Y%m%d%H%M%S};{cp}&&")

# every packet built before the first is sent: the receivers, not the encoder, are timed
DATA = [b"".join(encode(seg(i, k)) for k in range(packets)) for i in range(loggers)]

async def one(w, data):
    for j in range(0, len(data), 16384):
        w.write(data[j:j + 16384])
        await w.drain()
    await asyncio.sleep(30)            # hold the connection until the receiver is done
    w.close()

async def main():
    # every logger connected before the first byte: the receivers are timed from "go" on, and
    # the accepting of 100 connections is not what is measured
    conns = [await asyncio.open_connection("127.0.0.1", port) for i in range(loggers)]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(one(w, DATA[i]) for i, (r, w) in enumerate(conns)))
asyncio.run(main())
"""


def _send(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SENDER, str(port), str(LOGGERS),
                             str(PACKETS), ",".join(FACTORS)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


async def _go(proc: subprocess.Popen[bytes]) -> tuple[float, float]:
    """Wait until the sender has connected every logger, then let it send: (wall, CPU) at that
    instant, where both receivers' timers start."""
    assert proc.stdout is not None and proc.stdin is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    assert line.strip() == b"ready", line
    t0, c0 = time.perf_counter(), time.process_time()
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    return t0, c0


async def _raw(n: int, db: str | None = None) -> float:
    """The baseline: ``readline`` per packet; with ``db``, also the least a durable reader does —
    split the CP into (code, value) pairs with ``str.split`` (no CRC, no checks, no tags, no raw
    copy) and insert them into the store's sample schema (WAL, synchronous=FULL), committed in a
    worker thread every 100 ms like the collector's writer."""
    got = 0
    done = asyncio.Event()
    rows: list[tuple[int, int, float, int, int]] = []
    con = raw_sample_db(db) if db else None
    if con is not None:         # used from the commit thread, one at a time
        con.close()
        con = sqlite3.connect(db, check_same_thread=False)  # type: ignore[arg-type]
        con.execute("PRAGMA synchronous=FULL")
    tid: dict[bytes, int] = {}

    async def conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal got
        try:
            while True:
                ln = await r.readline()
                if not ln:
                    break
                if con is not None:
                    head, _, cp = ln[6:-6].partition(b"CP=&&")
                    mn = head.split(b"MN=", 1)[1].split(b";", 1)[0]
                    items = cp[:-2].split(b";")
                    ts = int(items[0][9:])
                    for it in items[1:]:
                        k, _, v = it.split(b",", 1)[0].partition(b"=")
                        key = mn + k
                        rows.append((tid.setdefault(key, len(tid)), ts, float(v), 0, 0))
                got += 1
                if got >= n:
                    done.set()
        except (ConnectionError, asyncio.CancelledError):
            pass
        w.close()

    lock = threading.Lock()

    def commit(batch: list[tuple[int, int, float, int, int]]) -> None:
        assert con is not None
        with lock:
            _insert(batch)

    def _insert(batch: list[tuple[int, int, float, int, int]]) -> None:
        assert con is not None
        con.executemany("INSERT OR IGNORE INTO sample(tag_id, ts, value, quality, reason) "
                        "VALUES (?,?,?,?,?)", batch)
        con.commit()

    async def writer() -> None:
        nonlocal rows
        while True:
            await asyncio.sleep(0.1)
            batch, rows = rows, []
            if batch:
                await asyncio.to_thread(commit, batch)
    srv = await asyncio.start_server(conn, "127.0.0.1", 0, limit=65536)
    wt = asyncio.create_task(writer()) if con is not None else None
    proc = _send(srv.sockets[0].getsockname()[1])
    try:
        t0, _ = await _go(proc)
        await asyncio.wait_for(done.wait(), 300)
        if con is not None:
            batch, rows = rows, []
            await asyncio.to_thread(commit, batch)
        return n / (time.perf_counter() - t0)
    finally:
        if wt is not None:
            wt.cancel()
        proc.kill()
        proc.wait()
        srv.close()
        if con is not None:
            with lock:          # a commit still running in its thread finishes first
                con.close()


def _collector(n: int, d: str) -> tuple[float, float, int]:
    from cpaudit import config
    from cpaudit.collector.service import Collector
    from cpaudit.store import SQLiteStore
    from tests.servers import free_port
    port = free_port()
    devs = "".join(f"""
  - name: lg{i}
    protocol: hj212
    listen_host: 127.0.0.1
    listen_port: {port}
    mn: "BENCH{i:019d}"
    password: "123456"
    clock_tolerance_s: 1000000000
    factors: [{", ".join(f"{{code: {c}, tag: lg{i}.{c}}}" for c in FACTORS)}]""" for i in
                   range(LOGGERS))
    text = f"""
campaign: {{name: hj212 bench}}
collector: {{flush_ms: 100}}
devices:{devs}
flowsheet:
  nodes: [{{id: n}}]
  streams: [{{id: s, from: ENV, to: n, provenance: theoretical, value: 1, unit: kg, source: b}}]
"""
    p = Path(d) / "h.yaml"
    p.write_text(text)
    cfg = config.load(p)
    st = SQLiteStore(Path(d) / "h.db")
    out: dict[str, float] = {}
    want = n * len(FACTORS)

    async def go() -> Collector:
        col = Collector(cfg, st)
        stop = asyncio.Event()
        task = asyncio.create_task(col.run(stop))
        while not getattr(col, "hj212", None) or col.hj212[0].server is None:
            await asyncio.sleep(0.01)
        srv = col.hj212[0]
        proc = _send(port)
        try:
            lgs = list(srv.loggers.values())
            t0, c0 = await _go(proc)
            while sum(lg.samples for lg in lgs) < want:
                await asyncio.sleep(0.005)
            while len(srv.out.rows):                   # handed from the source to the writer
                await asyncio.sleep(0.001)
            await col.writer.flush()                   # the last of them committed
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            out["rate"], out["cpu"] = n / wall, cpu / n
        finally:
            proc.kill()
            proc.wait()
        stop.set()
        await task
        return col
    col = asyncio.run(go())
    raw = len(st.read_raw())
    data = sum(len(st.read([f"lg{i}.a21026"])) for i in range(LOGGERS))
    st.close()
    assert data == n, f"{data} of {n} packets stored"
    assert raw == n, f"{raw} of {n} raw packets kept"
    return out["rate"], out["cpu"], col.writer.commits


def run() -> None:
    n = LOGGERS * PACKETS
    header(f"hj212 — {LOGGERS} loggers x {PACKETS} real-time packets ({len(FACTORS)} factors "
           f"each, {n:,} packets), one TCP connection per logger, one sender process")
    with tmpdir() as d:
        ceiling = asyncio.run(_raw(n))
        raw = asyncio.run(_raw(n, str(Path(d) / "raw.db")))
        rate, cpu, commits = _collector(n, d)
    line("asyncio readline per packet, nothing else (ceiling)", ceiling, "pkt/s")
    line("raw asyncio reader: split + SQLite insert (baseline)", raw, "pkt/s")
    line("collector: frame, CRC, parse, map, commit + raw", rate, "pkt/s", raw, ratio_at_least(0.7))
    line("  the collector against the readline ceiling", rate, "pkt/s", ceiling)
    line("  collector CPU per packet", cpu * 1e6, "µs")
    line("  samples per second into SQLite", rate * len(FACTORS), "samples/s")
    line("  SQLite commits", commits, "commits")
