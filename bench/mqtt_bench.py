"""MQTT, QoS 1: draining a backlog queued in a persistent session, by ``mosquitto_sub`` (C), a raw
aiomqtt subscriber (json.loads each message, acknowledged on receipt), and the collector's MQTT
source (parsed, committed to SQLite, acknowledged only after the commit). One private Mosquitto;
its in-flight window for QoS 1 is the default (20) unless stated."""
from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho

from bench.common import Timer, header, line, tmpdir

N = 30_000          # below 65,535 queued QoS 1 messages per client (limits.md: mosquitto_pub trap)


def _session(port: int, cid: str, topic: str) -> None:
    """Create the persistent session (subscription kept by the broker), then leave."""
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=False)
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe(topic, qos=1)[1]
    time.sleep(0.3)
    c.loop_stop()
    c.disconnect()


def _publish(port: int, topic: str, n: int) -> None:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:6]}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    base = 1_795_000_000_000
    infos = [c.publish(topic, json.dumps({"v": i, "ts": base + i}), qos=1) for i in range(n)]
    for info in infos:
        info.wait_for_publish(30)
    c.loop_stop()
    c.disconnect()
    time.sleep(0.5)      # let the broker go idle (limits.md)


def _mosquitto_sub(port: int, cid: str, topic: str, n: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-i", cid, "-c",
                    "-q", "1", "-t", topic, "-C", str(n)], check=True, stdout=subprocess.DEVNULL,
                   timeout=120)
    return n / (time.perf_counter() - t0)


async def _aiomqtt(port: int, cid: str, topic: str, n: int) -> float:
    import aiomqtt
    got = 0
    t0 = time.perf_counter()
    async with aiomqtt.Client("127.0.0.1", port, identifier=cid, clean_session=False) as c:
        await c.subscribe(topic, qos=1)
        async for m in c.messages:
            json.loads(m.payload)  # type: ignore[arg-type]
            got += 1
            if got >= n:
                break
    return n / (time.perf_counter() - t0)


def _collector(port: int, cid: str, topic: str, n: int, d: str) -> tuple[float, float, int]:
    from cpaudit import config
    from cpaudit.collector.service import Collector
    from cpaudit.store import SQLiteStore
    text = f"""
campaign: {{name: mqtt bench}}
devices:
  - name: iot
    protocol: mqtt
    port: {port}
    client_id: {cid}
    subscriptions:
      - {{topic: "{topic}", format: json, value_path: v, ts_path: ts, ts_unit: ms, tag: bench.v}}
    tags: [{{tag: bench.v}}]
flowsheet:
  nodes: [{{id: n}}]
  streams: [{{id: s, from: ENV, to: n, provenance: theoretical, value: 1, unit: kg, source: b}}]
"""
    p = Path(d) / "m.yaml"
    p.write_text(text)
    cfg = config.load(p)
    st = SQLiteStore(Path(d) / "m.db")
    out: dict[str, float] = {}

    async def go() -> Collector:
        col = Collector(cfg, st)
        stop = asyncio.Event()
        with Timer() as t:
            task = asyncio.create_task(col.run(stop))
            while col.writer.written < n:
                await asyncio.sleep(0.005)
        out["rate"], out["cpu"] = n / t.wall, t.cpu / n
        stop.set()
        await task
        return col
    col = asyncio.run(go())
    stored = st.read(["bench.v"])
    st.close()
    assert len(stored) == n, f"{len(stored)} of {n} messages stored"
    return out["rate"], out["cpu"], col.writer.commits


def run() -> None:
    from tests.servers import Mosquitto
    header(f"mqtt — QoS 1, draining {N:,} queued messages from a persistent session "
           "(JSON payloads), private Mosquitto, in-flight window 20 (its default)")
    with tmpdir() as d:
        broker = Mosquitto(Path(d) / "broker").start()
        try:
            rates = {}
            for who in ("mosquitto_sub", "aiomqtt", "collector"):
                cid, topic = f"b-{uuid.uuid4().hex[:8]}", f"bench/{uuid.uuid4().hex[:6]}"
                _session(broker.port, cid, topic)
                _publish(broker.port, topic, N)
                if who == "mosquitto_sub":
                    rates[who] = _mosquitto_sub(broker.port, cid, topic, N)
                elif who == "aiomqtt":
                    rates[who] = asyncio.run(_aiomqtt(broker.port, cid, topic, N))
                else:
                    rate, cpu, commits = _collector(broker.port, cid, topic, N, d)
                    rates[who] = rate
            line("mosquitto_sub (C), to /dev/null", rates["mosquitto_sub"], "msg/s")
            line("raw aiomqtt + json.loads, ack on receipt (baseline)", rates["aiomqtt"], "msg/s")
            line("collector: parse, commit to SQLite, then ack", rates["collector"], "msg/s",
                 rates["aiomqtt"], "≥ 0.7x")
            line("  collector CPU per message", cpu * 1e6, "µs")
            line("  SQLite commits (one per in-flight window or less)", commits, "commits")
        finally:
            broker.stop()
