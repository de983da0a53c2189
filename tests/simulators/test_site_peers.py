"""The site's meters read by clients no one here wrote: ``mbpoll`` for Modbus, ``mosquitto_sub``
for the MQTT-only devices; faults as such a client sees them; live and generated agree."""
from __future__ import annotations

import asyncio
import json
import math
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from cpaudit import config
from cpaudit.config.scenario import Scenario
from cpaudit.simulators.live import Site
from cpaudit.simulators.profiles import CEMS_PLC_RANGES, RAW_4MA, RAW_20MA
from tests.conftest import site_text
from tests.servers import Mosquitto


def mbpoll_raw(port: int, unit: int, ref: int, count: int, typ: str, *extra: str
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mbpoll", "-m", "tcp", "-p", str(port), "-a", str(unit), "-0", "-r",
                           str(ref), "-c", str(count), "-t", typ, "-o", "1", *extra, "-1",
                           "127.0.0.1"], capture_output=True, text=True, timeout=20)


def values(out: subprocess.CompletedProcess[str]) -> list[float]:
    import re
    assert out.returncode == 0, out.stdout + out.stderr
    return [float(v) for v in re.findall(r"^\[\d+\]:\s+(\S+)", out.stdout, re.M)]


@pytest.fixture
def cfg(tmp_path: Path, mosquitto: Mosquitto) -> config.Config:
    p = tmp_path / "site.yaml"
    p.write_text(site_text(mqtt_port=mosquitto.port))
    return config.load(p)


def test_energy_meter_cems_and_plc_maps(cfg: config.Config) -> None:
    port = {d.name: getattr(d, "port", None) for d in cfg.devices}

    async def go() -> dict[str, list[float]]:
        async with Site(cfg, t0=time.time() - 1800) as site:
            r: dict[str, list[float]] = {}
            gw = port["em_cooling"]
            r["irat"] = await asyncio.to_thread(lambda: values(mbpoll_raw(gw, 4, 0x0006, 2, "4")))
            r["pt"] = await asyncio.to_thread(lambda: values(mbpoll_raw(gw, 4, 0x2012, 1,
                                                                        "4:float", "-B")))
            r["ua"] = await asyncio.to_thread(lambda: values(mbpoll_raw(gw, 4, 0x2006, 1,
                                                                        "4:float", "-B")))
            cems = port["cems"]
            r["gas"] = await asyncio.to_thread(lambda: values(mbpoll_raw(cems, 1, 0x000C, 5,
                                                                         "3:float", "-B")))
            r["status"] = await asyncio.to_thread(lambda: values(mbpoll_raw(cems, 1, 0x000A, 1,
                                                                            "3")))
            r["plc"] = await asyncio.to_thread(lambda: values(mbpoll_raw(cems, 2, 4004, 5, "4")))
            r["kw"] = [float(site.plant.rate("el_cooling", np.array([time.time()]))[0])]
            return r
    r = asyncio.run(go())
    assert r["irat"] == [100.0, 10.0]                                 # CT ratio, PT ratio x 10
    # P = value x (UrAt x 0.1) x IrAt x 0.1 [W]: 150 kW -> 15 000.0 at CT 100
    assert r["pt"][0] * 1.0 * 100 * 0.1 / 1000 == pytest.approx(r["kw"][0], rel=0.02)
    assert r["ua"] == [2300.0]                                        # 230 V in tenths
    so2, no, o2, no2, nox = r["gas"]
    assert (so2, o2, nox) == (4.0, 3.5, 25.0)
    assert no * 1.53 + no2 == pytest.approx(nox, rel=1e-5)            # NOx as NO2 (HJ 212 App. D)
    assert r["status"] == [0.0]                                       # normal
    counts = dict(zip(("moisture", "dust", "velocity", "temperature", "pressure"), r["plc"]))
    assert all(RAW_4MA <= c <= RAW_20MA for c in counts.values())
    lo, hi = CEMS_PLC_RANGES["temperature"]
    temp = (counts["temperature"] - RAW_4MA) / (RAW_20MA - RAW_4MA) * (hi - lo) + lo
    assert temp == pytest.approx(130.0, abs=0.02)


