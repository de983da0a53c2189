"""The HJ 212 server inside the collector, against real TCP connections on a free port: what a
logger sends is stored (or refused and counted), and the answers the standard requires are read
back off the wire."""
from __future__ import annotations

import asyncio
import datetime as dt
import time
import urllib.request
from pathlib import Path
from typing import Any, Awaitable, Callable
from zoneinfo import ZoneInfo

from cpaudit import config
from cpaudit.collector.hj212 import crc_hex, frame, parse_frame
from cpaudit.collector.service import Collector
from cpaudit.store import Quality, Reason, SQLiteStore
from tests.servers import free_port

TZ = ZoneInfo("Asia/Shanghai")
MN = "010000A8900016F000169DC0"        # the standard's example MN (Appendix A, Table C.14)
MN_SW = "88888880000001"               # a 2005-style 14-character MN, byte-swapped CRC


def hj_config(tmp_path: Path, port: int, metrics: int | None = None) -> config.Config:
    text = f"""
campaign: {{name: hj212 test}}
collector: {{interval_s: 0.5, flush_ms: 50{f", metrics_port: {metrics}" if metrics else ""}}}
devices:
  - name: cems_logger
    protocol: hj212
    listen_host: 127.0.0.1
    listen_port: {port}
    mn: {MN}
    password: "123456"
    version: 2017
    clock_tolerance_s: 300
    factors:
      - {{code: a21026, field: Rtd, tag: stack.so2, unit: mg/m3}}
      - {{code: a21002, field: Rtd, tag: stack.nox, unit: mg/m3}}
      - {{code: a21026, field: Avg, cn: "2051", tag: stack.so2_min, unit: mg/m3}}
      - {{code: d20001, field: Rtd, tag: el.kw, unit: kW}}
  - name: ww_logger
    protocol: hj212
    listen_host: 127.0.0.1
    listen_port: {port}
    mn: "{MN_SW}"
    version: 2005
    crc: modbus_swapped
    factors:
      - {{code: "011", field: Rtd, tag: ww.cod, unit: mg/L}}
      - {{code: B01, field: Rtd, tag: ww.flow, unit: L/s}}
flowsheet:
  nodes: [{{id: a}}]
  streams:
    - {{id: s, from: ENV, to: a, provenance: theoretical, value: 1, unit: m3, source: test, density_kg_m3: 1000}}
"""
    p = tmp_path / "hj.yaml"
    p.write_text(text)
    return config.load(p)


def stamp(t: float, ms: bool = False) -> str:
    d = dt.datetime.fromtimestamp(t, TZ)
    return d.strftime("%Y%m%d%H%M%S") + (f"{d.microsecond // 1000:03d}" if ms else "")


def rtd(t: float, qn: str, so2: float, flag: str = "N", pw: str = "123456", mn: str = MN,
        fl: int = 5, data_time: str | None = None) -> str:
    return (f"QN={qn};ST=31;CN=2011;PW={pw};MN={mn};Flag={fl};CP=&&DataTime="
            f"{data_time or stamp(t)};a21026-Rtd={so2},a21026-Flag={flag};"
            f"a21002-Rtd=25.5,a21002-Flag=N;a99999-Rtd=1&&")


class Wire:
    """A logger's end of one TCP connection: write bytes, read the answers (one a line)."""

    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.r, self.w = r, w

    @classmethod
    async def open(cls, port: int) -> "Wire":
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, data: bytes, step: int = 0) -> None:
        if step:
            for i in range(0, len(data), step):
                self.w.write(data[i:i + step])
                await self.w.drain()
                await asyncio.sleep(0.002)
        else:
            self.w.write(data)
            await self.w.drain()

    async def answer(self, timeout: float = 5.0) -> str:
        line = await asyncio.wait_for(self.r.readline(), timeout)
        return line.decode()

    async def no_answer(self, wait: float = 0.4) -> bool:
        try:
            await asyncio.wait_for(self.r.readline(), wait)
        except asyncio.TimeoutError:
            return True
        return False

    async def close(self) -> None:
        self.w.close()
        await self.w.wait_closed()


