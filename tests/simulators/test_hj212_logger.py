"""The simulated HJ 212 data logger: its own encoder against the standard's vectors, its packets
through the collector's parser, its faults on demand against the collector's server, and the
demo's HJ 212 configuration end to end (simulator -> TCP -> collector -> SQLite, flagged)."""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import numpy as np
import pytest

from cpaudit import config
from cpaudit.collector.hj212 import crc_hex, parse_frame, parse_line
from cpaudit.collector.service import Collector
from cpaudit.config.models import Hj212Device
from cpaudit.config.scenario import Scenario
from cpaudit.simulators.hj212_logger import Hj212Logger, crc16_hj212, crc16_modbus_swapped, encode
from cpaudit.simulators.live import Site
from cpaudit.simulators.meters import build_plant
from cpaudit.store import Quality, Reason, SQLiteStore
from tests.conftest import ROOT, campaign_text
from tests.servers import free_port

EXAMPLE = ROOT / "config" / "examples" / "brewery-hj212.yaml"


def hj_site(tmp_path: Path, rtd_s: float = 1.0) -> config.Config:
    """The HJ 212 demo with only its four loggers, on a free port, sending every ``rtd_s``."""
    text = re.sub(r"listen_port: \d+", f"listen_port: {free_port()}", campaign_text(EXAMPLE))
    text = text.replace("rtd_interval_s: 30", f"rtd_interval_s: {rtd_s}")
    p = tmp_path / "hj.yaml"
    p.write_text(text)
    cfg = config.load(p)
    devs = [d for d in cfg.devices if isinstance(d, Hj212Device)]
    return cfg.model_copy(update={"devices": devs, "collector": cfg.collector.model_copy(
        update={"flush_ms": 100.0, "interval_s": 0.5})})


@pytest.mark.parametrize("data, want", [(b"", 0xFFFF), (b"123456789", 0x2F80), (
    b"QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
    b"CP=&&RtdInterval=30&&", 0x1C80)])
def test_own_crc_matches_the_standard(data: bytes, want: int) -> None:
    assert crc16_hj212(data) == want
    assert f"{crc16_hj212(data):04X}" == crc_hex(data)          # and the collector agrees
    assert f"{crc16_modbus_swapped(data):04X}" == crc_hex(data, "modbus_swapped")


def test_packets_parse_with_flags_2017_2025_2005(tmp_path: Path) -> None:
    cfg = hj_site(tmp_path)
    d = next(x for x in cfg.devices if x.name == "cems")
    plant = build_plant(cfg, time.time() - 3600)
    now = time.time()
    sc = Scenario.model_validate({"faults": [
        {"kind": "calibration", "device": "cems", "start": 3600 - 10, "duration": 60}]})
    lg = Hj212Logger(d, plant, sc)
    p = parse_frame(encode(lg.realtime(now)))
    assert (p.cn, p.st, p.flag, p.mn, p.version) == ("2011", "31", 5, d.mn, 2017)
    got = {(v.code, v.field): (v.value, v.flag) for v in p.values}
    assert got[("a21026", "Rtd")] == (100.0, "C")                 # span gas, calibrating
    assert got[("a34013", "Rtd")][1] == "N"                       # the dust monitor is not
    m = parse_frame(encode(lg.minute(now - 60, now)))
    fields = {v.field for v in m.values if v.code == "a21026"}
    assert m.cn == "2051" and fields == {"Min", "Avg", "Max"}
    assert any(v.field == "Cou" and v.code == "a00000" for v in m.values)
    lg.version = 2025
    assert parse_frame(encode(lg.realtime(now))).flag == 9
    lg.version = 2005
    old = parse_line(encode(lg.realtime(now)))
    assert old.qn is None and old.flag is None and old.version == 2005
    lg.fault_codes = {"a21002"}
    assert {v.code: v.flag for v in parse_frame(encode(lg.realtime(now + 120))).values}[
        "a21002"] == "D"


def _run(cfg: config.Config, store: SQLiteStore, seconds: float, scenario: Scenario | None = None,
         tweak=None) -> tuple[Collector, Site]:  # type: ignore[no-untyped-def]
    async def go() -> tuple[Collector, Site]:
        col = Collector(cfg, store)
        stop = asyncio.Event()
        task = asyncio.create_task(col.run(stop))
        while not getattr(col, "hj212", None) or col.hj212[0].server is None:
            await asyncio.sleep(0.02)
        site = Site(cfg, scenario=scenario)
        if tweak:
            tweak(site)
        async with site:
            await asyncio.sleep(seconds)
        await asyncio.sleep(0.8)
        stop.set()
        await task
        return col, site
    return asyncio.run(go())


