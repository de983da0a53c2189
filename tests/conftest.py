"""Shared fixtures: the demo campaign on free ports, stores in temp dirs, private servers."""
from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from cpaudit import config
from cpaudit.store import SQLiteStore
from tests.servers import InfluxD, Mosquitto, free_port

ROOT = Path(__file__).resolve().parent.parent
BREWERY = ROOT / "config" / "examples" / "brewhouse.yaml"   # the quick continuous campaign
SITE = ROOT / "config" / "examples" / "brewery.yaml"         # the whole demo site
OUTPUT = ROOT / "test-output"


def brewery_text(**subs: Any) -> str:
    """The quick brewhouse campaign with every device port moved to a free one."""
    return campaign_text(BREWERY, **subs)


def site_text(mqtt_port: int | None = None, **subs: Any) -> str:
    """The demo site with every Modbus port moved to a free one, its MQTT devices on
    ``mqtt_port`` (a private broker) when given."""
    text = campaign_text(SITE, **subs)
    if mqtt_port is not None:
        text = text.replace("    protocol: mqtt\n", f"    protocol: mqtt\n    port: {mqtt_port}\n")
    return text


def campaign_text(path: Path, **subs: Any) -> str:
    text = path.read_text()
    # a key "port:" only (not "report: 65 700" in a source text)
    ports = sorted(set(re.findall(r"\bport: (\d+)", text)))
    for p in ports:
        text = re.sub(rf"\bport: {p}\b", f"port: {free_port()}", text)
    for k, v in subs.items():
        text = text.replace(k, v)
    return text


def with_influx_sink(text: str, url: str, database: str, batch_size: int = 5000) -> str:
    """A campaign text with an InfluxDB v1 sink named `central` added."""
    return text.replace("\nsimulation:", f"\nsinks:\n  - {{name: central, kind: influxdb_v1, "
                        f"url: '{url}', database: {database}, batch_size: {batch_size}}}\n"
                        "\nsimulation:")


@pytest.fixture
def brewery_file(tmp_path: Path) -> Path:
    p = tmp_path / "brewery.yaml"
    p.write_text(brewery_text())
    return p


@pytest.fixture
def brewery(brewery_file: Path) -> config.Config:
    return config.load(brewery_file)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    m = Mosquitto(tmp_path / "mosquitto").start()
    yield m
    m.stop()


@pytest.fixture
def influxd(tmp_path: Path) -> Iterator[InfluxD]:
    i = InfluxD(tmp_path / "influxd").start()
    yield i
    i.stop()


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT




def run_collector(cfg: config.Config, store: SQLiteStore, seconds: float,
                  prepare: Any = None, during: Any = None, forward: bool = False,
                  **site_kw: Any) -> Any:
    """Run the simulated site and a collector for ``seconds``; return the collector.

    ``prepare(site)`` runs before the servers start (faults, removed gateways);
    ``during(site, collector)`` is an async callable run while collecting, instead of sleeping;
    ``forward``: the config's sinks are fed beside it, as ``cpaudit collect`` does."""
    from cpaudit.collector.forwarding import Forwarding
    from cpaudit.collector.service import Collector
    from cpaudit.simulators.live import Site

    async def go() -> Any:
        site = Site(cfg, **site_kw)
        if prepare:
            prepare(site)
        async with site:
            beside = [Forwarding.from_config(cfg, store)] if forward else []
            col = Collector(cfg, store, beside=beside)
            stop = asyncio.Event()
            task = asyncio.create_task(col.run(stop))
            if during:
                await during(site, col)
            else:
                await asyncio.sleep(seconds)
            stop.set()
            await task
            return col
    return asyncio.run(go())
