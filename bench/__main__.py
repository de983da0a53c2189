"""``make bench``: print figures and ratios to baselines measured in the same run.

Baselines (shared/reference/limits.md explains why ratios, not absolute figures):
- store: raw ``sqlite3.executemany`` into the same schema (WAL, same transaction size);
- Modbus: a raw pymodbus client loop reading the same requests from the same simulated server.
"""
from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import config  # noqa: E402
from collector.modbus import Link, ModbusDevice  # noqa: E402
from simulators.live import Site  # noqa: E402
from store import Batch, SQLiteStore  # noqa: E402
from tests.conftest import brewery_text  # noqa: E402


def line(name: str, value: float, unit: str, baseline: float | None = None,
         target: str = "") -> None:
    ratio = f"  ratio {value / baseline:.2f}x of baseline {baseline:,.0f} {unit}" if baseline else ""
    print(f"  {name:<44}{value:>14,.0f} {unit}{ratio}{'  (target ' + target + ')' if target else ''}")


def bench_store(n: int = 300_000, per_commit: int = 10_000, ntags: int = 100) -> None:
    print("store: SQLite inserts, WAL, synchronous=FULL,"
          f" {n:,} samples, {per_commit:,} per commit, {ntags} tags")
    with tempfile.TemporaryDirectory() as d:
        tags = [f"t{i % ntags}" for i in range(per_commit)]
        batches = [Batch(tags=tags, ts=np.arange(k * per_commit, (k + 1) * per_commit) * 10**9,
                         value=np.random.default_rng(k).random(per_commit),
                         quality=np.zeros(per_commit), reason=np.zeros(per_commit))
                   for k in range(n // per_commit)]
        # baseline: raw executemany of prepared tuples into the same schema
        con = sqlite3.connect(os.path.join(d, "raw.db"))
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.executescript("CREATE TABLE sample (seq INTEGER PRIMARY KEY, tag_id INTEGER, ts INTEGER,"
                          " value REAL, quality INTEGER, reason INTEGER);"
                          "CREATE UNIQUE INDEX s ON sample(tag_id, ts);")
        rows = [[(i % ntags, int(t), float(v), 0, 0) for i, (t, v) in
                 enumerate(zip(b.ts, b.value))] for b in batches]
        t0 = time.perf_counter()
        for r in rows:
            with con:
                con.executemany("INSERT OR IGNORE INTO sample(tag_id, ts, value, quality, reason) "
                                "VALUES (?,?,?,?,?)", r)
        raw = n / (time.perf_counter() - t0)
        con.close()
        st = SQLiteStore(os.path.join(d, "store.db"))
        t0 = time.perf_counter()
        for b in batches:
            st.write(b)
        ours = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        df = st.read(None)
        read = len(df) / (time.perf_counter() - t0)
        st.close()
    line("raw executemany (baseline)", raw, "rows/s")
    line("SQLiteStore.write from a Batch", ours, "rows/s", raw, "≥ 0.7x")
    line("SQLiteStore.read into a frame", read, "rows/s")


async def _modbus(seconds: float) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.yaml"
        p.write_text(brewery_text())
        cfg = config.load(p)
    dev_cfg = cfg.device("fm_water")
    async with Site(cfg):
        dev = ModbusDevice(dev_cfg, Link(dev_cfg))
        reqs = dev.requests
        from pymodbus.client import AsyncModbusTcpClient
        client = AsyncModbusTcpClient(dev_cfg.host, port=dev_cfg.port, retries=0, reconnect_delay=0)
        await client.connect()
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for r in reqs:
                await client.read_holding_registers(r.address, count=r.count, device_id=1)
                n += 1
        raw = n / (time.perf_counter() - t0)
        client.close()
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            await dev.poll()
            n += len(reqs)
        ours = n / (time.perf_counter() - t0)
        dev.close()
        return raw, ours, len(reqs)


def bench_modbus(seconds: float = 4.0) -> None:
    raw, ours, nreq = asyncio.run(_modbus(seconds))
    print(f"modbus: TUF-2000 map ({nreq} requests a poll), pymodbus server and client in one "
          "event loop on loopback")
    line("raw pymodbus client loop (baseline)", raw, "req/s")
    line("collector ModbusDevice.poll (decode incl.)", ours, "req/s", raw, "≥ 0.8x")


def main() -> int:
    print(f"cpaudit bench — Python {sys.version.split()[0]}, {os.cpu_count()} cores\n")
    bench_store()
    bench_modbus()
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