def run(tmp_path: Path, body: Callable[[Collector, int], Awaitable[Any]],
        metrics: int | None = None) -> tuple[Collector, SQLiteStore, Any]:
    port = free_port()
    cfg = hj_config(tmp_path, port, metrics)
    store = SQLiteStore(tmp_path / "s.db")

    async def go() -> Any:
        col = Collector(cfg, store)
        stop = asyncio.Event()
        task = asyncio.create_task(col.run(stop))
        for _ in range(100):
            if getattr(col, "hj212", None) and col.hj212[0].server is not None:
                break
            await asyncio.sleep(0.02)
        try:
            out = await body(col, port)
        finally:
            await asyncio.sleep(0.7)              # the raw flush and a health tick
            stop.set()
            await task
        return col, out
    col, out = asyncio.run(go())
    return col, store, out


def test_realtime_stored_with_flags_and_answered_after_commit(tmp_path: Path) -> None:
    t0 = time.time()

    async def body(col: Collector, port: int) -> list[str]:
        w = await Wire.open(port)
        out = []
        for i, flag in enumerate(["N", "C", "M", "D"]):
            t = t0 - 30 * (4 - i)
            qn = stamp(t, ms=True)
            await w.send(frame(rtd(t, qn, 10.0 + i, flag)))
            out.append(await w.answer())
            assert col.writer.written > 0        # the answer comes after the commit
        await w.close()
        return out
    col, store, answers = run(tmp_path, body)
    # 9014 echoing QN, ST=91, Flag=4 (Tables C.14-C.18), with a valid CRC
    for a in answers:
        p = parse_frame(a.encode())
        assert (p.st, p.cn, p.flag, p.cp) == ("91", "9014", 4, {}) and p.mn == MN
    df = store.read(["stack.so2"])
    assert df["value"].tolist() == [10.0, 11.0, 12.0, 13.0]
    assert [(int(q), int(r)) for q, r in zip(df["quality"], df["reason"])] == [
        (Quality.GOOD, Reason.NONE), (Quality.BAD, Reason.CALIBRATION),
        (Quality.BAD, Reason.MAINTENANCE), (Quality.BAD, Reason.FAULT)]
    # stamped with DataTime in the logger's zone (to the second)
    want = [int(dt.datetime.strptime(stamp(t0 - 30 * (4 - i)), "%Y%m%d%H%M%S").replace(
        tzinfo=TZ).timestamp()) * 10**9 for i in range(4)]
    assert df["ts"].tolist() == want
    assert "a99999" not in str(store.tags())                  # unmapped: not stored
    lg = col.hj212[0].loggers[MN]
    assert lg.unmapped["2011 a99999-Rtd"] == 4 and lg.packets["2011"] == 4 and not lg.errors
    raw = store.read_raw("cems_logger")
    assert [r[3] for r in raw] == ["ok"] * 4 and raw[0][4].startswith(b"##")
    h = store.last(["_health.cems_logger.received", "_health.cems_logger.clock_offset_ms"])
    assert set(h["tag"]) == {"_health.cems_logger.received", "_health.cems_logger.clock_offset_ms"}


