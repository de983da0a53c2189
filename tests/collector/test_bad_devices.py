"""Devices that misbehave on the wire — garbage replies, connections closed at once — next to a
good one: the good one keeps its ticks, the bad ones give bad samples with the reason, and the
collector never crashes. Repeated connection failures back off, visibly in health."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pandas as pd
import pytest

from cpaudit.collector.service import Collector
from cpaudit.simulators.live import Site
from cpaudit.store import Quality, Reason, SQLiteStore
from tests.collector.test_transports import config_for, device
from tests.servers import free_port


async def garbage_server(port: int) -> asyncio.AbstractServer:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(260):
                # an MBAP header echoing the transaction id, then a length that lies and junk
                w.write(data[:2] + b"\x00\x00\x00\x09" + os.urandom(5))
                await w.drain()
        except ConnectionError:
            pass
        finally:
            w.close()
    return await asyncio.start_server(handle, "127.0.0.1", port)


async def closing_server(port: int) -> asyncio.AbstractServer:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()
    return await asyncio.start_server(handle, "127.0.0.1", port)


@pytest.mark.parametrize("pipeline", [1, 4], ids=["pymodbus", "pipelined"])
def test_garbage_and_closed_connections_never_stop_the_good_device(tmp_path: Path,
                                                                  pipeline: int) -> None:
    good, junk, closer, dead = free_port(), free_port(), free_port(), free_port()
    pl = f"\n    pipeline: {pipeline}"
    devs = (device("G", f"protocol: modbus_tcp\n    port: {good}{pl}\n    simulate: {{stream: s}}", 1)
            + device("J", f"protocol: modbus_tcp\n    port: {junk}{pl}", 1)
            + device("C", f"protocol: modbus_tcp\n    port: {closer}{pl}", 1)
            + device("D", f"protocol: modbus_tcp\n    port: {dead}{pl}", 1))
    devs = devs.replace("timeout_s: 1.0", "timeout_s: 0.3")
    cfg = config_for(tmp_path, devs)
    st = SQLiteStore(tmp_path / "s.db")

    async def go() -> Collector:
        s1, s2 = await garbage_server(junk), await closing_server(closer)
        async with Site(cfg):
            col = Collector(cfg, st)
            stop = asyncio.Event()
            task = asyncio.create_task(col.run(stop))
            await asyncio.sleep(6.0)
            stop.set()
            await task
        s1.close()
        s2.close()
        return col
    col = asyncio.run(go())
    df = st.read(None)
    df = df[df["reason"] != Reason.DOWN]

    def of(tag: str) -> pd.DataFrame:
        return df[df["tag"] == tag]
    g = of("G.i16")
    assert len(g) >= 10 and (g["quality"] == Quality.GOOD).all()
    ticks = set(g["ts"])
    # reconnecting after each garbage reply or reset may outlast the 0.5 s tick: `overrun`
    for name, reasons in (("J", {Reason.DECODE, Reason.TIMEOUT, Reason.CONNECTION,
                                 Reason.OVERRUN}),
                          ("C", {Reason.CONNECTION, Reason.TIMEOUT, Reason.OVERRUN}),
                          # nothing listens: refused at once, or under load a connect timeout
                          ("D", {Reason.CONNECTION, Reason.TIMEOUT, Reason.OVERRUN})):
        x = of(f"{name}.i16")
        assert (x["quality"] == Quality.BAD).all() and set(x["reason"]) <= reasons, name
        if name == "D":
            assert (x["reason"] == Reason.CONNECTION).mean() > 0.5, x["reason"].value_counts()
        every = set(st.read([f"{name}.i16"])["ts"])        # down at stop included
        assert every >= ticks, f"{name}: ticks missing"
    lateness = of("_health.G.lateness_ms")["value"]
    assert lateness.quantile(0.9) < 50, "bad devices delayed the good one"
    # the dead device backs off after repeated connection failures, and health shows it
    backoff = of("_health.D.backoff_s")["value"]
    assert backoff.max() > 0
    assert col.health["D"].consecutive_failures >= 10
