"""Run the simulated site in real time: Modbus gateways, MQTT publishers, faults on schedule."""
from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from functools import partial

import numpy as np

from cpaudit.config import Config
from cpaudit.config.models import (MODBUS_DEVICES, Hj212Device, ModbusConfig, ModbusRtuDevice,
                           ModbusTcpDevice, MqttDevice)
from cpaudit.config.scenario import CommFault, MqttFault, Scenario
from cpaudit.simulators.cems import apply_cems_faults
from cpaudit.simulators.meters import Plant, SimMeter, build_meters, build_plant
from cpaudit.simulators.modbus_server import Gateway, SimDeviceContext
from cpaudit.simulators.profiles import Image, image, pattern_image

log = logging.getLogger("cpaudit.simulators")

DROPOUT_DELAY_S = 3600.0     # "no answer": the request is held far beyond any timeout


def _image_now(m: SimMeter) -> Image:
    return image(m.profile, m.state(time.time()))


class Site:
    """The simulated site: plant, meters, their gateways and MQTT publishers."""

    def __init__(self, cfg: Config, *, t0: float | None = None,
                 leak: tuple[str, float] | None = None, scenario: Scenario | None = None) -> None:
        self.cfg = cfg
        self.scenario = scenario
        self.plant: Plant = build_plant(cfg, time.time() if t0 is None else t0, leak, scenario)
        self.meters = build_meters(cfg, self.plant, scenario)
        hj212 = [d for d in cfg.devices if isinstance(d, Hj212Device) and d.simulate]
        apply_cems_faults(self.meters, scenario, skip={d.name for d in hj212})
        from cpaudit.simulators.hj212_logger import Hj212Logger     # HJ 212 data loggers (TCP clients)
        self.loggers = {d.name: Hj212Logger(d, self.plant, scenario,
                                            campaign_tz=cfg.campaign.timezone) for d in hj212}
        self.contexts: dict[str, SimDeviceContext] = {}
        groups: dict[tuple[object, ...], dict[int, SimDeviceContext]] = {}
        serial: dict[tuple[object, ...], dict[str, object]] = {}
        pipelining: set[tuple[object, ...]] = set()
        for d in cfg.devices:
            if not isinstance(d, MODBUS_DEVICES) or d.simulate is None or d.profile is None:
                continue
            if d.profile == "pattern":
                ctx = SimDeviceContext(pattern_image)
            else:
                ctx = SimDeviceContext(partial(_image_now, self.meters[d.name]))
            self.contexts[d.name] = ctx
            groups.setdefault(self.key_of(d), {})[d.unit_id] = ctx
            if isinstance(d, ModbusRtuDevice):
                serial[self.key_of(d)] = {"baudrate": d.baudrate, "bytesize": d.bytesize,
                                          "parity": d.parity, "stopbits": d.stopbits}
            if isinstance(d, ModbusTcpDevice) and d.pipeline > 1:
                pipelining.add(self.key_of(d))
        self.gateways = {k: Gateway(k, v, serial.get(k), k in pipelining)
                         for k, v in groups.items()}
        self.publishers = [Publisher(d, self.meters[d.name], cfg.collector.interval_s)
                           for d in cfg.devices
                           if isinstance(d, MqttDevice) and d.simulate is not None]
        self._tasks: list[asyncio.Task[None]] = []

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
        for p in self.publishers:
            self._tasks.append(asyncio.create_task(p.run()))
        for lg in self.loggers.values():
            self._tasks.append(asyncio.create_task(lg.run(), name=lg.cfg.name))
        for f in self.scenario.faults if self.scenario else []:
            if isinstance(f, (CommFault, MqttFault)):
                self._tasks.append(asyncio.create_task(self._schedule(f)))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for g in self.gateways.values():
            await g.stop()

    async def __aenter__(self) -> "Site":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- faults on the wire ----------------------------------------------------------------------
    async def _schedule(self, f: CommFault | MqttFault) -> None:
        s, e = f.window(self.plant.t0)
        await asyncio.sleep(max(0.0, s - time.time()))
        log.warning("fault %s on %s from now%s", f.kind, f.device,
                    "" if not math.isfinite(e) else f" for {e - max(s, time.time()):.0f} s")
        undo = await self._apply(f)
        if math.isfinite(e):
            await asyncio.sleep(max(0.0, e - time.time()))
            await undo()
            log.warning("fault %s on %s over", f.kind, f.device)

    async def _apply(self, f: CommFault | MqttFault):  # type: ignore[no-untyped-def]
        from pymodbus.constants import ExcCodes
        if f.device in self.loggers:
            return await self._apply_hj212(f)
        if isinstance(f, MqttFault):
            pub = next((p for p in self.publishers if p.cfg.name == f.device), None)
            if pub is None:
                raise ValueError(f"fault {f.kind}: {f.device} is not a simulated MQTT device")
            setattr(pub, f.kind, f.offset_s if f.kind == "clock_skew" else True)

            async def undo_mqtt() -> None:
                setattr(pub, f.kind, 0.0 if f.kind == "clock_skew" else False)
            return undo_mqtt
        ctx = self.contexts[f.device]
        if f.kind == "connection_reset":
            gw = self.gateway_of(f.device)
            await gw.stop()

            async def undo_reset() -> None:
                await gw.start()
            return undo_reset
        if f.kind == "exception":
            ctx.exception = ExcCodes(f.code)
        else:
            ctx.delay_s = DROPOUT_DELAY_S if f.kind == "dropout" else f.delay_s

        async def undo() -> None:
            ctx.exception, ctx.delay_s = None, 0.0
        return undo


    async def _apply_hj212(self, f: CommFault | MqttFault):  # type: ignore[no-untyped-def]
        """A data logger's faults: clock_skew, malformed (bad CRC), connection_reset/
        broker_disconnect (the link drops after every packet), dropout (no packets: the logger
        is held on a bad-CRC stream)."""
        lg = self.loggers[f.device]
        if f.kind == "clock_skew":
            lg.clock_skew_s = getattr(f, "offset_s", 0.0)
        elif f.kind in ("malformed", "dropout"):
            lg.bad_crc = 10 ** 9
        else:
            lg.reconnect_every = 1

        async def undo() -> None:
            lg.clock_skew_s, lg.bad_crc, lg.reconnect_every = 0.0, 0, 0
        return undo