def test_fragmented_and_coalesced_packets(tmp_path: Path) -> None:
    t0 = time.time() - 60

    async def body(col: Collector, port: int) -> list[str]:
        w = await Wire.open(port)
        pk = [frame(rtd(t0 + i, stamp(t0 + i, True), float(i))) for i in range(4)]
        await w.send(pk[0], step=1)                   # one byte a write
        await w.send(pk[1] + pk[2] + pk[3][:20])       # coalesced, the last one split
        await asyncio.sleep(0.1)
        await w.send(pk[3][20:])
        out = [await w.answer() for _ in range(4)]
        await w.close()
        return out
    col, store, answers = run(tmp_path, body)
    assert len(answers) == 4
    assert store.read(["stack.so2"])["value"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_refusals_counted_answered_never_stored(tmp_path: Path) -> None:
    t0 = time.time() - 10

    async def body(col: Collector, port: int) -> dict[str, str]:
        w = await Wire.open(port)
        out: dict[str, str] = {}
        good = frame(rtd(t0, "20260101000000001", 5.0))
        bad_crc = good[:-6] + (b"0000" if not good[-6:-2] == b"0000" else b"1111") + b"\r\n"
        for name, pkt in [
            ("crc", bad_crc),
            ("mn", frame(rtd(t0, "20260101000000002", 6.0, mn="FFFF0000FFFF0000FFFF0000"))),
            ("pw", frame(rtd(t0, "20260101000000003", 7.0, pw="000000"))),
        ]:
            await w.send(pkt)
            out[name] = await w.answer()
        await w.send(b"##00x9garbage\r\n" + b"##0200" + good[6:])    # framing + length: silent
        out["silent"] = "yes" if await w.no_answer() else "no"
        await w.send(good)                                          # and the next one is fine
        out["good"] = await w.answer()
        await w.close()
        return out
    col, store, ans = run(tmp_path, body)
    qnrtn = {k: parse_frame(v.encode()).cp.get("QnRtn") for k, v in ans.items()
             if k in ("crc", "mn", "pw")}
    assert qnrtn == {"crc": "9", "mn": "4", "pw": "3"}               # Table 7
    assert all(parse_frame(ans[k].encode()).cn == "9011" for k in ("crc", "mn", "pw"))
    assert ans["silent"] == "yes" and parse_frame(ans["good"].encode()).cn == "9014"
    assert store.read(["stack.so2"])["value"].tolist() == [5.0]
    srv = col.hj212[0]
    lg = srv.loggers[MN]
    assert lg.errors["crc"] == 1 and lg.errors["password"] == 1
    assert srv.errors["unknown_mn"] == 1 and srv.errors["framing"] == 1
    assert srv.errors["length"] == 1
    statuses = sorted(r[3] for r in store.read_raw())
    assert statuses == sorted(["crc", "unknown_mn", "password", "framing", "length", "ok"])


def test_2005_style_swapped_crc_and_2025_packets(tmp_path: Path) -> None:
    t0 = time.time() - 5

    async def body(col: Collector, port: int) -> list[str]:
        w = await Wire.open(port)
        # 2005 style: no QN, no Flag, old codes, 17-digit DataTime, CRC-16/MODBUS byte-swapped
        seg = (f"ST=32;CN=2011;PW=123456;MN={MN_SW};CP=&&DataTime={stamp(t0, True)};"
               "B01-Rtd=36.91;011-Rtd=231.0,011-Flag=N&&")
        await w.send(frame(seg, "modbus_swapped"))
        silent = await w.no_answer()                  # nothing asked an answer
        await w.send(frame(seg))                      # the standard's CRC: wrong for this logger
        silent2 = await w.no_answer()
        # 2025: Flag=9 (version 2, A), re-sent mark, ST=44 electricity (分表计电)
        seg25 = (f"QN={stamp(t0, True)};ST=44;CN=2011;PW=123456;MN={MN};Flag=9;RF=1;CP=&&"
                 f"DataTime={stamp(t0)};d20001-Rtd=12.5,d20001-Flag=N&&")
        await w.send(frame(seg25))
        a25 = await w.answer()
        await w.send(frame(f"QN=1;ST=31;CN=2011;PW=123456;MN={MN};Flag=9;CP=0A1B2C3D4E5F6071"))
        enc_silent = await w.no_answer()
        await w.close()
        return [str(silent), str(silent2), a25, str(enc_silent)]
    col, store, out = run(tmp_path, body)
    assert out[0] == "True" and out[1] == "True" and out[3] == "True"
    a = parse_frame(out[2].encode())
    assert a.cn == "9014" and a.flag == 8                    # the 2025 version bits echoed
    df = store.read(["ww.cod", "ww.flow", "el.kw"])
    assert sorted(zip(df["tag"], df["value"])) == [("el.kw", 12.5), ("ww.cod", 231.0),
                                                   ("ww.flow", 36.91)]
    srv = col.hj212[0]
    assert srv.loggers[MN_SW].errors["crc"] == 1
    assert srv.loggers[MN].errors["encrypted_unsupported"] == 1


def test_implausible_clock_heartbeat_notify_and_key_exchange(tmp_path: Path) -> None:
    async def body(col: Collector, port: int) -> list[str]:
        w = await Wire.open(port)
        await w.send(frame(rtd(0, "20000202000000000", 9.0, data_time="20000202000000")))
        out = [await w.answer()]
        for cn in ("9015", "1013", "1014"):
            await w.send(frame(f"QN=20260101000000009;ST=31;CN={cn};PW=123456;MN={MN};Flag=5;"
                               "CP=&&&&"))
            out.append(await w.answer())
        await w.close()
        return out
    col, store, out = run(tmp_path, body)
    df = store.read(["stack.so2"])
    assert (int(df["quality"][0]), int(df["reason"][0])) == (Quality.UNCERTAIN, Reason.SENDER_CLOCK)
    assert abs(int(df["ts"][0]) - time.time_ns()) < 30e9        # the receive time, not 2000
    p = [parse_frame(a.encode()) for a in out]
    assert [x.cn for x in p] == ["9014", "9014", "9013", "9011"]
    assert p[3].cp == {"QnRtn": "2"}
    assert col.hj212[0].loggers[MN].clock_offset_ms > 8e11      # ~26 years
    assert crc_hex(out[1].encode()[6:-6]) == out[1][-6:-2]


def test_metrics_show_each_logger(tmp_path: Path) -> None:
    mport = free_port()

    async def body(col: Collector, port: int) -> str:
        w = await Wire.open(port)
        await w.send(frame(rtd(time.time(), "20260101000000001", 1.0)))
        await w.answer()
        await w.send(b"##0101" + b"x" * 101 + b"ABCD\r\n")
        await asyncio.sleep(0.1)
        text = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics").read().decode())
        await w.close()
        return text
    _, _, text = run(tmp_path, body, metrics=mport)
    assert 'cpaudit_hj212_connected{device="cems_logger"} 1.0' in text
    assert 'cpaudit_hj212_packets_total{device="cems_logger",cn="2011"} 1.0' in text
    assert 'kind="unknown_mn"' in text or 'kind="header"' in text
    assert 'cpaudit_hj212_clock_offset_seconds{device="cems_logger"}' in text


def test_raw_side_file_for_a_store_without_raw_table(tmp_path: Path) -> None:
    """A store without ``write_raw`` (another backend): the raw packets go to a JSON-lines file."""
    import json

    from cpaudit.collector.hj212_server import Hj212Server
    cfg = hj_config(tmp_path, free_port())
    devs = [d for d in cfg.devices if d.protocol == "hj212"]
    side = tmp_path / "raw.jsonl"
    srv = Hj212Server("127.0.0.1", 1, devs, None, object(), "Asia/Shanghai",  # type: ignore[arg-type]
                      raw_file=str(side))
    srv._write_raw([(5, "1.2.3.4:5", "cems_logger", "ok", b"##0003abc1234\r\n")])
    row = json.loads(side.read_text())
    assert row == {"rx_ns": 5, "peer": "1.2.3.4:5", "device": "cems_logger", "status": "ok",
                   "text": "##0003abc1234\r\n"}


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    from cpaudit.collector.hj212_server import hj212_sources
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        cfg = hj_config(tmp_path, s.getsockname()[1])
        srv = hj212_sources(cfg, None, None)[0]  # type: ignore[arg-type]

        async def go() -> None:
            await srv.start()
        try:
            asyncio.run(go())
        except OSError as e:
            assert "cannot listen for the HJ 212 loggers (cems_logger, ww_logger)" in str(e)
        else:
            raise AssertionError("listening on a port in use")
