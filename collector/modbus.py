"""Modbus source (TCP, RTU over TCP, RTU on a serial line). The only module that imports pymodbus (pinned <3.13: its API changes
between minor versions, e.g. ``slave=`` became ``device_id=`` in 3.10).

A :class:`Link` is one TCP connection (a device or a gateway); devices behind the same host and
port share it and take turns through its lock. A :class:`ModbusDevice` reads its planned requests
and decodes them into (tag, value, quality, reason) readings: it is a polled source
(:class:`collector.sources.PolledSource`; on a pipelined gateway, a
:class:`~collector.sources.PipelinedSource`).
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType

from cpaudit.collector import mbtcp
from cpaudit.collector.decode import decode
from cpaudit.collector.errors import ConnectError, DecodeError, DeviceException, SourceError, TimeoutError_
from cpaudit.collector.plan import Request, plan
from cpaudit.collector.sources import Reading
from cpaudit.config.models import DataType, ModbusConfig, ModbusTcpDevice
from cpaudit.store import Quality, Reason

log = logging.getLogger("cpaudit.collector.modbus")

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # we log failures ourselves, once


class Link:
    """One connection — a TCP socket (Modbus TCP, or RTU frames to a serial gateway) or a serial
    port (an RS-485 bus) — shared in order by the unit ids behind it."""

    def __init__(self, cfg: ModbusConfig) -> None:
        self.cfg = cfg
        depth = cfg.pipeline if isinstance(cfg, ModbusTcpDevice) else 1
        self.pipelined = depth > 1
        # one request at a time (pymodbus), or up to `pipeline` in flight (our client)
        self.lock: asyncio.Lock | asyncio.Semaphore = (
            asyncio.Semaphore(depth) if self.pipelined else asyncio.Lock())
        self._connecting = asyncio.Lock()
        self.client: Any = None
        if isinstance(cfg, ModbusTcpDevice):
            self.label = f"{cfg.host}:{cfg.port}" + ("/rtu" if cfg.framer == "rtu" else "")
        else:
            self.label = cfg.serial_port

    def _new(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        c = self.cfg
        # reconnect_delay=0: we reconnect ourselves, with backoff, from the poll loop.
        if isinstance(c, ModbusTcpDevice):
            framer = FramerType.RTU if c.framer == "rtu" else FramerType.SOCKET
            return AsyncModbusTcpClient(c.host, port=c.port, framer=framer, timeout=c.timeout_s,
                                        retries=0, reconnect_delay=0)
        return AsyncModbusSerialClient(c.serial_port, framer=FramerType.RTU, baudrate=c.baudrate,
                                       bytesize=c.bytesize, parity=c.parity, stopbits=c.stopbits,
                                       timeout=c.timeout_s, retries=0, reconnect_delay=0)

    async def ensure(self, device: str) -> Any:
        if self.client is not None and self.client.connected:
            return self.client
        if self.pipelined:
            async with self._connecting:          # one connect for all the waiting unit ids
                if self.client is not None and self.client.connected:
                    return self.client
                c = self.cfg
                assert isinstance(c, ModbusTcpDevice)
                try:
                    self.client = await mbtcp.connect(c.host, c.port, self.label, c.timeout_s + 0.5)
                except ConnectError as e:
                    self.client = None
                    raise ConnectError(device, self.label, str(e).split(": ", 1)[-1]) from e
                return self.client
        if self.client is not None:
            self.client.close()
        self.client = self._new()
        try:
            ok = await asyncio.wait_for(self.client.connect(), self.cfg.timeout_s + 0.5)
        except (asyncio.TimeoutError, OSError, ModbusException) as e:
            ok = False
            log.debug("connect %s: %r", self.label, e)
        if not ok:
            self.client.close()
            self.client = None
            raise ConnectError(device, self.label, "connection refused or timed out")
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class ModbusDevice:
    def __init__(self, cfg: ModbusConfig, link: Link) -> None:
        self.cfg = cfg
        self.link = link
        self.requests: list[Request] = plan(
            [r for r in cfg.registers], cfg.address_base, cfg.max_registers, cfg.gap_fill)
        # per request, what to decode where: (register, offset in the reply, size), strings out
        self._specs = [[(reg, wire - req.address, reg.size) for reg, wire in req.registers
                        if reg.type != DataType.STRING] for req in self.requests]
        self.tags = [r.tag for r in cfg.registers if r.type != DataType.STRING] + \
            [c.tag for c in cfg.computed]
        self.sent_ns = 0        # when the last poll's first request actually went out

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def interval_s(self) -> float | None:
        return self.cfg.interval_s

    def _where(self, req: Request) -> str:
        return f"{self.link.label} unit {self.cfg.unit_id} fc{req.function} @{req.address}+{req.count}"

    async def _call(self, client: Any, req: Request) -> list[int] | list[bool]:
        if isinstance(client, mbtcp.PipelinedConnection):
            for attempt in range(1 + self.cfg.retries):
                try:
                    return await client.request(self.cfg.name, self.cfg.unit_id, req.function,
                                                req.address, req.count, self.cfg.timeout_s)
                except TimeoutError_:
                    if attempt == self.cfg.retries:
                        raise
                except (ConnectError, DecodeError):
                    self.link.close()
                    raise
        fn = (client.read_coils, client.read_discrete_inputs, client.read_holding_registers,
              client.read_input_registers)[req.function - 1]
        attempts = 1 + self.cfg.retries
        for attempt in range(attempts):
            try:
                # asyncio.timeout, not wait_for: no extra task per request (measured in bench)
                async with asyncio.timeout(self.cfg.timeout_s + 0.2):
                    rr = await fn(req.address, count=req.count, device_id=self.cfg.unit_id)
            except (asyncio.TimeoutError, ModbusIOException) as e:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # a cancel that raced with the timeout: honour it, never turn it into a reading
                    raise asyncio.CancelledError from e
                if attempt + 1 < attempts:
                    continue
                # A half-read reply must not be matched to the next request: start afresh.
                self.link.close()
                raise TimeoutError_(self.cfg.name, self._where(req), "no answer") from e
            except (ConnectionException, OSError) as e:
                self.link.close()
                raise ConnectError(self.cfg.name, self._where(req), f"connection lost: {e}") from e
            except ModbusException as e:
                self.link.close()
                raise DecodeError(self.cfg.name, self._where(req), f"bad frame: {e}") from e
            if rr.isError():
                raise DeviceException(self.cfg.name, self._where(req),
                                      int(getattr(rr, "exception_code", 0)))
            if req.function in (1, 2):
                bits = list(rr.bits)
                if len(bits) < req.count:
                    raise DecodeError(self.cfg.name, self._where(req),
                                      f"{len(bits)} bits for {req.count}")
                return bits
            regs = rr.registers
            if len(regs) != req.count:
                raise DecodeError(self.cfg.name, self._where(req),
                                  f"{len(regs)} registers for {req.count}")
            return regs
        raise AssertionError("unreachable")

    async def poll(self) -> list[Reading]:
        """Read every register once. A failed request makes its tags bad with the reason;
        the other requests of the device are still tried unless the connection is gone."""
        results: list[list[int] | list[bool] | SourceError] = []
        async with self.link.lock:
            self.sent_ns = time.time_ns()
            try:
                client = await self.link.ensure(self.cfg.name)
            except SourceError as e:
                return self.all_bad(e.reason)
            for i, req in enumerate(self.requests):
                if i and self.cfg.pause_ms:
                    await asyncio.sleep(self.cfg.pause_ms / 1000)
                try:
                    results.append(await self._call(client, req))
                except SourceError as e:
                    results.append(e)
                    if isinstance(e, (ConnectError, TimeoutError_)):
                        results += [e] * (len(self.requests) - i - 1)   # the link is gone
                        break
        return self.readings(results)

    # -- pipelined: the gateway's loop sends every unit id's requests, then collects ---------
    def send(self, conn: "mbtcp.PipelinedConnection") -> list[tuple[Request, Any]]:
        """Write every request of this device now (no await); return what to wait for."""
        self.sent_ns = time.time_ns()
        out: list[tuple[Request, Any]] = []
        for req in self.requests:
            try:
                out.append((req, conn.send(self.cfg.unit_id, req.function, req.address,
                                           req.count)))
            except SourceError as e:
                out.append((req, e))
        return out

    async def finish(self, conn: "mbtcp.PipelinedConnection", sent: list[tuple[Request, Any]]
                     ) -> list[Reading]:
        results: list[list[int] | list[bool] | SourceError] = []
        for req, pending in sent:
            if isinstance(pending, SourceError):
                results.append(pending)
                continue
            try:
                results.append(await conn.collect(self.cfg.name, self.cfg.unit_id, req.function,
                                                  req.address, req.count, pending,
                                                  self.cfg.timeout_s))
            except SourceError as e:
                results.append(e)
        return self.readings(results)

    def readings(self, results: list[list[int] | list[bool] | SourceError]) -> list[Reading]:
        """Decode one poll's replies (or errors), request by request, into readings."""
        out: dict[str, Reading] = {}
        for i, (req, data) in enumerate(zip(self.requests, results)):
            if isinstance(data, SourceError):
                for reg, _ in req.registers:
                    out[reg.tag] = Reading(reg.tag, math.nan, Quality.BAD, data.reason)
                continue
            bits = req.function in (1, 2)
            for reg, off, size in self._specs[i]:
                try:
                    if bits:
                        raw = float(bool(data[off]))
                    else:
                        raw = decode(data[off:off + size], reg.type, reg.word_order, reg.bit)  # type: ignore[arg-type]
                except (ValueError, IndexError):
                    out[reg.tag] = Reading(reg.tag, math.nan, Quality.BAD, Reason.DECODE)
                    continue
                if not math.isfinite(raw):
                    out[reg.tag] = Reading(reg.tag, math.nan, Quality.BAD, Reason.DECODE)
                    continue
                value = raw * reg.scale + reg.offset
                if reg.valid_range and not reg.valid_range[0] <= value <= reg.valid_range[1]:
                    out[reg.tag] = Reading(reg.tag, value, Quality.BAD, Reason.RANGE)
                    continue
                out[reg.tag] = Reading(reg.tag, value)
        for c in self.cfg.computed:
            parts = [out.get(t) for t in c.sum]
            if all(p is not None and p.quality == Quality.GOOD for p in parts):
                out[c.tag] = Reading(c.tag, sum(p.value for p in parts if p) * c.scale)
            else:
                worst = next((p for p in parts if p is None or p.quality != Quality.GOOD), None)
                reason = worst.reason if worst is not None else Reason.DECODE
                out[c.tag] = Reading(c.tag, math.nan, Quality.BAD, reason)
        return [out[t] for t in self.tags if t in out]

    def all_bad(self, reason: Reason) -> list[Reading]:
        return [Reading(t, math.nan, Quality.BAD, reason) for t in self.tags]

    def close(self) -> None:
        self.link.close()

