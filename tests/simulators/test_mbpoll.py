"""The simulated meters read by a Modbus client no one here wrote: Debian's ``mbpoll``."""
from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time

import pytest

from cpaudit import config
from cpaudit.simulators.live import Site
from cpaudit.simulators.plant import DENSITY


def mbpoll(port: int, ref: int, count: int, typ: str, *extra: str) -> list[float]:
    out = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(port), "-a", "1", "-0", "-r", str(ref),
                          "-c", str(count), "-t", typ, *extra, "-1", "127.0.0.1"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    return [float(v) for v in re.findall(r"^\[\d+\]:\s+(\S+)", out.stdout, re.M)]


def test_mbpoll_reads_documented_registers(brewery: config.Config) -> None:
    assert shutil.which("mbpoll"), "mbpoll missing: scripts/install-system-deps.sh installs it"

    async def go() -> dict[str, list[float]]:
        t0 = time.time()
        async with Site(brewery, t0=t0 - 3600) as site:
            load = site.plant.load(time.time())
            res = {}
            p = {d.name: d.port for d in brewery.devices}
            # TUF-2000: REAL4 flow low word first (mbpoll's default float order is low word first)
            res["tuf_flow"] = await asyncio.to_thread(mbpoll, p["fm_water"], 0, 1, "4:float")
            res["tuf_n"] = await asyncio.to_thread(mbpoll, p["fm_water"], 8, 1, "4:int")
            res["tuf_nf"] = await asyncio.to_thread(mbpoll, p["fm_water"], 10, 1, "4:float")
            res["tuf_mult"] = await asyncio.to_thread(mbpoll, p["fm_water"], 1438, 1, "4")
            # IFC 050: float32 big-endian (ABCD) input register at 0x7532, in m3/s
            res["ifc_flow"] = await asyncio.to_thread(mbpoll, p["fm_hot_wort"], 0x7532, 1,
                                                      "3:float", "-B")
            # Bell VFM-60: flow float ABCD at 0, in t/h
            res["vfm_flow"] = await asyncio.to_thread(mbpoll, p["fm_steam"], 0, 1, "4:float", "-B")
            res["load"] = [load]
            return res
    r = asyncio.run(go())
    load = r["load"][0]
    assert r["tuf_flow"][0] == pytest.approx(10.0 * load, rel=0.03)            # m3/h
    assert r["tuf_n"][0] == int(r["tuf_n"][0]) and r["tuf_n"][0] > 1000         # m3, integer part
    assert 0 <= r["tuf_nf"][0] < 1                                              # fraction
    assert r["tuf_mult"] == [3.0]                                               # x10^(3-3)
    hot_m3_s = 8900 / DENSITY["hot_wort"] / 3600 * load
    assert r["ifc_flow"][0] == pytest.approx(hot_m3_s, rel=0.03)
    assert r["vfm_flow"][0] == pytest.approx(1.2 * load, rel=0.04)              # t/h
