"""Modbus TCP over one connection: the collector's poll against a raw pymodbus client loop and a
C libmodbus client, all reading the same requests from the same simulated meter (served by a
separate process, so the server does not share the client's event loop)."""
from __future__ import annotations

import asyncio
import subprocess
import time

from bench.common import Timer, build_c, header, line, spawn_python, tmpdir

SERVER = """
import asyncio, sys
sys.path.insert(0, '.')
from cpaudit import config
from cpaudit.simulators.live import Site
cfg = config.load(sys.argv[1])
async def main():
    async with Site(cfg):
        await asyncio.Event().wait()
asyncio.run(main())
"""


def run(seconds: float = 4.0) -> None:
    from pathlib import Path

    from cpaudit import config
    from cpaudit.collector.modbus import Link, ModbusDevice
    from tests.conftest import brewery_text
    from tests.servers import wait_port
    with tmpdir() as d:
        p = Path(d) / "c.yaml"
        p.write_text(brewery_text())
        cfg = config.load(p)
        dev_cfg = cfg.device("fm_water")
        srv = spawn_python(SERVER, str(p))
        try:
            wait_port(dev_cfg.port)
            dev = ModbusDevice(dev_cfg, Link(dev_cfg))
            reqs = [(r.function, r.address, r.count) for r in dev.requests]
            header(f"modbus — one TCP connection, TUF-2000 map ({len(reqs)} requests a poll), "
                   "pymodbus server in another process")
            c_bin = build_c("modbus_loop")
            c_rate = None
            if c_bin:
                out = subprocess.run([c_bin, "127.0.0.1", str(dev_cfg.port), "1", str(seconds),
                                      *[f"{f}:{a}:{c}" for f, a, c in reqs]],
                                     capture_output=True, text=True, timeout=60)
                n, t = out.stdout.split()
                c_rate = int(n) / float(t)
            raw, ours, cpu_per_req = asyncio.run(_loops(dev, reqs, seconds))
            if c_rate:
                line("C libmodbus client loop (native ceiling)", c_rate, "req/s")
            else:
                print("    C libmodbus client: not built (apt-get install libmodbus-dev)")
            line("raw pymodbus client loop (baseline)", raw, "req/s")
            line("collector ModbusDevice.poll, decode included", ours, "req/s", raw, "≥ 0.8x")
            if c_rate:
                line("  the same, against C libmodbus", ours, "req/s", c_rate)
            line("collector CPU per request", cpu_per_req * 1e6, "µs")
        finally:
            srv.terminate()
            srv.wait(10)


async def _loops(dev, reqs, seconds):  # type: ignore[no-untyped-def]
    from pymodbus.client import AsyncModbusTcpClient
    client = AsyncModbusTcpClient(dev.cfg.host, port=dev.cfg.port, retries=0, reconnect_delay=0)
    await client.connect()
    fns = {3: client.read_holding_registers, 4: client.read_input_registers}
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for f, a, c in reqs:
            await fns[f](a, count=c, device_id=1)
            n += 1
    raw = n / (time.perf_counter() - t0)
    client.close()
    n = 0
    with Timer() as t:
        while time.perf_counter() - t.wall0 < seconds:
            await dev.poll()
            n += len(reqs)
    dev.close()
    return raw, n / t.wall, t.cpu / n