def test_live_faults_through_mbpoll(cfg: config.Config) -> None:
    scenario = Scenario.model_validate({"faults": [
        {"kind": "exception", "device": "fm_gas", "code": 4, "start": 0, "duration": "1m"},
        {"kind": "dropout", "device": "fm_makeup", "start": 0, "duration": "1m"},
        {"kind": "slow", "device": "fm_main_steam", "delay_s": 0.6, "start": 0, "duration": "1m"},
        {"kind": "stuck", "device": "fm_steam_other", "start": 0, "duration": "1h"}]})
    port = {d.name: getattr(d, "port", None) for d in cfg.devices}

    async def go() -> dict[str, object]:
        async with Site(cfg, t0=time.time(), scenario=scenario):
            await asyncio.sleep(0.2)
            r: dict[str, object] = {}
            r["exc"] = await asyncio.to_thread(mbpoll_raw, port["fm_gas"], 1, 0, 1, "4:float")
            r["drop"] = await asyncio.to_thread(mbpoll_raw, port["fm_makeup"], 1, 0, 1, "4:float")
            t = time.monotonic()
            r["slow"] = await asyncio.to_thread(mbpoll_raw, port["fm_main_steam"], 1, 0, 1,
                                                "4:float", "-B")
            r["slow_s"] = time.monotonic() - t
            a = await asyncio.to_thread(mbpoll_raw, port["fm_steam_other"], 1, 0x24, 1,
                                        "4:float", "-B")
            await asyncio.sleep(1.5)
            b = await asyncio.to_thread(mbpoll_raw, port["fm_steam_other"], 1, 0x24, 1,
                                        "4:float", "-B")
            r["stuck"] = (values(a), values(b))
            return r
    r = asyncio.run(go())
    exc = r["exc"]
    assert isinstance(exc, subprocess.CompletedProcess)
    assert exc.returncode != 0 and "failure" in (exc.stdout + exc.stderr).lower()
    drop = r["drop"]
    assert isinstance(drop, subprocess.CompletedProcess)
    assert drop.returncode != 0 and "timed out" in (drop.stdout + drop.stderr).lower()
    assert isinstance(r["slow"], subprocess.CompletedProcess) and r["slow"].returncode == 0
    assert float(r["slow_s"]) >= 0.6                                 # type: ignore[arg-type]
    a, b = r["stuck"]                                                # type: ignore[misc]
    assert a == b and a[0] > 0


def test_live_and_generated_read_the_same(cfg: config.Config, tmp_path: Path) -> None:
    """The energy totalizer read live by mbpoll equals the generated campaign's value at that
    second, within what 2 s of consumption and the float32 register can explain."""
    from cpaudit.simulators.generate import generate
    from cpaudit.store import SQLiteStore
    t0 = float(math.floor(time.time()) - 600)
    port = next(d.port for d in cfg.devices if d.name == "em_cooling")  # type: ignore[union-attr]

    async def go() -> tuple[float, float]:
        async with Site(cfg, t0=t0):
            t = time.time()
            v = await asyncio.to_thread(lambda: values(mbpoll_raw(port, 4, 0x401E, 1, "4:float",
                                                                  "-B")))
            return t, v[0] * 100                                   # E = value x IrAt [kWh]
    t_read, live = asyncio.run(go())
    st = SQLiteStore(tmp_path / "gen.db")
    generate(cfg, st, (t_read + 2 - t0) / 3600, start=t0)
    df = st.read(["el_cooling.energy"])
    gen = df.set_index("ts")["value"]
    at = gen[(gen.index >= int((t_read - 1) * 1e9)) & (gen.index <= int((t_read + 2) * 1e9))]
    assert len(at) >= 2
    assert at.min() - 0.2 <= live <= at.max() + 0.2          # 150 kW = 0.042 kWh/s


def test_mqtt_publishers_seen_by_mosquitto_sub(cfg: config.Config, mosquitto: Mosquitto) -> None:
    scenario = Scenario.model_validate({"faults": [
        {"kind": "clock_skew", "device": "iot_brewery_ww", "offset_s": 120, "start": 0},
        {"kind": "malformed", "device": "iot_wwq_influent", "start": 0}]})

    async def go() -> list[str]:
        async with Site(cfg, t0=time.time() - 600, scenario=scenario):
            proc = await asyncio.create_subprocess_exec(
                "mosquitto_sub", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-t",
                "brewery/#", "-v", "-C", "12", "-W", "15", stdout=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate()
            return out.decode().splitlines()
    lines = asyncio.run(go())
    assert len(lines) == 12, lines
    by_topic: dict[str, list[str]] = {}
    for ln in lines:
        topic, _, payload = ln.partition(" ")
        by_topic.setdefault(topic, []).append(payload)
    assert set(by_topic) == {"brewery/ww/brewery_ww", "brewery/wwq/ww_influent",
                             "brewery/wwq/ww_anaerobic", "brewery/wwq/ww_effluent"}
    flow = json.loads(by_topic["brewery/ww/brewery_ww"][0])
    assert set(flow) == {"ts", "flow", "total"}
    assert flow["ts"] / 1000 - time.time() == pytest.approx(120, abs=20)   # the sender's clock
    assert flow["flow"] == pytest.approx(30.0, rel=0.15)                     # m3/h
    influent = by_topic["brewery/wwq/ww_influent"]
    good = [json.loads(p) for p in influent if p != '{"ts": 17, "flow": [']
    assert good and all(1900 < g["cod"] < 4100 for g in good)               # mg/L
    assert any(p == '{"ts": 17, "flow": [' for p in influent)               # the malformed one
