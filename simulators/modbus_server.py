"""Modbus TCP servers for simulated meters (pymodbus's server; our own register images).

Each request is answered from the meter's image at the moment of the request, so totalizers
advance smoothly between polls. Devices that share host and port sit behind one server as
several unit ids (a gateway).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.datastore.context import ModbusBaseDeviceContext
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from cpaudit.simulators.profiles import Image

log = logging.getLogger("cpaudit.simulators")


class SimDeviceContext(ModbusBaseDeviceContext):
    """A device context whose registers are computed on each request by ``snapshot()``."""

    def __init__(self, snapshot: Callable[[], Image]) -> None:
        self.snapshot = snapshot
        self.requests = 0
        self.delay_s = 0.0          # slow answers (fault injection)
        self.exception: ExcCodes | None = None

    def reset(self) -> None:
        pass

    def _table(self, func_code: int) -> int:
        return {1: 1, 5: 1, 15: 1, 2: 2, 3: 3, 6: 3, 16: 3, 23: 3, 4: 4}.get(func_code, 0)

    def getValues(self, func_code: int, address: int, count: int = 1):  # noqa: N802 (pymodbus API)
        self.requests += 1
        if self.exception is not None:
            return self.exception
        img = self.snapshot().get(self._table(func_code))
        if img is None:
            return ExcCodes.ILLEGAL_FUNCTION
        try:
            values = [img[a] for a in range(address, address + count)]
        except KeyError:
            return ExcCodes.ILLEGAL_ADDRESS
        if self._table(func_code) in (1, 2):
            return [bool(v) for v in values]
        return values

    async def async_getValues(self, func_code: int, address: int, count: int = 1):  # noqa: N802
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.getValues(func_code, address, count)

    def setValues(self, func_code: int, address: int, values):  # noqa: N802
        return ExcCodes.ILLEGAL_FUNCTION

    async def async_setValues(self, func_code: int, address: int, values):  # noqa: N802
        return self.setValues(func_code, address, values)


class Gateway:
    """One listener serving one or more unit ids: TCP (Modbus TCP or RTU frames over TCP), or a
    serial port (RTU; in tests one end of a pseudo-terminal pair)."""

    def __init__(self, key: tuple[object, ...], devices: dict[int, SimDeviceContext],
                 serial: dict[str, Any] | None = None, pipelining: bool = False) -> None:
        self.key, self.devices, self.serial = key, devices, serial or {}
        self.pipelining = pipelining
        self._server: object = None

    async def start(self) -> None:
        ctx = ModbusServerContext(devices=self.devices, single=False)
        if self.key[0] == "tcp" and self.pipelining:
            from cpaudit.simulators.tcp_server import PipelineServer
            _, host, port, _ = self.key
            self._server = PipelineServer(str(host), int(port), self.devices)  # type: ignore[call-overload]
        elif self.key[0] == "tcp":
            _, host, port, framer = self.key
            self._server = ModbusTcpServer(
                ctx, address=(str(host), int(port)),  # type: ignore[call-overload]
                framer=FramerType.RTU if framer == "rtu" else FramerType.SOCKET)
        else:
            self._server = ModbusSerialServer(ctx, framer=FramerType.RTU, port=self.key[1],
                                              **self.serial)
        await self._server.serve_forever(background=True)  # type: ignore[attr-defined]
        log.info("simulated gateway %s serving unit ids %s", "/".join(map(str, self.key[1:])),
                 sorted(self.devices))

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[attr-defined]
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None
