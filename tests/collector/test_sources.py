"""The source seam (collector.sources): a protocol the service has never heard of runs beside the
real Modbus meters, and the collector's modules import one another without a circle."""
from __future__ import annotations

import ast
import asyncio
import math
import subprocess
import sys
from pathlib import Path
from typing import AsyncGenerator

from cpaudit import config
from cpaudit.collector.clock import Clock, next_tick
from cpaudit.collector.kinds import build_sources
from cpaudit.collector.service import Collector
from cpaudit.collector.sources import Reading, Rows
from cpaudit.simulators.live import Site
from cpaudit.store import Quality, Reason, SQLiteStore
from cpaudit.store.keys import health_tag
from tests.conftest import ROOT, brewery_text

INTERVAL_NS = 500_000_000
COLLECTOR_DIR = ROOT / "collector"
PROTOCOL_MODULES = {"collector.modbus", "collector.mqtt", "collector.hj212_server"}


class Ticker:
    """A push source of a made-up protocol: an async generator that yields, at each tick, a
    counter (good) and a flag (uncertain, its sender's clock doubted), and asks to be told when
    each batch is committed (as MQTT acknowledges)."""

    label = "ticker"

    def __init__(self, clock: Clock, store: SQLiteStore) -> None:
        self.clock, self.store = clock, store
        self.closed = False
        self.started = False
        self.sent: list[int] = []
        self.stored_when_told: list[bool] = []

    async def start(self) -> None:
        self.started = True

    async def samples(self) -> AsyncGenerator[Rows, None]:
        n = 0
        while not self.closed:
            tick = next_tick(self.clock.now_ns(), INTERVAL_NS)
            await self.clock.sleep_until(tick)
            n += 1
            self.sent.append(tick)
            yield Rows(tags=["ticker.count", "ticker.flag"], ts=[tick, tick],
                       values=[float(n), 1.0], quality=[Quality.GOOD, Quality.UNCERTAIN],
                       reason=[Reason.NONE, Reason.SENDER_CLOCK],
                       done=[lambda t=tick: self._told(t)])

    def _told(self, tick: int) -> None:
        last = self.store.last(["ticker.count"])
        self.stored_when_told.append(len(last) == 1 and int(last["ts"].iloc[0]) >= tick)

    def health(self, tick: int) -> list[Reading]:
        return [Reading(health_tag(self.label, "online"), 0.0 if self.closed else 1.0)]

    async def aclose(self) -> None:
        self.closed = True


class Dial:
    """A polled source of a made-up protocol: a value read off memory at each tick."""

    name = "dial"
    interval_s = None
    tags = ["dial.v"]
    sent_ns = 0

    def __init__(self) -> None:
        self.closed = False

    async def poll(self) -> list[Reading]:
        return [Reading("dial.v", 42.0)]

    def all_bad(self, reason: Reason) -> list[Reading]:
        return [Reading("dial.v", math.nan, Quality.BAD, reason)]

    def close(self) -> None:
        self.closed = True


def test_a_new_protocol_runs_beside_the_modbus_meters_on_the_same_time_base(
        tmp_path: Path) -> None:
    """Two source kinds written here, added to the config's sources: the service takes them with
    no change; their samples land in the store on the Modbus meters' ticks, with their quality,
    the push source is told of a commit only once it is in the store, its health is stored each
    tick, and both are closed at stop."""
    p = tmp_path / "c.yaml"
    p.write_text(brewery_text(**{"interval_s: 1.0": "interval_s: 0.5"}))
    cfg = config.load(p)
    st = SQLiteStore(tmp_path / "s.db")
    clock = Clock()
    ticker, dial = Ticker(clock, st), Dial()

    async def go() -> Collector:
        async with Site(cfg):
            sources = build_sources(cfg, clock, st)
            assert sources.by_kind.keys() == {"modbus"} and sources.polled
            sources.add_push("ticker", ticker)
            sources.add_polled("dial", dial)
            col = Collector(cfg, st, clock, sources=sources)
            stop = asyncio.Event()
            task = asyncio.create_task(col.run(stop))
            await asyncio.sleep(3.2)
            stop.set()
            await task
            return col
    col = asyncio.run(go())
    df = st.read(None)

    def ticks(tag: str, good_only: bool = False) -> set[int]:
        rows = df[df["tag"] == tag]
        if good_only:
            rows = rows[rows["quality"] == Quality.GOOD]
        return set(rows["ts"].tolist())

    meter = ticks(cfg.flowsheet.streams[0].tag, good_only=True)
    assert len(meter) >= 5 and all(t % INTERVAL_NS == 0 for t in meter)
    pushed = ticks("ticker.count")
    assert pushed == set(ticker.sent) and len(pushed) >= 4
    assert len(pushed & meter) >= len(pushed) - 1       # the last one may fall after the polls
    assert ticks("ticker.flag") == pushed
    flag = df[df["tag"] == "ticker.flag"]
    assert (flag["quality"] == Quality.UNCERTAIN).all()
    assert (flag["reason"] == Reason.SENDER_CLOCK).all()
    counts = df[df["tag"] == "ticker.count"].sort_values("ts")["value"].tolist()
    assert counts == [float(i) for i in range(1, len(counts) + 1)]
    assert ticker.stored_when_told and all(ticker.stored_when_told)
    assert len(ticker.stored_when_told) == len(pushed)      # every batch, the last one too
    assert ticker.started and ticker.closed
    assert len(ticks(health_tag("ticker", "online"))) >= 4

    polled = ticks("dial.v", good_only=True)
    assert len(polled & meter) >= 5 and len(polled ^ meter) <= 2
    assert len(ticks(health_tag("dial", "polls"))) >= 5
    assert col.health["dial"].good_polls >= 5 and dial.closed
    st.close()


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top, in functions or under TYPE_CHECKING."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}   # `from collector import x`
    return out


def _graph() -> dict[str, set[str]]:
    mods = {f"collector.{p.stem}": p for p in COLLECTOR_DIR.glob("*.py") if p.stem != "__init__"}
    return {m: {x for x in _imports(p) if x in mods and x != m} for m, p in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}         # 1 on the path, 2 done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state and (c := visit(n)) is not None:
                return c
        path.pop()
        state[m] = 2
        return None
    for m in sorted(graph):
        if m not in state and (c := visit(m)) is not None:
            return c
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle_among_the_collector_modules() -> None:
    graph = _graph()
    assert {"collector.service", "collector.sources", "collector.mqtt"} <= graph.keys()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    importers = sorted(m for m, deps in graph.items() if "collector.service" in deps)
    assert importers == [], f"{importers} import the service: they should need collector.sources"


def test_the_service_knows_no_protocol_and_no_forwarding() -> None:
    deps = _imports(COLLECTOR_DIR / "service.py")
    assert not deps & PROTOCOL_MODULES, deps & PROTOCOL_MODULES
    assert "store.forward" not in deps and "store.influx" not in deps
    names = {n.id for n in ast.walk(ast.parse((COLLECTOR_DIR / "service.py").read_text()))
             if isinstance(n, ast.Name)}
    assert not names & {"MqttDevice", "Hj212Device", "ModbusDevice", "MODBUS_DEVICES", "Link"}


def test_importing_the_mqtt_source_leaves_the_service_unloaded() -> None:
    code = ("import sys, collector.mqtt, collector.hj212_server, collector.modbus; "
            "print('collector.service' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False", out.stderr
