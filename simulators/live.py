"""Run the simulated site in real time: one Modbus TCP gateway per (host, port) of the config."""
from __future__ import annotations

import asyncio
import logging
from functools import partial
import time
import zlib
from dataclasses import dataclass

from config import Config
from config.models import MODBUS_DEVICES, ModbusConfig, ModbusRtuDevice, ModbusTcpDevice
from simulators.modbus_server import Gateway, SimDeviceContext
from simulators.plant import DENSITY, Brewhouse
from simulators.profiles import PROFILES, Image, MeterError, MeterState, meter_state

log = logging.getLogger("cpaudit.simulators")

DEFAULT_ACCURACY = {"tuf2000": 1.0, "ifc050": 0.5, "vfm60": 1.5, "weigher": 0.5, "pattern": 0.5}


@dataclass
class SimMeter:
    device: str
    profile: str
    stream: str
    plant: Brewhouse
    err: MeterError
    initial_total: float

    def image(self, t: float) -> Image:
        prof = PROFILES[self.profile]
        if self.profile == "pattern":      # a test pattern, not connected to the plant
            return prof.encode(MeterState(0.0, 0.0))
        st = meter_state(prof, float(self.plant.rate_kg_h(self.stream, t)),
                         float(self.plant.total_kg(self.stream, t)), DENSITY.get(self.stream),
                         self.initial_total, self.err)
        return prof.encode(st)


def _image_now(m: "SimMeter") -> Image:
    return m.image(time.time())


def build_plant(cfg: Config, t0: float, leak: tuple[str, float] | None = None) -> Brewhouse:
    leaks: dict[str, float] = {}
    if cfg.simulation.leak is not None:
        leaks[cfg.simulation.leak.node] = cfg.simulation.leak.fraction
    if leak is not None:
        leaks[leak[0]] = leak[1]
    return Brewhouse(t0=t0, load_amplitude=cfg.simulation.load_amplitude, leaks=leaks)


def build_meters(cfg: Config, plant: Brewhouse) -> dict[str, SimMeter]:
    meters: dict[str, SimMeter] = {}
    for d in cfg.devices:
        if not isinstance(d, MODBUS_DEVICES) or d.simulate is None or d.profile is None:
            continue
        if d.profile not in PROFILES:
            raise ValueError(f"device {d.name}: no simulator profile {d.profile!r}; "
                             f"known: {', '.join(PROFILES)}")
        if d.profile != "pattern" and d.simulate.stream not in plant.streams():
            raise ValueError(f"device {d.name}: the {cfg.simulation.plant} model has no stream "
                             f"{d.simulate.stream!r}; it has {', '.join(plant.streams())}")
        seed = cfg.simulation.seed * 1000 + zlib.crc32(d.name.encode()) % 1000
        acc = d.accuracy_pct or DEFAULT_ACCURACY[d.profile]
        initial = 1000.0 + zlib.crc32(d.name.encode()) % 5000
        meters[d.name] = SimMeter(d.name, d.profile, d.simulate.stream, plant,
                                  MeterError.draw(acc, seed), initial)
    return meters


class Site:
    """The simulated site: plant, meters and their gateways."""

    def __init__(self, cfg: Config, *, t0: float | None = None,
                 leak: tuple[str, float] | None = None) -> None:
        self.cfg = cfg
        self.plant = build_plant(cfg, time.time() if t0 is None else t0, leak)
        self.meters = build_meters(cfg, self.plant)
        self.contexts: dict[str, SimDeviceContext] = {}
        groups: dict[tuple[object, ...], dict[int, SimDeviceContext]] = {}
        serial: dict[tuple[object, ...], dict[str, object]] = {}
        pipelining: set[tuple[object, ...]] = set()
        for d in cfg.devices:
            if d.name not in self.meters or not isinstance(d, MODBUS_DEVICES):
                continue
            m = self.meters[d.name]
            ctx = SimDeviceContext(partial(_image_now, m))
            self.contexts[d.name] = ctx
            groups.setdefault(self.key_of(d), {})[d.unit_id] = ctx
            if isinstance(d, ModbusRtuDevice):
                serial[self.key_of(d)] = {"baudrate": d.baudrate, "bytesize": d.bytesize,
                                          "parity": d.parity, "stopbits": d.stopbits}
            if isinstance(d, ModbusTcpDevice) and d.pipeline > 1:
                pipelining.add(self.key_of(d))
        self.gateways = {k: Gateway(k, v, serial.get(k), k in pipelining)
                         for k, v in groups.items()}

    @staticmethod
    def key_of(d: ModbusConfig) -> tuple[object, ...]:
        """Where the simulator serves a device: the device's own address, or for RTU the
        simulator's end of the serial line."""
        if isinstance(d, ModbusRtuDevice):
            if d.simulate is None or d.simulate.serial_port is None:
                raise ValueError(f"device {d.name}: an RTU device needs simulate.serial_port, "
                                 "the simulator's end of the serial line")
            return ("serial", d.simulate.serial_port)
        return d.server_key

    def gateway_of(self, device: str) -> Gateway:
        d = self.cfg.device(device)
        assert isinstance(d, MODBUS_DEVICES)
        return self.gateways[self.key_of(d)]

    async def start(self) -> None:
        for g in self.gateways.values():
            await g.start()

    async def stop(self) -> None:
        for g in self.gateways.values():
            await g.stop()

    async def __aenter__(self) -> "Site":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def run(cfg: Config, leak: tuple[str, float] | None = None,
              stop: asyncio.Event | None = None) -> None:
    site = Site(cfg, leak=leak)
    async with site:
        log.info("simulating %d meters on %d gateways%s", len(site.meters), len(site.gateways),
                 f"; leak at {leak[0]} ({leak[1]:.0%})" if leak else "")
        await (stop.wait() if stop else asyncio.Event().wait())
