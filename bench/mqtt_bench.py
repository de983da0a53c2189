"""MQTT, QoS 1: draining a backlog queued in a persistent session, by ``mosquitto_sub`` (C), a raw
aiomqtt subscriber (json.loads each message, acknowledged on receipt), and the collector's MQTT
source (parsed, committed to SQLite, acknowledged only after the commit), three rounds interleaved,
each figure the median of its rounds (one round on two cores swings by ±20 %). Then the latency of a
lone message, published while the collector idles: from publish to its acknowledgement, which
goes out once it is committed. One private Mosquitto, its settings the defaults (in-flight window 20;
Mosquitto 2.0.11 was seen with thousands unacknowledged once acknowledgements flow, so the
drain is bound by CPU, not by the window)."""
from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho

from bench.common import Timer, at_most, header, line, ratio_at_least, tmpdir

ROUNDS = 3
LONE = 200           # lone messages, one at a time
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


def _collector(port: int, cid: str, topic: str, n: int, d: str, lone: int = 0
               ) -> tuple[float, float, int, list[float]]:
    """Drain ``n`` queued messages: (msg/s, CPU s per message, commits); then, with ``lone``,
    publish that many messages one at a time and give each one's time from publish to its
    acknowledgement (sent once committed) [s]."""
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
    p = Path(d) / f"{cid}.yaml"
    p.write_text(text)
    cfg = config.load(p)
    st = SQLiteStore(Path(d) / f"{cid}.db")
    out: dict[str, float] = {}

    async def _lone(col: Collector, port: int, topic: str, k: int, base: int) -> None:
        if not k:
            return
        src = col.mqtt[0]
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:6]}")
        c.connect("127.0.0.1", port)
        c.loop_start()
        try:
            for i in range(k):
                await asyncio.sleep(0.02)          # the collector idles between two messages
                had = src.acked
                t0 = time.perf_counter()
                c.publish(topic, json.dumps({"v": i, "ts": 1_795_000_000_000 + base + i}), qos=1)
                while src.acked == had:
                    await asyncio.sleep(0.0001)
                lat.append(time.perf_counter() - t0)
        finally:
            c.loop_stop()
            c.disconnect()

    async def go() -> Collector:
        col = Collector(cfg, st)
        stop = asyncio.Event()
        with Timer() as t:
            task = asyncio.create_task(col.run(stop))
            while col.writer.written < n:
                await asyncio.sleep(0.005)
        out["rate"], out["cpu"] = n / t.wall, t.cpu / n
        out["commits"] = col.writer.commits
        await _lone(col, port, topic, lone, n)
        stop.set()
        await task
        return col
    lat: list[float] = []
    asyncio.run(go())
    stored = st.read(["bench.v"])
    st.close()
    assert len(stored) == n + lone, f"{len(stored)} of {n + lone} messages stored"
    return out["rate"], out["cpu"], int(out["commits"]), lat


def run() -> None:
    from tests.servers import Mosquitto
    header(f"mqtt — QoS 1, draining {N:,} queued messages from a persistent session "
           f"(JSON payloads), private Mosquitto, defaults; median of {ROUNDS} interleaved rounds")
    with tmpdir() as d:
        broker = Mosquitto(Path(d) / "broker").start()
        try:
            rates: dict[str, list[float]] = {"mosquitto_sub": [], "aiomqtt": [], "collector": []}
            cpu: list[float] = []
            commits: list[int] = []
            lat: list[float] = []
            for k in range(ROUNDS):
                for who in rates:
                    cid, topic = f"b-{uuid.uuid4().hex[:8]}", f"bench/{uuid.uuid4().hex[:6]}"
                    _session(broker.port, cid, topic)
                    _publish(broker.port, topic, N)
                    if who == "mosquitto_sub":
                        rates[who].append(_mosquitto_sub(broker.port, cid, topic, N))
                    elif who == "aiomqtt":
                        rates[who].append(asyncio.run(_aiomqtt(broker.port, cid, topic, N)))
                    else:
                        rate, c, m, lone = _collector(broker.port, cid, topic, N, d,
                                                      LONE if k == 0 else 0)
                        rates[who].append(rate)
                        cpu.append(c)
                        commits.append(m)
                        lat += lone
            med = {w: statistics.median(r) for w, r in rates.items()}
            line("mosquitto_sub (C), to /dev/null", med["mosquitto_sub"], "msg/s")
            line("raw aiomqtt + json.loads, ack on receipt (baseline)", med["aiomqtt"], "msg/s")
            line("collector: parse, commit to SQLite, then ack", med["collector"], "msg/s",
                 med["aiomqtt"], ratio_at_least(0.7))
            print(f"      rounds: aiomqtt {', '.join(f'{r:,.0f}' for r in rates['aiomqtt'])}; "
                  f"collector {', '.join(f'{r:,.0f}' for r in rates['collector'])} msg/s")
            line("  collector CPU per message", statistics.median(cpu) * 1e6, "µs")
            line("  SQLite commits (grouped: ≤ 10 ms apart)", statistics.median(commits),
                 "commits")
            q = statistics.quantiles(lat, n=100)
            line(f"lone message, publish to acknowledged, p50 ({len(lat)})", q[49] * 1e3, "ms")
            line("lone message, publish to acknowledged, p99", q[98] * 1e3, "ms",
                 target=at_most(20, "ms"))
        finally:
            broker.stop()
