"""The MQTT source against a real, private Mosquitto (its own port and persistence dir)."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Callable

import paho.mqtt.client as paho

from cpaudit import config
from cpaudit.collector.service import Collector
from cpaudit.store import SQLiteStore
from tests.servers import Mosquitto


def mqtt_config(tmp_path: Path, port: int, client_id: str, prefix: str) -> config.Config:
    text = f"""
campaign: {{name: mqtt test}}
collector: {{interval_s: 0.5, flush_ms: 100}}
devices:
  - name: iot
    protocol: mqtt
    port: {port}
    client_id: {client_id}
    subscriptions:
      - {{topic: "{prefix}/ww/+/flow", format: json, value_path: v, ts_path: ts, ts_unit: ms, tag: "ww.{{1}}.flow"}}
      - {{topic: "{prefix}/ww/+/quality", format: json, fields: [cod, nh3n], tag: "ww.{{1}}.{{field}}"}}
      - {{topic: "{prefix}/plain/#", format: number, tag: "plain.level"}}
    tags:
      - {{tag: ww.influent.flow, unit: m3/h, kind: rate}}
      - {{tag: ww.effluent.flow, unit: m3/h, kind: rate}}
      - {{tag: ww.influent.cod, unit: mg/L}}
      - {{tag: ww.influent.nh3n, unit: mg/L}}
      - {{tag: plain.level, unit: m}}
flowsheet:
  nodes: [{{id: ww}}]
  streams:
    - {{id: inf, from: ENV, to: ww, provenance: theoretical, value: 1, unit: m3, source: test, density_kg_m3: 1000}}
