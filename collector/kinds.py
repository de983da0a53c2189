"""The one place that maps the config's device kinds to sources: Modbus devices (TCP, RTU over
TCP, serial) become polled sources, MQTT connections and HJ 212 listening addresses push sources.
A new protocol is a module with a source class and a line here; the service does not change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cpaudit.collector.clock import Clock
from cpaudit.collector.sources import PolledSource, PushSource
from cpaudit.config import Config
from cpaudit.config.models import MODBUS_DEVICES, MqttDevice


@dataclass
class Sources:
    polled: list[PolledSource] = field(default_factory=list)
    push: list[PushSource] = field(default_factory=list)
    by_kind: dict[str, list[Any]] = field(default_factory=dict)    # "modbus", "mqtt", "hj212"

    def add_polled(self, kind: str, src: PolledSource) -> None:
        self.polled.append(src)
        self.by_kind.setdefault(kind, []).append(src)

    def add_push(self, kind: str, src: PushSource) -> None:
        self.push.append(src)
        self.by_kind.setdefault(kind, []).append(src)


def build_sources(cfg: Config, clock: Clock, store: Any) -> Sources:
    """The config's sources, in the config's order within each kind. ``store`` is handed to the
    sources that keep records of their own beside the samples (HJ 212's raw packets)."""
    out = Sources()
    links: dict[tuple[object, ...], Any] = {}
    for d in cfg.devices:
        if isinstance(d, MODBUS_DEVICES):
            from cpaudit.collector.modbus import Link, ModbusDevice
            link = links.setdefault(d.link_key, Link(d))    # one connection per host and port
            out.add_polled("modbus", ModbusDevice(d, link))
        elif isinstance(d, MqttDevice):
            from cpaudit.collector.mqtt import MqttSource         # aiomqtt only when MQTT is configured
            out.add_push("mqtt", MqttSource(d, clock))
    from cpaudit.collector.hj212_server import hj212_sources       # one server per listening address
    for srv in hj212_sources(cfg, clock, store):
        out.add_push("hj212", srv)
    return out
