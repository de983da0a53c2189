"""A pipelined Modbus TCP client: several requests in flight on one connection, matched to their
replies by the MBAP transaction id (Modbus Messaging on TCP/IP Implementation Guide v1.0b, 3.1.3:
a client may send several transactions without waiting; the server may answer them in any order).

pymodbus's client has one request in flight per connection, so 100 unit ids behind one gateway are
read one after another, ~0.5 ms apart. With ``pipeline: N`` on a ``modbus_tcp`` device the collector
uses this client instead and sends up to N requests before the first reply. Only for gateways and
devices that accept it (most Modbus TCP servers read their socket request by request and answer
in order, which is enough); RTU framing (``framer: rtu``) never pipelines.
"""
from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

from cpaudit.collector.errors import ConnectError, DecodeError, DeviceException, TimeoutError_

_REQ = struct.Struct(">HHHBBHH")   # tid, protocol 0, length 6, unit, fc, address, count
_MBAP = struct.Struct(">HHHB")


class PipelinedConnection(asyncio.Protocol):
    def __init__(self, label: str) -> None:
        self.label = label
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self.tid = 0
        self.stray = 0          # replies to transactions no longer waited for (after a timeout)
        self.lost = False
        self._corked: list[bytes] | None = None     # requests held back to be written in one go

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        while len(buf) >= 8:
            tid, proto, length, unit = _MBAP.unpack_from(buf)
            if proto != 0 or not 2 <= length <= 254:
                self._fail(DecodeError("?", self.label, f"garbage on the wire (protocol {proto}, "
                                       f"length {length}); connection reset"))
                return
            if len(buf) < 6 + length:
                break
            pdu = bytes(buf[7:6 + length])
            del buf[:6 + length]
            fut = self.pending.pop(tid, None)
            if fut is None or fut.done():
                self.stray += 1
                continue
            fut.set_result((unit, pdu))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(ConnectError("?", self.label, f"connection lost: {exc or 'closed by peer'}"),
                   close=False)

    def _fail(self, err: Exception, close: bool = True) -> None:
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(err)
                fut.exception()   # a waiter still gets it; no "never retrieved" if none is left
        self.pending.clear()
        self.lost = True
        if close and self.transport is not None:
            self.transport.close()

    @property
    def connected(self) -> bool:
        return self.transport is not None and not self.lost and not self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- requests --------------------------------------------------------------------------------
    def send(self, unit: int, fc: int, address: int, count: int
             ) -> tuple[int, asyncio.Future[tuple[int, bytes]]]:
        """Write one request now; the reply arrives on the returned future."""
        if not self.connected:
            raise ConnectError("?", self.label, "not connected")
        self.tid = (self.tid + 1) & 0xFFFF
        tid = self.tid
        fut: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.pending[tid] = fut
        assert self.transport is not None
        if self._corked is not None:
            self._corked.append(_REQ.pack(tid, 0, 6, unit, fc, address, count))
        else:
            self.transport.write(_REQ.pack(tid, 0, 6, unit, fc, address, count))
        return tid, fut

    def cork(self) -> None:
        """Hold the requests sent from now on, to write them in one go at :meth:`uncork`."""
        if self._corked is None:
            self._corked = []

    def uncork(self) -> int:
        """Write the held requests; the time they went to the socket [ns since epoch]."""
        held, self._corked = self._corked, None
        if held and self.connected:
            assert self.transport is not None
            self.transport.write(b"".join(held))
        return time.time_ns()

    async def request(self, device: str, unit: int, fc: int, address: int, count: int,
                      timeout_s: float) -> list[int] | list[bool]:
        where = f"{self.label} unit {unit} fc{fc} @{address}+{count}"
        try:
            sent = self.send(unit, fc, address, count)
        except ConnectError:
            raise ConnectError(device, where, "not connected") from None
        return await self.collect(device, unit, fc, address, count, sent, timeout_s)

    async def collect(self, device: str, unit: int, fc: int, address: int, count: int,
                      sent: tuple[int, asyncio.Future[tuple[int, bytes]]], timeout_s: float
                      ) -> list[int] | list[bool]:
        """Wait for the reply to a request written by :meth:`send` (the timeout counts from
        now, which is at most a few ms after the send)."""
        where = f"{self.label} unit {unit} fc{fc} @{address}+{count}"
        tid, fut = sent
        try:
            async with asyncio.timeout(timeout_s):
                r_unit, pdu = await fut
        except TimeoutError:
            self.pending.pop(tid, None)
            raise TimeoutError_(device, where, "no answer") from None
        except (ConnectError, DecodeError) as e:
            raise type(e)(device, where, str(e).split(": ", 1)[-1]) from e
        return _decode_pdu(device, where, fc, count, r_unit, unit, pdu)


def _decode_pdu(device: str, where: str, fc: int, count: int, r_unit: int, unit: int,
                pdu: bytes) -> list[Any]:
    if r_unit != unit:
        raise DecodeError(device, where, f"reply from unit {r_unit}")
    if pdu[0] == fc | 0x80:
        raise DeviceException(device, where, pdu[1] if len(pdu) > 1 else 0)
    if pdu[0] != fc or len(pdu) < 2:
        raise DecodeError(device, where, f"reply with function {pdu[0]}")
    n = pdu[1]
    data = pdu[2:2 + n]
    if fc in (1, 2):
        if n != (count + 7) // 8 or len(data) != n:
            raise DecodeError(device, where, f"{n} bytes of bits for {count}")
        return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]
    if n != 2 * count or len(data) != n:
        raise DecodeError(device, where, f"{n} bytes for {count} registers")
    return list(struct.unpack(f">{count}H", data))


async def connect(host: str, port: int, label: str, timeout_s: float) -> PipelinedConnection:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            _, proto = await loop.create_connection(lambda: PipelinedConnection(label), host, port)
    except (OSError, TimeoutError) as e:
        raise ConnectError("?", label, f"cannot connect: {e}") from e
    return proto