class Publisher:
    """An IoT device that only speaks MQTT: one JSON object per interval, QoS 1."""

    def __init__(self, cfg: MqttDevice, meter: SimMeter, interval_s: float) -> None:
        assert cfg.simulate is not None
        self.cfg, self.meter, self.pub = cfg, meter, cfg.simulate
        self.interval_s = cfg.interval_s or interval_s
        self.clock_skew = 0.0
        self.malformed = False
        self.broker_disconnect = False
        self.published = 0

    def payload(self, t: float) -> bytes:
        return encode_payload(self.pub.fields, self.meter, t, t + self.clock_skew,
                              composite_s(self.pub.sample, self.interval_s))

    async def run(self) -> None:
        import aiomqtt
        backoff = 0.5
        while True:
            try:
                async with aiomqtt.Client(self.cfg.host, self.cfg.port,
                                          identifier=f"sim-{self.cfg.client_id}"[:23]) as c:
                    backoff = 0.5
                    while not self.broker_disconnect:
                        tick = (math.floor(time.time() / self.interval_s) + 1) * self.interval_s
                        await asyncio.sleep(max(0.0, tick - time.time()))
                        if self.broker_disconnect:
                            break
                        await c.publish(self.pub.topic, self.payload(tick), qos=1)
                        if self.malformed:
                            await c.publish(self.pub.topic, b'{"ts": 17, "flow": [', qos=1)
                        self.published += 1
                while self.broker_disconnect:
                    await asyncio.sleep(0.2)
            except aiomqtt.MqttError as e:
                log.warning("simulated %s: MQTT %s; retrying in %.1f s", self.cfg.name, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(10.0, backoff * 2)


def composite_s(sample: str, interval_s: float) -> float | None:
    """The composite period of a cycle analyzer (its interval), None for instant values."""
    return interval_s if sample == "cycle_composite" else None


def mqtt_values(fields: dict[str, str], meter: SimMeter, t: float | object,
                composite: float | None = None) -> dict[str, object]:
    """The published quantities at ``t`` (scalar or array): field name -> value. With
    ``composite`` [s] a signal is the flow-weighted mean over (t - composite, t], what a cycle
    analyzer fed by a flow-proportional composite sampler reports at the end of its cycle."""
    st = meter.state(t)   # type: ignore[arg-type]
    mean: dict[str, object] = {}
    if composite is not None:
        tt = np.asarray(t, dtype=np.float64)
        mean = dict(meter.plant.mean_signals(meter.stream, tt - composite, tt))  # type: ignore[attr-defined]
        if tt.ndim == 0:
            mean = {k: float(np.asarray(v)) for k, v in mean.items()}
    out: dict[str, object] = {}
    for name, q in fields.items():
        if q == "rate_m3h":
            out[name] = st.rate
        elif q == "total_m3":
            out[name] = st.total
        elif q in mean:
            out[name] = mean[q]
        elif q in st.extra:
            out[name] = st.extra[q]
        else:
            raise ValueError(f"{meter.device}: no quantity {q!r} for stream {meter.stream!r}; "
                             f"have rate_m3h, total_m3, {', '.join(st.extra)}")
    return out


def encode_payload(fields: dict[str, str], meter: SimMeter, t: float, stamp: float,
                   composite: float | None = None) -> bytes:
    values = mqtt_values(fields, meter, t, composite)
    obj: dict[str, object] = {"ts": int(round(stamp * 1000))}
    obj.update({k: round(float(v), 6) for k, v in values.items()})  # type: ignore[arg-type]
    return json.dumps(obj).encode()


async def run(cfg: Config, leak: tuple[str, float] | None = None,
              stop: asyncio.Event | None = None, scenario: Scenario | None = None,
              origin: float | None = None) -> None:
    site = Site(cfg, leak=leak, scenario=scenario, t0=origin)
    async with site:
        log.info("simulating %d meters on %d gateways and %d MQTT publishers%s",
                 len(site.meters), len(site.gateways), len(site.publishers),
                 f"; leak at {leak[0]} ({leak[1]:.0%})" if leak else "")
        await (stop.wait() if stop else asyncio.Event().wait())