def test_end_to_end_demo_config_lands_flagged_samples(tmp_path: Path) -> None:
    """brewery-hj212.yaml's loggers through the collector into SQLite; a calibration window on
    the CEMS logger lands as bad/calibration, the rest good; 9014 answers reach the loggers."""
    cfg = hj_site(tmp_path)
    sc = Scenario.model_validate({"faults": [
        {"kind": "calibration", "device": "cems", "start": 1.5, "duration": 2.0}]})
    st = SQLiteStore(tmp_path / "e2e.db")
    col, site = _run(cfg, st, 5.0, sc)
    so2 = st.read(["stack.so2"])
    reasons = set(so2["reason"].astype(int))
    assert int(Reason.CALIBRATION) in reasons and int(Reason.NONE) in reasons
    cal = so2[so2["reason"] == int(Reason.CALIBRATION)]
    assert (cal["quality"] == int(Quality.BAD)).all() and (cal["value"] == 100.0).all()
    for tag in ("ww_influent.cod", "ww_effluent.nh3n", "stack.flow", "stack.dust"):
        df = st.read([tag])
        assert len(df) >= 5 and (df["quality"] == 0).all(), tag
    # the flow is the plant's: a00000 in m3/s, positive
    assert (st.read(["stack.flow"])["value"] > 0).all()
    lg = site.loggers["cems"]
    assert len([a for a in lg.answers if "CN=9014" in a]) >= 5
    raw = st.read_raw("cems")
    assert len(raw) == lg.sent["2011"] + lg.sent["2051"]
    srv = col.hj212[0]
    assert sum(srv.errors.values()) == 0
    assert all(not sum(x.errors.values()) for x in srv.loggers.values())
    h = st.last(["_health.cems.online", "_health.cems.received"])
    assert set(h["tag"]) == {"_health.cems.online", "_health.cems.received"}


def test_faults_on_demand_are_counted_and_lose_nothing_else(tmp_path: Path) -> None:
    cfg = hj_site(tmp_path)  # DataTime has whole seconds: 1 s apart at least
    st = SQLiteStore(tmp_path / "f.db")

    def tweak(site: Site) -> None:
        site.loggers["wwq_influent"].bad_crc = 3
        site.loggers["wwq_anaerobic"].wrong_password = True
        site.loggers["wwq_effluent"].split = True
        site.loggers["wwq_effluent"].reconnect_every = 2
        site.loggers["cems"].coalesce = 3
    col, site = _run(cfg, st, 5.0, tweak=tweak)
    lgs = {x.name: x for x in col.hj212[0].loggers.values()}
    assert lgs["wwq_influent"].errors["crc"] == 3
    sent_in = site.loggers["wwq_influent"].sent["2011"]
    assert len(st.read(["ww_influent.cod"])) == sent_in - 3
    assert lgs["wwq_anaerobic"].errors["password"] >= 5
    assert len(st.read(["ww_anaerobic.cod"])) == 0
    assert any("QnRtn=3" in a for a in site.loggers["wwq_anaerobic"].answers)
    eff = site.loggers["wwq_effluent"]
    assert eff.connects >= 3 and lgs["wwq_effluent"].connects >= 3
    assert len(st.read(["ww_effluent.cod"])) == eff.sent["2011"]
    cems = site.loggers["cems"]
    assert len(st.read(["stack.so2"])) == cems.sent["2011"] > 0     # written 3 at a time


def test_clock_skew_is_flagged(tmp_path: Path) -> None:
    cfg = hj_site(tmp_path)
    st = SQLiteStore(tmp_path / "c.db")

    def tweak(site: Site) -> None:
        site.loggers["cems"].clock_skew_s = -3 * 86400.0
    col, site = _run(cfg, st, 2.0, tweak=tweak)
    so2 = st.read(["stack.so2"])
    assert len(so2) and (so2["reason"] == int(Reason.SENDER_CLOCK)).all()
    assert (np.abs(so2["ts"].to_numpy() - time.time_ns()) < 60e9).all()
    off = col.hj212[0].loggers["010000A8900016F000169DC0"].clock_offset_ms
    assert off == pytest.approx(3 * 86400e3, rel=0.01)


def test_generate_writes_what_the_collector_would_store(tmp_path: Path) -> None:
    """``cpaudit generate`` on the HJ 212 demo: the loggers' real-time samples with their flags,
    so the pollutant balance excludes and names a calibration hour (and substitutes it)."""
    from cpaudit.analyzer.iotools import pollutant_from_store
    from cpaudit.simulators.generate import generate
    p = tmp_path / "hj.yaml"
    p.write_text(campaign_text(EXAMPLE))
    cfg = config.load(p)
    start = 1_795_000_000 // 3600 * 3600
    sc = Scenario.model_validate({"faults": [
        {"kind": "calibration", "device": "cems", "start": "1h", "duration": "1h"}]})
    st = SQLiteStore(tmp_path / "g.db")
    generate(cfg, st, 3.0, start=start, scenario=sc)
    so2 = st.read(["stack.so2"])
    assert len(so2) == 3 * 120                                    # every 30 s
    cal = so2["reason"].to_numpy() == int(Reason.CALIBRATION)
    t = so2["ts"].to_numpy() // 10**9
    assert ((t >= start + 3600) & (t < start + 7200) == cal).all()
    assert (so2["value"][cal] == 100.0).all() and (so2["quality"][cal] == int(Quality.BAD)).all()
    assert len(st.read(["ww_effluent.cod"])) == 3 * 120
    r = pollutant_from_store(cfg, st, start * 10**9, (start + 3 * 3600) * 10**9)
    pt = next(f for f in r.factors if f.factor == "SO2").points[0]
    assert pt.excluded_minutes == {"calibration": 60}
    assert len(pt.invalid) == 1 and "calibration 60 min" in pt.invalid[0]["why"]
    dust = next(f for f in r.factors if f.factor == "particulate").points[0]
    assert not dust.invalid                                      # the dust monitor kept measuring
