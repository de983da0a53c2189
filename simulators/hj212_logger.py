"""A simulated HJ 212 data logger (数采仪): a TCP client of the collector, as in the field (the
logger connects to the platform, shared/reference/devices.md 1.2), sending real-time (2011) and
minute (2051) data of the plant's signals with data flags, in 2017 or 2025 form (or 2005 style).

Its encoder is its own (written from HJ 212-2017 6.3 and Appendix A, bit by bit as the standard's
``CRC16_Checkout`` routine does), not the collector's, so the two check each other.

Data flags from the plant model: the scenario's ``calibration`` windows on this device give C
(and the span gas on SO2/NOx, O2 0 %, as simulators.cems does for the Modbus analyzer),
``maintenance`` windows M (readings frozen), and :attr:`Hj212Logger.fault_codes` D for the factors
named there. A minute's flag is the flag most of its real-time points carry [simulation
convention; HJ 212-2017 C.16-C.18 give the aggregation rules for a platform's own averages].

Faults on demand (attributes, set by tests or the site's fault schedule): ``bad_crc`` (the next N
packets carry a wrong CRC), ``split`` (each packet in two writes with a pause), ``coalesce`` (N
packets in one write), ``wrong_password``, ``reconnect_every`` (close the connection after N
packets), ``clock_skew_s`` (the logger's clock runs off by that much).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from cpaudit.config.models import Hj212Device
from cpaudit.config.scenario import CemsFault, Scenario

log = logging.getLogger("cpaudit.simulators.hj212")

_VERSION_FLAG = {2005: None, 2017: 4, 2025: 8}     # Flag version bits V5..V0 << 2 (1.5)
GAS_CODES = {"a21026": "so2", "a21002": "nox", "a19001": "o2"}    # the gas analyzer's channels
MINUTE_POINTS = 12                                  # points a minute value is taken over


def crc16_hj212(data: bytes) -> int:
    """HJ 212-2017 Appendix A, step by step: the register's high byte XOR the byte goes into the
    register (``reg >> 8 ^ b``), then 8 times: shift right, XOR 0xA001 when a 1 fell out."""
    reg = 0xFFFF
    for b in data:
        reg = (reg >> 8) ^ b
        for _ in range(8):
            out = reg & 0x0001
            reg >>= 1
            if out:
                reg ^= 0xA001
    return reg


def crc16_modbus_swapped(data: bytes) -> int:
    """CRC-16/MODBUS with its two bytes swapped, as some loggers send it (P1)."""
    reg = 0xFFFF
    for b in data:
        reg ^= b
        for _ in range(8):
            lsb = reg & 1
            reg >>= 1
            if lsb:
                reg ^= 0xA001
    return ((reg & 0xFF) << 8) | (reg >> 8)


def encode(segment: str, crc: str = "hj212", corrupt: bool = False) -> bytes:
    """``##`` + the segment's length in UTF-8 bytes (4 digits) + segment + CRC + CR LF."""
    seg = segment.encode("utf-8")
    if crc == "hj212":
        c = crc16_hj212(seg)
    elif crc == "modbus_swapped":
        c = crc16_modbus_swapped(seg)
    else:
        sw = crc16_modbus_swapped(seg)
        c = ((sw & 0xFF) << 8) | (sw >> 8)
    if corrupt:
        c ^= 0x0101
    return b"##" + f"{len(seg):04d}".encode() + seg + f"{c:04X}".encode() + b"\r\n"


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if math.isfinite(v) else "0"


