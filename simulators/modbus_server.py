"""Modbus TCP servers for simulated meters (pymodbus's server; our own register images).

Each request is answered from the meter's image at the moment of the request, so totalizers
advance smoothly between polls. Devices that share host and port sit behind one server as
several unit ids (a gateway).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.datastore.context import ModbusBaseDeviceContext
from pymodbus.server import ModbusTcpServer

from simulators.profiles import Image

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
            return [img[a] for a in range(address, address + count)]
        except KeyError:
            return ExcCodes.ILLEGAL_ADDRESS

    async def async_getValues(self, func_code: int, address: int, count: int = 1):  # noqa: N802
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.getValues(func_code, address, count)

    def setValues(self, func_code: int, address: int, values):  # noqa: N802
        return ExcCodes.ILLEGAL_FUNCTION

    async def async_setValues(self, func_code: int, address: int, values):  # noqa: N802
        return self.setValues(func_code, address, values)


class Gateway:
    """One TCP listener serving one or more unit ids."""

    def __init__(self, host: str, port: int, devices: dict[int, SimDeviceContext]) -> None:
        self.host, self.port, self.devices = host, port, devices
        self._server: ModbusTcpServer | None = None

    async def start(self) -> None:
        ctx = ModbusServerContext(devices=self.devices, single=False)
        self._server = ModbusTcpServer(ctx, address=(self.host, self.port))
        await self._server.serve_forever(background=True)
        log.info("simulated gateway listening on %s:%d, unit ids %s", self.host, self.port,
                 sorted(self.devices))

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None
