"""A small Modbus TCP server for the simulators that answers every complete request in its
buffer, so clients may pipeline (Modbus Messaging on TCP/IP Implementation Guide v1.0b, 3.1.3).

pymodbus 3.12's server handles one frame per read from the socket and keeps the rest until more
bytes arrive, so back-to-back requests wait; gateways whose devices the collector pipelines are
served by this one instead. Written here, independently of the collector's client.
"""
from __future__ import annotations

import asyncio
import logging
import struct

from pymodbus.constants import ExcCodes

from cpaudit.simulators.modbus_server import SimDeviceContext

log = logging.getLogger("cpaudit.simulators")


class _Conn(asyncio.Protocol):
    def __init__(self, devices: dict[int, SimDeviceContext]) -> None:
        self.devices = devices
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 8:
            tid, proto, length, unit = struct.unpack_from(">HHHB", self.buf)
            if proto != 0 or not 2 <= length <= 254:
                assert self.transport is not None
                self.transport.close()
                return
            if len(self.buf) < 6 + length:
                return
            pdu = bytes(self.buf[7:6 + length])
            del self.buf[:6 + length]
            asyncio.ensure_future(self._answer(tid, unit, pdu))

    async def _answer(self, tid: int, unit: int, pdu: bytes) -> None:
        fc = pdu[0]
        ctx = self.devices.get(unit)
        if ctx is None:
            reply = bytes([fc | 0x80, int(ExcCodes.GATEWAY_NO_RESPONSE)])
        elif fc not in (1, 2, 3, 4) or len(pdu) != 5:
            reply = bytes([fc | 0x80, int(ExcCodes.ILLEGAL_FUNCTION)])
        else:
            address, count = struct.unpack_from(">HH", pdu, 1)
            values = await ctx.async_getValues(fc, address, count)
            if isinstance(values, ExcCodes):
                reply = bytes([fc | 0x80, int(values)])
            elif fc in (1, 2):
                packed = bytearray((count + 7) // 8)
                for i, v in enumerate(values):
                    if v:
                        packed[i // 8] |= 1 << (i % 8)
                reply = bytes([fc, len(packed)]) + bytes(packed)
            else:
                reply = bytes([fc, 2 * count]) + struct.pack(f">{count}H", *values)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)


class PipelineServer:
    def __init__(self, host: str, port: int, devices: dict[int, SimDeviceContext]) -> None:
        self.host, self.port, self.devices = host, port, devices
        self._server: asyncio.AbstractServer | None = None

    async def serve_forever(self, background: bool = True) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Conn(self.devices), self.host, self.port)

    async def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