class Hj212Logger:
    def __init__(self, cfg: Hj212Device, plant: Any, scenario: Scenario | None = None, *,
                 host: str | None = None, port: int | None = None, campaign_tz: str =
                 "Asia/Shanghai") -> None:
        if cfg.simulate is None:
            raise ValueError(f"device {cfg.name}: no simulate section")
        self.cfg, self.sim, self.plant = cfg, cfg.simulate, plant
        self.host = host or ("127.0.0.1" if cfg.listen_host in ("0.0.0.0", "") else
                             cfg.listen_host)
        self.port = port or cfg.listen_port
        self.tz = ZoneInfo(cfg.timezone or campaign_tz)
        self.version = cfg.version
        self.windows: list[tuple[float, float, CemsFault]] = [
            (*f.window(plant.t0), f) for f in (scenario.faults if scenario else [])
            if isinstance(f, CemsFault) and f.device == cfg.name]
        self.fault_codes: set[str] = set()
        self.bad_crc = 0
        self.split = False
        self.coalesce = 1
        self.wrong_password = False
        self.reconnect_every = 0
        self.clock_skew_s = 0.0
        self.sent: Counter[str] = Counter()
        self.answers: list[str] = []
        self.connects = 0
        self._qn_last = ""
        self._pending: list[bytes] = []
        self._pending_cns: list[str] = []
        self._writer: asyncio.StreamWriter | None = None
        self._since_connect = 0

    # -- values ---------------------------------------------------------------------------------
    def _flow(self, name: str, t: np.ndarray) -> np.ndarray:
        st = self.sim.stream
        if st == "flue_gas":
            q = self.plant.signals(st, t)["flow_actual"]       # m3/h at stack conditions
        else:
            q = self.plant.rate(st, t)                         # m3/h
        return {"flow_m3h": q, "flow_m3s": q / 3600.0, "flow_ls": q / 3.6}[name]

    def values(self, t: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per factor code: values and flags (array of str) at the times ``t`` [s]."""
        sig = self.plant.signals(self.sim.stream, t)
        flags = np.full(t.shape, "N", dtype=object)
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for code, name in self.sim.signals.items():
            v = self._flow(name, t) if name.startswith("flow_") else \
                np.asarray(sig[name], dtype=np.float64) * np.ones(t.shape)
            f = flags.copy()
            for s, e, w in self.windows:
                on = (t >= s) & (t < e)
                if not on.any() or (code not in GAS_CODES and self.sim.stream == "flue_gas"):
                    continue
                if w.kind == "calibration":
                    f[on] = "C"
                    span = {"so2": w.span_so2, "nox": w.span_nox, "o2": 0.0}.get(name)
                    if span is not None and self.sim.calibration_signal:
                        v = np.where(on, span, v)
                else:
                    f[on] = "M"
                    frozen = self.plant.signals(self.sim.stream, np.asarray([s]))
                    if name in frozen:
                        v = np.where(on, frozen[name][0], v)
            if code in self.fault_codes:
                f[:] = "D"
            out[code] = (v, f)
        return out

    # -- packets --------------------------------------------------------------------------------
    def _qn(self, now: float) -> str:
        qn = self._stamp(now, ms=True)
        if qn <= self._qn_last:                     # one QN per exchange
            qn = str(int(self._qn_last) + 1)
        self._qn_last = qn
        return qn

    def _stamp(self, t: float, ms: bool = False) -> str:
        d = dt.datetime.fromtimestamp(t + self.clock_skew_s, self.tz)
        return d.strftime("%Y%m%d%H%M%S") + (f"{d.microsecond // 1000:03d}" if ms else "")

    def _head(self, cn: str, now: float, ack: bool = True) -> str:
        pw = "WRONG0" if self.wrong_password else (self.cfg.password or "123456")
        parts = []
        vf = _VERSION_FLAG[self.version]
        if vf is not None:
            parts.append(f"QN={self._qn(now)}")
        st = "31" if self.sim.stream == "flue_gas" else "32"
        parts += [f"ST={st}", f"CN={cn}", f"PW={pw}", f"MN={self.cfg.mn}"]
        if vf is not None:
            parts.append(f"Flag={vf | (1 if ack else 0)}")
        return ";".join(parts)

    def realtime(self, t: float) -> str:
        """A 2011 data segment for the instant ``t`` [s since epoch]."""
        vals = self.values(np.asarray([t]))
        items = [f"DataTime={self._stamp(t)}"]
        for code, (v, f) in vals.items():
            items.append(f"{code}-Rtd={_fmt(float(v[0]))},{code}-Flag={f[0]}")
        return f"{self._head('2011', t)};CP=&&{';'.join(items)}&&"

    def minute(self, t0: float, t1: float, now: float | None = None) -> str:
        """A 2051 data segment for the minute period [t0, t1) (DataTime = its start)."""
        t = t0 + (np.arange(MINUTE_POINTS) + 0.5) * (t1 - t0) / MINUTE_POINTS
        vals = self.values(t)
        items = [f"DataTime={self._stamp(t0)}"]
        for code, (v, f) in vals.items():
            kinds, counts = np.unique(f.astype(str), return_counts=True)
            flag = str(kinds[int(np.argmax(counts))])
            cou = ""
            if self.sim.signals[code].startswith("flow_"):
                m3 = float(np.mean(self._flow("flow_m3h", t))) * (t1 - t0) / 3600.0
                cou = f",{code}-Cou={_fmt(m3)}"
            items.append(f"{code}-Min={_fmt(float(v.min()))},{code}-Avg={_fmt(float(v.mean()))},"
                         f"{code}-Max={_fmt(float(v.max()))}{cou},{code}-Flag={flag}")
        return f"{self._head('2051', now or t1)};CP=&&{';'.join(items)}&&"

    def heartbeat(self, now: float) -> str:
        return f"{self._head('9015', now, ack=False)};CP=&&&&"

    # -- wire -----------------------------------------------------------------------------------
    def packet(self, segment: str) -> bytes:
        corrupt = self.bad_crc > 0
        if corrupt:
            self.bad_crc -= 1
        return encode(segment, self.cfg.crc, corrupt)

    async def send(self, segment: str) -> None:
        """Send one packet (or queue it until ``coalesce`` are due); ``sent`` counts packets
        once written whole."""
        cn = segment.split("CN=", 1)[1][:4]
        self._pending.append(self.packet(segment))
        self._pending_cns.append(cn)
        if len(self._pending) < self.coalesce:
            return
        data, self._pending = b"".join(self._pending), []
        cns, self._pending_cns = self._pending_cns, []
        w = await self._connection()
        if self.split and len(data) > 8:
            cut = len(data) // 2
            w.write(data[:cut])
            await w.drain()
            await asyncio.sleep(0.05)
            w.write(data[cut:])
        else:
            w.write(data)
        await w.drain()
        for c in cns:
            self.sent[c] += 1
        self._since_connect += 1
        if self.reconnect_every and self._since_connect >= self.reconnect_every:
            await self.close()

    async def _connection(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        backoff = 0.2
        while True:
            try:
                r, w = await asyncio.open_connection(self.host, self.port)
                break
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(5.0, backoff * 2)
        self._writer = w
        self.connects += 1
        self._since_connect = 0
        asyncio.get_running_loop().create_task(self._read_answers(r))
        return w

    async def _read_answers(self, r: asyncio.StreamReader) -> None:
        try:
            while True:
                line = await r.readline()
                if not line:
                    return
                self.answers.append(line.decode("utf-8", "replace").strip())
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, OSError):
                pass
            self._writer = None

    async def run(self) -> None:
        """Send real-time data every ``rtd_interval_s`` and minute data at each minute period's
        end (aligned to the clock), until cancelled; reconnect whenever the link drops."""
        rtd = self.sim.rtd_interval_s
        period = self.sim.min_interval_min * 60.0
        next_rtd = math.floor(time.time() / rtd + 1) * rtd
        next_min = math.floor(time.time() / period + 1) * period
        try:
            while True:
                due = min(next_rtd, next_min)
                await asyncio.sleep(max(0.0, due - time.time()))
                try:
                    if due == next_rtd:
                        await self.send(self.realtime(next_rtd))
                        next_rtd += rtd
                    else:
                        await self.send(self.minute(next_min - period, next_min))
                        next_min += period
                except (ConnectionError, OSError) as e:
                    log.warning("%s: connection lost (%s); reconnecting", self.cfg.name, e)
                    self._writer = None
        finally:
            await self.close()