"""
    p = tmp_path / "mqtt.yaml"
    p.write_text(text)
    return config.load(p)


class Publisher:
    def __init__(self, port: int) -> None:
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def send(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self.c.publish(topic, payload, qos=qos).wait_for_publish(10)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


async def wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``condition`` every 50 ms until it holds or ``timeout_s`` passes (the caller asserts)."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def start(cfg: config.Config, st: SQLiteStore) -> tuple[Collector, asyncio.Event, asyncio.Task[None]]:
    col = Collector(cfg, st)
    stop = asyncio.Event()
    task = asyncio.create_task(col.run(stop))
    await wait_for(lambda: col.mqtt[0].connected, 5.0)
    assert col.mqtt[0].connected
    return col, stop, task


def test_messages_to_store_and_malformed_counted(tmp_path: Path, mosquitto: Mosquitto) -> None:
    pre = f"t{uuid.uuid4().hex[:6]}"
    cfg = mqtt_config(tmp_path, mosquitto.port, f"cp-{uuid.uuid4().hex[:8]}", pre)
    st = SQLiteStore(tmp_path / "m.db")
    t_ms = 1795000000000

    async def go() -> Collector:
        col, stop, task = await start(cfg, st)
        pub = Publisher(mosquitto.port)
        for i in range(5):
            await asyncio.to_thread(pub.send, f"{pre}/ww/influent/flow",
                                    json.dumps({"v": 10 + i, "ts": t_ms + i * 1000}))
            await asyncio.to_thread(pub.send, f"{pre}/ww/influent/flow", b"{garbage")
        await asyncio.to_thread(pub.send, f"{pre}/ww/influent/flow", json.dumps({"v": "NaN", "ts": t_ms}))
        await asyncio.to_thread(pub.send, f"{pre}/ww/influent/flow", b"x" * 70000)
        await asyncio.to_thread(pub.send, f"{pre}/ww/unknown/flow", json.dumps({"v": 1, "ts": t_ms}))
        await asyncio.to_thread(pub.send, f"{pre}/ww/influent/quality",
                                json.dumps({"cod": 320.5, "nh3n": 31}))
        await asyncio.to_thread(pub.send, f"{pre}/plain/a/b", b"2.75")
        await asyncio.to_thread(pub.send, f"{pre}/ww/effluent/flow",
                                json.dumps({"v": 9.5, "ts": t_ms}))
        await asyncio.sleep(0.8)
        pub.close()
        stop.set()
        await task
        return col
    col = asyncio.run(go())
    flow = st.read(["ww.influent.flow"])
    assert flow["value"].tolist() == [10.0, 11.0, 12.0, 13.0, 14.0]
    assert flow["ts"].tolist() == [(t_ms + i * 1000) * 10**6 for i in range(5)]   # sender time
    assert st.read(["ww.effluent.flow"])["value"].tolist() == [9.5]        # after the garbage
    assert st.read(["ww.influent.cod"])["value"].tolist() == [320.5]
    assert st.read(["ww.influent.nh3n"])["value"].tolist() == [31.0]
    assert st.read(["plain.level"])["value"].tolist() == [2.75]
    m = col.mqtt[0].malformed
    assert (m["not_json"], m["nan"], m["too_large"], m["undeclared_tag"]) == (5, 1, 1, 1)
    health = st.read(["_health.iot.malformed"])
    assert health["value"].iloc[-1] == 8.0
    st.close()


def test_broker_restart_and_messages_while_away_arrive(tmp_path: Path, mosquitto: Mosquitto) -> None:
    pre = f"t{uuid.uuid4().hex[:6]}"
    cid = f"cp-{uuid.uuid4().hex[:8]}"
    cfg = mqtt_config(tmp_path, mosquitto.port, cid, pre)
    st = SQLiteStore(tmp_path / "m.db")
    t_ms = 1795000000000
    topic = f"{pre}/ww/influent/flow"

    def msg(i: int) -> str:
        return json.dumps({"v": i, "ts": t_ms + i * 1000})

    async def go() -> None:
        # 1. the broker restarts under a running collector: it reconnects and resubscribes
        col, stop, task = await start(cfg, st)
        await asyncio.to_thread(mosquitto.stop)
        await asyncio.sleep(1.0)
        assert not col.mqtt[0].connected
        await asyncio.to_thread(mosquitto.start)
        await wait_for(lambda: col.mqtt[0].connected, 10.0)
        assert col.mqtt[0].connected and col.mqtt[0].connects == 2
        pub = Publisher(mosquitto.port)
        for i in range(10):
            await asyncio.to_thread(pub.send, topic, msg(i))
        await asyncio.sleep(0.5)
        stop.set()
        await task
        # 2. the collector is away: QoS 1 messages are queued in its persistent session ...
        for i in range(10, 60):
            await asyncio.to_thread(pub.send, topic, msg(i))
        pub.close()
        # ... and the broker restarts meanwhile (persistence on) ...
        await asyncio.to_thread(mosquitto.stop)
        await asyncio.to_thread(mosquitto.start)
        # ... and all of them arrive when the collector comes back with the same client id
        col, stop, task = await start(cfg, st)
        await wait_for(lambda: col.mqtt[0].readings >= 50, 5.0)
        await asyncio.sleep(0.3)
        stop.set()
        await task
    asyncio.run(go())
    got = st.read([ "ww.influent.flow"])["value"].tolist()
    assert got == [float(i) for i in range(60)]
    st.close()


def test_unstored_messages_are_not_acknowledged(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The store refuses writes (read-only): messages are received but never acknowledged, so the
    broker delivers them again to the next session, which stores them."""
    pre = f"t{uuid.uuid4().hex[:6]}"
    cfg = mqtt_config(tmp_path, mosquitto.port, f"cp-{uuid.uuid4().hex[:8]}", pre)
    path = tmp_path / "m.db"
    SQLiteStore(path).close()
    t_ms = 1795000000000
    topic = f"{pre}/ww/influent/flow"

    async def session(st: SQLiteStore, publish: bool) -> Collector:
        col, stop, task = await start(cfg, st)
        if publish:
            pub = Publisher(mosquitto.port)
            for i in range(5):
                await asyncio.to_thread(pub.send, topic, json.dumps({"v": i, "ts": t_ms + i}))
            pub.close()
        await wait_for(lambda: col.mqtt[0].readings >= 5, 3.0)
        await asyncio.sleep(0.5)
        stop.set()
        await task
        return col

    ro = SQLiteStore(path, readonly=True)
    first = asyncio.run(session(ro, publish=True))
    ro.close()
    assert first.mqtt[0].readings == 5 and first.writer.written == 0
    rw = SQLiteStore(path)
    asyncio.run(session(rw, publish=False))
    assert rw.read(["ww.influent.flow"])["value"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    rw.close()


def test_poison_payloads_between_good_ones_are_counted_and_ingestion_goes_on(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Issue 14: a 400-digit integer (float overflow), 6 KB of nested brackets (RecursionError
    in json.loads) and a 5 000-digit integer (beyond Python's int-string limit) used to end the
    connection's task silently. Now each is a counted rejection and the readings around them —
    and after them — are stored."""
    pre = f"t{uuid.uuid4().hex[:6]}"
    cfg = mqtt_config(tmp_path, mosquitto.port, f"cp-{uuid.uuid4().hex[:8]}", pre)
    st = SQLiteStore(tmp_path / "p.db")
    t_ms = 1795000000000
    poison = [b'{"v": ' + b"9" * 400 + b', "ts": 1795000000000}', b"[" * 6000 + b"]" * 6000,
              b'{"v": ' + b"9" * 5000 + b"}"]

    async def go() -> Collector:
        col, stop, task = await start(cfg, st)
        pub = Publisher(mosquitto.port)
        topic = f"{pre}/ww/influent/flow"
        for i, bad in enumerate(poison):
            await asyncio.to_thread(pub.send, topic, json.dumps({"v": 10 + i, "ts": t_ms + i}))
            await asyncio.to_thread(pub.send, topic, bad)
        await asyncio.to_thread(pub.send, topic, json.dumps({"v": 20, "ts": t_ms + 10}))
        await wait_for(lambda: col.mqtt[0].readings >= 4, 5.0)
        assert col.mqtt[0].connected and not task.done()
        pub.close()
        stop.set()
        await task
        return col
    col = asyncio.run(go())
    assert st.read(["ww.influent.flow"])["value"].tolist() == [10.0, 11.0, 12.0, 20.0]
    m = col.mqtt[0].malformed
    assert (m["wrong_type"], m["malformed"]) == (1, 2)
    st.close()


def test_a_failure_inside_the_source_is_loud_and_ingestion_resumes(tmp_path: Path,
                                                                    mosquitto: Mosquitto) -> None:
    """Whatever escapes the MQTT source's handling (a bug: injected here, the one thing that
    cannot be made to happen for real) ends neither the source nor the message: the health goes
    offline, the failure is counted, the source reconnects, and the message that was being
    handled, never acknowledged, comes again and is stored."""
    from cpaudit.collector.mqtt import MqttSource
    pre = f"t{uuid.uuid4().hex[:6]}"
    cfg = mqtt_config(tmp_path, mosquitto.port, f"cp-{uuid.uuid4().hex[:8]}", pre)
    st = SQLiteStore(tmp_path / "m.db")
    t_ms = 1795000000000
    real = MqttSource.handle
    calls = {"n": 0}

    def buggy(self: MqttSource, topic: str, payload: bytes, ack: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("a bug in the handling")
        real(self, topic, payload, ack)  # type: ignore[arg-type]

    async def go() -> Collector:
        MqttSource.handle = buggy  # type: ignore[method-assign]
        try:
            col, stop, task = await start(cfg, st)
            pub = Publisher(mosquitto.port)
            for i in range(4):
                await asyncio.to_thread(pub.send, f"{pre}/ww/influent/flow",
                                        json.dumps({"v": 10 + i, "ts": t_ms + i * 1000}))
            await wait_for(lambda: len(st.read(["ww.influent.flow"])) == 4, 10.0)
            pub.close()
            stop.set()
            await task
            return col
        finally:
            MqttSource.handle = real  # type: ignore[method-assign]
    col = asyncio.run(go())
    assert st.read(["ww.influent.flow"])["value"].tolist() == [10.0, 11.0, 12.0, 13.0]
    m = col.mqtt[0]
    assert m.malformed["internal:RuntimeError"] == 1 and m.connects >= 2
    assert 0.0 in set(st.read(["_health.iot.online"])["value"])
    st.close()
