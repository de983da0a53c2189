"""Scale: G gateways × U unit ids × 40 registers (20 float32) polled every second by one
collector process; the Modbus servers run in another process. Reports the collector's CPU, the
tag-reads per second, and the skew between devices within a tick."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bench.common import at_most, below, cpu_s, header, line, spawn_python, tmpdir

SERVER = """
import asyncio, struct, sys
sys.path.insert(0, '.')
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer
from cpaudit.simulators.modbus_server import SimDeviceContext
from cpaudit.simulators.tcp_server import PipelineServer
import logging; logging.getLogger('pymodbus').setLevel(logging.CRITICAL)
units, ports, pipelining = int(sys.argv[1]), [int(p) for p in sys.argv[2].split(',')], sys.argv[3] == '1'
regs = []
for i in range(20):
    hi, lo = struct.unpack('>HH', struct.pack('>f', 100.0 + i))
    regs += [hi, lo]
image = {3: dict(enumerate(regs))}
async def main():
    servers = []
    for port in ports:
        if pipelining:   # answers back-to-back requests (pymodbus 3.12's server does not)
            s = PipelineServer('127.0.0.1', port,
                               {u: SimDeviceContext(lambda: image) for u in range(1, units + 1)})
        else:
            devs = {u: ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, list(regs)))
                    for u in range(1, units + 1)}
            s = ModbusTcpServer(ModbusServerContext(devices=devs, single=False),
                                address=('127.0.0.1', port))
        await s.serve_forever(background=True)
        servers.append(s)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def config_text(ports: list[int], units: int, connections: int = 1, pipeline: int = 1) -> str:
    regs = "\n".join(f"      - {{tag: D.r{i}, address: {2 * i}, type: float32}}" for i in range(20))
    devs = []
    for g, port in enumerate(ports):
        for u in range(1, units + 1):
            name = f"g{g}u{u}"
            devs.append(f"  - name: {name}\n    protocol: modbus_tcp\n    port: {port}\n"
                        f"    unit_id: {u}\n    timeout_s: 2.0\n    connections: {connections}\n"
                        f"    pipeline: {pipeline}\n"
                        "    registers:\n"
                        + regs.replace("D.", f"{name}."))
    return ("campaign: {name: scale}\ncollector: {interval_s: 1.0, late_tolerance_ms: 900}\n"
            "devices:\n" + "\n".join(devs) + "\nflowsheet:\n  nodes: [{id: n}]\n  streams: "
            "[{id: s, from: ENV, to: n, provenance: theoretical, value: 1, unit: kg, source: b}]\n")


def run() -> None:
    once(pipeline=1)
    once(pipeline=100)


def once(gateways: int = 20, units: int = 100, seconds: float = 12.0, connections: int = 1,
         pipeline: int = 1) -> None:
    from cpaudit import config
    from cpaudit.collector.service import Collector
    from cpaudit.store import Quality, SQLiteStore
    from tests.servers import free_port, wait_port
    n = gateways * units
    header(f"scale — {gateways} gateways x {units} unit ids = {n} devices x 40 registers "
           f"(20 float32 tags) every 1 s, {seconds:.0f} s, {connections} TCP connection(s) per "
           f"gateway, " + ("pymodbus client, one request in flight" if pipeline == 1 else
                           f"pipelined client, up to {pipeline} requests in flight") +
           "; servers in another process")
    ports = [free_port() for _ in range(gateways)]
    srv = spawn_python(SERVER, str(units), ",".join(map(str, ports)), "1" if pipeline > 1 else "0")
    try:
        for p in ports:
            wait_port(p, 30)
        with tmpdir() as d:
            cp = Path(d) / "scale.yaml"
            cp.write_text(config_text(ports, units, connections, pipeline))
            t0 = time.perf_counter()
            cfg = config.load(cp)
            load_s = time.perf_counter() - t0
            st = SQLiteStore(Path(d) / "scale.db")
            marks: dict[str, float] = {}

            async def go() -> Collector:
                col = Collector(cfg, st)
                stop = asyncio.Event()
                task = asyncio.create_task(col.run(stop))
                await asyncio.sleep(3.0)                      # connections made, warm
                marks["cpu0"], marks["t0"] = cpu_s(), time.perf_counter()
                marks["ns0"] = time.time_ns()
                col._skews.clear()
                await asyncio.sleep(seconds - 3.0)
                marks["cpu1"], marks["t1"] = cpu_s(), time.perf_counter()
                marks["ns1"] = time.time_ns()
                stop.set()
                await task
                return col
            col = asyncio.run(go())
            window = marks["t1"] - marks["t0"]
            cpu = (marks["cpu1"] - marks["cpu0"]) / window
            df = st.read([f"g0u{u}.r0" for u in range(1, units + 1)] + ["g5u50.r7"],
                         int(marks["ns0"]), int(marks["ns1"]))
            good_share = float((df["quality"] == Quality.GOOD).mean()) if len(df) else 0.0
            stats = st.stats()
            st.close()
        sk = col.skew_stats()
        lat = [h.last_lateness_ms for h in col.health.values()]
        reads = n * 20 * good_share
        line("config load (2000 devices)", load_s * 1e3, "ms")
        line("collector CPU (one process, all threads)", cpu * 100, "% of one core",
             target=below(100, "%"))
        line("tag-reads per second (good)", reads, "reads/s")
        line("collector CPU per 1,000 tag-reads/s", cpu * 100 / (reads / 1000) if reads else 0,
             "% of a core")
        line("good samples in the measured window", good_share * 100, "%")
        line("skew between devices in a tick, p50", sk["p50_ms"], "ms")
        # the synchrony target is the pipelined client's: with one request in flight per
        # connection the unit ids behind a gateway are read one after another (README, "Many
        # unit ids behind one gateway"), and the 100th is hundreds of ms after the first
        line("skew between devices in a tick, p99", sk["p99_ms"], "ms",
             target=at_most(20, "ms") if pipeline > 1 else
             "none: one request in flight reads 100 unit ids in turn")
        line("skew between devices in a tick, max", sk["max_ms"], "ms")
        line("lateness of a poll after its tick, max (last tick)", max(lat), "ms")
        line("samples stored", stats["samples"], "samples")
    finally:
        srv.terminate()
        srv.wait(10)
